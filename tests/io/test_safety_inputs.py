"""Hostile scene files: every bad field of scene.json, every path escape and every unreadable point file is one
line naming the file and the field (exit 2), never a traceback, a silent success or a read outside the scene."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.safety import make_micro_scene, recon, tree_hashes  # noqa: E402


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_scene(tmp_path_factory.mktemp("inputs") / "scene")


def _edited(micro: Path, dest: Path, edit) -> Path:
    """A copy of the micro scene whose scene.json is ``edit(dict)`` (written as Python's JSON writes NaN)."""
    import shutil

    shutil.copytree(micro, dest, symlinks=True)
    doc = json.loads((dest / "scene.json").read_text())
    edit(doc)
    (dest / "scene.json").write_text(json.dumps(doc))
    return dest


def _set(*keys: Any, value: Any):
    def edit(doc: dict) -> None:
        d = doc
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


def _c2w(value: list) -> Any:
    return _set("frames", 1, "cam2world", value=value)


_last_row = np.eye(4)
_last_row[3, 3] = 5.0
_far = np.eye(4)
_far[0, 3] = 1e300

CASES = [
    ("timestamp noon", _set("frames", 1, "timestamp", value="noon"),
     "frame '001': timestamp must be a number, got 'noon'"),
    ("index list", _set("frames", 1, "index", value=[1]), "frame '001': index must be a whole number, got [1]"),
    ("camera list", _set("frames", 1, "camera", value=["front"]),
     "frame '001': unknown camera ['front'] (cameras: front)"),
    ("meta string", _set("meta", value="x"), "'meta' must be an object, got 'x'"),
    ("defocus number", _set("defocus", value=5), "'defocus' must be a list of objects, got 5"),
    ("translation 1e300", _c2w(_far.tolist()),
     "frame '001': cam2world translation 1e+300 m is farther than 1e+06 m from the origin (float32 positions lose "
     "centimetre precision; recentre the scene)"),
    ("cam2world last row", _c2w(_last_row.tolist()),
     "frame '001': cam2world's last row must be [0, 0, 0, 1], got [0.0, 0.0, 0.0, 5.0]"),
    ("fx Infinity", _set("cameras", "front", "fx", value=float("inf")),
     "camera 'front': fx must be a finite number, got inf"),
    ("cx NaN", _set("cameras", "front", "cx", value=float("nan")),
     "camera 'front': cx must be a finite number, got nan"),
    ("fy zero", _set("cameras", "front", "fy", value=0), "camera 'front': fy must be positive, got 0"),
    ("width fractional", _set("cameras", "front", "width", value=8.5),
     "camera 'front': width must be a whole number, got 8.5"),
    ("width string", _set("cameras", "front", "width", value="8"),
     "camera 'front': width must be a whole number, got '8'"),
    ("f_number true", _set("cameras", "front", "f_number", value=True),
     "camera 'front': f_number must be a number, got True"),
    ("focus NaN", _set("cameras", "front", "focus_distance_m", value=float("nan")),
     "camera 'front': focus_distance_m must be a finite number, got nan"),
    ("camera missing cy", lambda d: d["cameras"]["front"].pop("cy"), "camera 'front': missing field 'cy'"),
    ("defocus f_number NaN", _set("defocus", 0, "f_number", value=float("nan")),
     "defocus entry 0: f_number must be a finite number, got nan"),
    ("defocus frame list", _set("defocus", 0, "frame", value=["000"]), "defocus entry 0: unknown frame ['000']"),
    ("frame id escapes", _set("frames", 1, "id", value="../../x"),
     "frame 1: id '../../x' cannot be a file name (no '/', '\\' or NUL, no leading '.', at most 200 characters)"),
    ("frame id null", _set("frames", 1, "id", value=None), "frame 1: id must be a non-empty string, got None"),
    ("name number", _set("name", value=5), "'name' must be a string, got 5"),
]


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_scene_field_is_one_line(micro: Path, tmp_path: Path, edit, message: str, capsys) -> None:
    s = _edited(micro, tmp_path / "s", edit)
    rc, err = recon(capsys, "data", "info", s)
    assert rc == 2 and err == f"error: {s / 'scene.json'}: {message}\n"


def test_fx_infinity_does_not_train(micro: Path, tmp_path: Path, capsys) -> None:
    s = _edited(micro, tmp_path / "s", _set("cameras", "front", "fx", value=float("inf")))
    before = tree_hashes(s)
    rc, err = recon(capsys, "train", "--data", s, "--out", tmp_path / "run", "--iters", "2", "--no-eval-at-end")
    assert rc == 2 and err == f"error: {s / 'scene.json'}: camera 'front': fx must be a finite number, got inf\n"
    assert not (tmp_path / "run" / "config.json").exists() and tree_hashes(s) == before


@pytest.mark.parametrize("key", ["points3d", "defocus image"])
@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/passwd", "/nonexistent/x.npy"])
def test_scene_wide_paths_must_stay_inside(micro: Path, tmp_path: Path, key: str, target: str, capsys) -> None:
    edit = _set("points3d", value=target) if key == "points3d" else _set("defocus", 0, "image", value=target)
    what = "points3d" if key == "points3d" else "defocus entry 0 image"
    s = _edited(micro, tmp_path / "s", edit)
    rc, err = recon(capsys, "data", "info", s)
    assert rc == 2 and err == (f"error: {s / 'scene.json'}: {what}: path {target!r} leaves the scene folder (paths "
                               "in scene.json must be relative and stay inside it)\n")


def test_symlink_out_of_the_scene_is_refused_alike_whether_or_not_its_target_exists(micro: Path, tmp_path: Path,
                                                                                   capsys) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "real.npy").write_bytes((micro / "lidar" / "000.npy").read_bytes())
    errs = []
    for name in ("real.npy", "ghost.npy"):
        s = _edited(micro, tmp_path / f"s_{name}", _set("frames", 0, "lidar", value="lidar/link.npy"))
        os.symlink(outside / name, s / "lidar" / "link.npy")
        rc, err = recon(capsys, "data", "info", s, "--deep")
        assert rc == 2
        errs.append(err.replace(str(s), "SCENE"))
    assert errs[0] == errs[1] == ("error: SCENE/scene.json: frame '000' lidar: path 'lidar/link.npy' leaves the scene "
                                  "folder (paths in scene.json must be relative and stay inside it)\n")


def test_symlink_inside_the_scene_is_fine(micro: Path, tmp_path: Path, capsys) -> None:
    s = _edited(micro, tmp_path / "s", _set("frames", 0, "depth", value="depth/link.npy"))
    os.symlink("001.npy", s / "depth" / "link.npy")
    rc, err = recon(capsys, "data", "info", s, "--deep")
    assert rc == 0 and err == ""


def test_lidar_points_at_1e30_are_dropped_like_missing_returns(micro: Path, tmp_path: Path) -> None:
    from recon.data.scene import load_points

    p = tmp_path / "sweep.npy"
    pts = np.random.default_rng(0).uniform(-5, 5, (100, 4)).astype(np.float32)
    pts[:30, :3] = 1e30
    pts[30:35, 1] = np.nan
    np.save(p, pts)
    out = load_points(p)
    assert out.shape == (65, 4) and np.array_equal(out, pts[35:])


def test_train_with_lidar_points_at_1e30_is_not_a_traceback(tmp_path: Path, capsys) -> None:
    """Half of every sweep at 1e30 (open3d used to fail with "voxel_size is too small"): those points are dropped."""
    from support.safety import TINY_TRAIN, make_tiny_scene

    s = make_tiny_scene(tmp_path / "street")
    for p in sorted((s / "lidar").glob("*.npy")):
        pts = np.load(p)
        pts[: len(pts) // 2, :3] = 1e30
        np.save(p, pts)
    rc, err = recon(capsys, "train", "--data", s, "--out", tmp_path / "run", "lidar", *TINY_TRAIN)
    assert rc == 0 and "Traceback" not in err


@pytest.mark.parametrize(("array", "problem"), [
    (np.array([["a", "b", "c"]] * 4), "point array holds <U1 values, not real numbers"),
    (np.ones((4, 3), bool), "point array holds bool values, not real numbers"),
    (np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")]), "point array holds [('x', '<f4'), ('y', '<f4'), "
                                                                   "('z', '<f4')] values, not real numbers"),
    (np.zeros((4, 2), np.float32), "expected an (N, 3+) point array, got shape (4, 2)"),
])
def test_points3d_of_the_wrong_kind_is_one_line(micro: Path, tmp_path: Path, array: np.ndarray, problem: str,
                                                capsys) -> None:
    s = _edited(micro, tmp_path / "s", lambda d: None)
    np.save(s / "points3d.npy", array)
    rc, err = recon(capsys, "data", "info", s, "--deep")
    assert rc == 2 and err == f"error: {s / 'points3d.npy'}: {problem}\n"


def _binary_colmap(root: Path) -> Path:
    """A 3-image COLMAP project whose model is binary (cameras.bin, images.bin, points3D.bin)."""
    import pycolmap
    from support.convert_data import write_colmap_text

    write_colmap_text(root)
    sparse = root / "sparse" / "0"
    rec = pycolmap.Reconstruction(str(sparse))
    for p in sparse.glob("*.txt"):
        p.unlink()
    rec.write_binary(str(sparse))
    return sparse


@pytest.mark.parametrize(("name", "cut", "problem"), [
    ("cameras.bin", 4, "truncated COLMAP cameras.bin: the file ends inside camera 1 of 1 ({size} bytes)"),
    ("images.bin", 10, "truncated COLMAP images.bin: the file ends inside image 3 of 3 ({size} bytes)"),
    ("images.bin", 40, "truncated COLMAP images.bin: its {size} bytes cannot hold the 3 images its header announces"),
    ("points3D.bin", 5, "truncated COLMAP points3D.bin: its {size} bytes cannot hold the 2 points its header "
                        "announces"),
    ("cameras.bin", -2, "not a valid COLMAP cameras.bin: 2 bytes after the last camera"),
])
def test_truncated_colmap_binary_model_is_named(tmp_path: Path, name: str, cut: int, problem: str, capsys) -> None:
    sparse = _binary_colmap(tmp_path / "proj")
    p = sparse / name
    data = p.read_bytes()
    p.write_bytes(data[:-cut] if cut > 0 else data + b"\0" * -cut)
    rc, err = recon(capsys, "data", "convert", "--from", "colmap", tmp_path / "proj", "--out", tmp_path / "out")
    assert rc == 2 and err == f"error: {p}: {problem.format(size=p.stat().st_size)}\n"
    assert not (tmp_path / "out").exists()


def test_binary_colmap_model_still_converts(tmp_path: Path, capsys) -> None:
    _binary_colmap(tmp_path / "proj")
    rc, err = recon(capsys, "data", "convert", "--from", "colmap", tmp_path / "proj", "--out", tmp_path / "out")
    assert rc == 0 and len(json.loads((tmp_path / "out" / "scene.json").read_text())["frames"]) == 3
