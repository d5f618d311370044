"""What may happen to a ``--out`` folder before training: the checks that keep a user's data safe, made once.

A run folder is created when missing. An existing one is only continued (``--resume``) or replaced
(``--overwrite``) when it is a recon run (its ``config.json`` was written by ``recon train``); never when it is,
or holds, the input scene, a file, or someone else's folder. Nothing is deleted here: ``--overwrite`` replaces
the old run only once training starts, and puts it back if training fails (see :func:`recon.run.training.train_run`).
"""

from __future__ import annotations

import json
from pathlib import Path

from recon.errors import ReconError
from recon.io.atomic import atomic_write_json, clean_orphans, is_orphan_name
from recon.io.folders import ensure_dir
from recon.io.lock import LOCK_NAME, FolderLock
from recon.train.config import TrainConfig
from recon.train.config_key import config_dict, config_key


def is_recon_run(folder: Path) -> bool:
    """True when ``folder/config.json`` is a run config written by ``recon train``."""
    try:
        d = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and "config_key" in d and "data" in d


def user_entries(folder: Path) -> list[Path]:
    """Entries of ``folder`` other than recon's own lock file and leftover temporaries."""
    return [p for p in folder.iterdir() if p.name != LOCK_NAME and not is_orphan_name(p.name)]


def _contains(outer: Path, inner: Path) -> bool:
    outer, inner = outer.resolve(), inner.resolve()
    return outer == inner or outer in inner.parents


def check_out_path(out: Path, data: Path) -> None:
    """Refuse an ``--out`` that is a file, the input scene or a folder holding it (before anything is written)."""
    if out.exists() and not out.is_dir():
        raise ReconError(f"{out}: --out is a file, not a folder (choose another run folder)")
    if _contains(out, data):
        raise ReconError(f"{out}: --out is or contains the input scene {data}; choose another run folder")
    if (out / "scene.json").is_file():
        raise ReconError(f"{out}: --out is a recon scene folder, not a run folder; choose another run folder")


def check_out_contents(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a non-empty folder unless it is a recon run continued or replaced on purpose."""
    if not out.is_dir() or not user_entries(out):
        return
    if overwrite and not is_recon_run(out):
        raise ReconError(f"{out}: not a recon run folder (no config.json from `recon train`); refusing to "
                         "--overwrite it")
    if resume and not is_recon_run(out):
        raise ReconError(f"{out}: not a recon run folder (no config.json from `recon train`); nothing to --resume")
    if not (resume or overwrite):
        raise ReconError(f"{out}: output folder exists and is not empty (pass --resume to continue it or "
                         "--overwrite to start over)")


def prepare_run_folder(cfg: TrainConfig) -> FolderLock:
    """Check ``cfg.out`` (the checks above), create it, lock it and clear temporaries a killed run left.

    The one place a run folder is checked: ``recon train`` calls it before building the trainer (so a refused
    folder costs no loading), :func:`recon.run.training.train_run` when nobody did. Deletes nothing of the user's.
    Returns the held lock (use it in a ``with`` block, or release it).
    """
    out = Path(cfg.out)
    check_out_path(out, Path(cfg.data))
    check_out_contents(out, cfg.resume, cfg.overwrite)  # before creating anything
    ensure_dir(out, "run folder")
    lock = FolderLock(out).acquire()
    try:
        check_out_contents(out, cfg.resume, cfg.overwrite)  # again, now that no other recon writes it
        clean_orphans(out)
    except BaseException:
        lock.release()
        raise
    return lock


def write_run_config(cfg: TrainConfig, preset_desc: str = "") -> Path:
    """``config.json`` of the run: every option (the viewer and eval read ``data`` from it) and the config key."""
    d = config_dict(cfg)
    d["data"] = str(Path(cfg.data).resolve())
    d["preset_description"] = preset_desc
    d["config_key"] = config_key(cfg)
    return atomic_write_json(Path(cfg.out) / "config.json", d)
