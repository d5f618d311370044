"""Thin-lens geometry: aperture, signed circle of confusion in pixels, and its inverse.

Conventions: depths and focus distances in metres (z along the optical axis, OpenCV camera), focal length and
sensor width in millimetres where a lens is described, ``fx`` in pixels, aperture diameter ``A = f / N`` in metres.

The circle of confusion (CoC) is a *diameter* in pixels and *signed*: positive in front of the focus plane
(``depth < focus``), negative behind it. With ``d_f >> f``::

    c_px = fx * A * (1 / d - 1 / d_f)

which is exactly what a pinhole camera shifted across the aperture produces: moving the centre by ``a`` (metres,
``|a| <= A / 2``) and the principal point by ``fx * a / d_f`` keeps the focus plane fixed and moves a point at depth
``d`` by ``fx * a * (1/d_f - 1/d)`` pixels (the lens-sampling ground truth of :mod:`recon.optics.planes` and the
synthetic street). The exact thin lens images the focus plane at ``v = f d_f / (d_f - f)`` behind the lens instead
of at ``f``, which scales the CoC by ``d_f / (d_f - f)``; that is the form used when the focal length is known.
Every function here works on Python floats, numpy arrays and torch tensors alike (plain arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from recon.errors import ReconError

MM = 1e-3


@dataclass(frozen=True)
class Lens:
    """The three numbers the defocus convolution needs, plus the focal length for the exact CoC.

    ``fx`` pixels, ``aperture_m`` entrance-pupil diameter in metres, ``focus_m`` metres, ``focal_length_m`` metres.
    """

    fx: float
    aperture_m: float
    focus_m: float
    focal_length_m: float | None = None

    @property
    def blur_scale_px_m(self) -> float:
        """``fx * A`` (pixel-metres): CoC diameter in pixels per unit of inverse depth away from the focus."""
        return self.fx * self.aperture_m


def aperture_diameter_m(focal_length_mm: float, f_number: float) -> float:
    """Aperture diameter ``A = f / N`` in metres from a focal length in millimetres and an f-number."""
    if not f_number > 0:
        raise ReconError(f"--f-number must be positive, got {f_number}")
    if not focal_length_mm > 0:
        raise ReconError(f"--focal-length-mm must be positive, got {focal_length_mm}")
    return focal_length_mm * MM / f_number


def fx_from_lens(focal_length_mm: float, sensor_width_mm: float, width_px: int) -> float:
    """Horizontal focal length in pixels of a sensor ``sensor_width_mm`` wide imaged on ``width_px`` pixels."""
    if not sensor_width_mm > 0:
        raise ReconError(f"--sensor-width-mm must be positive, got {sensor_width_mm}")
    return focal_length_mm / sensor_width_mm * width_px


def lens_from_values(focal_length_mm: float, f_number: float, focus_m: float, sensor_width_mm: float,
                     width_px: int) -> Lens:
    """A :class:`Lens` from raw lens numbers (millimetres, f-number, metres) and the image width in pixels."""
    if not focus_m > 0:
        raise ReconError(f"--focus-m must be positive, got {focus_m}")
    return Lens(fx=fx_from_lens(focal_length_mm, sensor_width_mm, width_px),
                aperture_m=aperture_diameter_m(focal_length_mm, f_number), focus_m=float(focus_m),
                focal_length_m=focal_length_mm * MM)


def lens_from_camera(camera: Any, f_number: float | None = None, focus_m: float | None = None) -> Lens:
    """A :class:`Lens` from a ``recon.data.scene.Camera`` (``fx``, ``focal_length_mm``, ``f_number``,
    ``focus_distance_m``), optionally overriding its f-number or focus distance."""
    n = float(camera.f_number if f_number is None else f_number)
    fm = float(camera.focus_distance_m if focus_m is None else focus_m)
    if not fm > 0:
        raise ReconError(f"camera '{camera.name}': focus distance must be positive, got {fm}")
    return Lens(fx=float(camera.fx), aperture_m=aperture_diameter_m(float(camera.focal_length_mm), n), focus_m=fm,
                focal_length_m=float(camera.focal_length_mm) * MM)


def coc_px(depth: Any, fx: Any, aperture_m: Any, focus_m: Any, focal_length_m: Any = None) -> Any:
    """Signed CoC diameter in pixels (positive in front of the focus plane) of points at ``depth`` metres.

    Approximate form ``fx * A * (1/d - 1/d_f)`` when ``focal_length_m`` is None (exact for the shifted-pinhole lens
    model), exact thin-lens form ``fx * A * d_f / (d_f - f) * (1/d - 1/d_f)`` otherwise. Arguments broadcast.
    """
    c = fx * aperture_m * (1.0 / depth - 1.0 / focus_m)
    if focal_length_m is not None:
        c = c * (focus_m / (focus_m - focal_length_m))
    return c


def coc_from_camera(depth: Any, camera: Any) -> Any:
    """Signed CoC diameter in pixels for a ``recon.data.scene.Camera`` with its own lens settings (exact form)."""
    lens = lens_from_camera(camera)
    return coc_px(depth, lens.fx, lens.aperture_m, lens.focus_m, lens.focal_length_m)


def inverse_depth_from_coc(coc: Any, fx: Any, aperture_m: Any, focus_m: Any, focal_length_m: Any = None) -> Any:
    """Inverse of :func:`coc_px`: inverse depth (1/metres) of a signed CoC diameter (pixels)."""
    scale = fx * aperture_m
    if focal_length_m is not None:
        scale = scale * (focus_m / (focus_m - focal_length_m))
    return coc / scale + 1.0 / focus_m


def aperture_for_max_blur(fx: float, near_m: float, far_m: float, focus_m: float, target_px: float,
                          focal_length_m: float | None = None) -> float:
    """Aperture diameter (metres) that makes the largest |CoC| over depths ``[near_m, far_m]`` equal ``target_px``.

    The CoC is monotonic in inverse depth, so the maximum is at one end of the range.
    """
    if not (0 < near_m <= far_m) or not focus_m > 0 or not fx > 0:
        raise ReconError(f"aperture_for_max_blur: need 0 < near <= far, focus > 0 and fx > 0 "
                         f"(got near={near_m}, far={far_m}, focus={focus_m}, fx={fx})")
    per_aperture = max(abs(coc_px(near_m, fx, 1.0, focus_m, focal_length_m)),
                       abs(coc_px(far_m, fx, 1.0, focus_m, focal_length_m)))
    if per_aperture <= 0 or not math.isfinite(per_aperture):
        raise ReconError("aperture_for_max_blur: the depth range is a single depth at the focus distance")
    return float(target_px) / per_aperture
