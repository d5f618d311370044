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
from recon.train.schedule import fade_out
from recon.train.views import View

if TYPE_CHECKING:
    from recon.train.trainer import Trainer


Targets = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def unit_mean_weights(targets: Targets) -> Targets:
    """Rescale every view's point weights by one factor so they average 1 over all views' points.

    With the loss's "count" normalisation the weights are absolute confidences; averaging 1 keeps ``mv_weight``'s
    meaning (a view whose points are all of average reliability contributes its mean error) while a view whose points
    are less reliable than the scene's average pulls less.
    """
    n = sum(len(w) for _, _, w in targets.values())
    total = sum(float(w.sum()) for _, _, w in targets.values())
    if n == 0 or total <= 0:
        return targets
    return {k: (p, d, w * (n / total)) for k, (p, d, w) in targets.items()}


class MultiViewSupervisionTerm:
    name = "mv"

    def __init__(self, trainer: Trainer) -> None:
        from recon.match.supervision import MultiViewSupervision, SupervisionConfig
        from recon.match.triangulate import TriangulationConfig

        cfg = trainer.cfg.loss
        self.weight, self.start = cfg.mv_weight, cfg.mv_start
        self.iters, self.fade_from = trainer.cfg.iters, cfg.depth_fade_from
        self.behind_scale, self.normalise = cfg.mv_behind_scale, cfg.mv_normalise
        self.robust, self.scale = cfg.mv_robust, cfg.mv_scale
        ids = [v.frame.id for v in trainer.views]
        config = SupervisionConfig(triangulation=TriangulationConfig(max_rel_depth_per_px=cfg.mv_max_rel_depth_per_px))
        sup = MultiViewSupervision(trainer.scene, matcher=cfg.mv_matcher, frames=ids, config=config).prepare()
        self.targets: Targets = {}
        for v in trainer.views:
            t = sup.targets_for(v.frame.id)
            sx = v.width / v.frame.camera.width
            sy = v.height / v.frame.camera.height
            pix = t.pix * torch.tensor([sx, sy], dtype=t.pix.dtype)
            self.targets[v.frame.id] = (pix.to(trainer.device), t.depth.to(trainer.device),
                                        t.weights.to(trainer.device))
        self.n_points = sum(len(t[1]) for t in self.targets.values())
        if self.normalise == "count":
            self.targets = unit_mean_weights(self.targets)

    def __call__(self, step: int, view: View, out: RenderOutput) -> dict[str, torch.Tensor]:
        weight = self.weight * fade_out(step, self.iters, self.fade_from)
        pix, depth, w = self.targets[view.frame.id]
        if step < self.start or weight == 0.0 or len(depth) == 0:
            return {}
        loss = multiview_depth_loss(out.depth, pix, depth, w, loss=self.robust, scale=self.scale,
                                    behind_scale=self.behind_scale, normalise=self.normalise)
        return {"mv": weight * loss}
