"""drivestudio processed Waymo layout -> recon scene: Waymo-axes extrinsics, ego poses, LiDAR bins, sky masks."""

from __future__ import annotations

import numpy as np
from support.convert_data import make_waymo_truth, png_bytes, recon_project, waymo_project

from recon.data.convert.drivestudio import convert_drivestudio
from recon.data.scene import Scene


def write_drivestudio(t, root) -> None:
    """The layout of drivestudio's waymo_preprocess.py (cam id = Waymo name - 1, raw Waymo extrinsics)."""
    for d in ("images", "ego_pose", "extrinsics", "intrinsics", "lidar", "sky_masks"):
        (root / d).mkdir(parents=True)
    for c, v in t.cams.items():
        np.savetxt(root / "extrinsics" / f"{c - 1}.txt", v["extrinsic"])
        np.savetxt(root / "intrinsics" / f"{c - 1}.txt", v["intrinsic"])
    for s in range(len(t.timestamps)):
        np.savetxt(root / "ego_pose" / f"{s:03d}.txt", t.ego[s])
        for c in t.cams:
            (root / "images" / f"{s:03d}_{c - 1}.jpg").write_bytes(png_bytes(t.images[s][c]))  # decoder sniffs PNG
        pts_vehicle = np.array([[5.0, 1.0, 0.5], [10.0, -2.0, 1.0]]) + s
        cols = np.zeros((2, 14), np.float32)
        cols[:, 3:6] = pts_vehicle
        cols.tofile(root / "lidar" / f"{s:03d}.bin")
    sky = np.zeros((30, 40), np.uint8)
    sky[:5] = 255
    (root / "sky_masks" / "000_0.png").write_bytes(png_bytes(sky))


def test_drivestudio_geometry(tmp_path) -> None:
    t = make_waymo_truth()
    t.cam_pose = [{c: t.ego[s] for c in t.cams} for s in range(3)]  # drivestudio keeps only the frame pose
    write_drivestudio(t, tmp_path / "ds")
    scene = Scene.load(convert_drivestudio(tmp_path / "ds", tmp_path / "out").root)
    offset = np.array(scene.meta["world_offset_m"])
    rng = np.random.default_rng(5)
    for fr in scene.frames:
        cam = {"FRONT": 1, "SIDE_LEFT": 4}[fr.camera.name]
        for _ in range(5):
            p_cam = np.array([rng.uniform(5, 30), rng.uniform(-3, 3), rng.uniform(-2, 2), 1.0])
            X = (t.ego[fr.index] @ t.cams[cam]["extrinsic"] @ p_cam)[:3]
            u0, v0, _ = waymo_project(t, fr.index, cam, X)
            u1, v1, _ = recon_project(fr, X - offset)
            assert abs(u0 - u1) < 1e-6 and abs(v0 - v1) < 1e-6
    lidar = scene.frame("FRONT_00002").load_lidar().astype(np.float64)
    exp = (t.ego[2][:3, :3] @ (np.array([[5.0, 1.0, 0.5], [10.0, -2.0, 1.0]]) + 2).T).T + t.ego[2][:3, 3] - offset
    assert np.abs(lidar - exp).max() < 1e-3
    sky = scene.frame("FRONT_00000").load_sky_mask()
    assert sky[:5].all() and not sky[5:].any() and scene.frame("FRONT_00001").sky_mask_path is None
