"""Depth-of-field loss: compare the *defocused* prediction with the *defocused* ground truth. Pure tensor maths.

For each of K virtual focus distances the rendered image is blurred with the rendered depth and the ground-truth
image with the prior depth (same thin lens, :func:`recon.optics.defocus`); the two are compared with
``(1 - w) * L1 + w * (1 - SSIM)``. Where the rendered depth is wrong, its blur is wrong in textured regions, so the
gradient reaches the rendered depth through the soft layer weights of the defocus convolution.

Shapes: images ``[B, 3, H, W]`` in [0, 1]; depths ``[B, 1, H, W]`` metres (prior 0 = unknown); ``fx [B]`` pixels;
``focus_m [B, K]`` metres; ``aperture_m [B]`` or ``[B, K]`` metres (virtual lens: it need not be the real one; use
:func:`calibrated_aperture` to set the blur strength in pixels).
"""

from __future__ import annotations

from typing import Any

import torch

from recon.losses.photometric import ssim_map
from recon.optics.defocus import defocus

DEFAULT_FOCUS_M = 10.0


def _as_bk(v: Any, b: int, k: int, ref: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(v, device=ref.device, dtype=ref.dtype)
    if t.ndim == 0:
        return t.expand(b, k)
    if t.ndim == 1:
        return t.reshape(-1, 1).expand(b, k)
    return t.expand(b, k)


def focus_distances_from_prior(depth: torch.Tensor, k: int, lo: float = 0.1, hi: float = 0.9) -> torch.Tensor:
    """``[B, K]`` focus distances (metres): quantiles of the valid (> 0) prior depth, evenly spaced in inverse depth.

    The quantiles run from ``lo`` to ``hi`` of the valid inverse depths of each image; an image without any valid
    depth gets ``DEFAULT_FOCUS_M``.
    """
    b = depth.shape[0]
    qs = torch.linspace(lo, hi, k, device=depth.device, dtype=depth.dtype) if k > 1 else \
        torch.full((1,), 0.5 * (lo + hi), device=depth.device, dtype=depth.dtype)
    out = torch.full((b, k), DEFAULT_FOCUS_M, device=depth.device, dtype=depth.dtype)
    for i in range(b):
        d = depth[i].detach().flatten()
        d = d[torch.isfinite(d) & (d > 0)]
        if d.numel():
            out[i] = 1.0 / torch.quantile(1.0 / d, qs).clamp_min(1e-6)
    return out


def depth_range_from_prior(depth: torch.Tensor, lo: float = 0.02, hi: float = 0.98) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
    """Robust near and far depth ``[B]`` (metres) of the valid prior: the ``lo`` / ``hi`` quantiles."""
    near, far = [], []
    for i in range(depth.shape[0]):
        d = depth[i].detach().flatten()
        d = d[torch.isfinite(d) & (d > 0)]
        if d.numel() == 0:
            d = torch.tensor([DEFAULT_FOCUS_M], device=depth.device, dtype=depth.dtype)
        q = torch.quantile(d, torch.tensor([lo, hi], device=d.device, dtype=d.dtype))
        near.append(q[0])
        far.append(q[1])
    return torch.stack(near), torch.stack(far)


def calibrated_aperture(fx: Any, near_m: Any, far_m: Any, focus_m: torch.Tensor,
                        target_max_blur_px: float = 8.0) -> torch.Tensor:
    """Aperture diameters ``[B, K]`` (metres) making the largest |CoC| over ``[near, far]`` equal the target (px).

    ``fx``, ``near_m``, ``far_m``: floats or ``[B]``; ``focus_m``: ``[B, K]``. The CoC is linear in inverse depth,
    so the maximum is at one end of the range (see :func:`recon.optics.aperture_for_max_blur`).
    """
    b, k = focus_m.shape
    fx_, near, far = (_as_bk(v, b, k, focus_m) for v in (fx, near_m, far_m))
    inv_f = 1.0 / focus_m
    per_a = fx_ * torch.maximum((1.0 / near - inv_f).abs(), (1.0 / far - inv_f).abs())
    return target_max_blur_px / per_a.clamp_min(1e-9)


def far_band_lens(depth: torch.Tensor, fx: Any, target_max_blur_px: float, band_q: float = 0.7,
                  far_q: float = 0.98) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A virtual lens calibrated on the far band of the prior alone: ``(focus [B, 1], aperture [B, 1], near [B])``.

    Blur is linear in inverse depth, so a lens calibrated over the whole depth range gives everything beyond a few
    tens of metres a fraction of a pixel of blur and the loss no gradient there. This lens focuses at the prior's
    ``far_q`` depth quantile and its aperture makes the CoC at the ``band_q`` quantile (metres) equal
    ``target_max_blur_px``; ``near`` is that band edge. Nearer pixels saturate (``max_coc_px`` of :func:`dof_loss`).
    """
    near, far = depth_range_from_prior(depth, band_q, far_q)
    f = torch.maximum(far, near * 1.5).reshape(-1, 1)  # keep the band at least 1.5x deep
    return f, calibrated_aperture(fx, near, f[:, 0], f, target_max_blur_px), near


def occlusion_edge_mask(depth: torch.Tensor, radius_px: int, ratio: float = 1.3) -> torch.Tensor:
    """``[B, 1, H, W]`` weights: 0 within ``radius_px`` of a depth discontinuity of ``depth`` (metres, 0 = unknown),
    1 elsewhere.

    A discontinuity is a window of side ``2 radius_px + 1`` whose farthest known depth exceeds its nearest by more
    than ``ratio``. There a densified prior is least trustworthy (interpolation, and a LiDAR that sees around the
    camera's occluding edges from its own viewpoint), and the thin-lens layer model's blur is most sensitive to it.
    """
    if radius_px <= 0:
        return torch.ones_like(depth)
    k = 2 * int(radius_px) + 1
    known = depth > 0
    far = torch.nn.functional.max_pool2d(torch.where(known, depth, 0.0), k, stride=1, padding=radius_px)
    inv = torch.where(known, 1.0 / depth.clamp_min(1e-6), 0.0)
    near_inv = torch.nn.functional.max_pool2d(inv, k, stride=1, padding=radius_px)
    edge = far * near_inv > ratio  # far / near, both taken over the known pixels of the window
    return (~edge).to(depth.dtype)


def dof_loss(pred_rgb: torch.Tensor, pred_depth: torch.Tensor, gt_rgb: torch.Tensor, prior_depth: torch.Tensor,
             prior_conf: torch.Tensor | None, fx: Any, focus_m: torch.Tensor, aperture_m: Any,
             ssim_weight: float = 0.2, *, kernel: str = "disk", layer_step_px: float = 2.0,
             fill_hidden: bool = False, mask: torch.Tensor | None = None,
             max_coc_px: float | None = None) -> torch.Tensor:
    """Depth-of-field loss (scalar), averaged over the K focus distances.

    Pixels are weighted by ``prior_conf`` (1 where None) and by ``prior_depth > 0``; the ground truth is blurred
    with the prior depth, filled with the (detached) rendered depth where the prior is unknown so the blur stays
    defined there. ``mask`` ``[B, 1, H, W]`` multiplies the weights (e.g. to drop the ego vehicle).
    ``fill_hidden`` is off by default: it doubles the cost and matters little for a loss. ``layer_step_px`` = 2 (CoC
    spacing of the soft layers) costs about half the time of 1 px for <= 0.2 dB against lens-sampled truth.
    ``max_coc_px`` saturates both blurs smoothly (for a lens calibrated on one band, see :func:`far_band_lens`).
    """
    b = pred_rgb.shape[0]
    if focus_m.ndim == 1:
        focus_m = focus_m.reshape(b, -1)
    k = focus_m.shape[1]
    ap = _as_bk(aperture_m, b, k, pred_depth)
    fx_b = _as_bk(fx, b, 1, pred_depth)[:, 0]
    valid = prior_depth > 0
    weight = valid.to(pred_rgb.dtype)
    if prior_conf is not None:
        weight = weight * prior_conf.clamp_min(0.0)
    if mask is not None:
        weight = weight * mask
    wsum = weight.sum().clamp_min(1e-6)
    gt_depth = torch.where(valid, prior_depth, pred_depth.detach().clamp_min(1e-3))
    pred_depth = pred_depth.clamp_min(1e-3)
    total = pred_rgb.new_zeros(())
    for j in range(k):
        # no mixed-pixel split: rendered depth is alpha-blended, so silhouette pixels already carry an in-between
        # depth, and both sides must go through the same operator
        args = dict(kernel=kernel, layer_step_px=layer_step_px, fill_hidden=fill_hidden, max_coc_px=max_coc_px,
                    split_mixed=False)
        pb = defocus(pred_rgb, pred_depth, fx_b, ap[:, j], focus_m[:, j], **args)
        with torch.no_grad():
            gb = defocus(gt_rgb, gt_depth, fx_b, ap[:, j], focus_m[:, j], **args)
        per_px = (1.0 - ssim_weight) * (pb - gb).abs().mean(1, keepdim=True)
        if ssim_weight > 0:
            per_px = per_px + ssim_weight * (1.0 - ssim_map(pb, gb).mean(1, keepdim=True))
        total = total + (per_px * weight).sum() / wsum
    return total / k
