"""Wires the depth-of-field loss (``recon.losses.dof``) into the trainer.

For every training view a metric depth prior (``--loss.dof-prior``: lidar, sfm, mono, simulated, dfd) is computed
once (cached on disk by ``recon.priors``), and with it the view's set of virtual lenses: ``dof_focus_count`` focus
distances from quantiles of the prior in inverse depth, each with an aperture calibrated so that the largest blur
over the prior's depth range is ``dof_max_blur_px``, plus (``dof_far_band``) one lens calibrated on the far band
alone (:func:`recon.losses.dof.far_band_lens`), whose loss covers only the pixels the prior puts in that band. Each
step uses ``dof_lenses_per_step`` of them in rotation (0: all); the rendered image blurred with the rendered depth
is compared with the ground-truth image blurred with the prior depth. Rendered depth is composited in inverse depth
with the sky at infinity (``1/d = alpha / depth``), so low-opacity pixels read as far, not as 0 m.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from recon.losses.dof import (
    calibrated_aperture,
    depth_range_from_prior,
    dof_loss,
    far_band_lens,
    focus_distances_from_prior,
    occlusion_edge_mask,
)
from recon.model.render_frame import RenderOutput
from recon.train.config import LossConfig
from recon.train.schedule import fade_out, ramp_in
from recon.train.views import View

if TYPE_CHECKING:
    from recon.train.trainer import Trainer

FAR_M = 1.0e4


def composite_depth(depth: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Depth with the uncovered part of each pixel at infinity: 1 / (alpha / depth), clamped to ``FAR_M``."""
    inv = alpha / depth.clamp_min(1e-3)
    return 1.0 / inv.clamp_min(1.0 / FAR_M)


@dataclass(frozen=True)
class VirtualLens:
    """One virtual lens of a view: focus and aperture (metres), CoC saturation (pixels) and the pixels it scores."""

    focus_m: torch.Tensor  # [1, 1]
    aperture_m: torch.Tensor  # [1, 1]
    max_coc_px: float | None
    mask: torch.Tensor | None  # [1, 1, H, W] or None (all pixels)


def view_lenses(prior: torch.Tensor, fx: float, cfg: LossConfig) -> list[VirtualLens]:
    """The virtual lenses of one view (see the module docstring); ``prior`` ``[1, 1, H, W]`` metres, 0 = unknown."""
    focus = focus_distances_from_prior(prior, cfg.dof_focus_count)
    near, far = depth_range_from_prior(prior)
    aperture = calibrated_aperture(fx, near, far, focus, cfg.dof_max_blur_px)
    lenses = [VirtualLens(focus[:, j:j + 1], aperture[:, j:j + 1], None, None) for j in range(focus.shape[1])]
    if cfg.dof_far_band:
        f, a, band_near = far_band_lens(prior, fx, cfg.dof_max_blur_px)
        mask = (prior >= band_near.reshape(-1, 1, 1, 1)).to(prior.dtype)
        lenses.append(VirtualLens(f, a, cfg.dof_far_saturation * cfg.dof_max_blur_px, mask))
    return lenses


class DofSupervision:
    name = "dof"

    def __init__(self, trainer: Trainer) -> None:
        from recon.priors.registry import prior_for_training

        cfg = trainer.cfg.loss
        self.weight, self.start = cfg.dof_weight, cfg.dof_start
        self.iters, self.fade_from = trainer.cfg.iters, cfg.depth_fade_from
        self.per_step = cfg.dof_lenses_per_step
        self.depth_gradient = cfg.dof_depth_gradient
        self.priors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.lenses: dict[str, list[VirtualLens]] = {}
        for v in tqdm(trainer.views, desc=f"depth priors ({cfg.dof_prior})", leave=False):
            p = prior_for_training(trainer.scene, v.frame, cfg.dof_prior, trainer.cfg.seed)
            d = torch.from_numpy(np.ascontiguousarray(p.depth, np.float32))[None, None]
            c = torch.from_numpy(np.ascontiguousarray(p.confidence, np.float32))[None, None]
            if d.shape[-2:] != (v.height, v.width):
                d = F.interpolate(d, size=(v.height, v.width), mode="nearest")
                c = F.interpolate(c, size=(v.height, v.width), mode="nearest")
            d, c = d.to(trainer.device), c.to(trainer.device)
            if cfg.dof_edge_mask_px > 0:
                c = c * occlusion_edge_mask(d, cfg.dof_edge_mask_px, cfg.dof_edge_ratio)
            self.priors[v.frame.id] = (d, c)
            self.lenses[v.frame.id] = view_lenses(d, float(v.K[0, 0]), cfg)

    def __call__(self, step: int, view: View, out: RenderOutput) -> dict[str, torch.Tensor]:
        weight = self.weight * ramp_in(step, self.start) * fade_out(step, self.iters, self.fade_from)
        if weight == 0.0:
            return {}
        prior, conf = self.priors[view.frame.id]
        lenses = self.lenses[view.frame.id]
        if 0 < self.per_step < len(lenses):  # rotate through the lenses: same average, a fraction of the cost
            first = (step * self.per_step) % len(lenses)
            lenses = [lenses[(first + i) % len(lenses)] for i in range(self.per_step)]
        depth, alpha = (out.depth, out.alpha) if self.depth_gradient else (out.depth.detach(), out.alpha.detach())
        pred_depth = composite_depth(depth, alpha)[None, None]
        pred_rgb, gt_rgb = out.rgb.permute(2, 0, 1)[None], view.image.permute(2, 0, 1)[None]
        loss = sum(dof_loss(pred_rgb, pred_depth, gt_rgb, prior, conf, view.K[0, 0], lens.focus_m, lens.aperture_m,
                            mask=lens.mask, max_coc_px=lens.max_coc_px) for lens in lenses) / len(lenses)
        return {"dof": weight * loss}
