"""Pinhole and true finite-aperture (thin lens) rendering of a :class:`recon.data.scene.Camera` view.

Pixel convention (the scene's, :mod:`recon.data.projection`): the centre of pixel (u, v) is at (u + 0.5, v + 0.5);
a ray goes through K^-1 [u+0.5, v+0.5, 1]. Camera rays are cast with camera-frame direction (x, y, 1), so the hit
distance is the z-depth in metres.

Thin lens: aperture diameter A = f / N (metres; :func:`recon.optics.thin_lens.aperture_diameter_m`). A
finite-aperture image is the average of pinhole renders from lens positions a = (ax, ay) on the aperture disk
(radius A / 2), each camera moved by a in its own x-y plane with the principal point moved by
(fx * ax / d_f, fy * ay / d_f) so that the plane z = d_f stays fixed. A point at depth d then moves by
fx * a * (1/d_f - 1/d) pixels, so over the disk it sweeps a blur disk of diameter fx * A * |1/d - 1/d_f| pixels:
the thin-lens circle of confusion for d_f much larger than f.
"""

from __future__ import annotations

import math

import numpy as np

from recon.data.scene import Camera
from recon.data.synth.raycast import Tracer

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def vogel_disk(n: int) -> np.ndarray:
    """``n`` well-spread points (n, 2) in the unit disk (radius 1): the Vogel / Fibonacci spiral, deterministic."""
    i = np.arange(n, dtype=np.float64)
    r = np.sqrt((i + 0.5) / n)
    th = i * GOLDEN_ANGLE
    return np.stack([r * np.cos(th), r * np.sin(th)], axis=1)


def subpixel_offsets(n: int) -> np.ndarray:
    """Sub-pixel sample offsets (n, 2) in pixels around the pixel centre: the centre (n=1), a rotated grid (n=4)
    or a 4x4 n-rooks grid (n=16: 16 distinct columns and rows, so a vertical or horizontal silhouette's coverage
    is resolved in sixteenths of a pixel instead of quarters)."""
    if n == 1:
        return np.zeros((1, 2))
    if n == 4:
        return np.array([[-0.125, -0.375], [0.375, -0.125], [0.125, 0.375], [-0.375, 0.125]])
    if n == 16:
        i, j = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
        x = (i + (j + 0.5) / 4.0) / 4.0 - 0.5
        y = (j + (3 - i + 0.5) / 4.0) / 4.0 - 0.5
        return np.stack([x.ravel(), y.ravel()], axis=1)
    raise ValueError(f"unsupported sub-pixel sample count {n}")


def camera_rays(camera: Camera, cam2world: np.ndarray, offset: tuple[float, float] = (0.0, 0.0),
                lens: tuple[float, float] = (0.0, 0.0), focus_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """World-frame rays (origins, dirs) of all pixels, row-major (H*W, 3) each, float32.

    ``offset`` is a sub-pixel shift in pixels; ``lens`` = (ax, ay) moves the camera centre in its x-y plane
    (metres) and the principal point by (fx ax / focus_m, fy ay / focus_m). Directions have camera z = 1.
    """
    return ViewRays(camera, cam2world).rays(offset, lens, focus_m)


class ViewRays:
    """Rays of one view: pixel-centre directions computed once; offsets and lens shifts only add a constant."""

    def __init__(self, camera: Camera, cam2world: np.ndarray) -> None:
        self.camera = camera
        self.rot = np.asarray(cam2world[:3, :3], np.float64)
        self.centre = np.asarray(cam2world[:3, 3], np.float64)
        self.base = (camera.rays().reshape(-1, 3) @ self.rot.T).astype(np.float32)

    def rays(self, offset: tuple[float, float] = (0.0, 0.0), lens: tuple[float, float] = (0.0, 0.0),
             focus_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        ax, ay = lens
        # camera-frame direction change: pixel offset / f minus the principal point shift a / d_f
        dc = np.array([offset[0] / self.camera.fx - ax / focus_m, offset[1] / self.camera.fy - ay / focus_m, 0.0])
        dirs = self.base + (self.rot @ dc).astype(np.float32)
        origin = (self.centre + self.rot @ np.array([ax, ay, 0.0])).astype(np.float32)
        return np.broadcast_to(origin, dirs.shape), dirs


def render_depth(tracer: Tracer, camera: Camera, cam2world: np.ndarray) -> np.ndarray:
    """Exact z-depth (H, W) float32 in metres through the pixel centres; 0 where the ray sees sky."""
    o, d = camera_rays(camera, cam2world)
    t = tracer.cast(o, d).t
    return np.where(np.isfinite(t), t, 0.0).astype(np.float32).reshape(camera.height, camera.width)


def render_samples(tracer: Tracer, camera: Camera, cam2world: np.ndarray,
                   samples: list[tuple[tuple[float, float], tuple[float, float]]], focus_m: float = 1.0,
                   batch: int = 8) -> np.ndarray:
    """Sum (H, W, 3) float64 of pinhole renders, one per (sub-pixel offset, lens position) in ``samples``."""
    view = ViewRays(camera, cam2world)
    acc = np.zeros((camera.height * camera.width, 3))
    n_px = camera.height * camera.width
    for s in range(0, len(samples), batch):
        chunk = samples[s:s + batch]
        rays = [view.rays(off, lens, focus_m) for off, lens in chunk]
        o = np.concatenate([r[0] for r in rays])
        d = np.concatenate([r[1] for r in rays])
        rgb = tracer.shade(d, tracer.cast(o, d), 1.0 / camera.fx)
        acc += rgb.reshape(len(chunk), n_px, 3).sum(axis=0, dtype=np.float64)
    return acc.reshape(camera.height, camera.width, 3)


def render_pinhole(tracer: Tracer, camera: Camera, cam2world: np.ndarray, antialias: int) -> np.ndarray:
    """All-in-focus image (H, W, 3) float32: the mean over ``antialias`` sub-pixel samples."""
    offs = subpixel_offsets(antialias)
    samples = [((float(o[0]), float(o[1])), (0.0, 0.0)) for o in offs]
    return (render_samples(tracer, camera, cam2world, samples) / len(samples)).astype(np.float32)


def lens_samples(n: int, aperture_m: float, antialias: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """(sub-pixel offset, lens position in metres) pairs of a finite-aperture image.

    Lens positions: the Vogel disk scaled to radius A/2. Sub-pixel offsets cycle through the pinhole pattern, so
    on the focus plane (where the lens position has no effect) the image equals the pinhole image whenever
    ``n`` is a multiple of ``antialias``.
    """
    disk = vogel_disk(n) * (aperture_m / 2.0)
    offs = subpixel_offsets(antialias)
    return [((float(offs[i % len(offs)][0]), float(offs[i % len(offs)][1])), (float(disk[i, 0]), float(disk[i, 1])))
            for i in range(n)]


def render_defocus(tracer: Tracer, camera: Camera, cam2world: np.ndarray, aperture_m: float, focus_m: float,
                   n_samples: int, antialias: int) -> np.ndarray:
    """True finite-aperture image (H, W, 3) float32: the mean of pinhole renders over the lens samples."""
    samples = lens_samples(n_samples, aperture_m, antialias)
    return (render_samples(tracer, camera, cam2world, samples, focus_m) / len(samples)).astype(np.float32)
