"""The embedded synthetic street: geometry agrees between LiDAR and depth maps, the finite-aperture images follow
the thin-lens formula, files are deterministic, and the CLI writes / refuses folders cleanly.

Print the measured numbers with:  .venv/bin/pytest tests/test_synth.py -s -q
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from recon.data.scene import Scene
from recon.data.synth import SynthConfig, make_street
from recon.data.synth.lens import subpixel_offsets, vogel_disk
from recon.errors import ReconError

TINY = dict(width=64, height=40, n_frames=3, defocus_frames=1, lens_samples=8, lidar_azimuth_steps=256,
            defocus_f_numbers=(2.0,), defocus_focus_m=(5.0,))


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _project(frame, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points -> (pixel column, pixel row, z) of those in front of the camera and inside the image."""
    cam = frame.camera
    pc = (frame.world2cam[:3, :3] @ pts.T.astype(np.float64) + frame.world2cam[:3, 3:4]).T
    z = pc[:, 2]
    front = z > 0.3
    u = cam.fx * pc[front, 0] / z[front] + cam.cx
    v = cam.fy * pc[front, 1] / z[front] + cam.cy
    ui, vi = np.floor(u).astype(int), np.floor(v).astype(int)
    inside = (ui >= 0) & (ui < cam.width) & (vi >= 0) & (vi < cam.height)
    return ui[inside], vi[inside], z[front][inside]


def test_lidar_agrees_with_depth_maps(small_street: Scene) -> None:
    """LiDAR points projected into every camera land on pixels whose rendered z-depth matches the point's z."""
    rel_err = []
    for frame in small_street.frames[::5]:
        pts = frame.load_lidar()
        assert pts is not None and pts.dtype == np.float32 and pts.shape[1] == 3
        depth = frame.load_depth()
        assert depth is not None
        u, v, z = _project(frame, pts)
        d = depth[v, u]
        # skip depth edges and sky: the 3x3 neighbourhood must be smooth (the point is not at the pixel centre,
        # and the LiDAR sits 0.4 m above the camera, so it sees around edges)
        pad = np.pad(depth, 1, mode="edge")
        win = np.stack([pad[1 + dy:1 + dy + depth.shape[0], 1 + dx:1 + dx + depth.shape[1]]
                        for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        smooth = (win.min(0) > 0) & (win.max(0) < 1.03 * win.min(0))
        ok = smooth[v, u] & (d > 0)
        rel_err.append(np.abs(d[ok] - z[ok]) / z[ok])
    err = np.concatenate(rel_err)
    med, p90 = float(np.median(err)), float(np.percentile(err, 90))
    print(f"\nlidar vs depth map: {len(err)} points, median rel err {med:.4f}, 90th pct {p90:.4f}")
    assert len(err) > 2000
    assert med < 0.005        # 0.5 %: noise (2 cm) + sub-pixel position on sloped surfaces
    assert p90 < 0.03


def test_lidar_sweep_shape(small_street: Scene) -> None:
    sweeps = small_street.lidar_sweeps()
    assert len(sweeps) == 16
    pts = np.load(sweeps[0])
    from recon.data.synth.rig import camera_to_ego, lidar_origin

    frame = next(f for f in small_street.frames if f.camera.name == "front" and f.index == 0)
    origin = lidar_origin(frame.cam2world @ np.linalg.inv(camera_to_ego("front")))
    r = np.linalg.norm(pts - origin, axis=1)
    print(f"\nlidar sweep: {len(pts)} points, range {r.min():.1f}-{r.max():.1f} m")
    assert 30_000 <= len(pts) <= 60_000
    assert r.max() < 75.0 + 0.1 and r.min() > 2.0


def _disk_blur(img: np.ndarray, diameter: float, pad: int = 8, n: int = 128) -> np.ndarray:
    """The image seen through the generator's lens model: the mean of exact (Fourier) sub-pixel shifts of
    ``img`` over a Vogel disk of the given diameter in pixels (no interpolation blur of its own)."""
    p = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    ky = np.fft.fftfreq(p.shape[0])[:, None, None]
    kx = np.fft.fftfreq(p.shape[1])[None, :, None]
    pts = vogel_disk(n) * (diameter / 2.0)  # the kernel of a continuous disk, sampled finely
    transfer = np.mean(np.exp(-2j * np.pi * (kx * pts[None, None, :, 0] + ky * pts[None, None, :, 1])), axis=2)
    out = np.real(np.fft.ifft2(np.fft.fft2(p, axes=(0, 1)) * transfer[..., None], axes=(0, 1)))
    return out[pad:-pad, pad:-pad]


def _fit_diameter(pin: np.ndarray, img: np.ndarray, mask: np.ndarray, predicted: float) -> tuple[float, float]:
    """The disk diameter in [0.5, 1.5] x predicted that best explains ``img`` from ``pin`` (least squares on
    ``mask``), and the residual RMS."""
    from scipy.optimize import minimize_scalar

    def cost(c: float) -> float:
        return float(np.mean((_disk_blur(pin, c)[mask] - img[mask]) ** 2))

    res = minimize_scalar(cost, bounds=(0.5 * predicted, 1.5 * predicted), method="bounded",
                          options={"xatol": 0.002 * predicted})
    return float(res.x), float(np.sqrt(res.fun))


def test_finite_aperture_matches_thin_lens(small_street: Scene) -> None:
    """On the focus plane the finite-aperture image equals the pinhole image; off it the blur diameter is
    fx * A * |1/d - 1/d_f| (fitted on the far region: skyline, hills and sky)."""
    scene = small_street
    assert scene.defocus and scene.meta["training_images"] == "pinhole"
    frame = scene.frame(scene.defocus[0].frame_id)
    assert frame.camera.name == "front" and frame.split == "train"
    cam = frame.camera
    pin = frame.load_image().astype(np.float64)
    depth = frame.load_depth()
    inv = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0)
    h, w = depth.shape
    for dimg in scene.defocus:
        img = dimg.load_image().astype(np.float64)
        fxa = cam.fx * cam.focal_length_mm / 1000.0 / dimg.f_number
        blur = fxa * np.abs(inv - 1.0 / dimg.focus_distance_m)          # blur-circle diameter in pixels
        r = int(np.ceil(blur.max() / 2)) + 1
        pad = np.pad(blur, r, mode="edge")
        neigh = np.max([pad[r + dy:r + dy + h, r + dx:r + dx + w] for dy in range(-r, r + 1)
                        for dx in range(-r, r + 1)], axis=0)
        sharp = (neigh < 0.15)
        sharp[:r], sharp[-r:], sharp[:, :r], sharp[:, -r:] = False, False, False, False
        if sharp.sum() < 50:
            continue
        mse = float(np.mean((img[sharp] - pin[sharp]) ** 2))
        psnr = 10 * np.log10(1.0 / max(mse, 1e-12))
        blurred = np.mean(np.abs(img - pin)[~sharp])
        print(f"\nf/{dimg.f_number:g} focus {dimg.focus_distance_m:g} m: {int(sharp.sum())} in-focus pixels, "
              f"PSNR {psnr:.1f} dB vs pinhole; mean abs diff elsewhere {blurred:.4f}")
        assert psnr > 40.0

    # Blur width: fit the disk diameter that best explains the focus-3 m images from the pinhole image on distant
    # fronto-parallel surfaces (facades, hills beyond 60 m; depth constant within 1 % over 9x9 pixels, so no
    # geometry edge, whose aliasing in the pinhole image would bias the fit, and no near occluder spills in).
    r = 4
    pad = np.pad(depth, r, mode="edge")
    win = np.stack([pad[r + dy:r + dy + h, r + dx:r + dx + w] for dy in range(-r, r + 1) for dx in range(-r, r + 1)])
    far = (win.min(0) > 60.0) & (win.max(0) < 1.01 * win.min(0))
    assert far.sum() > 300, "distant surfaces (skyline / hills) should be visible in the front camera"
    checked = 0
    for dimg in scene.defocus:
        if dimg.focus_distance_m != 3.0:
            continue
        img = dimg.load_image().astype(np.float64)
        fxa = cam.fx * cam.focal_length_mm / 1000.0 / dimg.f_number
        predicted = fxa * abs(float(np.mean(inv[far])) - 1.0 / dimg.focus_distance_m)
        fitted, _ = _fit_diameter(pin, img, far, predicted)
        print(f"\nf/{dimg.f_number:g} focus 3 m, distant surfaces ({int(far.sum())} px): predicted blur diameter "
              f"{predicted:.2f} px, fitted {fitted:.2f} px ({100 * (fitted / predicted - 1):+.1f} %)")
        # sub-pixel blur is harder to measure against an 8-bit, 4-sample pinhole image: a wider tolerance
        tol = 0.04 if predicted > 1.5 else 0.15
        assert abs(fitted - predicted) <= tol * predicted
        checked += 1
    assert checked >= 1


def test_thin_lens_on_a_textured_plane() -> None:
    """The lens renderer alone: a fronto-parallel facade 100 m away, focus 3 m. The finite-aperture image is the
    pinhole image convolved with the predicted disk (fitted diameter within 3 % above 1.5 px, 5 % below;
    residual near zero)."""
    from recon.data.scene import Camera
    from recon.data.synth.geometry import MeshBuilder
    from recon.data.synth.lens import render_defocus, render_pinhole
    from recon.data.synth.raycast import Tracer
    from recon.data.synth.rig import camera_to_ego
    from recon.data.synth.textures import MipAtlas, build_textures

    tex = build_textures(0)
    b = MeshBuilder(tex)
    d, half = 100.0, 120.0
    b.add_quad(np.array([[d, half, -half], [d, -half, -half], [d, -half, half], [d, half, half]]),
               np.array([[0, 0], [2 * half, 0], [2 * half, 2 * half], [0, 2 * half]]), "office_facade")
    tracer = Tracer(b.build(), MipAtlas.from_textures(tex), np.array([1.0, 0.0, 0.3]))
    k = Camera("front", 160, 96, 171.5, 171.5, 80.0, 48.0)
    c2w = camera_to_ego("front")
    pin = render_pinhole(tracer, k, c2w, 4).astype(np.float64)
    inner = np.zeros((96, 160), bool)
    inner[6:-6, 6:-6] = True
    for f_number in (1.0, 2.8):
        aperture = 171.5 * (36.0 / 160) / 1000.0 / f_number
        img = render_defocus(tracer, k, c2w, aperture, 3.0, 96, 4).astype(np.float64)
        predicted = 171.5 * aperture * abs(1.0 / d - 1.0 / 3.0)
        fitted, rms = _fit_diameter(pin, img, inner, predicted)
        print(f"\nplane at 100 m, f/{f_number:g} focus 3 m: predicted {predicted:.3f} px, fitted {fitted:.3f} px, "
              f"residual RMS {rms:.5f} (image std {img[inner].std():.3f})")
        assert abs(fitted - predicted) <= (0.03 if predicted > 1.5 else 0.05) * predicted
        assert rms < 0.05 * img[inner].std()


@pytest.mark.parametrize("n", [4, 16])
def test_subpixel_patterns_integrate_straight_edges(n: int) -> None:
    """A vertical or horizontal silhouette at any sub-pixel position: the pattern's coverage estimate is off by at
    most 1/(2n) of a pixel (every sample has its own, evenly spaced column and row: 1/8 for 4 samples, 1/32 for
    16)."""
    offs = subpixel_offsets(n)
    assert offs.shape == (n, 2) and np.allclose(offs.mean(0), 0.0) and np.abs(offs).max() < 0.5
    edges = np.linspace(-0.5, 0.5, 1001)
    for axis in (0, 1):
        assert len(np.unique(offs[:, axis].round(9))) == n
        coverage = (offs[None, :, axis] > edges[:, None]).mean(1)
        err = np.abs(coverage - (0.5 - edges)).max()
        assert err <= 1.0 / (2 * n) + 1e-9


def test_depth_range_and_sky(small_street: Scene) -> None:
    near, far, far_textured = np.inf, 0.0, []
    for frame in small_street.frames:
        d = frame.load_depth()
        sky = frame.load_sky_mask()
        assert d is not None and sky is not None and d.dtype == np.float32
        assert np.array_equal(sky, d == 0), f"{frame.id}: sky mask and zero depth disagree"
        assert 0.0 < sky.mean() < 0.9
        near = min(near, float(d[d > 0].min()))
        far = max(far, float(d.max()))
        if frame.camera.name == "front":
            img = frame.load_image().mean(axis=2)
            gx = np.abs(np.diff(img, axis=1))[:, :-1]
            sel = (d[:, :-2] > 100) & (d[:, 1:-1] > 100) & (d[:, 2:] > 100)
            if sel.sum() > 20:
                far_textured.append(float(np.mean(gx[sel])))
    print(f"\ndepth range {near:.2f}-{far:.1f} m; mean horizontal gradient beyond 100 m "
          f"{np.mean(far_textured):.4f}")
    assert near < 8.0 and far > 100.0
    assert far_textured and np.mean(far_textured) > 0.005, "distant geometry should not be blank"


def test_camera_metadata(small_street: Scene) -> None:
    cams = small_street.cameras
    assert set(cams) == {"front", "front_left", "front_right"}
    fov = {n: np.degrees(2 * np.arctan(c.width / (2 * c.fx))) for n, c in cams.items()}
    assert all(abs(f - 50.0) < 1e-6 for f in fov.values())
    assert all(c.f_number == 1.0 and c.focus_distance_m == 10.0 and c.sensor_width_mm == 36.0
               for c in cams.values())
    fr = {f.camera.name: f for f in small_street.frames if f.index == 0}
    fwd = {n: f.cam2world[:3, 2] for n, f in fr.items()}
    yaw_l = np.degrees(np.arctan2(np.cross(fwd["front"], fwd["front_left"])[2], fwd["front"] @ fwd["front_left"]))
    yaw_r = np.degrees(np.arctan2(np.cross(fwd["front"], fwd["front_right"])[2], fwd["front"] @ fwd["front_right"]))
    assert yaw_l == pytest.approx(45.0, abs=1e-6) and yaw_r == pytest.approx(-45.0, abs=1e-6)
    assert all(abs(f.center[2] - 1.6) < 1e-9 for f in fr.values())
    splits = [f.split for f in small_street.frames if f.camera.name == "front"]
    assert splits.count("test") == 2 and splits[4] == "test"


def test_deterministic_files(tmp_path: Path) -> None:
    a = make_street(SynthConfig(seed=3, **TINY), tmp_path / "a")
    b = make_street(SynthConfig(seed=3, **TINY), tmp_path / "b")
    c = make_street(SynthConfig(seed=4, **TINY), tmp_path / "c")
    ha, hb, hc = _hashes(a.root), _hashes(b.root), _hashes(c.root)
    assert ha == hb
    assert "scene.json" in ha and any(k.startswith("defocus/") for k in ha)
    images = [k for k in ha if k.startswith("images/")]
    assert all(ha[k] != hc[k] for k in images)


@pytest.mark.parametrize("layout", ["boulevard", "narrow"])
def test_layouts(tmp_path: Path, layout: str) -> None:
    scene = make_street(SynthConfig(layout=layout, width=64, height=40, n_frames=2, defocus_frames=0,
                                    lidar_azimuth_steps=128), tmp_path / layout)
    assert scene.meta["config"]["layout"] == layout and len(scene.frames) == 6
    depths = np.stack([f.load_depth() for f in scene.frames])
    assert (depths == 0).any() and depths.max() > 100.0 and depths[depths > 0].min() < 8.0


def test_existing_folder_and_atomicity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s"
    out.mkdir()
    with pytest.raises(ReconError, match="already exists"):
        make_street(SynthConfig(**TINY), out)
    with pytest.raises(ReconError, match="unknown layout"):
        make_street(SynthConfig(layout="autobahn", **TINY), tmp_path / "x")

    import recon.data.synth.street as street

    calls = {"n": 0}
    real = street.write_image

    def failing(path, image):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("disk full")
        return real(path, image)

    monkeypatch.setattr(street, "write_image", failing)
    with pytest.raises(OSError):
        make_street(SynthConfig(**TINY), tmp_path / "half")
    assert not (tmp_path / "half").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"], "no temporary folder may be left behind"


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recon.cli import main

    out = tmp_path / "street"
    args = ["data", "synth", "--out", str(out), "--seed", "2", "--width", "48", "--height", "32", "--n-frames", "2",
            "--defocus-frames", "0", "--lidar-azimuth-steps", "128"]
    assert main(args) == 0
    scene = Scene.load(out)
    assert len(scene.frames) == 6 and scene.meta["config"]["seed"] == 2
    printed = capsys.readouterr().out
    assert "frames: 6" in printed and "generated in" in printed
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
