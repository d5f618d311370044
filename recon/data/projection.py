"""Pinhole projection between world, camera and pixel coordinates, and point projection (LiDAR, SfM) into an image.

Conventions (the scene format's, :mod:`recon.data.scene`):

* OpenCV camera axes: x right, y down, z forward. ``cam2world`` (4x4) maps camera metres to world metres,
  ``world2cam`` is its inverse.
* Intrinsics ``K`` (3x3, pixels, no skew): a camera point (x, y, z) has image coordinates
  ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
* Pixel centres at +0.5: pixel (col, row) covers [col, col + 1) x [row, row + 1) and its centre is at
  (col + 0.5, row + 0.5); image coordinates (u, v) fall in pixel (floor(u), floor(v)). This is gsplat's convention
  for ``K``, so rendered pixels, keypoints and projected points agree without a half-pixel shift.
* Depth: *z-depth* is the distance along the optical axis (camera z), what every depth map in recon holds.
  *Ray distance* is the Euclidean distance from the camera centre: ``z * sqrt(xn^2 + yn^2 + 1)`` with
  ``xn = (u - cx) / fx``, ``yn = (v - cy) / fy``.

Array API: the geometry functions use only arithmetic operators, ``@`` and indexing (plus one stack), so the same
code serves numpy arrays (float64 in the data pipeline) and torch tensors (training and evaluation, any device);
``K`` and the poses must be of the same kind as the points. The point-projection functions at the end
(:func:`project_points`, :func:`zbuffer_depth`, :func:`occlusion_filter`, :func:`sparse_depth`) are numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _ones_like(x: Any) -> Any:
    if _is_torch(x):
        import torch

        return torch.ones_like(x)
    return np.ones(np.shape(x))


def _stack(parts: list[Any]) -> Any:
    """Stack same-shaped arrays along a new last axis, numpy or torch alike."""
    if _is_torch(parts[0]):
        import torch

        return torch.stack(parts, -1)
    return np.stack(parts, -1)


# ---------------------------------------------------------------------------------------------- geometry
def transform_points(points: Any, matrix: Any) -> Any:
    """Points (..., 3) through a rigid 4x4 ``matrix`` (``cam2world`` or ``world2cam``): ``R p + t``."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def inverse_pose(matrix: Any) -> Any:
    """Inverse of a 4x4 pose (``cam2world`` -> ``world2cam`` and back), numpy or torch."""
    if _is_torch(matrix):
        return matrix.inverse()
    return np.linalg.inv(matrix)


def camera_to_pixel(points_cam: Any, K: Any, z: Any = None) -> tuple[Any, Any]:
    """Image coordinates ``(u, v)`` (pixel-centre convention, see the module docstring) of camera points (..., 3).

    ``z`` replaces the divisor ``points_cam[..., 2]`` (e.g. clamped away from 0 by a caller that masks points
    behind the camera afterwards); where the divisor is <= 0 the result is meaningless (a point behind the camera
    projects through the centre to the opposite side).
    """
    if z is None:
        z = points_cam[..., 2]
    u = K[0, 0] * points_cam[..., 0] / z + K[0, 2]
    v = K[1, 1] * points_cam[..., 1] / z + K[1, 2]
    return u, v


def pixel_to_camera(u: Any, v: Any, depth: Any, K: Any) -> Any:
    """Camera points (..., 3) at z-depth ``depth`` (metres) seen at image coordinates ``(u, v)``."""
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    return _stack([x, y, depth])


def ray_directions(u: Any, v: Any, K: Any) -> Any:
    """Camera-frame ray directions (..., 3) through image coordinates ``(u, v)``, scaled to z = 1 (not unit length):
    a point at z-depth ``d`` on the ray is ``d * direction``."""
    return pixel_to_camera(u, v, _ones_like(u), K)


def world_to_pixel(points_world: Any, world2cam: Any, K: Any) -> tuple[Any, Any]:
    """World points (..., 3) -> image coordinates (..., 2) and camera z-depth (...,); see :func:`camera_to_pixel`
    for points behind the camera."""
    pc = transform_points(points_world, world2cam)
    u, v = camera_to_pixel(pc, K)
    return _stack([u, v]), pc[..., 2]


def pixel_to_world(u: Any, v: Any, depth: Any, K: Any, cam2world: Any) -> Any:
    """World points (..., 3) at z-depth ``depth`` (metres) seen at image coordinates ``(u, v)``."""
    return transform_points(pixel_to_camera(u, v, depth, K), cam2world)


def pixel_centres(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates ``(u, v)`` of every pixel centre, float64 (height, width) each: col + 0.5, row + 0.5."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    return u, v


def depth_to_points(depth: Any, K: Any, cam2world: Any) -> Any:
    """World points (H*W, 3) of a z-depth map (H, W) in metres, one per pixel centre, row-major.

    numpy or torch; a torch map gets its pixel grid in its own dtype and device."""
    h, w = depth.shape[-2:]
    u, v = pixel_centres(w, h)
    if _is_torch(depth):
        import torch

        u = torch.as_tensor(u, dtype=depth.dtype, device=depth.device)
        v = torch.as_tensor(v, dtype=depth.dtype, device=depth.device)
    return pixel_to_world(u, v, depth, K, cam2world).reshape(-1, 3)


def z_to_ray_distance(z: Any, u: Any, v: Any, K: Any) -> Any:
    """Ray distance (metres, from the camera centre) of z-depth ``z`` at image coordinates ``(u, v)``."""
    xn = (u - K[0, 2]) / K[0, 0]
    yn = (v - K[1, 2]) / K[1, 1]
    return z * (xn * xn + yn * yn + 1.0) ** 0.5


def ray_distance_to_z(distance: Any, u: Any, v: Any, K: Any) -> Any:
    """Inverse of :func:`z_to_ray_distance`: z-depth (metres) of a ray distance at image coordinates ``(u, v)``."""
    xn = (u - K[0, 2]) / K[0, 0]
    yn = (v - K[1, 2]) / K[1, 1]
    return distance / (xn * xn + yn * yn + 1.0) ** 0.5


# ---------------------------------------------------------------------------------------------- points into images
def project_points(
    points_world: np.ndarray, cam2world: np.ndarray, K: np.ndarray, width: int, height: int,
    min_depth: float = 0.1, max_depth: float = math.inf,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project world points (N, 3+) into the image (numpy, float64).

    Returns ``(rows, cols, z, index)`` for the points in front of the camera (``min_depth < z < max_depth``, metres)
    that land inside the ``width x height`` image: integer pixel rows/cols (the pixel containing the projection,
    ``floor`` of the image coordinates), float64 z-depth and the index of each point in ``points_world``.
    """
    pts = np.asarray(points_world, dtype=np.float64)[:, :3]
    w2c = np.linalg.inv(np.asarray(cam2world, dtype=np.float64))
    pc = transform_points(pts, w2c)
    z = pc[:, 2]
    front = (z > min_depth) & (z < max_depth) & np.isfinite(z)
    idx = np.nonzero(front)[0]
    pc, z = pc[front], z[front]
    x, y = camera_to_pixel(pc, K)
    cols, rows = np.floor(x), np.floor(y)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    return rows[inside].astype(np.int64), cols[inside].astype(np.int64), z[inside], idx[inside]


def zbuffer_depth(rows: np.ndarray, cols: np.ndarray, z: np.ndarray, width: int, height: int) -> np.ndarray:
    """Sparse float32 [H, W] z-depth keeping the nearest point per pixel (0 where no point lands)."""
    depth = np.zeros(height * width, dtype=np.float32)
    if len(z) == 0:
        return depth.reshape(height, width)
    flat = rows * width + cols
    order = np.lexsort((z, flat))  # by pixel, then nearest first
    flat_s = flat[order]
    first = np.ones(len(flat_s), dtype=bool)
    first[1:] = flat_s[1:] != flat_s[:-1]
    depth[flat_s[first]] = z[order][first]
    return depth.reshape(height, width)


def occlusion_filter(sparse: np.ndarray, radius_px: int = 2, rel_tol: float = 0.3) -> np.ndarray:
    """Drop sparse depths seen through gaps in a nearer surface (a sensor offset from the camera, SfM points).

    A point is removed when, within ``radius_px``, there are points nearer by more than ``rel_tol`` (relative
    depth) in two *opposite* directions (of 8 sectors of 45 degrees): a point inside a foreground silhouette is
    surrounded that way. A point on ground seen at a grazing angle (nearer points only below it) or just beside a
    foreground edge (nearer points on one side) is kept. ``radius_px = 0`` disables the filter.
    """
    if radius_px <= 0:
        return sparse
    sparse = np.asarray(sparse, dtype=np.float32)
    H, W = sparse.shape
    r = int(radius_px)
    d = np.pad(np.where(sparse > 0, sparse, np.inf), r, constant_values=np.inf)
    sector_min = np.full((8, H, W), np.inf, np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if (dy == 0 and dx == 0) or dy * dy + dx * dx > r * r:
                continue
            k = int(round(math.atan2(dy, dx) / (math.pi / 4))) % 8
            np.minimum(sector_min[k], d[r + dy:r + dy + H, r + dx:r + dx + W], out=sector_min[k])
    nearer = sector_min < sparse / (1.0 + rel_tol)
    occluded = np.zeros((H, W), dtype=bool)
    for k in range(4):
        occluded |= nearer[k] & nearer[k + 4]
    return np.where((sparse > 0) & ~occluded, sparse, 0.0).astype(np.float32)


def sparse_depth(points_world: np.ndarray, cam2world: np.ndarray, K: np.ndarray, width: int, height: int,
                 occlusion_radius_px: int = 2, occlusion_rel_tol: float = 0.3,
                 max_depth: float = math.inf) -> np.ndarray:
    """Sparse float32 [H, W] z-depth (metres, 0 = no point) of world points seen by a camera: projected
    (:func:`project_points`, z > 0.1 m), z-buffered (nearest point per pixel) and occlusion-filtered
    (:func:`occlusion_filter`; ``occlusion_radius_px = 0`` keeps every z-buffered point)."""
    rows, cols, z, _ = project_points(points_world, cam2world, K, width, height, max_depth=max_depth)
    return occlusion_filter(zbuffer_depth(rows, cols, z, width, height), occlusion_radius_px, occlusion_rel_tol)
