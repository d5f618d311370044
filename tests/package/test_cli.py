"""The `recon` command: help lists every subcommand; errors are one line; presets parse."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from recon.cli import COMMANDS, main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("data", "train", "eval", "bench", "view", "bokeh", "dfd", "depth", "match"):
        assert name in COMMANDS and f"  {name} " in out
    for module, _desc in COMMANDS.values():  # every command's module exists (found, not imported: --help is instant)
        assert importlib.util.find_spec(module) is not None, module


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_user_error_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "recon.cli", "data", "info", str(tmp_path)], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "scene.json not found" in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_presets_apply_and_reject_unknown(tmp_path: Path) -> None:
    from recon.errors import ReconError
    from recon.train.cli import build_config, split_preset

    assert split_preset(["--data", "x", "--out", "y", "dof"]) == ("dof", ["--data", "x", "--out", "y"])
    assert split_preset(["full", "--data", "x"]) == ("full", ["--data", "x"])
    cfg, _ = build_config(["--data", "d", "--out", "o", "full", "--iters", "7"], "recon train")
    assert cfg.loss.dof_weight > 0 and cfg.loss.mv_weight > 0 and cfg.iters == 7 and cfg.preset == "full"
    mv, _ = build_config(["--data", "d", "--out", "o", "mv", "--loss.mv-behind-scale", "0.5"], "recon train")
    assert mv.loss.mv_normalise == "count" and mv.loss.mv_behind_scale == 0.5
    mv, _ = build_config(["--data", "d", "--out", "o", "mv", "--loss.mv-robust", "cauchy", "--loss.mv-scale", "0.1"],
                         "recon train")
    assert mv.loss.mv_robust == "cauchy" and mv.loss.mv_scale == 0.1 and mv.strategy.densify_from == "image"
    base, _ = build_config(["--data", "d", "--out", "o"], "recon train")
    assert base.loss.dof_weight == 0 and base.loss.mv_weight == 0 and base.preset == "baseline"
    bad = tmp_path / "bad.toml"
    bad.write_text("[loss]\nno_such_weight = 1\n")
    with pytest.raises(ReconError, match="unknown option 'no_such_weight'"):
        build_config(["--data", "d", "--out", "o", str(bad)], "recon train")
