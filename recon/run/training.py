"""Train into a run folder: resume or replace it, write its config, log metrics, checkpoint, export the result.

The :class:`~recon.train.trainer.Trainer` knows nothing of files; this module gives it a run folder::

    with prepare_run_folder(cfg):          # checks, creates and locks --out before the (slow) trainer is built
        summary = train_run(build_trainer(cfg), prepared=True)

or just ``train_run(trainer)``, which prepares the folder itself.

Run folder layout: ``config.json`` (every option and the config key), ``metrics.jsonl`` (+ ``tb/`` with
TensorBoard), ``checkpoints/ckpt_<step>.pt``, ``point_cloud.ply`` (standard 3DGS PLY), ``train_summary.json``, and
``eval/`` written later by ``recon eval``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from recon.io.atomic import atomic_write_json, replacing_contents
from recon.io.lock import LOCK_NAME, FolderLock
from recon.model.ply import save_ply
from recon.run.checkpoints import load_latest_checkpoint, save_checkpoint
from recon.run.folder import prepare_run_folder, write_run_config
from recon.run.logger import MetricLogger
from recon.train.config_key import config_key
from recon.train.trainer import Trainer

PLY_NAME = "point_cloud.ply"
SUMMARY_NAME = "train_summary.json"


def train_run(trainer: Trainer, progress: bool = True, prepared: bool = False) -> dict[str, Any]:
    """Train ``trainer`` to ``cfg.iters`` under the run folder's lock; returns (and writes) the training summary.

    ``--resume`` continues from the newest usable checkpoint (same scene and config, else a one-line error before
    anything is written); ``--overwrite`` replaces the old run once training starts and restores it if training
    fails. ``prepared``: the caller holds the lock of a folder :func:`prepare_run_folder` checked (the checks are
    made once).
    """
    cfg = trainer.cfg
    run = Path(cfg.out)
    lock = FolderLock(run).acquire() if prepared else prepare_run_folder(cfg)
    with lock:
        # checked before anything is written: a refused resume leaves config.json and metrics as they were
        state = load_latest_checkpoint(run, trainer.scene.fingerprint(), config_key(cfg)) if cfg.resume else None
        replace = replacing_contents(run, keep={LOCK_NAME}) if cfg.overwrite else contextlib.nullcontext()
        with replace:
            write_run_config(cfg, trainer.preset_description)
            logger = MetricLogger(run)
            try:
                if cfg.resume:
                    if state is not None:
                        trainer.load_state_dict(state)
                        print(f"resuming from iteration {trainer.step}")
                    else:
                        print(f"{run}: no checkpoint to resume from; starting at iteration 0")
                    logger.truncate_after(trainer.step)
                summary = trainer.fit(
                    log=logger.log,
                    checkpoint=lambda step: save_checkpoint(run, step, trainer.state_dict(), cfg.keep_checkpoints),
                    progress=progress)
            finally:
                logger.close()
            save_checkpoint(run, trainer.step, trainer.state_dict(), cfg.keep_checkpoints)
            export_ply(trainer, run / PLY_NAME)
            atomic_write_json(run / SUMMARY_NAME, summary)
    return summary


def export_ply(trainer: Trainer, path: Path) -> Path:
    """Write the trainer's current Gaussians as a standard 3DGS PLY (atomically)."""
    p = {k: v.detach().cpu() for k, v in trainer.params.items()}
    return save_ply(path, p["means"], p["quats"], p["scales"], p["opacities"], p["sh0"], p["shN"])
