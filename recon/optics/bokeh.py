"""Physically guided bokeh: refocus one sharp image with its metric depth through a virtual thin lens.

The blur strength comes from the thin lens (:mod:`recon.optics.thin_lens`): a lens of focal length ``f`` (mm) on a
sensor ``sensor_width_mm`` wide, f-number ``N`` and focus distance ``d_f`` (metres) gives every pixel a circle of
confusion of ``fx * (f / N) * d_f / (d_f - f) * |1/d - 1/d_f|`` pixels (exact thin lens). The rendering is the
occlusion-aware layered defocus of :func:`recon.optics.defocus` with a disk, Gaussian or polygonal (``hexagon``, ...)
aperture.

Colour: by default the stored pixel values are blurred as they are (what the synthetic lens renders do); with
``linear_light`` sRGB is decoded first and re-encoded after, as a real lens integrates light. ``highlight_gain``
optionally brightens near-white pixels in linear light before blurring, so clipped highlights bloom into bokeh balls
(0 = off, the physically neutral default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon.errors import ReconError
from recon.io.images import read_image
from recon.optics.defocus import defocus
from recon.optics.kernels import ApertureKernel, parse_kernel
from recon.optics.thin_lens import Lens, aperture_diameter_m, fx_from_lens

DEFAULT_FOCAL_LENGTH_MM = 50.0
DEFAULT_SENSOR_WIDTH_MM = 36.0


@dataclass(frozen=True)
class BokehLens:
    """A virtual lens: millimetres for the focal length and sensor width, metres for the focus distance."""

    focus_m: float
    f_number: float
    focal_length_mm: float = DEFAULT_FOCAL_LENGTH_MM
    sensor_width_mm: float = DEFAULT_SENSOR_WIDTH_MM

    def validate(self) -> None:
        if not (np.isfinite(self.f_number) and self.f_number > 0):
            raise ReconError(f"--f-number must be a positive number, got {self.f_number}")
        if not (np.isfinite(self.focus_m) and self.focus_m > 0):
            raise ReconError(f"--focus-m must be a positive distance in metres, got {self.focus_m}")
        if not (np.isfinite(self.focal_length_mm) and self.focal_length_mm > 0):
            raise ReconError(f"--focal-length-mm must be positive, got {self.focal_length_mm}")
        if not (np.isfinite(self.sensor_width_mm) and self.sensor_width_mm > 0):
            raise ReconError(f"--sensor-width-mm must be positive, got {self.sensor_width_mm}")
        if not self.focus_m * 1000.0 > self.focal_length_mm:
            raise ReconError(f"--focus-m {self.focus_m:g} m is not beyond the focal length ({self.focal_length_mm:g} "
                             "mm): a thin lens cannot focus there")

    def lens(self, width_px: int) -> Lens:
        """The :class:`recon.optics.Lens` of this setting for an image ``width_px`` pixels wide."""
        self.validate()
        return Lens(fx_from_lens(self.focal_length_mm, self.sensor_width_mm, width_px),
                    aperture_diameter_m(self.focal_length_mm, self.f_number), self.focus_m,
                    self.focal_length_mm / 1000.0)


def load_image_and_depth(image_path: str | Path, depth_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB float32 (H, W, 3) in [0, 1] and depth float32 (H, W) metres, all finite and positive, same size.

    Depth: ``.npy`` in metres or a 16-bit PNG in millimetres. Errors name the offending file.
    """
    img = read_image(image_path)
    depth_path = Path(depth_path)
    if not depth_path.is_file():
        raise ReconError(f"{depth_path}: depth file not found")
    try:
        if depth_path.suffix == ".npy":
            depth = np.asarray(np.load(depth_path, allow_pickle=False), dtype=np.float32)
        else:
            import imageio.v3 as iio

            depth = np.asarray(iio.imread(depth_path)).astype(np.float32) / 1000.0
    except Exception as exc:
        raise ReconError(f"{depth_path}: depth map could not be read ({type(exc).__name__})") from None
    if depth.ndim == 3 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ReconError(f"{depth_path}: depth map must be 2-D (H, W), got shape {depth.shape}")
    if depth.shape != img.shape[:2]:
        raise ReconError(f"{depth_path}: depth map is {depth.shape[1]}x{depth.shape[0]} but image {image_path} "
                         f"is {img.shape[1]}x{img.shape[0]}")
    n_bad = int((~np.isfinite(depth)).sum())
    if n_bad:
        raise ReconError(f"{depth_path}: depth map has {n_bad} NaN or infinite values (metric depth needed everywhere)")
    n_bad = int((depth <= 0).sum())
    if n_bad:
        raise ReconError(f"{depth_path}: depth map has {n_bad} non-positive values (metric depth > 0 needed "
                         "everywhere; fill sky / unknown pixels with a large distance)")
    return img, depth


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp_min(0.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def render_bokeh(image: np.ndarray, depth: np.ndarray, setting: BokehLens, shape: str | ApertureKernel = "disk",
                 linear_light: bool = False, highlight_gain: float = 0.0, device: str = "cpu") -> np.ndarray:
    """Refocused image (H, W, 3) float32 in [0, 1] of a sharp ``image`` with metric ``depth`` (H, W, metres > 0)."""
    kernel = parse_kernel(shape)
    lens = setting.lens(image.shape[1])
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    dep = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None, None].to(device)
    if linear_light or highlight_gain > 0:
        img = _srgb_to_linear(img)
        if highlight_gain > 0:
            lum = img.mean(1, keepdim=True)
            img = img * (1.0 + highlight_gain * ((lum - 0.8) / 0.2).clamp(0.0, 1.0) ** 2)
    with torch.no_grad():
        out = defocus(img, dep, lens.fx, lens.aperture_m, lens.focus_m, kernel, focal_length_m=lens.focal_length_m)
    if linear_light or highlight_gain > 0:
        out = _linear_to_srgb(out)
    return out.clamp(0.0, 1.0)[0].permute(1, 2, 0).cpu().numpy()


def sweep_settings(depth: np.ndarray, base: BokehLens, k: int, sweep: str = "focus", f_number_max: float = 16.0
                   ) -> list[BokehLens]:
    """``k`` lens settings: a focus sweep (2nd..98th percentile of depth, even in inverse depth, near to far) or an
    aperture sweep (f-numbers geometric from ``base.f_number`` to ``f_number_max``)."""
    base.validate()
    if k < 1:
        raise ReconError(f"--stack must be at least 1, got {k}")
    if sweep == "focus":
        inv = 1.0 / depth[np.isfinite(depth) & (depth > 0)]
        hi, lo = np.percentile(inv, [98.0, 2.0])
        invs = np.linspace(hi, lo, k) if k > 1 else np.array([0.5 * (hi + lo)])
        return [BokehLens(float(1.0 / q), base.f_number, base.focal_length_mm, base.sensor_width_mm) for q in invs]
    if sweep == "aperture":
        if not (np.isfinite(f_number_max) and f_number_max > 0):
            raise ReconError(f"--f-number-max must be positive, got {f_number_max}")
        ns = np.geomspace(base.f_number, f_number_max, k) if k > 1 else np.array([base.f_number])
        return [BokehLens(base.focus_m, float(n), base.focal_length_mm, base.sensor_width_mm) for n in ns]
    raise ReconError(f"--sweep must be 'focus' or 'aperture', got {sweep!r}")
