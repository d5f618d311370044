"""COLMAP -> recon scene: a text-format fixture checked against COLMAP's projection, fisheye refusal, real data."""

from __future__ import annotations

import numpy as np
import pytest
from support.convert_data import recon_project, write_colmap_text
from support.shared import shared_data

from recon.data.convert.colmap import convert_colmap
from recon.data.convert.common import ConvertOptions
from recon.data.scene import Scene
from recon.errors import ReconError


def colmap_project(cam_from_world: np.ndarray, X: np.ndarray, fx: float, fy: float, cx: float, cy: float):
    p = cam_from_world[:3, :3] @ X + cam_from_world[:3, 3]
    return fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy


def test_pinhole_projection_and_points(tmp_path) -> None:
    poses = write_colmap_text(tmp_path / "src")
    scene = Scene.load(convert_colmap(tmp_path / "src", tmp_path / "out").root)
    assert len(scene.frames) == 3
    rng = np.random.default_rng(3)
    for fr, T in zip(scene.frames, poses):
        for _ in range(5):
            X = rng.uniform(-1, 1, 3)
            u0, v0 = colmap_project(T, X, 50, 52, 32.5, 24.25)
            u1, v1, _ = recon_project(fr, X)
            assert abs(u0 - u1) < 1e-6 and abs(v0 - v1) < 1e-6
    pts = scene.load_sfm_points()
    assert pts.shape == (2, 6) and np.allclose(pts[0], [0.5, 0.2, 1.0, 1.0, 0.0, 0.0])
    assert np.allclose(pts[1, 3:], [0, 128 / 255, 1.0], atol=1e-6)


def test_simple_radial_is_undistorted(tmp_path) -> None:
    write_colmap_text(tmp_path / "src", model="SIMPLE_RADIAL", params="50 32 24 -0.2", n=1)
    scene = Scene.load(convert_colmap(tmp_path / "src", tmp_path / "out").root)
    cam = scene.frames[0].camera
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (50, 50, 32, 24)
    src = np.asarray(__import__("imageio.v3", fromlist=["imread"]).imread(tmp_path / "src/images/img0.png"))
    out = (scene.frames[0].load_image() * 255).round().astype(np.uint8)
    assert np.array_equal(out[22:26, 30:34], src[22:26, 30:34])  # the centre is not moved by radial distortion
    assert not np.array_equal(out[:5, :5], src[:5, :5])  # the corners are


@pytest.mark.parametrize("model,params", [("OPENCV_FISHEYE", "50 50 32 24 0.1 0 0 0"), ("FOV", "50 50 32 24 0.5")])
def test_fisheye_is_refused(tmp_path, model: str, params: str) -> None:
    write_colmap_text(tmp_path / "src", model=model, params=params, n=1)
    with pytest.raises(ReconError, match=f"fisheye camera model {model}") as e:
        convert_colmap(tmp_path / "src", tmp_path / "out")
    assert "\n" not in str(e.value) and "sparse" in str(e.value)
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["src"]


def test_real_colmap_sample(tmp_path) -> None:
    """The shared real model converts; its own 2D observations reproject through the converted cameras."""
    import pycolmap

    src = shared_data("colmap_sample")
    scene = Scene.load(convert_colmap(src, tmp_path / "out", ConvertOptions(downscale=4.0)).root)
    rec = pycolmap.Reconstruction(str(src / "sparse"))
    assert len(scene.frames) == 23 and len(scene.test_frames) == 3
    assert scene.load_sfm_points().shape == (len(rec.points3D), 6)
    by_name = {f.id.split("_", 1)[1]: f for f in scene.frames}
    errs = []
    for im in rec.images.values():
        fr = by_name[im.name.rsplit(".", 1)[0]]
        for p2d in im.points2D:
            if p2d.has_point3D():
                X = rec.points3D[p2d.point3D_id].xyz
                u, v, z = recon_project(fr, X)
                cam = rec.cameras[im.camera_id]
                sx, sy = fr.camera.width / cam.width, fr.camera.height / cam.height
                errs.append(np.hypot(u / sx - p2d.xy[0], v / sy - p2d.xy[1]))
                assert z > 0
    errs = np.array(errs)
    print(f"colmap_sample: {len(errs)} observations, median reprojection error {np.median(errs):.3f} px "
          f"(full resolution), 95th percentile {np.percentile(errs, 95):.3f} px")
    assert np.median(errs) < 1.5 and fr.load_image().shape == (fr.camera.height, fr.camera.width, 3)
