"""Checkpoints: written atomically, found by iteration, checked against the run's scene and config on resume."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from recon.errors import ReconError
from recon.io.atomic import atomic_torch_save

CKPT_RE = re.compile(r"ckpt_(\d{6})\.pt$")
FORMAT = "recon-checkpoint-1"


def checkpoint_dir(run: Path) -> Path:
    return run / "checkpoints"


def list_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every checkpoint in the run, oldest first."""
    d = checkpoint_dir(run)
    out = [(int(m.group(1)), p) for p in d.glob("ckpt_*.pt") if (m := CKPT_RE.search(p.name))]
    return sorted(out)


def save_checkpoint(run: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as ``checkpoints/ckpt_<step>.pt`` atomically, then drop all but the newest ``keep``."""
    path = checkpoint_dir(run) / f"ckpt_{step:06d}.pt"
    atomic_torch_save(path, {"format": FORMAT, "step": step, **state})
    for _it, old in list_checkpoints(run)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def read_newest_checkpoint(run: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest checkpoint of ``run`` that loads (``state["step"]`` set); older ones are tried when the newest is
    unreadable or not a recon checkpoint, each with a warning. None when no checkpoint loads."""
    for step, path in reversed(list_checkpoints(run)):
        try:
            state = torch.load(path, map_location=map_location, weights_only=False)
        except Exception as exc:  # a truncated or corrupt file: fall back to the previous one
            warnings.warn(f"{path}: unreadable checkpoint ({type(exc).__name__}); trying an older one", stacklevel=2)
            continue
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            warnings.warn(f"{path}: not a recon checkpoint; skipped", stacklevel=2)
            continue
        state["step"] = step
        state["path"] = path
        return state
    return None


def load_latest_checkpoint(run: Path, fingerprint: str, config_key: str) -> dict[str, Any] | None:
    """The newest checkpoint that loads (see :func:`read_newest_checkpoint`), for resuming; None when the run has
    no checkpoint file at all.

    Raises :class:`ReconError` when checkpoint files exist but none loads (resuming from 0 would silently throw the
    run away), or when the checkpoint belongs to another scene or another training config.
    """
    state = read_newest_checkpoint(run)
    if state is None:
        if list_checkpoints(run):
            raise ReconError(f"{checkpoint_dir(run)}: no readable checkpoint (all {len(list_checkpoints(run))} are "
                             "corrupt); refusing to resume (use --overwrite to start over)")
        return None
    path = state["path"]
    if state.get("scene_fingerprint") != fingerprint:
        raise ReconError(f"{path}: checkpoint was trained on another scene; refusing to resume "
                         "(use a new --out, or --overwrite)")
    if state.get("config_key") != config_key:
        raise ReconError(f"{path}: checkpoint was trained with a different config; refusing to resume "
                         "(use the same preset and options, or a new --out)")
    return state
