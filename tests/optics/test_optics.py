"""Thin-lens formulas and aperture kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recon.data.scene import Camera
from recon.errors import ReconError
from recon.optics import (
    aperture_diameter_m,
    aperture_for_max_blur,
    coc_from_camera,
    coc_px,
    inverse_depth_from_coc,
    kernel_weights,
    lens_from_camera,
    lens_from_values,
    parse_kernel,
)


def test_coc_sign_and_exact_form() -> None:
    fx, a, df = 1000.0, 0.01, 10.0
    assert coc_px(5.0, fx, a, df) == pytest.approx(fx * a * (1 / 5 - 1 / 10))
    assert coc_px(5.0, fx, a, df) > 0 > coc_px(20.0, fx, a, df)
    assert coc_px(df, fx, a, df) == 0
    # exact thin lens: c = A f |d - df| / (d (df - f)) on the sensor, divided by the pixel pitch f / fx
    f = 0.05
    d = 4.0
    sensor = a * f * abs(d - df) / (d * (df - f))
    assert coc_px(d, fx, a, df, f) == pytest.approx(sensor / (f / fx))
    inv = inverse_depth_from_coc(coc_px(d, fx, a, df, f), fx, a, df, f)
    assert inv == pytest.approx(1 / d)


def test_lens_from_camera_and_values() -> None:
    cam = Camera("front", 320, 192, fx=320 / 36 * 38, fy=320 / 36 * 38, cx=160, cy=96, sensor_width_mm=36.0,
                 f_number=2.0, focus_distance_m=10.0)
    lens = lens_from_camera(cam)
    assert lens.aperture_m == pytest.approx(0.038 / 2.0)
    assert lens.blur_scale_px_m == pytest.approx(13.0 / 2.0, rel=0.02)  # the brief's "fx*A ~ 13/N px.m"
    lv = lens_from_values(38.0, 2.0, 10.0, 36.0, 320)
    assert lv.fx == pytest.approx(cam.fx) and lv.aperture_m == pytest.approx(lens.aperture_m)
    assert coc_from_camera(5.0, cam) == pytest.approx(coc_px(5.0, lens.fx, lens.aperture_m, 10.0, 0.038))
    with pytest.raises(ReconError, match="f-number"):
        aperture_diameter_m(38.0, 0.0)
    with pytest.raises(ReconError, match="focus"):
        lens_from_values(38.0, 2.0, 0.0, 36.0, 320)


def test_aperture_for_max_blur() -> None:
    fx = 500.0
    for focus in (3.0, 10.0, 80.0):
        a = aperture_for_max_blur(fx, 2.0, 80.0, focus, 6.0)
        d = np.geomspace(2.0, 80.0, 200)
        assert np.abs(coc_px(d, fx, a, focus)).max() == pytest.approx(6.0, rel=1e-6)
    with pytest.raises(ReconError):
        aperture_for_max_blur(fx, 10.0, 10.0, 10.0, 6.0)


@pytest.mark.parametrize("shape", ["disk", "gaussian", "hexagon", "pentagon"])
def test_kernels_normalised_continuous_and_sized(shape: str) -> None:
    r = torch.linspace(0.0, 5.0, 101, dtype=torch.float64)
    k = kernel_weights(r, 6, shape)
    assert k.shape == (101, 13, 13)
    assert torch.allclose(k.sum((-2, -1)), torch.ones(101, dtype=torch.float64))
    # radius 0 is a delta
    assert k[0, 6, 6] == pytest.approx(1.0, abs=1e-6)
    # weights are Lipschitz in the radius (no rounding to integer sizes): halving the step halves the change
    d1 = (k[1:] - k[:-1]).abs().amax()
    k2 = kernel_weights(torch.linspace(0.0, 5.0, 201, dtype=torch.float64), 6, shape)
    d2 = (k2[1:] - k2[:-1]).abs().amax()
    assert d1 < 0.2 and d2 < 0.6 * d1
    # second moment grows with the radius like a disk's r^2 / 4 per axis (for r well above a pixel)
    ax = torch.arange(-6, 7, dtype=torch.float64)
    var_x = (k * ax[None, None, :] ** 2).sum((-2, -1))
    if shape in ("disk", "gaussian"):
        i = 80  # r = 4
        assert var_x[i] == pytest.approx(4.0**2 / 4, rel=0.1)
    assert torch.all(var_x[1:] >= var_x[:-1] - 1e-9)


def test_parse_kernel_names() -> None:
    assert parse_kernel("hexagon").blades == 6
    assert parse_kernel("polygon9").blades == 9
    assert not parse_kernel("pentagon").point_symmetric
    with pytest.raises(ReconError, match="--shape"):
        parse_kernel("star")


def test_disk_area_matches_radius() -> None:
    k = kernel_weights(torch.tensor([7.0]), 8, "disk")
    support = (k[0] > 0).sum().item()
    assert support == pytest.approx(math.pi * 7.5**2, rel=0.08)
