"""Training never reads a held-out frame's LiDAR sweep; camera-only training reads none; invalid seeds refuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.training import tiny_cfg

import recon.data.scene as scene_mod
import recon.train.trainer as trainer_mod
from recon.cli import main as recon_main
from recon.data.scene import Scene
from recon.errors import ReconError
from recon.run.folder import prepare_run_folder
from recon.run.training import train_run
from recon.train.trainer import Trainer


def _record_lidar_reads(monkeypatch) -> list[Path]:
    """Paths of point files read after the up-front decode check (which reads every file once, by design)."""
    seen: list[Path] = []
    armed = {"on": False}
    real_load, real_check = scene_mod.load_points, trainer_mod.check_scene_files

    def load(path):
        if armed["on"]:
            seen.append(Path(path).resolve())
        return real_load(path)

    def check(scene):
        real_check(scene)
        armed["on"] = True

    monkeypatch.setattr(scene_mod, "load_points", load)
    monkeypatch.setattr("recon.model.init_points.load_points", load)
    monkeypatch.setattr(trainer_mod, "check_scene_files", check)
    return seen


@pytest.mark.parametrize("extra", [("lidar",), ("dof", "--loss.dof-prior", "lidar", "--init.far-from-prior")])
def test_held_out_sweeps_never_reach_training(tiny_street, tmp_path, monkeypatch, extra) -> None:
    held = {f.lidar_path.resolve() for f in tiny_street.test_frames if f.lidar_path is not None}
    assert held
    seen = _record_lidar_reads(monkeypatch)
    cfg = tiny_cfg(tiny_street.root, tmp_path / "run", *extra, "--iters", "3", "--checkpoint-every", "0")
    prepare_run_folder(cfg)
    tr = Trainer(cfg)
    train_run(tr, progress=False)
    assert tr.init_source == "lidar" and seen and not set(seen) & held


def test_camera_only_reads_no_lidar_and_eval_still_scores_against_it(tiny_street, tmp_path, monkeypatch
                                                                      ) -> None:
    scene_dir = tmp_path / "scene"
    shutil.copytree(tiny_street.root, scene_dir)
    sj = scene_dir / "scene.json"
    d = json.loads(sj.read_text())
    for f in d["frames"]:
        f.pop("depth", None)  # no dense truth: eval falls back to the held-out LiDAR
    sj.write_text(json.dumps(d))
    seen = _record_lidar_reads(monkeypatch)
    cfg = tiny_cfg(scene_dir, tmp_path / "run", "--no-use-lidar", "--init.source", "random", "--iters", "3",
                   "--checkpoint-every", "0")
    prepare_run_folder(cfg)
    tr = Trainer(cfg)
    train_run(tr, progress=False)
    assert not seen and not tr.scene.has_lidar()
    from recon.eval.evaluate import evaluate_run

    m = evaluate_run(tmp_path / "run", trainer=tr, write_outputs=False, progress=False)
    assert m["depth_reference"] == "lidar" and m["depth"]["overall"]["n"] > 0
    assert 0 < m["depth"]["overall"]["coverage"] < 1
    assert set(m["per_camera"]) == {f.camera.name for f in Scene.load(scene_dir).test_frames}


@pytest.mark.parametrize("what", ["lidar", "sfm"])
def test_seeds_all_invalid_refuse_and_mostly_invalid_warn(tiny_street, tmp_path, capsys, what) -> None:
    scene_dir = tmp_path / "scene"
    shutil.copytree(tiny_street.root, scene_dir)
    scene = Scene.load(scene_dir)
    if what == "lidar":
        files = scene.lidar_sweeps()
    else:
        pts = np.random.default_rng(0).uniform(-5, 5, (400, 6)).astype(np.float32)
        np.save(scene_dir / "points3d.npy", pts)
        d = json.loads((scene_dir / "scene.json").read_text())
        d["points3d"] = "points3d.npy"
        (scene_dir / "scene.json").write_text(json.dumps(d))
        files = [scene_dir / "points3d.npy"]
    originals = {p: np.load(p) for p in files}
    for p, a in originals.items():
        np.save(p, np.full_like(a, np.nan))
    out = tmp_path / "run"
    rc = recon_main(["train", "--data", str(scene_dir), "--out", str(out), "--iters", "2", "--init.source", what,
                     "--no-eval-at-end"])
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]  # (bars aside)
    assert rc == 2 and len(errors) == 1 and "no valid seed point" in errors[0], errors
    assert not (out / "checkpoints").exists()
    for p, a in originals.items():  # two thirds of each file broken: a warning, and training starts
        b = a.copy()
        b[: len(a) * 2 // 3] = np.nan
        np.save(p, b)
    cfg = tiny_cfg(scene_dir, tmp_path / "run2", "--init.source", what, "--iters", "1")
    prepare_run_folder(cfg)
    with pytest.warns(UserWarning, match="points are finite and in range"):
        tr = Trainer(cfg)
    assert tr.init_source == what
    from recon.model.init_points import load_seed_points

    with pytest.raises(ReconError, match="no valid seed point"):
        np.save(files[0], np.full_like(originals[files[0]], np.inf))
        load_seed_points([files[0]], what)
