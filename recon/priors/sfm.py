"""SfM depth prior: project the scene's SfM points (``points3d.npy``) into a frame, keep the visible ones, densify.

SfM points carry no per-image visibility in the scene format, so visibility is decided geometrically: a z-buffer
keeps the nearest point per pixel, and a depth-consistency test (:func:`recon.data.projection.occlusion_filter`)
drops points lying well behind a nearer point close by in the image (occluded surfaces seen through the gaps
between sparse points). Depth is metric only when the SfM reconstruction is (a converter that aligned it to
metric poses, or poses in metres given to the triangulation); the prior's ``meta`` records the point count.
"""

from __future__ import annotations

import math

import numpy as np

from recon.data.scene import Frame, Scene
from recon.errors import ReconError
from recon.priors.base import DepthPrior
from recon.priors.lidar import finish_prior


def sfm_sparse_depth(points_world: np.ndarray, frame: Frame, occlusion_radius_px: int = 2,
                     occlusion_rel_tol: float = 0.3, max_depth: float = math.inf) -> np.ndarray:
    """Sparse float32 [H, W] z-depth (metres) of the visible SfM points in ``frame`` (0 where none)."""
    return frame.sparse_depth(points_world, occlusion_radius_px, occlusion_rel_tol, max_depth)


def sfm_prior(
    scene: Scene,
    frame: Frame,
    dense: bool = True,
    radius_px: int | None = None,
    occlusion_radius_px: int = 2,
    use_image: bool = True,
    use_sky_mask: bool = True,
    max_depth: float = math.inf,
    device: str = "cpu",
    points: np.ndarray | None = None,
) -> DepthPrior:
    """The SfM depth prior of a frame: source ``sfm`` (densified) or ``sfm-sparse``.

    ``points`` (N, 3+) overrides ``scene.load_sfm_points()`` (lets a caller load the points once for all frames).
    """
    pts = scene.load_sfm_points() if points is None else points
    if pts is None:
        raise ReconError(f"{scene.root}: the scene has no SfM points (points3d.npy); convert it from COLMAP or "
                         "use --source lidar/mono")
    sparse = sfm_sparse_depth(pts, frame, occlusion_radius_px, max_depth=max_depth)
    meta = {"points": int(len(pts)), "sparse_pixels": int((sparse > 0).sum())}
    return finish_prior(frame, sparse, "sfm", dense, radius_px, use_image, use_sky_mask, device, meta)
