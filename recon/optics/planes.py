"""Exact finite-aperture renders of textured fronto-parallel planes (validation scene for the optics code).

The scene is a few axis-aligned rectangles at fixed depths in front of a pinhole camera at the origin (OpenCV axes:
x right, y down, z forward; metres). Rays are intersected with the planes exactly; the nearest hit wins. Textures are
smooth sums of sinusoids whose frequencies are set in *pixels at the plane's depth* (wavelengths 4..28 px), so a
box-filtered pinhole render is close to alias-free.

A thin lens is simulated by lens sampling: the camera centre is shifted by ``a = (ax, ay)`` across the aperture
disk (diameter ``A = f / N``) and the principal point by ``fx * ax / d_f`` so the focus plane ``z = d_f`` stays
fixed. A point at depth ``d`` then moves by ``fx * ax * (1/d_f - 1/d)`` pixels, so over the disk it covers a blur
disk of diameter ``fx * A * |1/d - 1/d_f|`` pixels; averaging many such renders (golden-angle spiral over the disk,
one stratified sub-pixel offset each) is the true defocused image, occlusion at blurred edges included. Pixel
integration (a box filter over the pixel) is applied identically to the pinhole and the lens renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Plane:
    """A textured rectangle at depth ``z`` metres spanning ``x0..x1``, ``y0..y1`` metres (camera frame)."""

    z: float
    x0: float
    x1: float
    y0: float
    y1: float
    base: np.ndarray
    waves: list[tuple[float, float, float, np.ndarray]] = field(default_factory=list)  # (kx, ky, phase, rgb amp)

    def colour(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """RGB ``[..., 3]`` at plane coordinates (metres)."""
        out = np.broadcast_to(self.base, (*x.shape, 3)).copy()
        for kx, ky, ph, amp in self.waves:
            out += np.sin(kx * x + ky * y + ph)[..., None] * amp
        return out


@dataclass
class PlaneScene:
    """Planes plus the pinhole intrinsics of the camera that sees them (pixels)."""

    planes: list[Plane]
    width: int
    height: int
    fx: float
    cx: float
    cy: float

    @property
    def depths(self) -> list[float]:
        return sorted(p.z for p in self.planes)


# image-space layout: (depth m, u0, u1, v0, v1) as fractions of the image; the far wall overfills the view so that
# shifted cameras and large blurs still see texture at the borders
LAYOUT = [(60.0, -1.0, 2.0, -1.0, 2.0), (15.0, -1.0, 0.55, 0.3, 2.0), (6.0, 0.58, 0.86, 0.12, 0.78),
          (2.5, 0.26, 0.40, 0.42, 2.0)]


def make_plane_scene(width: int = 128, height: int = 96, fx: float | None = None, seed: int = 0,
                     layout: list[tuple[float, float, float, float, float]] | None = None) -> PlaneScene:
    """A seeded scene: a far textured wall at 60 m, a block at 15 m, a sign at 6 m and a pole at 2.5 m."""
    rng = np.random.default_rng(seed)
    fx = float(fx if fx is not None else 1.1 * width)
    cx, cy = width / 2.0, height / 2.0
    planes = []
    for z, u0, u1, v0, v1 in layout or LAYOUT:
        base = rng.uniform(0.25, 0.75, 3)
        waves = []
        for _ in range(6):
            wavelength_px = rng.uniform(4.0, 28.0)
            theta = rng.uniform(0, math.pi)
            k = 2 * math.pi / (wavelength_px * z / fx)  # radians per metre at depth z
            waves.append((k * math.cos(theta), k * math.sin(theta), rng.uniform(0, 2 * math.pi),
                          rng.uniform(-1, 1, 3) * 0.03 + rng.uniform(0.04, 0.07)))
        planes.append(Plane(z, (u0 * width - cx) / fx * z, (u1 * width - cx) / fx * z,
                            (v0 * height - cy) / fx * z, (v1 * height - cy) / fx * z, base, waves))
    return PlaneScene(planes, width, height, fx, cx, cy)


def _cast(scene: PlaneScene, ox: float, oy: float, cx: float, cy: float, sub: tuple[float, float]
          ) -> tuple[np.ndarray, np.ndarray]:
    """One pinhole render: centre at ``(ox, oy, 0)``, principal point ``(cx, cy)``, sub-pixel sample ``sub``."""
    v, u = np.mgrid[0:scene.height, 0:scene.width].astype(np.float64)
    dx = (u + sub[0] - cx) / scene.fx
    dy = (v + sub[1] - cy) / scene.fx
    rgb = np.zeros((scene.height, scene.width, 3))
    depth = np.zeros((scene.height, scene.width))
    done = np.zeros((scene.height, scene.width), bool)
    for p in sorted(scene.planes, key=lambda q: q.z):
        x, y = ox + p.z * dx, oy + p.z * dy
        hit = ~done & (x >= p.x0) & (x < p.x1) & (y >= p.y0) & (y < p.y1)
        rgb[hit] = np.clip(p.colour(x[hit], y[hit]), 0.0, 1.0)
        depth[hit] = p.z
        done |= hit
    return rgb, depth


def _stratified(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sub-pixel offsets in [0, 1)^2, one per cell of a near-square grid, jittered."""
    g = int(math.ceil(math.sqrt(n)))
    cells = rng.permutation(g * g)[:n]
    return np.stack([(cells % g + rng.random(n)) / g, (cells // g + rng.random(n)) / g], axis=1)


def render_pinhole(scene: PlaneScene, samples: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Box-filtered pinhole image (H, W, 3) float32 and z-depth (H, W) float32 metres at pixel centres."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((scene.height, scene.width, 3))
    for s in _stratified(samples, rng):
        acc += _cast(scene, 0.0, 0.0, scene.cx, scene.cy, (s[0], s[1]))[0]
    depth = _cast(scene, 0.0, 0.0, scene.cx, scene.cy, (0.5, 0.5))[1]
    return (acc / samples).astype(np.float32), depth.astype(np.float32)


def render_thin_lens(scene: PlaneScene, aperture_m: float, focus_m: float, samples: int = 256, seed: int = 0
                     ) -> np.ndarray:
    """True finite-aperture image (H, W, 3) float32: average of shifted pinhole renders over the aperture disk."""
    rng = np.random.default_rng(seed + 1)
    golden = math.pi * (3.0 - math.sqrt(5.0))
    subs = _stratified(samples, rng)
    acc = np.zeros((scene.height, scene.width, 3))
    for i in range(samples):
        r = 0.5 * aperture_m * math.sqrt((i + 0.5) / samples)
        ax, ay = r * math.cos(i * golden), r * math.sin(i * golden)
        cx = scene.cx + scene.fx * ax / focus_m
        cy = scene.cy + scene.fx * ay / focus_m
        acc += _cast(scene, ax, ay, cx, cy, (subs[i, 0], subs[i, 1]))[0]
    return (acc / samples).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1]."""
    return float(-10.0 * np.log10(max(float(np.mean((np.asarray(a) - np.asarray(b)) ** 2)), 1e-20)))


def edge_band(depth: np.ndarray, width: int, threshold: float = 1e-3) -> np.ndarray:
    """Bool (H, W): pixels within ``width`` px of a depth discontinuity (Sobel of inverse depth > ``threshold``)."""
    from scipy import ndimage

    inv = 1.0 / np.maximum(depth, 1e-6)
    edge = (np.abs(ndimage.sobel(inv, 0)) + np.abs(ndimage.sobel(inv, 1))) > threshold
    return ndimage.binary_dilation(edge, iterations=max(int(width), 1))


def occlusion_band(coc: np.ndarray, min_jump_px: float = 0.5, margin_px: int = 2) -> np.ndarray:
    """Bool (H, W): pixels near a *visible* depth edge: neighbours whose CoC (pixels) differs by ``min_jump_px`` or
    more, dilated by half the largest |CoC| plus ``margin_px``. Unlike :func:`edge_band` it ignores smooth depth
    changes (a road receding), where defocus has no occlusion to get right."""
    from scipy import ndimage

    c = np.asarray(coc, dtype=np.float64)
    jump = np.zeros(c.shape, bool)
    dx = np.abs(np.diff(c, axis=1)) >= min_jump_px
    dy = np.abs(np.diff(c, axis=0)) >= min_jump_px
    jump[:, 1:] |= dx
    jump[:, :-1] |= dx
    jump[1:] |= dy
    jump[:-1] |= dy
    if not jump.any():
        return jump
    return ndimage.binary_dilation(jump, iterations=int(np.ceil(np.abs(c).max() / 2.0)) + margin_px)
