"""SfM depth prior: project the scene's SfM points (``points3d.npy``) into a frame, keep the visible ones, densify.

SfM points carry no per-image visibility in the scene format, so visibility is decided geometrically: a z-buffer
keeps the nearest point per pixel, and a depth-consistency test (:func:`recon.data.projection.occlusion_filter`)
drops points lying well behind a nearer point close by in the image (occluded surfaces seen through the gaps
between sparse points). Depth is metric only when the SfM reconstruction is (a converter that aligned it to
metric poses, or poses in metres given to the triangulation); the prior's ``meta`` records the point count.
"""

from __future__ import annotations

import numpy as np

from recon.data.scene import Frame, Scene
from recon.errors import ReconError
from recon.priors.base import DepthPrior
from recon.priors.points import PointPriorOptions, points_prior


def sfm_prior(scene: Scene, frame: Frame, options: PointPriorOptions | None = None,
              points: np.ndarray | None = None) -> DepthPrior:
    """The SfM depth prior of a frame: source ``sfm`` (densified) or ``sfm-sparse``.

    ``points`` (N, 3+) overrides ``scene.load_sfm_points()`` (lets a caller load the points once for all frames).
    """
    pts = scene.load_sfm_points() if points is None else points
    if pts is None:
        raise ReconError(f"{scene.root}: the scene has no SfM points (points3d.npy); convert it from COLMAP or "
                         "use --source lidar/mono")
    return points_prior(frame, pts, "sfm", options or PointPriorOptions())
