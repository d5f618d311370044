"""Turn a server render into the panel image: RGB, metric depth with a scale bar, alpha, or refocused RGB.

Depth is coloured with recon's depth colour map (:mod:`recon.io.colormap`: turbo on log depth, near red, far blue,
unknown black) between robust near/far limits of the visible depths; the bar under the image is labelled in
metres. Refocus uses the thin-lens blur of ``recon.optics.defocus``: blur-circle diameter in pixels
c = fx * A * |1/d - 1/d_f|, with the view camera's lens (:func:`recon.optics.thin_lens.lens_from_camera`: focal
length f = fx * pixel pitch, the pitch being sensor width / image width, and A = f / N).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from recon.io.colormap import depth_colormap, log_depth_position
from viewer.rendering import RenderResult

MODES = ("RGB", "depth", "alpha", "refocus")
BACKGROUND_DEPTH_M = 1000.0
"""Depth given to empty pixels (sky) before refocusing: effectively at infinity for any focus distance."""


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
    """Depth in metres [H, W] (0 = empty) -> uint8 RGB with :func:`recon.io.colormap.depth_colormap` between
    :func:`depth_limits` (empty pixels black), with a metre bar below."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = depth.shape
    lims = depth_limits(depth)
    img = to_uint8(depth_colormap(depth, *lims)) if lims is not None else np.zeros((h, w, 3), np.uint8)
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
    near, far = lims
    ramp = to_uint8(depth_colormap(np.geomspace(near, far, x1 - x0), near, far))  # near on the left
    canvas.paste(Image.fromarray(np.repeat(ramp[None], bar_h, axis=0)), (x0, h + 2))
    for v in _nice_ticks(near, far):
        x = x0 + (x1 - x0 - 1) * float(log_depth_position(v, near, far))
        draw.line([(x, h + 2), (x, h + 2 + bar_h)], fill=(255, 255, 255))
        label = _fmt_m(v)
        tw = draw.textlength(label, font=font)
        draw.text((min(max(0, x - tw / 2), w - tw), h + bar_h + 3), label, fill=(230, 230, 230), font=font)
    return np.asarray(canvas)


def alpha_image(alpha: np.ndarray) -> np.ndarray:
    return np.repeat(to_uint8(alpha)[..., None], 3, axis=2)


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

    from recon.optics.thin_lens import lens_from_camera

    # the view camera with the panel's sensor: its focal length in millimetres follows (fx * pixel pitch)
    lens = lens_from_camera(replace(res.camera.camera, sensor_width_mm=sensor_width_mm, focal_length_mm=None),
                            f_number, focus_m)
    depth = np.where(res.alpha >= 0.5, np.where(res.depth > 0, res.depth, BACKGROUND_DEPTH_M), BACKGROUND_DEPTH_M)
    img = torch.from_numpy(np.ascontiguousarray(res.rgb.transpose(2, 0, 1)))[None]
    dep = torch.from_numpy(depth.astype(np.float32))[None, None]
    with torch.no_grad():
        out = defocus(img, dep, lens.fx, lens.aperture_m, lens.focus_m, kernel="disk")
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
