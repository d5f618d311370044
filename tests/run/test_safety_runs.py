"""Runs and what reads them: eval refuses a run config without its scene and a checkpoint of another run (SH degree,
config), a full disk during train or synth is one line that keeps the previous output, and the viewer checks its
port and drops non-finite Gaussians with a count."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from support.safety import (  # noqa: E402
    TINY_TRAIN,
    copy_tree,
    error_line,
    make_tiny_scene,
    recon,
    train_tiny_run,
    tree_hashes,
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_scene(tmp_path_factory.mktemp("safety_runs") / "street")


@pytest.fixture(scope="module")
def trained(scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(scene, tmp_path_factory.mktemp("safety_runs") / "run")


def test_eval_of_a_config_without_data_is_one_line(trained: Path, tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    del cfg["data"]
    (run / "config.json").write_text(json.dumps(cfg))
    before = tree_hashes(run)
    rc, err = recon(capsys, "eval", run)
    assert rc == 2 and err == (f"error: {run / 'config.json'}: no \"data\" entry naming the scene folder (not a run "
                               "config written by `recon train`)\n")
    assert tree_hashes(run) == before


def _edit_checkpoint(run: Path, edit) -> Path:
    path = run / "checkpoints" / "ckpt_000004.pt"
    state = torch.load(path, weights_only=False)
    edit(state)
    torch.save(state, path)
    return path


def _degree_1(state: dict) -> None:
    """What a checkpoint of a degree-1 run looks like."""
    state["params"]["shN"] = state["params"]["shN"][:, :3].clone()
    state["sh_degree"] = 1
    state["config_key"] = "0123456789abcdef"


def test_eval_refuses_a_checkpoint_of_another_sh_degree(trained: Path, tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    ckpt = _edit_checkpoint(run, _degree_1)
    before = tree_hashes(run)
    rc, err = recon(capsys, "eval", run)
    assert rc == 2 and err == (f"error: {ckpt}: checkpoint has SH degree 1 but {run / 'config.json'} trains degree 3 "
                               "(a checkpoint of another run?); refusing to load it\n")
    assert tree_hashes(run) == before and not (run / "eval").exists()


def test_eval_refuses_sh_coefficients_that_do_not_match_the_degree(trained: Path, tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    ckpt = _edit_checkpoint(run, lambda st: st["params"].update(shN=st["params"]["shN"][:, :8].clone()))
    rc, err = recon(capsys, "eval", run)
    n = torch.load(ckpt, weights_only=False)["params"]["shN"].shape[0]
    assert rc == 2 and err == (f"error: {ckpt}: checkpoint's SH coefficients ({n}, 8, 3) do not match its SH degree 3 "
                               "(15 per channel)\n")


def test_eval_refuses_a_checkpoint_of_another_config(trained: Path, tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    ckpt = _edit_checkpoint(run, lambda st: st.update(config_key="0123456789abcdef"))
    rc, err = recon(capsys, "eval", run)
    assert rc == 2 and err == (f"error: {ckpt}: checkpoint was trained with another config than "
                               f"{run / 'config.json'} (a checkpoint of another run?); refusing to load it\n")


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_train_disk_full_is_one_line_and_keeps_the_old_run(scene: Path, trained: Path, tmp_path: Path, capsys,
                                                          monkeypatch) -> None:
    import recon.run.checkpoints as checkpoint

    run = copy_tree(trained, tmp_path / "run")
    before = tree_hashes(run)
    monkeypatch.setattr(checkpoint, "atomic_torch_save", _disk_full)  # the first checkpoint finds the disk full
    rc, err = recon(capsys, "train", "--data", scene, "--out", run, "--overwrite", *TINY_TRAIN)
    assert rc == 2 and error_line(err) == (
        f"error: {run}: no space left on the device (nothing half-written is kept: outputs are written atomically); "
        "free some space and run again; --resume continues from the last checkpoint")
    assert tree_hashes(run) == before


def test_synth_disk_full_is_one_line_and_keeps_the_old_scene(scene: Path, tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    import recon.io.atomic as atomic

    s = copy_tree(scene, tmp_path / "s")
    before = tree_hashes(s)
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 5:
            _disk_full()
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    rc, err = recon(capsys, "data", "synth", "--out", s, "--overwrite", "--width", "64", "--height", "40",
                    "--n-frames", "3", "--defocus-frames", "0")
    monkeypatch.undo()
    assert rc == 2 and error_line(err) == (
        f"error: {s}: no space left on the device (nothing half-written is kept: outputs are written atomically); "
        "free some space and run again")
    assert tree_hashes(s) == before and sorted(p.name for p in tmp_path.iterdir()) == ["s"]


@pytest.mark.parametrize("port", ["70000", "-1", "0"])
def test_view_bad_port_is_one_line(trained: Path, port: str, capsys) -> None:
    rc, err = recon(capsys, "view", trained, "--port", port)
    assert rc == 2 and err == f"error: --port must be a TCP port in 1..65535, got {port}\n"


def _ply(path: Path, n: int = 20, bad: slice | None = None) -> Path:
    from recon.model.ply import save_ply

    rng = np.random.default_rng(0)
    means = rng.normal(size=(n, 3)).astype(np.float32)
    if bad is not None:
        means[bad, 1] = np.nan
    return save_ply(path, means, np.tile([1.0, 0, 0, 0], (n, 1)), np.full((n, 3), -2.0), np.zeros(n),
                    np.zeros((n, 1, 3)), np.zeros((n, 0, 3)))


def test_view_drops_non_finite_gaussians_with_a_count(tmp_path: Path) -> None:
    from viewer.app import ViewerApp, ViewerOptions
    from viewer.loading import resolve_input

    ply = _ply(tmp_path / "g.ply", bad=slice(3, 5))
    inp = resolve_input(ply)
    assert len(inp.gaussians) == 18 and np.isfinite(inp.gaussians.means).all()
    assert inp.notes == [f"{ply}: 2 of 20 Gaussians have NaN or infinite parameters and are not shown"]
    ViewerApp(inp, ViewerOptions(), log=lambda s: None).warm_up()  # the median centre is finite: renders


def test_view_all_nan_and_negative_vertex_count_are_one_line(tmp_path: Path, capsys) -> None:
    ply = _ply(tmp_path / "nan.ply", bad=slice(None))
    rc, err = recon(capsys, "view", ply)
    assert rc == 2 and err == f"error: {ply}: none of the 20 Gaussians has finite values (NaN or infinite parameters)\n"
    neg = tmp_path / "neg.ply"
    neg.write_bytes(_ply(tmp_path / "ok.ply").read_bytes().replace(b"element vertex 20", b"element vertex -5"))
    rc, err = recon(capsys, "view", neg)
    assert rc == 2 and err == f"error: {neg}: bad PLY element line 'element vertex -5' (a negative count)\n"
