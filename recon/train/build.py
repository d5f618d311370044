"""Assemble a :class:`Trainer` with the supervisions its config enables (DoF, multi-view)."""

from __future__ import annotations

from recon.errors import ReconError
from recon.train.config import TrainConfig
from recon.train.trainer import Trainer


def build_trainer(cfg: TrainConfig) -> Trainer:
    sups = []
    if cfg.loss.dof_weight > 0:
        try:
            from recon.train.supervision_dof import DofSupervision
        except ImportError as exc:
            raise ReconError(f"the DoF loss is not available in this build ({exc})") from None
        sups.append(DofSupervision)
    if cfg.loss.mv_weight > 0:
        try:
            from recon.train.supervision_mv import MultiViewSupervisionTerm
        except ImportError as exc:
            raise ReconError(f"the multi-view loss is not available in this build ({exc})") from None
        sups.append(MultiViewSupervisionTerm)
    return Trainer(cfg, supervisions=sups)
