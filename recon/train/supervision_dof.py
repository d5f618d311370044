"""Wires the depth-of-field loss (``recon.losses.dof``) into the trainer.

For every training view a metric depth prior (``--loss.dof-prior``: lidar, sfm, mono, simulated, dfd) is computed
once (cached on disk by ``recon.priors``). Each step, ``dof_focus_count`` focus distances are taken from quantiles
of the prior in inverse depth and a virtual aperture is calibrated so that the largest blur over the prior's depth
range is ``dof_max_blur_px``; the rendered image blurred with the rendered depth is compared with the ground-truth
image blurred with the prior depth. Rendered depth is composited in inverse depth with the sky at infinity
(``1/d = alpha / depth``), so low-opacity pixels read as far, not as 0 m.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from recon.losses.dof import calibrated_aperture, depth_range_from_prior, dof_loss, focus_distances_from_prior
from recon.model.render_frame import RenderOutput
from recon.train.views import View

if TYPE_CHECKING:
    from recon.train.trainer import Trainer

FAR_M = 1.0e4


def composite_depth(depth: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Depth with the uncovered part of each pixel at infinity: 1 / (alpha / depth), clamped to ``FAR_M``."""
    inv = alpha / depth.clamp_min(1e-3)
    return 1.0 / inv.clamp_min(1.0 / FAR_M)


class DofSupervision:
    name = "dof"

    def __init__(self, trainer: Trainer) -> None:
        from recon.priors.registry import compute_prior

        cfg = trainer.cfg.loss
        self.weight, self.start, self.k = cfg.dof_weight, cfg.dof_start, cfg.dof_focus_count
        self.max_blur = cfg.dof_max_blur_px
        self.priors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for v in tqdm(trainer.views, desc=f"depth priors ({cfg.dof_prior})", leave=False):
            p = compute_prior(trainer.scene, v.frame, cfg.dof_prior, seed=trainer.cfg.seed) \
                if cfg.dof_prior == "simulated" else compute_prior(trainer.scene, v.frame, cfg.dof_prior)
            d = torch.from_numpy(np.ascontiguousarray(p.depth, np.float32))[None, None]
            c = torch.from_numpy(np.ascontiguousarray(p.confidence, np.float32))[None, None]
            if d.shape[-2:] != (v.height, v.width):
                d = F.interpolate(d, size=(v.height, v.width), mode="nearest")
                c = F.interpolate(c, size=(v.height, v.width), mode="nearest")
            self.priors[v.frame.id] = (d.to(trainer.device), c.to(trainer.device))

    def __call__(self, step: int, view: View, out: RenderOutput) -> dict[str, torch.Tensor]:
        if step < self.start:
            return {}
        prior, conf = self.priors[view.frame.id]
        ramp = min(1.0, (step - self.start + 1) / 200.0)  # ease in: early geometry is poor
        focus = focus_distances_from_prior(prior, self.k)
        near, far = depth_range_from_prior(prior)
        fx = view.K[0, 0]
        aperture = calibrated_aperture(fx, near, far, focus, self.max_blur)
        pred_depth = composite_depth(out.depth, out.alpha)[None, None]
        loss = dof_loss(out.rgb.permute(2, 0, 1)[None], pred_depth, view.image.permute(2, 0, 1)[None], prior, conf,
                        fx, focus, aperture)
        return {"dof": self.weight * ramp * loss}
