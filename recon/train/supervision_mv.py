"""Wires the multi-view consistency loss (``recon.losses.multiview``) into the trainer.

Matches between neighbouring training views are computed once (``recon.match``; cached on disk next to the scene),
triangulated with the known poses and filtered for reliability; from ``--loss.mv-start`` on, the rendered depth of
each view is pulled toward its triangulated points (robust log-depth error, weighted by reliability).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from recon.losses.multiview import multiview_depth_loss
from recon.model.render_frame import RenderOutput
from recon.train.views import View

if TYPE_CHECKING:
    from recon.train.trainer import Trainer


class MultiViewSupervisionTerm:
    name = "mv"

    def __init__(self, trainer: Trainer) -> None:
        from recon.match.supervision import MultiViewSupervision, SupervisionConfig
        from recon.match.triangulate import TriangulationConfig

        cfg = trainer.cfg.loss
        self.weight, self.start = cfg.mv_weight, cfg.mv_start
        ids = [v.frame.id for v in trainer.views]
        config = SupervisionConfig(triangulation=TriangulationConfig(max_rel_depth_per_px=cfg.mv_max_rel_depth_per_px))
        sup = MultiViewSupervision(trainer.scene, frames=ids, config=config).prepare()
        self.targets = {}
        for v in trainer.views:
            t = sup.targets_for(v.frame.id)
            sx = v.width / v.frame.camera.width
            sy = v.height / v.frame.camera.height
            pix = t.pix * torch.tensor([sx, sy], dtype=t.pix.dtype)
            self.targets[v.frame.id] = (pix.to(trainer.device), t.depth.to(trainer.device),
                                        t.weights.to(trainer.device))
        self.n_points = sum(len(t[1]) for t in self.targets.values())

    def __call__(self, step: int, view: View, out: RenderOutput) -> dict[str, torch.Tensor]:
        if step < self.start:
            return {}
        pix, depth, w = self.targets[view.frame.id]
        if len(depth) == 0:
            return {}
        return {"mv": self.weight * multiview_depth_loss(out.depth, pix, depth, w)}
