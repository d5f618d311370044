"""Turn a server render into the panel image: RGB, metric depth with a scale bar, alpha, or refocused RGB.

Depth is coloured on a log scale between robust near/far limits of the visible depths (driving scenes span 2 m to
hundreds of metres); the bar under the image is labelled in metres. Refocus uses the thin-lens blur of
``recon.optics.defocus``: blur-circle diameter in pixels c = fx * A * |1/d - 1/d_f|, A = f / N, with the viewer's
virtual lens f = fx * pixel pitch (sensor width / image width).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from viewer.rendering import RenderResult

MODES = ("RGB", "depth", "alpha", "refocus")
BACKGROUND_DEPTH_M = 1000.0
"""Depth given to empty pixels (sky) before refocusing: effectively at infinity for any focus distance."""

_LUT: np.ndarray | None = None


def _turbo() -> np.ndarray:
    global _LUT
    if _LUT is None:
        from matplotlib import colormaps

        _LUT = (colormaps["turbo"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
    return _LUT


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def depth_limits(depth: np.ndarray) -> tuple[float, float] | None:
    """(near, far) in metres: 2nd and 98th percentiles of the valid (> 0) depths; None when nothing is visible."""
    valid = depth[depth > 0]
    if valid.size == 0:
        return None
    near, far = np.percentile(valid, [2.0, 98.0])
    near = float(max(near, 1e-3))
    return near, float(max(far, near * 1.01))


def _nice_ticks(near: float, far: float) -> list[float]:
    """A few round values in metres inside [near, far] (1-2-5 steps on a log axis), ends included."""
    ticks = [near, far]
    for e in range(math.floor(math.log10(near)), math.ceil(math.log10(far)) + 1):
        for m in (1.0, 2.0, 5.0):
            v = m * 10.0**e
            if near * 1.15 < v < far / 1.15:
                ticks.append(v)
    ticks = sorted(set(ticks))
    if len(ticks) > 6:  # keep the ends and an even spread of the rest
        inner = ticks[1:-1]
        idx = np.linspace(0, len(inner) - 1, 4).round().astype(int)
        ticks = [ticks[0], *[inner[i] for i in sorted(set(idx))], ticks[-1]]
    return ticks


def _fmt_m(v: float) -> str:
    return f"{v:.2g} m" if v < 10 else f"{v:.0f} m"


def colorize_depth(depth: np.ndarray, bar: bool = True) -> np.ndarray:
    """Depth in metres [H, W] (0 = empty) -> uint8 RGB, turbo on log depth (red near, blue far) with a metre bar."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = depth.shape
    lims = depth_limits(depth)
    img = np.full((h, w, 3), 40, np.uint8)
    lut = _turbo()
    if lims is not None:
        near, far = lims
        ln, lf = math.log(near), math.log(far)

        def pos(d: np.ndarray | float) -> np.ndarray:
            return np.clip((np.log(np.maximum(d, 1e-6)) - ln) / (lf - ln), 0.0, 1.0)

        valid = depth > 0
        idx = ((1.0 - pos(depth[valid])) * 255).astype(int)  # near = red end of turbo
        img[valid] = lut[idx]
    if not bar:
        return img
    bar_h, text_h = 10, 14
    canvas = Image.new("RGB", (w, h + bar_h + text_h + 4), (24, 24, 24))
    canvas.paste(Image.fromarray(img), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    if lims is None:
        draw.text((4, h + 2), "depth: nothing visible", fill=(220, 220, 220), font=font)
        return np.asarray(canvas)
    x0, x1 = 6, w - 6
    ramp = lut[((1.0 - np.linspace(0.0, 1.0, x1 - x0)) * 255).astype(int)]
    canvas.paste(Image.fromarray(np.repeat(ramp[None], bar_h, axis=0)), (x0, h + 2))
    near, far = lims
    for v in _nice_ticks(near, far):
        x = x0 + (x1 - x0 - 1) * (math.log(v) - math.log(near)) / (math.log(far) - math.log(near))
        draw.line([(x, h + 2), (x, h + 2 + bar_h)], fill=(255, 255, 255))
        label = _fmt_m(v)
        tw = draw.textlength(label, font=font)
        draw.text((min(max(0, x - tw / 2), w - tw), h + bar_h + 3), label, fill=(230, 230, 230), font=font)
    return np.asarray(canvas)


def alpha_image(alpha: np.ndarray) -> np.ndarray:
    return np.repeat(to_uint8(alpha)[..., None], 3, axis=2)


def lens_aperture_m(fx: float, width: int, sensor_width_mm: float, f_number: float) -> float:
    """Aperture diameter A = f / N in metres of a lens with ``fx`` pixels focal length on a sensor of that width."""
    focal_m = fx * (sensor_width_mm / 1000.0) / width
    return focal_m / f_number


def load_defocus() -> tuple[Callable[..., Any] | None, str]:
    """``recon.optics.defocus``, or None and the reason it is unavailable."""
    try:
        from recon.optics import defocus
    except ImportError as exc:
        return None, f"refocus needs recon.optics.defocus, which is not importable ({exc})"
    return defocus, "recon.optics.defocus"


def refocus(res: RenderResult, focus_m: float, f_number: float, sensor_width_mm: float,
            defocus: Callable[..., Any]) -> np.ndarray:
    """Refocused RGB [H, W, 3] in [0, 1] through ``defocus(image [1,3,H,W], depth [1,1,H,W], fx, A, d_f)``."""
    import torch

    cam = res.camera
    depth = np.where(res.alpha >= 0.5, np.where(res.depth > 0, res.depth, BACKGROUND_DEPTH_M), BACKGROUND_DEPTH_M)
    img = torch.from_numpy(np.ascontiguousarray(res.rgb.transpose(2, 0, 1)))[None]
    dep = torch.from_numpy(depth.astype(np.float32))[None, None]
    aperture = lens_aperture_m(cam.fx, cam.width, sensor_width_mm, f_number)
    with torch.no_grad():
        out = defocus(img, dep, float(cam.fx), float(aperture), float(focus_m), kernel="disk")
    return np.clip(out[0].permute(1, 2, 0).float().cpu().numpy(), 0.0, 1.0)


def panel_image(res: RenderResult, mode: str, focus_m: float = 10.0, f_number: float = 2.0,
                sensor_width_mm: float = 36.0, defocus: Callable[..., Any] | None = None) -> np.ndarray:
    """The uint8 RGB image the panel shows for ``mode`` (one of :data:`MODES`)."""
    if mode == "depth":
        return colorize_depth(res.depth)
    if mode == "alpha":
        return alpha_image(res.alpha)
    if mode == "refocus" and defocus is not None:
        return to_uint8(refocus(res, focus_m, f_number, sensor_width_mm, defocus))
    return to_uint8(res.rgb)
