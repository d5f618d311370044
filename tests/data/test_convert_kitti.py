"""KITTI odometry -> recon scene: stereo geometry against the P matrices, real excerpt."""

from __future__ import annotations

import numpy as np
import pytest
from support.convert_data import recon_project, write_kitti
from support.shared import shared_data

from recon.data.convert.common import ConvertOptions
from recon.data.convert.kitti import KITTI_PIXEL_PITCH_MM, convert_kitti
from recon.data.scene import Scene


def test_stereo_projection_matches_kitti_P(tmp_path) -> None:
    P, poses = write_kitti(tmp_path / "seq")
    scene = Scene.load(convert_kitti(tmp_path / "seq", tmp_path / "out").root)
    assert set(scene.cameras) == {"cam0", "cam1"} and len(scene.frames) == 8
    assert scene.cameras["cam0"].sensor_width_mm == pytest.approx(122 * KITTI_PIXEL_PITCH_MM)
    rng = np.random.default_rng(4)
    for fr in scene.frames:
        i, Pi = fr.index, P[int(fr.camera.name[3:])]
        for _ in range(5):
            X = (poses[i] @ np.array([*rng.uniform(-3, 3, 2), rng.uniform(4, 40), 1.0]))[:3]
            # KITTI: x_cam0 = pose^-1 X, pixel = Pi x_cam0 with pixel centres on integers -> +0.5 in recon
            x0 = np.linalg.inv(poses[i]) @ np.append(X, 1.0)
            uvw = Pi @ x0
            u1, v1, _ = recon_project(fr, X)
            assert abs(uvw[0] / uvw[2] + 0.5 - u1) < 1e-6 and abs(uvw[1] / uvw[2] + 0.5 - v1) < 1e-6
    c0, c1 = scene.frame("cam0_00002").center, scene.frame("cam1_00002").center
    assert np.linalg.norm(c1 - c0) == pytest.approx(0.54, abs=1e-9)


def test_real_kitti_excerpt(tmp_path) -> None:
    src = shared_data("kitti_odometry_seq1")
    scene = Scene.load(convert_kitti(src, tmp_path / "out", ConvertOptions(end=10, downscale=2.0)).root)
    assert len(scene.frames) == 10 and [f.split for f in scene.frames].count("test") == 1
    cam = scene.cameras["cam0"]
    assert (cam.width, cam.height) == (613, 185) and cam.fx == pytest.approx(707.0912 / 2, rel=1e-3)
    assert scene.frames[0].load_image().shape == (185, 613, 3)
    # the car drives forward (+z of camera 0) about 1.2 m per frame in this excerpt
    step = np.linalg.norm(scene.frames[1].center - scene.frames[0].center)
    print(f"kitti excerpt: {len(scene.frames)} frames, first step {step:.3f} m")
    assert 0.5 < step < 3.0


def test_bad_pose_and_time_lines_are_one_line_errors(tmp_path, capsys) -> None:
    from recon.cli import main as recon_main

    write_kitti(tmp_path / "seq")
    poses = (tmp_path / "seq" / "poses.txt").read_text().splitlines()
    bad = poses[1].split()
    bad[3] = "nan"
    (tmp_path / "seq" / "poses.txt").write_text("\n".join([poses[0], " ".join(bad), *poses[2:]]) + "\n")
    rc = recon_main(["data", "convert", "--from", "kitti", str(tmp_path / "seq"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"error: {tmp_path / 'seq' / 'poses.txt'}: line 2 (pose) holds a non-finite number "
                               "(nan or inf)"]
    (tmp_path / "seq" / "poses.txt").write_text("\n".join(poses) + "\n")
    (tmp_path / "seq" / "times.txt").write_text("0.0\nabc\n0.2\n0.3\n")
    rc = recon_main(["data", "convert", "--from", "kitti", str(tmp_path / "seq"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"error: {tmp_path / 'seq' / 'times.txt'}: line 2 is not a number of seconds"]
    assert not (tmp_path / "o").exists()


def test_fewer_poses_than_images_is_said_not_silent(tmp_path, capsys) -> None:
    write_kitti(tmp_path / "seq", n=4)
    lines = (tmp_path / "seq" / "poses.txt").read_text().splitlines()
    (tmp_path / "seq" / "poses.txt").write_text("\n".join(lines[:3]) + "\n")
    scene = Scene.load(convert_kitti(tmp_path / "seq", tmp_path / "out").root)
    err = capsys.readouterr().err
    assert len(scene.frames) == 6 and "3 poses for 4 images in image_0: converting the first 3 frames" in err
