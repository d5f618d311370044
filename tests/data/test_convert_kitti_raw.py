"""KITTI raw -> recon scene: the devkit's geometry on a made-up drive, the real drive's LiDAR on its image edges,
held-out LiDAR kept out of training, and one-line errors for broken drives."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from support.convert_data import png_bytes, recon_project
from support.shared import shared_data

from recon.cli import main as recon_main
from recon.data.convert.common import ConvertOptions, rpy_to_matrix
from recon.data.convert.kitti import convert_kitti
from recon.data.convert.kitti_raw import EARTH_RADIUS_M, convert_kitti_raw, oxts_poses, scan_times
from recon.data.projection import project_points, zbuffer_depth
from recon.data.scene import Scene
from recon.data.splits import training_scene
from recon.errors import ReconError

P2 = np.array([[700.0, 0, 60.5, 44.0], [0, 700.0, 18.25, 0.2], [0, 0, 1, 0.003]])
P3 = np.array([[700.0, 0, 60.5, -340.0], [0, 700.0, 18.25, 2.2], [0, 0, 1, 0.003]])
R_RECT = rpy_to_matrix(np.array(0.004), np.array(-0.003), np.array(0.01))
R_VC = np.array([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]])  # Velodyne (x fwd, y left, z up) -> camera axes
T_VC = np.array([-0.004, -0.076, -0.27])
R_IV, T_IV = rpy_to_matrix(np.array(0.001), np.array(0.015), np.array(0.0008)), np.array([-0.81, 0.32, -0.8])


def _fmt(a: np.ndarray) -> str:
    return " ".join(f"{x:.12e}" for x in np.asarray(a).ravel())


def _stamp(t: float) -> str:
    whole = int(t)
    return f"2011-09-26 13:08:{whole:02d}.{round((t - whole) * 1e9):09d}"


def write_drive(root: Path, n: int = 4, lat0: float = 49.0, synced: bool = False) -> tuple[Path, np.ndarray]:
    """A tiny KITTI raw drive in the original layout; returns (drive folder, oxts rows). ``synced``: every sensor
    stamped at the same instant (else a few milliseconds apart, as on the real car)."""
    date = root / "2011_09_26"
    drive = date / "2011_09_26_drive_0001_sync"
    date.mkdir(parents=True)
    (date / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n" + f"R_rect_00: {_fmt(R_RECT)}\n"
        + f"P_rect_02: {_fmt(P2)}\nP_rect_03: {_fmt(P3)}\n")
    (date / "calib_velo_to_cam.txt").write_text(f"calib_time: x\nR: {_fmt(R_VC)}\nT: {_fmt(T_VC)}\n")
    (date / "calib_imu_to_velo.txt").write_text(f"calib_time: x\nR: {_fmt(R_IV)}\nT: {_fmt(T_IV)}\n")
    rng = np.random.default_rng(0)
    oxts = np.zeros((n, 30))
    oxts[:, 0] = lat0 + 1e-5 * np.arange(n)  # heading north-east, turning slowly
    oxts[:, 1] = 8.4 + 1.2e-5 * np.arange(n)
    oxts[:, 2] = 114.0 + 0.05 * np.arange(n)
    oxts[:, 3:6] = np.stack([0.01 * np.arange(n), -0.02 + 0.005 * np.arange(n), 0.3 + 0.02 * np.arange(n)], 1)
    times = 24.5 + 0.1 * np.arange(n)
    for sub in ("image_02", "image_03", "oxts", "velodyne_points"):
        (drive / sub / "data").mkdir(parents=True)
        off = 0.0 if synced else {"image_02": 0.01, "image_03": 0.0102, "oxts": 0.012, "velodyne_points": 0.0}[sub]
        (drive / sub / "timestamps.txt").write_text("".join(_stamp(t + off) + "\n" for t in times))
    for i in range(n):
        for sub in ("image_02", "image_03"):
            img = rng.integers(0, 255, (37, 122, 3), dtype=np.uint8)
            (drive / sub / "data" / f"{i:010d}.png").write_bytes(png_bytes(img))
        (drive / "oxts" / "data" / f"{i:010d}.txt").write_text(" ".join(f"{x:.12g}" for x in oxts[i]) + "\n")
        pts = np.concatenate([rng.uniform([2, -10, -2], [60, 10, 4], (200, 3)), rng.uniform(0, 1, (200, 1))], 1)
        pts.astype("<f4").tofile(drive / "velodyne_points" / "data" / f"{i:010d}.bin")
    return drive, oxts


def test_oxts_pose_follows_the_devkit_mercator_recipe() -> None:
    rows = np.zeros((2, 30))
    rows[:, 0], rows[:, 1], rows[:, 2] = [49.0, 49.001], [8.4, 8.4015], [110.0, 111.5]
    rows[1, 3:6] = [0.1, -0.2, 1.3]
    T = oxts_poses(rows)
    s = math.cos(math.radians(49.0))
    mx = s * 8.4015 * math.pi * EARTH_RADIUS_M / 180
    my = s * EARTH_RADIUS_M * math.log(math.tan(math.radians(90 + 49.001) / 2))
    assert np.allclose(T[1, :3, 3], [mx, my, 111.5])
    cr, sr, cp, sp, cy, sy = (math.cos(0.1), math.sin(0.1), math.cos(-0.2), math.sin(-0.2), math.cos(1.3),
                              math.sin(1.3))
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    assert np.allclose(T[1, :3, :3], Rz @ Ry @ Rx)
    # near the first row's latitude the scaled Mercator is locally metric: 0.001 degrees north is about 111.3 m,
    # 0.0015 degrees east about 0.0015 * 111.3 km * cos(49 degrees)
    deg = math.pi * EARTH_RADIUS_M / 180
    assert np.linalg.norm(T[1, :2, 3] - T[0, :2, 3]) == pytest.approx(math.hypot(0.001 * deg, 0.0015 * deg * s),
                                                                        rel=0.005)


def test_velodyne_point_lands_where_the_devkit_projects_it(tmp_path) -> None:
    drive, oxts = write_drive(tmp_path, synced=True)
    scene = Scene.load(convert_kitti_raw(drive, tmp_path / "out").root)
    assert set(scene.cameras) == {"cam2", "cam3"} and len(scene.frames) == 8 and len(scene.lidar_sweeps()) == 4
    T_cam0_velo = np.eye(4)
    T_cam0_velo[:3, :3], T_cam0_velo[:3, 3] = R_VC, T_VC
    R_rect = np.eye(4)
    R_rect[:3, :3] = R_RECT
    for fr in scene.frames:
        k, P = fr.index, (P2 if fr.camera.name == "cam2" else P3)
        raw = np.fromfile(drive / "velodyne_points" / "data" / f"{k:010d}.bin", "<f4").reshape(-1, 4)[:, :3]
        world = np.load(fr.lidar_path)
        # the point straight ahead of the sensor is measured at the image's instant (de-skewing leaves it in
        # place): the devkit's projection P_rect R_rect T_cam0_velo x, pixel centres on integers -> +0.5 in recon
        i = int(np.argmin(np.abs(np.arctan2(raw[:, 1], raw[:, 0]))))
        uvw = P @ R_rect @ T_cam0_velo @ np.append(raw[i], 1.0)
        u, v, _ = recon_project(fr, world[i])
        assert abs(uvw[0] / uvw[2] + 0.5 - u) < 0.05 and abs(uvw[1] / uvw[2] + 0.5 - v) < 0.05
    c2, c3 = scene.frame("cam2_00001"), scene.frame("cam3_00001")
    rel = np.linalg.inv(c2.cam2world) @ c3.cam2world
    # camera i sits at -K^-1 P_rect_0i[:, 3] in rectified camera-0 coordinates
    expected = np.linalg.solve(P2[:, :3], P2[:, 3]) - np.linalg.solve(P3[:, :3], P3[:, 3])
    assert np.allclose(rel[:3, 3], expected, atol=2e-3) and np.allclose(rel[:3, :3], np.eye(3), atol=1e-6)
    assert np.allclose(scene.frame("cam2_00000").cam2world, np.eye(4), atol=1e-9)  # world = first cam2 view


def test_scan_times_run_clockwise_through_the_forward_instant() -> None:
    pts = np.array([[10.0, 0, 0], [0, 10, 0], [0, -10, 0]])  # forward, left, right
    t = scan_times(pts, 5.0)
    assert t[0] == pytest.approx(5.0) and t[1] == pytest.approx(5.0 - 0.025) and t[2] == pytest.approx(5.025)


@pytest.mark.parametrize("case", ["missing_calib", "oxts_values", "sweep_bytes", "frame_count", "out_of_sync",
                                  "bad_timestamp"])
def test_broken_drive_is_one_line_error_and_writes_nothing(tmp_path, capsys, case) -> None:
    drive, _ = write_drive(tmp_path)
    date = drive.parent
    expect = {
        "missing_calib": str(date / "calib_velo_to_cam.txt"),
        "oxts_values": str(drive / "oxts" / "data" / "0000000002.txt"),
        "sweep_bytes": str(drive / "velodyne_points" / "data" / "0000000001.bin"),
        "frame_count": str(drive / "image_03" / "data"),
        "out_of_sync": str(drive / "velodyne_points" / "timestamps.txt"),
        "bad_timestamp": str(drive / "image_02" / "timestamps.txt"),
    }[case]
    if case == "missing_calib":
        (date / "calib_velo_to_cam.txt").unlink()
    elif case == "oxts_values":
        (drive / "oxts" / "data" / "0000000002.txt").write_text("49.0 8.4 114.0 0 0 0\n")
    elif case == "sweep_bytes":
        p = drive / "velodyne_points" / "data" / "0000000001.bin"
        p.write_bytes(p.read_bytes()[:-6])
    elif case == "frame_count":
        (drive / "image_03" / "data" / "0000000003.png").unlink()
    elif case == "out_of_sync":
        p = drive / "velodyne_points" / "timestamps.txt"
        lines = p.read_text().splitlines()
        lines[2] = _stamp(24.5 + 0.2 + 0.25)
        p.write_text("\n".join(lines) + "\n")
    elif case == "bad_timestamp":
        (drive / "image_02" / "timestamps.txt").write_text("noon\n" * 4)
    out = tmp_path / "out"
    rc = recon_main(["data", "convert", "--from", "kitti-raw", str(drive), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and expect in err, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_held_out_camera_keeps_lidar_only_where_no_training_frame_uses_the_sweep(tmp_path) -> None:
    drive, _ = write_drive(tmp_path, n=9)
    scene = Scene.load(convert_kitti_raw(drive, tmp_path / "out", ConvertOptions(holdout_cameras=("cam3",))).root)
    cam3 = [f for f in scene.frames if f.camera.name == "cam3"]
    assert all(f.split == "test" for f in cam3)
    train_sweeps = {f.lidar_path for f in scene.train_frames}
    assert all(f.lidar_path is None or f.lidar_path not in train_sweeps for f in scene.test_frames)
    # frame 4 is the held-out timestep: both cameras are test there and keep its sweep as depth truth
    assert scene.frame("cam3_00004").lidar_path is not None and scene.frame("cam3_00003").lidar_path is None
    with pytest.raises(ReconError, match="every camera held out"):
        convert_kitti_raw(drive, tmp_path / "out2", ConvertOptions(holdout_cameras=("cam2", "cam3")))


def test_training_scene_drops_every_held_out_sweep(tmp_path) -> None:
    drive, _ = write_drive(tmp_path, n=9)
    scene = Scene.load(convert_kitti_raw(drive, tmp_path / "out").root)
    # a hand-made scene may share a sweep between a training and a test frame: training must not see it either
    shared = scene.frame("cam2_00004").lidar_path
    scene.frame("cam2_00003").lidar_path = shared
    seen = training_scene(scene)
    held = {f.lidar_path for f in scene.test_frames}
    kept = {f.lidar_path for f in seen.frames if f.lidar_path is not None}
    assert kept and not kept & held and all(f.split == "train" for f in seen.frames if f.lidar_path is not None)
    assert not training_scene(scene, use_lidar=False).has_lidar()
    assert seen.fingerprint() == scene.fingerprint() and scene.frame("cam2_00004").lidar_path == shared


def test_kitti_odometry_velodyne_with_tr(tmp_path) -> None:
    from support.convert_data import write_kitti

    _, poses = write_kitti(tmp_path / "seq", n=3)
    Tr = np.eye(4)
    Tr[:3, :3], Tr[:3, 3] = R_VC, T_VC
    with (tmp_path / "seq" / "calib.txt").open("a") as f:
        f.write(f"Tr: {_fmt(Tr[:3])}\n")
    (tmp_path / "seq" / "velodyne").mkdir()
    rng = np.random.default_rng(1)
    sweeps = []
    for i in range(3):
        pts = np.concatenate([rng.uniform([2, -5, -1], [30, 5, 2], (50, 3)), np.ones((50, 1))], 1).astype("<f4")
        pts.tofile(tmp_path / "seq" / "velodyne" / f"{i:06d}.bin")
        sweeps.append(pts[:, :3].astype(np.float64))
    scene = Scene.load(convert_kitti(tmp_path / "seq", tmp_path / "out").root)
    for fr in scene.frames:
        expect = (poses[fr.index] @ Tr @ np.c_[sweeps[fr.index], np.ones(50)].T).T[:, :3]
        assert np.allclose(np.load(fr.lidar_path), expect, atol=1e-4)


@pytest.fixture(scope="module")
def real_drive(tmp_path_factory) -> Scene:
    src = shared_data("kitti_raw_0009") / "2011_09_26" / "2011_09_26_drive_0009_sync"
    out = tmp_path_factory.mktemp("kitti_raw") / "scene"
    return Scene.load(convert_kitti_raw(src, out, ConvertOptions(end=14, holdout_cameras=("cam3",))).root)


def _edge_score(frame, dx: int, dy: int) -> float:
    """Image gradient at the near side of each LiDAR depth discontinuity (a jump of > 25 % between points at
    most 4 px apart along a row), with the projection shifted by (dx, dy) pixels."""
    img = frame.load_image().mean(-1)
    g = np.hypot(ndimage.sobel(img, 0), ndimage.sobel(img, 1))
    cam = frame.camera
    rows, cols, z, _ = project_points(frame.load_lidar(), frame.cam2world, cam.K, cam.width, cam.height)
    d = zbuffer_depth(rows, cols, z, cam.width, cam.height)
    r_all, c_all = [], []
    for r in range(cam.height):
        cs = np.nonzero(d[r] > 0)[0]
        if len(cs) < 2:
            continue
        zz = d[r, cs]
        jump = np.abs(np.diff(zz)) / np.minimum(zz[1:], zz[:-1])
        for i in np.nonzero((np.diff(cs) <= 4) & (jump > 0.25))[0]:
            r_all.append(r)
            c_all.append(cs[i] if zz[i] < zz[i + 1] else cs[i + 1])
    r_, c_ = np.array(r_all) + dy, np.array(c_all) + dx
    ok = (r_ >= 0) & (r_ < cam.height) & (c_ >= 0) & (c_ < cam.width)
    return float(g[r_[ok], c_[ok]].mean())


@pytest.mark.slow
def test_real_drive_lidar_lands_on_image_edges(real_drive) -> None:
    frames = [f for f in real_drive.frames if f.lidar_path is not None][::2]
    shifts = [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]
    score = {s: np.mean([_edge_score(f, *s) for f in frames]) for s in shifts}
    print("kitti raw edge agreement (image gradient at LiDAR depth edges) by shift:",
          {k: round(v, 4) for k, v in score.items()})
    assert all(score[(0, 0)] > score[s] for s in shifts[1:]), score


@pytest.mark.slow
def test_real_drive_geometry(real_drive) -> None:
    c2, c3 = real_drive.frame("cam2_00010"), real_drive.frame("cam3_00010")
    rel = np.linalg.inv(c2.cam2world) @ c3.cam2world
    assert rel[0, 3] == pytest.approx(0.54, abs=0.015) and abs(rel[1, 3]) < 0.01 and abs(rel[2, 3]) < 0.01
    step = np.linalg.norm(real_drive.frame("cam2_00011").center - real_drive.frame("cam2_00010").center)
    assert 0.8 < step < 1.4  # about 11 m/s at 10 Hz on this drive
    assert real_drive.frame("cam2_00000").cam2world[:3, 3] == pytest.approx(np.zeros(3), abs=1e-9)
    # the car drives along the camera's +z; gravity (down) is the camera's +y within a few degrees
    fwd = real_drive.frame("cam2_00013").center - real_drive.frame("cam2_00000").center
    assert fwd[2] / np.linalg.norm(fwd) > 0.98
    cam3_test = [f for f in real_drive.frames if f.camera.name == "cam3"]
    assert all(f.split == "test" for f in cam3_test)
    assert sum(f.lidar_path is not None for f in cam3_test) == sum(
        f.split == "test" for f in real_drive.frames if f.camera.name == "cam2")


def test_copying_a_drive_without_image_03_converts_one_camera(tmp_path) -> None:
    drive, _ = write_drive(tmp_path)
    shutil.rmtree(drive / "image_03")
    scene = Scene.load(convert_kitti_raw(drive, tmp_path / "out").root)
    assert set(scene.cameras) == {"cam2"} and len(scene.frames) == 4
