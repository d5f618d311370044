"""Training configs for tests: a few iterations on a tiny scene."""

from __future__ import annotations

from pathlib import Path

from recon.train.cli import build_config


def tiny_cfg(scene_root: Path, out: Path, *extra: str):
    cfg, _ = build_config(["--data", str(scene_root), "--out", str(out), "--iters", "6", "--checkpoint-every", "3",
                           "--init.max-points", "1500", "--init.far-points", "300", "--strategy.refine-start", "2",
                           "--strategy.refine-every", "2", "--no-eval-at-end", *extra], "recon train")
    return cfg
