"""Helpers for the data-safety tests: tiny scenes and runs, file hashes, and the CLI's stderr."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

# a few iterations on a tiny scene, checkpoints at 2 and 4, no evaluation
TINY_TRAIN = ["--iters", "4", "--checkpoint-every", "2", "--init.max-points", "800", "--init.far-points", "200",
              "--no-eval-at-end", "--threads", "1"]


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path (the lock file, which only holds a pid, excluded)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".recon.lock"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tiny_scene(out: Path, seed: int = 1) -> Path:
    """A 64x40 synthetic street, 3 cameras x 9 frames (a second or two to generate)."""
    from recon.data.synth import SynthConfig, make_street

    make_street(SynthConfig(seed=seed, width=64, height=40, n_frames=9, defocus_frames=0), out)
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def recon(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``recon ARGS`` in this process; (exit status, stderr)."""
    from recon.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def error_line(err: str) -> str:
    """The one ``error:`` line of stderr (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def truncate(path: Path) -> None:
    """Cut a file to half its size, as an interrupted copy would."""
    b = path.read_bytes()
    path.write_bytes(b[: len(b) // 2])
