"""LiDAR depth prior: the frame's own sweep projected with a z-buffer and occlusion filter, then densified.

Depth is z-depth in metres (distance along the optical axis), the same quantity as the scene's ``depth/*.npy``.
See :mod:`recon.priors.points` for the projection and options (shared with the SfM prior).
"""

from __future__ import annotations

from recon.data.scene import Frame
from recon.errors import ReconError
from recon.priors.base import DepthPrior
from recon.priors.points import PointPriorOptions, points_prior


def lidar_prior(frame: Frame, options: PointPriorOptions | None = None) -> DepthPrior:
    """The LiDAR depth prior of a frame: source ``lidar`` (densified) or ``lidar-sparse`` (projected points only).

    Points come from ``frame.load_lidar()`` (world frame, metres).
    """
    pts = frame.load_lidar()
    if pts is None:
        raise ReconError(f"frame '{frame.id}': the scene has no LiDAR sweep for this frame (use --source sfm/mono)")
    return points_prior(frame, pts, "lidar", options or PointPriorOptions())
