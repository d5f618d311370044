"""`recon train` never loses a user's data: --overwrite only replaces a recon run, and only once training starts
(restoring it if training fails); a refused --resume writes nothing; a locked run folder refuses a second trainer;
bad options and unusable output paths are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.safety import (  # noqa: E402
    TINY_TRAIN,
    copy_tree,
    error_line,
    make_tiny_scene,
    recon,
    train_tiny_run,
    tree_hashes,
    truncate,
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_scene(tmp_path_factory.mktemp("safety") / "street")


@pytest.fixture(scope="module")
def other_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_scene(tmp_path_factory.mktemp("safety") / "other", seed=2)


@pytest.fixture(scope="module")
def trained(scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (checkpoints at 2 and 4, metrics.jsonl, config.json); copy it before changing it."""
    return train_tiny_run(scene, tmp_path_factory.mktemp("safety") / "run")


def test_overwrite_refuses_the_input_scene(scene: Path, tmp_path: Path, capsys) -> None:
    s = copy_tree(scene, tmp_path / "S")
    before = tree_hashes(s)
    rc, err = recon(capsys, "train", "--data", s, "--out", s, "--overwrite", *TINY_TRAIN)
    assert rc == 2 and err == f"error: {s}: --out is or contains the input scene {s}; choose another run folder\n"
    rc, err = recon(capsys, "train", "--data", s, "--out", tmp_path, "--overwrite", *TINY_TRAIN)
    assert rc == 2 and err == (f"error: {tmp_path}: --out is or contains the input scene {s}; choose another run "
                               "folder\n")
    assert tree_hashes(s) == before and not (s / ".recon.lock").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run(scene: Path, tmp_path: Path, capsys) -> None:
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"\xff\xd8 precious")
    (mine / "sub").mkdir()
    (mine / "sub" / "notes.txt").write_text("keep me")
    before = tree_hashes(mine)
    rc, err = recon(capsys, "train", "--data", scene, "--out", mine, "--overwrite", *TINY_TRAIN)
    assert rc == 2 and err == (f"error: {mine}: not a recon run folder (no config.json from `recon train`); "
                               "refusing to --overwrite it\n")
    rc, err = recon(capsys, "train", "--data", scene, "--out", mine, "--resume", *TINY_TRAIN)
    assert rc == 2 and err == (f"error: {mine}: not a recon run folder (no config.json from `recon train`); "
                               "nothing to --resume\n")
    assert tree_hashes(mine) == before and sorted(p.name for p in mine.iterdir()) == ["holiday.jpg", "sub"]


def test_overwrite_keeps_the_old_run_when_the_scene_fails(scene: Path, trained: Path, tmp_path: Path,
                                                         capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    before = tree_hashes(run)
    missing = tmp_path / "no_such_scene"
    rc, err = recon(capsys, "train", "--data", missing, "--out", run, "--overwrite", *TINY_TRAIN)
    assert rc == 2 and error_line(err) == (
        f"error: {missing / 'scene.json'}: scene.json not found (is {missing} a recon scene folder? make one with "
        "`recon data synth` or `recon data convert`)")
    broken = copy_tree(scene, tmp_path / "broken")
    victim = broken / json.loads((broken / "scene.json").read_text())["frames"][-1]["image"]
    truncate(victim)
    rc, err = recon(capsys, "train", "--data", broken, "--out", run, "--overwrite", *TINY_TRAIN)
    assert rc == 2 and error_line(err) == f"error: {victim}: image could not be decoded (OSError)"
    assert tree_hashes(run) == before


def test_overwrite_restores_the_old_run_when_training_fails(scene: Path, trained: Path, tmp_path: Path,
                                                           capsys, monkeypatch) -> None:
    from recon.errors import ReconError
    from recon.train.trainer import Trainer

    run = copy_tree(trained, tmp_path / "run")
    before = tree_hashes(run)

    def fail(self: Trainer, step: int) -> dict[str, float]:
        raise ReconError(f"loss became nan at iteration {step}; lower the learning rates")

    monkeypatch.setattr(Trainer, "train_step", fail)
    rc, err = recon(capsys, "train", "--data", scene, "--out", run, "--overwrite", *TINY_TRAIN)
    assert rc == 2 and error_line(err) == "error: loss became nan at iteration 0; lower the learning rates"
    assert tree_hashes(run) == before
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".recon.lock"]


def test_overwrite_replaces_a_run(scene: Path, trained: Path, tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    (run / "stale.txt").write_text("from the old run")
    old_cfg = json.loads((run / "config.json").read_text())
    rc, _ = recon(capsys, "train", "--data", scene, "--out", run, "--overwrite", *TINY_TRAIN, "--seed", "3")
    assert rc == 0
    assert json.loads((run / "config.json").read_text())["seed"] == 3 != old_cfg["seed"]
    assert not (run / "stale.txt").exists()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".recon.lock"]


def test_refused_resume_writes_nothing(trained: Path, other_scene: Path, scene: Path, tmp_path: Path,
                                       capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    before = tree_hashes(run)
    ckpt = run / "checkpoints" / "ckpt_000004.pt"
    rc, err = recon(capsys, "train", "--data", scene, "--out", run, "--resume", *TINY_TRAIN,
                    "--optim.means-lr", "1e-3")
    assert rc == 2 and error_line(err) == (
        f"error: {ckpt}: checkpoint was trained with a different config; refusing to resume (use the same preset "
        "and options, or a new --out)")
    assert tree_hashes(run) == before
    rc, err = recon(capsys, "train", "--data", other_scene, "--out", run, "--resume", *TINY_TRAIN)
    assert rc == 2 and error_line(err) == (
        f"error: {ckpt}: checkpoint was trained on another scene; refusing to resume (use a new --out, or "
        "--overwrite)")
    assert tree_hashes(run) == before  # config.json still names the original scene


def test_resume_with_all_checkpoints_corrupt_is_refused(scene: Path, trained: Path, tmp_path: Path,
                                                       capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    for p in (run / "checkpoints").glob("ckpt_*.pt"):
        truncate(p)
    before = tree_hashes(run)
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        rc, err = recon(capsys, "train", "--data", scene, "--out", run, "--resume", *TINY_TRAIN)
    assert rc == 2 and error_line(err) == (
        f"error: {run / 'checkpoints'}: no readable checkpoint (all 2 are corrupt); refusing to resume (use "
        "--overwrite to start over)")
    assert tree_hashes(run) == before


def test_resume_without_checkpoint_restarts_without_duplicate_rows(scene: Path, trained: Path,
                                                                   tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    for p in (run / "checkpoints").glob("ckpt_*.pt"):
        p.unlink()  # killed before its first checkpoint, with metrics already logged
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "loss": 0.')  # and a record cut short by the kill
    from recon.cli import main

    assert main(["train", "--data", str(scene), "--out", str(run), "--resume", *TINY_TRAIN, "--log-every", "1"]) == 0
    assert f"{run}: no checkpoint to resume from; starting at iteration 0" in capsys.readouterr().out
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the old rows (and the torn one) are gone, not duplicated


def test_orphan_temporaries_are_cleaned_under_the_lock(trained: Path, tmp_path: Path) -> None:
    from recon.run.folder import prepare_run_folder
    from recon.train.cli import build_config

    run = copy_tree(trained, tmp_path / "run")
    orphans = [run / ".config.json.k2j_x9ab.tmp", run / "checkpoints" / ".ckpt_000006.pt.a1b2c3d4.tmp",
               run / ".run.q1w2e3r4.old" / "x"]
    for p in orphans:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"half")
    mine = [run / "notes.tmp", run / ".hidden.tmp", run / "checkpoints" / "keep.tmp"]
    for p in mine:
        p.write_text("user file")
    before = tree_hashes(run)
    cfg, _ = build_config(["--data", str(trained), "--out", str(run), "--resume", *TINY_TRAIN], "recon train")
    with prepare_run_folder(cfg):
        pass
    after = tree_hashes(run)
    assert not any(p.exists() for p in orphans) and not (run / ".run.q1w2e3r4.old").exists()
    gone = {p.relative_to(run).as_posix() for p in orphans}
    assert after == {k: v for k, v in before.items() if k not in gone}


LOCK_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, b"%d\\n" % os.getpid())
print("locked", flush=True)
time.sleep(60)
"""


def test_second_trainer_on_a_locked_run_fails_fast(scene: Path, trained: Path, tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    before = tree_hashes(run)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(run / ".recon.lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for flags in (["--resume"], ["--overwrite"]):
            rc, err = recon(capsys, "train", "--data", scene, "--out", run, *flags, *TINY_TRAIN)
            # the whole of stderr is the one line: it stopped before loading the scene
            assert rc == 2 and err == (f"error: {run}: run folder is in use by another recon process (pid "
                                       f"{holder.pid}); wait for it to finish or choose another folder\n")
    finally:
        holder.kill()
        holder.wait()
    assert tree_hashes(run) == before


def test_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path: Path) -> None:
    import fcntl

    from recon.errors import ReconError
    from recon.io.lock import FolderLock

    with FolderLock(tmp_path), FolderLock(tmp_path):  # the CLI and then the trainer
        fd = os.open(tmp_path / ".recon.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    fd = os.open(tmp_path / ".recon.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the outer block
    with pytest.raises(ReconError, match=r"in use by another recon process \(pid \d+\)"):
        FolderLock(tmp_path).acquire()
    os.close(fd)


@pytest.mark.parametrize(("flag", "value", "problem"), [
    ("--iters", "0", "must be >= 1, got 0"),
    ("--iters", "-5", "must be >= 1, got -5"),
    ("--optim.means-lr", "-0.001", "must be >= 0, got -0.001"),
    ("--optim.opacities-lr", "nan", "must be a finite number, got nan"),
    ("--downscale", "0", "must be in (0, 1] (a resize factor: 0.5 halves the images), got 0"),
    ("--loss.mv-behind-scale", "-1", "must be >= 0, got -1"),
    ("--loss.mv-scale", "0", "must be > 0, got 0"),
    ("--loss.depth-fade-from", "1.5", "must be in [0, 1], got 1.5"),
    ("--loss.dof-weight", "-0.1", "must be >= 0, got -0.1"),
    ("--strategy.refine-every", "0", "must be >= 1, got 0"),
])
def test_bad_option_values_are_one_line(flag: str, value: str, problem: str, scene: Path, tmp_path: Path,
                                        capsys) -> None:
    out = tmp_path / "run"
    rc, err = recon(capsys, "train", "--data", scene, "--out", out, *TINY_TRAIN, flag, value)
    assert rc == 2 and err == f"error: {flag} {problem}\n"
    assert not out.exists()


def test_resume_and_overwrite_together_are_refused(scene: Path, tmp_path: Path, capsys) -> None:
    rc, err = recon(capsys, "train", "--data", scene, "--out", tmp_path / "r", "--resume", "--overwrite")
    assert rc == 2 and err == ("error: --resume and --overwrite contradict each other (continue the run, or start "
                               "it over)\n")


def test_every_preset_passes_validation() -> None:
    from recon.train.cli import build_config
    from recon.train.presets import preset_names

    names = preset_names()
    # the presets the README and the benchmark name must be there: an empty list would make this loop pass vacuously
    assert {"baseline", "lidar", "dof", "mv", "full"} <= set(names), names
    for name in names:
        build_config(["--data", "d", "--out", "o", name], "recon train")


def test_out_that_is_a_file_or_under_a_file(scene: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"not a folder")
    rc, err = recon(capsys, "train", "--data", scene, "--out", f, *TINY_TRAIN)
    assert rc == 2 and err == f"error: {f}: --out is a file, not a folder (choose another run folder)\n"
    rc, err = recon(capsys, "train", "--data", scene, "--out", f / "run", "--overwrite", *TINY_TRAIN)
    assert rc == 2 and err == f"error: {f / 'run'}: cannot create the run folder (Not a directory)\n"
    assert f.read_bytes() == b"not a folder"


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only sysfs at /sys")
def test_out_on_a_read_only_file_system(scene: Path, capsys) -> None:
    out = Path("/sys/recon-test-run")
    rc, err = recon(capsys, "train", "--data", scene, "--out", out, *TINY_TRAIN)
    assert rc == 2 and err in {f"error: {out}: cannot create the run folder ({why})\n"
                               for why in ("Operation not permitted", "Permission denied")}


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write a read-only folder")
def test_out_in_a_read_only_folder(scene: Path, tmp_path: Path, capsys) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = recon(capsys, "train", "--data", scene, "--out", ro, *TINY_TRAIN)
        assert rc == 2 and err == f"error: {ro}: run folder is not writable\n"
    finally:
        ro.chmod(0o755)


def test_trainer_driven_from_code_refuses_to_overwrite_a_foreign_folder(scene: Path, tmp_path: Path) -> None:
    from recon.errors import ReconError
    from recon.run.training import train_run
    from recon.train.build import build_trainer
    from recon.train.cli import build_config

    mine = tmp_path / "mine"
    cfg, _ = build_config(["--data", str(scene), "--out", str(mine), "--overwrite", *TINY_TRAIN], "recon train")
    trainer = build_trainer(cfg)
    mine.mkdir()
    (mine / "data.csv").write_text("1,2,3")  # appeared after the CLI's check, or the CLI was bypassed
    with pytest.raises(ReconError, match="not a recon run folder"):
        train_run(trainer, progress=False)
    assert (mine / "data.csv").read_text() == "1,2,3"
