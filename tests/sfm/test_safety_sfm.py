"""`recon sfm` on hostile input: identical poses say so, poses the matches disagree with are named in a warning, a
full disk is one line that keeps the scene as it was, and what a killed run left in the scene is cleaned."""

from __future__ import annotations

import errno
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.safety import error_line, recon, sha256, tree_hashes  # noqa: E402


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One front camera, 8 frames at 160x96, no LiDAR entries needed."""
    from recon.data.synth import SynthConfig, make_street

    out = tmp_path_factory.mktemp("safety_sfm") / "street"
    make_street(SynthConfig(seed=0, width=160, height=96, n_frames=8, cameras=("front",), defocus_frames=0), out)
    return out


def _sfm(capsys, scene: Path, *extra: str) -> tuple[int, str]:
    return recon(capsys, "sfm", "--data", scene, "--matcher", "sift", "--min-points", "1", *extra)


def test_identical_poses_say_so_and_leftovers_are_cleaned(street: Path, tmp_path: Path, capsys) -> None:
    s = shutil.copytree(street, tmp_path / "s")
    raw = json.loads((s / "scene.json").read_text())
    for fr in raw["frames"]:
        fr["cam2world"] = raw["frames"][0]["cam2world"]
    (s / "scene.json").write_text(json.dumps(raw))
    partial = s / "sfm" / ".colmap.abcd1234.partial"
    partial.mkdir(parents=True)
    (partial / "database.db").write_bytes(b"half a database")
    (s / ".points3d.npy.abcd1234.tmp").write_bytes(b"half an array")
    (s / "sfm" / "notes.txt").write_text("mine")
    rc, err = _sfm(capsys, s)
    n = sum(f["split"] == "train" for f in raw["frames"])
    assert rc == 2 and err == (f"error: {s}: all {n} frames have the same camera centre (identical poses?): SfM needs "
                               "the camera to move between frames; nothing to triangulate\n")
    assert not partial.exists() and not (s / ".points3d.npy.abcd1234.tmp").exists()
    assert (s / "sfm" / "notes.txt").read_text() == "mine"


def _yawed(c2w: list, deg: float) -> list:
    a = math.radians(deg)
    rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    m = np.array(c2w)
    m[:3, :3] = m[:3, :3] @ rot
    return m.tolist()


def test_disk_full_then_true_poses_then_wrong_poses(street: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import recon.sfm.pipeline as pipeline

    s = shutil.copytree(street, tmp_path / "s")
    scene_json = sha256(s / "scene.json")

    def full(path, array):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with monkeypatch.context() as m:  # the disk fills up as the points are written
        m.setattr(pipeline, "atomic_save_npy", full)
        rc, err = _sfm(capsys, s)
    assert rc == 2 and error_line(err) == (
        f"error: {s}: no space left on the device (nothing half-written is kept: outputs are written atomically); "
        "free some space and run again")
    assert sha256(s / "scene.json") == scene_json and not (s / "points3d.npy").exists()

    rc, err = _sfm(capsys, s)  # the true poses (matches now cached): no warning
    assert rc == 0 and "warning" not in err
    report = json.loads((s / "sfm" / "report.json").read_text())
    assert report["pose_warning"] is None and all(p["epipolar"] >= 0.5 * p["matches"] for p in report["per_pair"])

    raw = json.loads((s / "scene.json").read_text())
    train = [f for f in raw["frames"] if f["split"] == "train"]
    for f in train[1::2]:
        f["cam2world"] = _yawed(f["cam2world"], 3.0)  # every other pose off by 3 degrees
    (s / "scene.json").write_text(json.dumps(raw))
    before = tree_hashes(s / "images")
    rc, err = _sfm(capsys, s, "--overwrite")
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1 and "matched pairs disagree with the scene's poses" in warnings[0], err
    assert f"{train[0]['id']}-{train[1]['id']} (" in warnings[0]
    assert "wrong poses or wrong intrinsics?" in warnings[0]
    assert tree_hashes(s / "images") == before


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--max-epipolar-px", "nan", "--max-epipolar-px must be a positive number of pixels, got nan"),
    ("--max-reproj-px", "-1", "--max-reproj-px must be a positive number of pixels, got -1.0"),
    ("--min-angle-deg", "inf", "--min-angle-deg must be in [0, 90) degrees, got inf"),
    ("--min-points", "0", "--min-points must be at least 1, got 0"),
])
def test_meaningless_sfm_options_are_one_line(street: Path, flag: str, value: str, message: str, capsys) -> None:
    before = tree_hashes(street)
    rc, err = recon(capsys, "sfm", "--data", street, "--matcher", "sift", flag, value)
    assert rc == 2 and err == f"error: {message}\n" and tree_hashes(street) == before
