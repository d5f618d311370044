"""Bokeh from one sharp image + metric depth: accuracy against lens-sampled truth, stacks, CLI and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support.street import finite_aperture_views

from recon.cli import main as recon_main
from recon.errors import ReconError
from recon.io.images import read_image, write_image
from recon.optics import aperture_for_max_blur, gather_defocus
from recon.optics.bokeh import BokehLens, load_image_and_depth, render_bokeh, sweep_settings
from recon.optics.planes import edge_band, make_plane_scene, psnr, render_pinhole, render_thin_lens

SENSOR_MM = 36.0


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def planes():
    scene = make_plane_scene(128, 96, seed=1)
    img, depth = render_pinhole(scene)
    return scene, img, depth


@pytest.mark.parametrize("focus,max_blur", [(2.5, 10.0), (60.0, 10.0)])
def test_bokeh_matches_lens_sampling(planes, focus: float, max_blur: float) -> None:
    scene, img, depth = planes
    a = aperture_for_max_blur(scene.fx, 2.5, 60.0, focus, max_blur)
    truth = render_thin_lens(scene, a, focus, samples=128)
    focal_mm = scene.fx * SENSOR_MM / scene.width
    setting = BokehLens(focus, focal_mm / 1000.0 / a, focal_mm, SENSOR_MM)
    out = render_bokeh(img, depth, setting)
    t = torch.from_numpy
    naive = gather_defocus(t(img).permute(2, 0, 1)[None], t(depth)[None, None], scene.fx, a, focus)
    naive = naive[0].permute(1, 2, 0).numpy()
    band = edge_band(depth, int(max_blur / 2) + 2)
    print(f"bokeh focus {focus} m f/{setting.f_number:.2f}: {psnr(out, truth):.2f} dB; edge band "
          f"{psnr(out[band], truth[band]):.2f} vs gather {psnr(naive[band], truth[band]):.2f} dB")
    assert psnr(out, truth) >= 30.0
    assert psnr(out[band], truth[band]) > psnr(naive[band], truth[band]) + 0.5


def test_shapes_linear_light_and_sweeps(planes) -> None:
    _, img, depth = planes
    s = BokehLens(2.5, 1.4, 50.0, 36.0)
    outs = {k: render_bokeh(img, depth, s, k) for k in ("disk", "hexagon", "gaussian")}
    assert all(o.shape == img.shape and np.isfinite(o).all() for o in outs.values())
    assert np.abs(outs["disk"] - outs["hexagon"]).max() > 1e-3
    lin = render_bokeh(img, depth, s, linear_light=True, highlight_gain=2.0)
    assert lin.shape == img.shape and lin.min() >= 0.0 and lin.max() <= 1.0
    focus = sweep_settings(depth, s, 4, "focus")
    assert len(focus) == 4 and focus[0].focus_m < focus[-1].focus_m
    ap = sweep_settings(depth, s, 3, "aperture", 8.0)
    assert [round(x.f_number, 3) for x in ap] == [1.4, round(float(np.sqrt(1.4 * 8.0)), 3), 8.0]


@pytest.fixture()
def inputs(tmp_path, planes):
    _, img, depth = planes
    write_image(tmp_path / "img.png", img)
    np.save(tmp_path / "depth.npy", depth)
    return tmp_path


def test_cli_single_and_stack(inputs) -> None:
    rc = recon_main(["bokeh", str(inputs / "img.png"), "--depth", str(inputs / "depth.npy"), "--focus-m", "6",
                     "--f-number", "1.8", "--shape", "hexagon", "--out", str(inputs / "out.png")])
    assert rc == 0 and read_image(inputs / "out.png").shape == (96, 128, 3)
    rc = recon_main(["bokeh", str(inputs / "img.png"), "--depth", str(inputs / "depth.npy"), "--focus-m", "6",
                     "--f-number", "1.8", "--stack", "3", "--sweep", "aperture", "--out", str(inputs / "stack")])
    assert rc == 0
    manifest = json.loads((inputs / "stack" / "stack.json").read_text())
    assert [e["image"] for e in manifest["images"]] == ["bokeh_000.png", "bokeh_001.png", "bokeh_002.png"]
    assert all((inputs / "stack" / e["image"]).is_file() for e in manifest["images"])


def test_bad_inputs_are_one_line_errors(inputs, capsys) -> None:
    d = np.load(inputs / "depth.npy")
    np.save(inputs / "small.npy", d[:50])
    bad = d.copy()
    bad[3, 4] = np.nan
    np.save(inputs / "nan.npy", bad)
    bad = d.copy()
    bad[3, 4] = 0.0
    np.save(inputs / "zero.npy", bad)
    with pytest.raises(ReconError, match="small.npy.*128x50"):
        load_image_and_depth(inputs / "img.png", inputs / "small.npy")
    with pytest.raises(ReconError, match="nan.npy.*NaN"):
        load_image_and_depth(inputs / "img.png", inputs / "nan.npy")
    with pytest.raises(ReconError, match="zero.npy.*non-positive"):
        load_image_and_depth(inputs / "img.png", inputs / "zero.npy")
    capsys.readouterr()
    rc = recon_main(["bokeh", str(inputs / "img.png"), "--depth", str(inputs / "depth.npy"), "--focus-m", "6",
                     "--f-number", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--f-number" in err and len(err.strip().splitlines()) == 1
    rc = recon_main(["bokeh", str(inputs / "missing.png"), "--depth", str(inputs / "depth.npy"), "--focus-m", "6"])
    err = capsys.readouterr().err
    assert rc == 2 and "missing.png" in err and len(err.strip().splitlines()) == 1


def test_bokeh_on_street(small_street) -> None:
    for entry, frame, img, depth in finite_aperture_views(small_street):
        cam = frame.camera
        s = BokehLens(entry.focus_distance_m, entry.f_number, float(cam.focal_length_mm), cam.sensor_width_mm)
        out = render_bokeh(img, depth, s)
        value = psnr(out, entry.load_image())
        print(f"bokeh street f/{entry.f_number} focus {entry.focus_distance_m} m: {value:.2f} dB")
        assert value >= 30.0
