"""Helpers of the bench and batch tests (their fixtures, ``bench_street`` and ``ray_local``, are in conftest.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

# the training flags that keep a run on the tiny street to a few seconds (and deterministic across processes)
TINY_FLAGS = "--init.max-points 3000 --init.far-points 500 --checkpoint-every 0 --threads 1"


def make_tiny_street(folder: Path, seed: int = 0) -> Path:
    """A 96x64 synthetic street, 9 frames of 3 cameras, with LiDAR; returns its folder."""
    from recon.data.synth import SynthConfig, make_street

    make_street(SynthConfig(seed=seed, width=96, height=64, n_frames=9, defocus_frames=0), folder)
    return folder


def kill_self_once(marker: Path, at_step: int = 3) -> None:
    """Make this process SIGKILL itself at training step ``at_step`` the first time (``marker`` records it):
    a worker dying mid-run, its run folder half written."""
    if marker.exists():
        return
    from recon.train.trainer import Trainer

    original = Trainer.train_step

    def step(self: Trainer, i: int) -> dict[str, float]:
        if i == at_step and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, i)

    Trainer.train_step = step  # type: ignore[method-assign]
