"""Camera poses for tests that build frames by hand."""

from __future__ import annotations

import math

import numpy as np


def yaw_pose(yaw_deg: float, centre: tuple[float, float, float]) -> np.ndarray:
    """cam2world (4, 4): OpenCV axes turned by ``yaw_deg`` about the camera's y (down) axis, at ``centre`` (metres)."""
    a = math.radians(yaw_deg)
    c2w = np.eye(4)
    c2w[:3, :3] = [[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]]
    c2w[:3, 3] = centre
    return c2w
