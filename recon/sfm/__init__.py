"""Structure from motion with known poses: recon's matchers, COLMAP's triangulator (pycolmap), ``points3d.npy``.

:func:`run_sfm` (``recon sfm``): :func:`recon.match.select_pairs` -> a :class:`recon.match.Matcher` (LoFTR with
local weights, else SIFT) -> epipolar verification with the known poses (:mod:`recon.sfm.verify`) -> per-image
keypoint tables (:mod:`recon.sfm.keypoints`) -> a COLMAP database (:mod:`recon.sfm.database`) and a reconstruction
with the fixed poses (:mod:`recon.sfm.colmap_model`) -> ``pycolmap.triangulate_points`` and filters
(:mod:`recon.sfm.triangulate`). Pixel convention everywhere: the centre of pixel (u, v) is at (u + 0.5, v + 0.5),
which is COLMAP's as well.
"""

from recon.sfm.pipeline import SfmConfig, SfmResult, run_sfm
from recon.sfm.triangulate import MeasuredPoints, TrackFilter

__all__ = ["SfmConfig", "SfmResult", "run_sfm", "MeasuredPoints", "TrackFilter"]
