"""The road under a driving rig: the world's up direction and the cameras' height above the ground.

Driving cameras sit at a fixed height above a roughly planar road. Below the horizon, a camera ray meets the road
within a few tens of metres, so nothing it sees can lie farther than that intersection (only the road itself or
something standing on it). Seeding uses this to keep distant seed points out of the ground (see
:func:`recon.model.init_points.far_points`). Conventions: world metres; OpenCV camera axes (y down).
"""

from __future__ import annotations

import numpy as np


def estimate_up(c2ws: np.ndarray) -> np.ndarray:
    """World 'up' from camera poses (N, 4, 4): OpenCV cameras have y pointing down, so up is minus their mean y
    axis (a unit vector; +z when the poses do not define one)."""
    up = -np.asarray(c2ws)[:, :3, 1].mean(axis=0)
    n = np.linalg.norm(up)
    return up / n if n > 1e-6 else np.array([0.0, 0.0, 1.0])


def camera_height(points: np.ndarray, c2ws: np.ndarray, up: np.ndarray, corridor_m: float = 3.0,
                  ahead_m: tuple[float, float] = (3.0, 25.0), min_points: int = 20) -> float | None:
    """Height (metres) of the cameras above the road, from seed points on the road ahead of them.

    For each camera, the points in the corridor ``corridor_m`` to either side of its optical axis and ``ahead_m``
    ahead (along the axis projected on the ground) that lie 0.5-4 m below it. The road is the one flat layer that
    collects most of them: the mode of their drop below the camera (5 cm bins), refined by the median within
    0.15 m of it (kerbs, car bodies and bushes spread above it, mismatches spread both ways). None when fewer than
    ``min_points`` points qualify (no road seen, or no points)."""
    pts = np.asarray(points, np.float64)[:, :3]
    if len(pts) == 0:
        return None
    up = np.asarray(up, np.float64)
    drops = []
    for c2w in np.asarray(c2ws):
        fwd = c2w[:3, 2] - np.dot(c2w[:3, 2], up) * up
        nf = np.linalg.norm(fwd)
        if nf < 1e-6:
            continue
        fwd /= nf
        side = np.cross(up, fwd)
        rel = pts - c2w[:3, 3]
        a, s, h = rel @ fwd, rel @ side, rel @ up
        sel = (a > ahead_m[0]) & (a < ahead_m[1]) & (np.abs(s) < corridor_m) & (h < -0.5) & (h > -4.0)
        drops.append(-h[sel])
    d = np.concatenate(drops) if drops else np.zeros(0)
    if len(d) < min_points:
        return None
    counts, edges = np.histogram(d, bins=np.arange(0.5, 4.0 + 1e-9, 0.05))
    peak = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    return float(np.median(d[np.abs(d - peak) <= 0.15]))


def ground_depth(rays_cam: np.ndarray, c2w: np.ndarray, up: np.ndarray, height_m: float) -> np.ndarray:
    """z-depth (metres, camera axis) at which each camera ray (M, 3), in camera coordinates, meets the ground plane
    ``height_m`` below the camera; inf for rays at or above the horizon."""
    d_world = np.asarray(rays_cam, np.float64) @ np.asarray(c2w)[:3, :3].T
    down = -(d_world @ np.asarray(up, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(down > 1e-6, height_m / down, np.inf)  # along the ray, in units of the ray vector
    return t * np.asarray(rays_cam, np.float64)[:, 2]
