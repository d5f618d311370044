"""Depth losses against sparse metric depth (LiDAR, SfM). Pure functions of tensors.

Depths are z-depth in metres (B, 1, H, W) or (H, W); a target of 0 means "no measurement".
"""

from __future__ import annotations

import torch


def sparse_depth_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                      kind: str = "inverse_l1") -> torch.Tensor:
    """Robust error of rendered depth at pixels with a measurement.

    ``inverse_l1`` compares inverse depths scaled by the target (equal to relative error |d - t| / d), which keeps
    far points from dominating and matches how defocus and disparity behave; ``l1`` is plain metres.
    """
    valid = target > 0
    if weight is not None:
        valid = valid & (weight > 0)
    if not bool(valid.any()):
        return pred.sum() * 0.0
    p, t = pred[valid], target[valid]
    w = weight[valid] if weight is not None else torch.ones_like(t)
    if kind == "inverse_l1":
        err = (t / p.clamp_min(1e-3) - 1.0).abs()
    elif kind == "l1":
        err = (p - t).abs()
    else:
        raise ValueError(f"unknown depth loss kind {kind!r}")
    return (err * w).sum() / w.sum().clamp_min(1e-6)


def sky_alpha_loss(alpha: torch.Tensor, sky_mask: torch.Tensor) -> torch.Tensor:
    """Push accumulated opacity to 0 on sky pixels (``sky_mask`` 1 = sky), binary cross-entropy style."""
    if not bool((sky_mask > 0).any()):
        return alpha.sum() * 0.0
    a = alpha.clamp(1e-5, 1 - 1e-5)
    return (-torch.log(1 - a) * sky_mask).sum() / sky_mask.sum().clamp_min(1.0)
