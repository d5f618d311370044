"""`recon view`: input resolution, server-side panel images, and an end-to-end run in a real headless Chromium."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
import types
from pathlib import Path

import numpy as np
import pytest
from support.browser import canvas_pixels, chromium_path, free_port, headless_page, wait_for  # noqa: E402

from recon.errors import ReconError
from recon.model.ply import SH_C0, save_ply

RED, GREEN = (1.0, 0.1, 0.1), (0.1, 0.9, 0.2)


def blob_ply(path: Path, n: int = 3000, seed: int = 0, right: tuple[float, float, float] = (1, 0, 0)) -> Path:
    """A compact ball of small, opaque splats around the origin: red where p . right > 0, green elsewhere."""
    rng = np.random.default_rng(seed)
    means = (rng.normal(size=(n, 3)) * 0.5).astype(np.float32)
    rgb = np.where(means @ np.asarray(right, np.float32)[:, None] > 0, RED, GREEN).astype(np.float32)
    return save_ply(path, means, np.tile([1.0, 0, 0, 0], (n, 1)).astype(np.float32),
                    np.full((n, 3), math.log(0.06), np.float32), np.full(n, 3.0, np.float32),
                    ((rgb - 0.5) / SH_C0)[:, None, :], np.zeros((n, 0, 3), np.float32))


def look_at_camera(eye: np.ndarray, target: np.ndarray, width: int = 96, height: int = 64, fy: float = 80.0):
    from recon.data.scene import Camera
    from viewer.rendering import ViewCamera

    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, y, z], axis=1)
    c2w[:3, 3] = eye
    return ViewCamera(c2w, Camera("view", width, height, fy, fy, width / 2, height / 2))


# ---------------------------------------------------------------------------------------------- input resolution
def test_resolve_ply_and_run_folder(tmp_path: Path, small_street) -> None:
    from viewer.loading import resolve_input

    ply = blob_ply(tmp_path / "a.ply", n=50)
    inp = resolve_input(ply)
    assert inp.scene is None and inp.out_dir == tmp_path and len(inp.gaussians) == 50

    run = tmp_path / "run"
    run.mkdir()
    blob_ply(run / "point_cloud.ply", n=20)
    (run / "config.json").write_text(json.dumps({"data": str(small_street.root)}))
    inp = resolve_input(run)
    assert inp.scene is not None and len(inp.scene.frames) == len(small_street.frames)
    assert inp.out_dir == run and inp.notes == []

    (run / "config.json").write_text(json.dumps({"data": str(tmp_path / "gone")}))
    inp = resolve_input(run)
    assert inp.scene is None and "not found" in inp.notes[0]

    with pytest.raises(ReconError, match=r"no point_cloud\.ply"):
        resolve_input(tmp_path)
    with pytest.raises(ReconError, match=r"nope\.ply: no such file"):
        resolve_input(tmp_path / "nope.ply")
    (tmp_path / "bad.ply").write_text("hello")
    with pytest.raises(ReconError, match=r"bad\.ply: not a PLY file"):
        resolve_input(tmp_path / "bad.ply")


def test_cli_bad_input_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recon.cli import main

    assert main(["view", str(tmp_path / "missing.ply")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.ply" in err[0]


def test_app_builds_frustums_for_a_run(tmp_path: Path, small_street) -> None:
    from viewer.app import ViewerApp, ViewerOptions, scene_up
    from viewer.loading import resolve_input

    run = tmp_path / "run"
    run.mkdir()
    blob_ply(run / "point_cloud.ply", n=200)
    (run / "config.json").write_text(json.dumps({"data": str(small_street.root)}))
    logs: list[str] = []
    app = ViewerApp(resolve_input(run), ViewerOptions(port=free_port(), thumbnails=8), log=logs.append).start()
    try:
        assert len(app.frustums) == len(small_street.frames)
        f = small_street.frames[3]
        h = app.frustums[f.id]
        from viser import transforms as tf

        np.testing.assert_allclose(tf.SO3(h.wxyz).as_matrix(), f.cam2world[:3, :3], atol=1e-6)
        np.testing.assert_allclose(h.position, f.cam2world[:3, 3], atol=1e-6)
        up = scene_up(small_street)
        assert abs(np.linalg.norm(up) - 1) < 1e-6
        # Cameras of a street scene look roughly horizontally: their mean up is perpendicular to the view axis.
        assert abs(float(up @ f.cam2world[:3, 2])) < 0.5
        assert any("test (orange)" in line for line in logs)

        # Thumbnails: at most 8 frustums get a small image, loaded in the background.
        assert app._thumb_thread is not None
        app._thumb_thread.join(timeout=30)
        thumbs = [h.image for h in app.frustums.values() if h.image is not None]
        assert 1 <= len(thumbs) <= 8 and thumbs[0].dtype == np.uint8 and thumbs[0].shape[1] <= 160

        # Clicking a frustum puts the clicking browser's camera on it (pose and vertical field of view).
        cam = types.SimpleNamespace(wxyz=None, position=None, fov=None)
        client = types.SimpleNamespace(camera=cam, atomic=contextlib.nullcontext)
        app._look_through(h, 0.7)(types.SimpleNamespace(client=client))
        np.testing.assert_allclose(cam.position, f.cam2world[:3, 3])
        np.testing.assert_allclose(tf.SO3(np.asarray(cam.wxyz)).as_matrix(), f.cam2world[:3, :3], atol=1e-6)
        assert cam.fov == 0.7
    finally:
        app.stop()


# ---------------------------------------------------------------------------------------------- server render
def test_render_and_panel_images(tmp_path: Path) -> None:
    from recon.model.ply import load_ply
    from viewer.imaging import colorize_depth, panel_image
    from viewer.rendering import SplatRenderer

    g = load_ply(blob_ply(tmp_path / "b.ply", n=800))
    cam = look_at_camera(np.array([0.0, -5.0, 0.0]), np.zeros(3))
    res = SplatRenderer(g).render(cam)
    assert res.rgb.shape == (64, 96, 3) and res.alpha.shape == (64, 96)
    # The ball is in the middle of the image, nothing in the corners.
    assert res.alpha[28:36, 44:52].min() > 0.9 and res.alpha[:4, :4].max() < 0.05
    # Camera looks along +y, x right: the red half (x > 0) is on the right, the green half on the left.
    assert res.rgb[32, 60, 0] > 0.6 > res.rgb[32, 60, 1] and res.rgb[32, 36, 1] > 0.6 > res.rgb[32, 36, 0]
    # Depth in metres: the ball's surface is about 4-5 m away.
    d = res.depth[res.alpha > 0.9]
    assert 3.5 < float(np.median(d)) < 5.0
    depth_img = colorize_depth(res.depth)
    assert depth_img.shape[0] > 64 and depth_img.shape[1] == 96  # the scale bar is drawn below the image
    assert panel_image(res, "alpha")[30, 48, 0] > 230 and panel_image(res, "alpha")[0, 0, 0] < 13


def test_refocus_lens_parameters(tmp_path: Path) -> None:
    """The panel hands recon.optics.defocus the viewer lens: fx in render pixels, A = f/N, focus in metres."""
    from recon.model.ply import load_ply
    from viewer.imaging import panel_image
    from viewer.rendering import SplatRenderer

    g = load_ply(blob_ply(tmp_path / "d.ply", n=300))
    cam = look_at_camera(np.array([0.0, -5.0, 0.0]), np.zeros(3), fy=80.0)
    res = SplatRenderer(g).render(cam)
    seen = {}

    def spy(image, depth, fx, aperture_m, focus_m, kernel="disk"):
        seen.update(shape=tuple(image.shape), dshape=tuple(depth.shape), fx=fx, A=aperture_m, df=focus_m,
                    kernel=kernel, dmin=float(depth.min()))
        return image

    panel_image(res, "refocus", focus_m=3.0, f_number=2.0, sensor_width_mm=36.0, defocus=spy)
    # f = 80 px * 36 mm / 96 px = 30 mm; A = 15 mm at f/2.
    assert seen["shape"] == (1, 3, 64, 96) and seen["dshape"] == (1, 1, 64, 96)
    assert seen["fx"] == 80.0 and seen["df"] == 3.0 and seen["kernel"] == "disk" and seen["dmin"] > 0
    assert abs(seen["A"] - 0.015) < 1e-9

    from recon.optics import defocus

    sharp = panel_image(res, "refocus", focus_m=4.5, f_number=8.0, defocus=defocus).astype(float)
    blurred = panel_image(res, "refocus", focus_m=0.3, f_number=1.0, defocus=defocus).astype(float)
    # Focused on the ball it stays close to the pinhole render; focused at 0.3 m it is visibly blurred.
    pin = panel_image(res, "RGB").astype(float)
    assert np.abs(sharp - pin).mean() < np.abs(blurred - pin).mean() - 3.0


def test_depth_colour_bar_labels() -> None:
    from viewer.imaging import _nice_ticks, depth_limits

    d = np.zeros((10, 10), np.float32)
    assert depth_limits(d) is None
    d[2:8, 2:8] = np.linspace(2.0, 80.0, 36).reshape(6, 6)
    near, far = depth_limits(d)
    assert 2.0 <= near < 5.0 and 75.0 < far <= 80.0
    ticks = _nice_ticks(near, far)
    assert ticks[0] == near and ticks[-1] == far and 10.0 in ticks and len(ticks) <= 6


# ---------------------------------------------------------------------------------------------- browser
def _img_pixels(page) -> np.ndarray:
    import imageio.v3 as iio

    png = page.locator("p:text-is('server render') + div img").first.screenshot()
    return np.asarray(iio.imread(io.BytesIO(png)))[..., :3].astype(np.int16)


def _select_mode(page, mode: str) -> None:
    page.get_by_label("Mode", exact=True).first.click()
    page.get_by_role("option", name=mode, exact=True).click()


@pytest.mark.slow
@pytest.mark.browser
def test_browser_end_to_end(tmp_path: Path) -> None:
    if chromium_path() is None:
        pytest.skip("chromium not installed (apt-get install chromium; `make sysdeps` does it)")
    from viewer.app import ViewerApp, ViewerOptions
    from viewer.loading import resolve_input

    # The viewer's initial camera for a bare PLY looks from (-2, -2, 1.5) * radius with +z up: its right is (1, -1, 0).
    app = ViewerApp(resolve_input(blob_ply(tmp_path / "blob.ply", right=(1, -1, 0))),
                    ViewerOptions(port=free_port(), render_width=200, min_interval_s=0.1), log=lambda s: None).start()
    try:
        with headless_page(1000, 700) as b:
            page = b.page
            page.goto(app.url)

            def splats_drawn() -> np.ndarray | None:
                px = canvas_pixels(page)
                h, w = px.shape[:2]
                centre = px[h // 2 - 60: h // 2 + 60, w // 2 - 60: w // 2 + 60].astype(int)
                coloured = (centre.max(axis=2) - centre.min(axis=2)) > 80  # saturated red/green, not grey/white
                red = (centre[..., 0] > 150) & (centre[..., 1] < 100)
                return px if coloured.mean() > 0.5 and red.mean() > 0.05 else None

            px = wait_for(splats_drawn, timeout_s=40)
            assert px is not None, "splats never appeared in the WebGL canvas"
            h, w = px.shape[:2]
            bg = px[5:80, w // 3: 2 * w // 3].astype(int)  # a strip above the ball: background only
            assert ((bg.max(axis=2) - bg.min(axis=2)) > 80).mean() < 0.01
            centre = px[h // 2 - 60: h // 2 + 60, w // 2 - 60: w // 2 + 60].astype(int)
            red = (centre[..., 0] > 150) & (centre[..., 1] < 100)
            green = (centre[..., 1] > 150) & (centre[..., 0] < 100)
            assert red.mean() > 0.05 and green.mean() > 0.05  # both halves of the ball, in their own colours
            # Red is the right half of the ball on screen, green the left.
            cols = np.arange(centre.shape[1])[None, :].repeat(centre.shape[0], 0)
            assert cols[red].mean() > cols[green].mean() + 10

            # The server-rendered panel image arrives (not the black placeholder).
            rgb = wait_for(lambda: (lambda im: im if (im.max(axis=2) > 60).mean() > 0.02 else None)(_img_pixels(page)),
                           timeout_s=20)
            renders = {k: p.renders for k, p in app.panels.items()}
            assert rgb is not None, f"the server render never reached the panel (renders per client: {renders})"

            # Real UI: pick 'depth' in the Mode dropdown -> the server image changes.
            _select_mode(page, "depth")
            depth = wait_for(lambda: (lambda im: im if im.shape != rgb.shape or np.abs(im - rgb).mean() > 10
                                      else None)(_img_pixels(page)), timeout_s=20)
            assert depth is not None, "switching to depth mode did not change the server image"

            # Real UI: refocus mode, then drag focus to its nearest value with the keyboard (Home on the slider).
            _select_mode(page, "refocus")
            wait_for(lambda: app.panels and str(next(iter(app.panels.values())).mode.value) == "refocus", 10)
            time.sleep(1.0)
            before = _img_pixels(page)
            panel = next(iter(app.panels.values()))
            assert panel._defocus is not None, panel._defocus_note
            for label in ("f-number", "Focus (m)"):  # widest aperture, then focus at 0.3 m (the ball is ~4 m away)
                slider_id = page.locator("label", has_text=label).first.get_attribute("for")
                page.locator(f"[id='{slider_id}'] [role=slider]").focus()
                page.keyboard.press("Home")
            moved = wait_for(lambda: abs(float(panel.focus.value) - 0.3) < 1e-6
                             and abs(float(panel.f_number.value) - 0.7) < 1e-6, 10)
            assert moved, f"sliders did not move: focus {panel.focus.value}, f/{panel.f_number.value}"

            def blurred() -> np.ndarray | None:
                im = _img_pixels(page)
                changed = np.abs(im - before).max(axis=2) > 30 if im.shape == before.shape else np.ones(1, bool)
                return im if changed.mean() > 0.02 else None

            after = wait_for(blurred, timeout_s=30)
            assert after is not None, f"the focus slider did not change the refocused image ({panel.status.content})"

            # Screenshot button: a PNG lands in the folder of the PLY, atomically (no temporary files left).
            page.get_by_role("button", name="Save screenshot").click()
            shots = wait_for(lambda: sorted((tmp_path / "screenshots").glob("*.png")), timeout_s=10)
            assert shots and shots[0].name.startswith("view_refocus_")
            assert not [p for p in (tmp_path / "screenshots").iterdir() if p.suffix != ".png"]

            assert b.external_requests == [], f"viewer fetched from the network: {b.external_requests}"
    finally:
        app.stop()

