"""The depth colour map of recon: `recon eval`'s depth PNGs and the viewer's depth panel use this one function.

Convention: turbo on *log* depth between ``near`` and ``far`` metres. The near end (``near`` and nearer) is turbo's
dark-red end, the far end (``far`` and farther) its dark-blue end, and equal depth *ratios* get equal colour steps,
so 2 m to 4 m changes colour as much as 50 m to 100 m (driving scenes span 2 m to several hundred metres; a linear
or inverse-depth ramp spends most of its colours on the first 20 m). Unknown depth (<= 0 or not finite) is black.
Colours come from matplotlib's 256-entry turbo table.
"""

from __future__ import annotations

import math

import numpy as np


def log_depth_position(depth: np.ndarray | float, near: float, far: float) -> np.ndarray:
    """Position in [0, 1] of ``depth`` (metres) on the log-depth axis from ``near`` (0) to ``far`` (1), clipped."""
    if not 0 < near < far:
        raise ValueError(f"depth colour map: need 0 < near < far, got near={near}, far={far}")
    d = np.maximum(np.asarray(depth, dtype=np.float64), 1e-9)
    return np.clip((np.log(d) - math.log(near)) / (math.log(far) - math.log(near)), 0.0, 1.0)


def depth_colormap(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Float32 RGB (..., 3) in [0, 1] of a depth map (..., metres; <= 0 or non-finite = unknown, black)."""
    from matplotlib import colormaps

    depth = np.asarray(depth, dtype=np.float64)
    known = np.isfinite(depth) & (depth > 0)
    t = 1.0 - log_depth_position(np.where(known, depth, far), near, far)  # near -> 1 (red), far -> 0 (blue)
    rgb = colormaps["turbo"](t)[..., :3].astype(np.float32)
    rgb[~known] = 0.0
    return rgb
