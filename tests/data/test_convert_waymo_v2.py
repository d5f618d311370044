"""Waymo v2 parquet -> recon scene: geometry against Waymo's own projection, LiDAR, sky masks, options."""

from __future__ import annotations

import numpy as np
import pytest
from support.convert_data import (
    decode_png,
    expected_lidar_world,
    make_waymo_truth,
    projection_disagreement,
    recon_project,
    write_waymo_v2,
)

from recon.data.convert.common import ConvertOptions, LensOptions
from recon.data.convert.waymo_v2 import convert_waymo_v2
from recon.data.scene import Scene


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory):
    t = make_waymo_truth()
    root = tmp_path_factory.mktemp("wv2")
    write_waymo_v2(t, root / "src")
    convert_waymo_v2(root / "src", root / "out", ConvertOptions())
    return t, Scene.load(root / "out")


def test_projection_matches_waymo_convention(converted) -> None:
    t, scene = converted
    offset = np.array(scene.meta["world_offset_m"])
    assert np.allclose(offset, t.ego[0][:3, 3])
    worst, worst_depth = projection_disagreement(t, scene, np.random.default_rng(1))
    assert worst_depth <= 1e-9, worst_depth
    assert worst < 1e-6, worst


def test_images_lidar_and_sky(converted) -> None:
    t, scene = converted
    assert len(scene.frames) == 6 and set(scene.cameras) == {"FRONT", "SIDE_LEFT"}
    for fr in scene.frames:
        cam = {"FRONT": 1, "SIDE_LEFT": 4}[fr.camera.name]
        assert np.array_equal(decode_png(fr.image_path)[..., :3], t.images[fr.index][cam])  # lossless PNG source
        assert fr.lidar_path is not None
    offset = np.array(scene.meta["world_offset_m"])
    for s in range(3):
        fr = scene.frame(f"FRONT_{s:05d}")
        got = fr.load_lidar().astype(np.float64)
        exp = expected_lidar_world(t, s) - offset
        assert got.shape == exp.shape == (4 * 16 - 3, 3)
        assert np.abs(got - exp).max() < 1e-3  # float32 storage of metres
    sky = scene.frame("FRONT_00000").load_sky_mask()
    assert sky is not None and sky[:8].all() and not sky[8:].any()
    assert scene.frame("FRONT_00001").sky_mask_path is None


def test_point_straight_ahead_lands_in_the_middle_column(tmp_path) -> None:
    """Waymo's range image puts the vehicle's forward direction in the centre column: an independent check."""
    t = make_waymo_truth(n_steps=1)
    t.laser["extrinsic"] = np.eye(4)
    ri = np.zeros((4, 16, 4), np.float32)
    ri[2, 8, 0] = 10.0  # column W/2: azimuth (1 - 2 * 8.5 / 16) pi = -pi/16, just right of straight ahead
    t.range_images[0] = ri
    write_waymo_v2(t, tmp_path / "src", lidar_pose=False)
    scene = convert_waymo_v2(tmp_path / "src", tmp_path / "out")
    p = Scene.load(scene.root).frames[0].load_lidar()[0].astype(np.float64) + scene.meta["world_offset_m"]
    p_v = np.linalg.inv(t.ego[0]) @ np.append(p, 1.0)
    az = np.arctan2(p_v[1], p_v[0])
    assert az == pytest.approx(-np.pi / 16, abs=1e-5) and np.linalg.norm(p_v[:3]) == pytest.approx(10.0, abs=1e-4)


def test_options_cameras_range_downscale_lens(tmp_path) -> None:
    t = make_waymo_truth(n_steps=3)
    write_waymo_v2(t, tmp_path / "src", lidar=False, seg=False)
    opts = ConvertOptions(cameras=("FRONT",), start=1, end=3, downscale=2.0,
                          lens=LensOptions(f_number=4.0, focus_m=25.0))
    scene = Scene.load(convert_waymo_v2(tmp_path / "src", tmp_path / "out", opts).root)
    assert [f.id for f in scene.frames] == ["FRONT_00001", "FRONT_00002"]
    cam = scene.cameras["FRONT"]
    assert (cam.width, cam.height) == (20, 15) and cam.fx == pytest.approx(15.0)
    assert cam.f_number == 4.0 and cam.focus_distance_m == 25.0 and not scene.has_lidar()
    assert scene.frames[0].load_image().shape == (15, 20, 3)


def test_undistortion_moves_a_dot_to_the_pinhole_projection(tmp_path) -> None:
    """A dot drawn where Waymo's distorted model puts a point ends up where the pinhole camera projects it."""
    k1 = -0.6
    t = make_waymo_truth(n_steps=1, distortion=(k1, 0.0, 0.0, 0.0, 0.0))
    fu, fv, cu, cv = t.cams[1]["intrinsic"][:4]
    p_cam = np.array([10.0, 5.0, 3.5])  # Waymo camera coordinates
    x, y = -p_cam[1] / p_cam[0], -p_cam[2] / p_cam[0]  # normalised OpenCV coordinates
    r2 = x * x + y * y
    ud, vd = fu * x * (1 + k1 * r2) + cu, fv * y * (1 + k1 * r2) + cv
    img = np.zeros((30, 40, 3), np.uint8)
    img[int(vd) - 1:int(vd) + 2, int(ud) - 1:int(ud) + 2] = 255  # 3x3 dot around the distorted position
    t.images[0][1] = img
    write_waymo_v2(t, tmp_path / "src", lidar=False, seg=False)
    scene = Scene.load(convert_waymo_v2(tmp_path / "src", tmp_path / "out").root)
    fr = scene.frame("FRONT_00000")
    X = (t.cam_pose[0][1] @ t.cams[1]["extrinsic"] @ np.append(p_cam, 1))[:3] - scene.meta["world_offset_m"]
    u, v, _ = recon_project(fr, X)
    out = fr.load_image()[..., 0]
    assert out[int(v), int(u)] > 0.5  # the dot's image covers the pinhole projection of the point
    assert abs(ud - u) > 1.5  # the distortion really moved it
    raw = Scene.load(convert_waymo_v2(tmp_path / "src", tmp_path / "raw", ConvertOptions(undistort=False)).root)
    assert raw.frame("FRONT_00000").load_image()[int(v), int(u), 0] < 0.5  # not there without undistortion
    assert raw.meta.get("distortion_ignored") is True
