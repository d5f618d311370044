"""Multi-view depth loss: pull rendered depth toward triangulated depth at matched pixels, robustly and weighted.

Residual: the difference of log depths, ``r = log(rendered) - log(target)``, a relative error (r ~ 0.05 means 5 %)
that treats near and far points alike in relative terms and is symmetric in over- and under-estimation. Triangulated
depth is itself accurate in relative terms (its error per pixel of match noise is a fraction of the depth), so a
relative residual fits its noise better than metres would; inverse depth would weight near points far more.

Sampling: rendered depth is sampled bilinearly at the matched pixels with the pixel-centre convention (the centre of
pixel (u, v) is at (u + 0.5, v + 0.5)); points outside the image are ignored. Rendered depth below ``min_depth``
(empty pixels) is clamped there, so such a pixel still pulls toward its target with a bounded robust gradient.

Robust penalties rho(r) with scale ``s`` (same units as r):
``l1``: |r|; ``huber``: r^2 / (2 s) for |r| <= s, |r| - s / 2 beyond; ``cauchy``: (s / 2) log(1 + (r / s)^2).
Huber and Cauchy agree with r^2 / (2 s) near 0.

Normalisation: ``"count"`` returns sum(w rho) / N over the N valid points, so weights act as absolute confidences:
with weights averaging 1 over a scene (the trainer rescales them so), a view whose points are unreliable pulls its
depth less than one whose points are well triangulated. ``"weights"`` returns the weighted mean sum(w rho) / sum(w),
which pulls every view equally hard whatever its weights; on the synthetic street that costs image quality, because
the unreliable points that survive the triangulation filters sit mostly at occluding edges (a match on the
background pixel next to a foreground object carries the foreground's disparity, so its target is too near).

Asymmetry (``behind_scale``, default 1): the penalty is multiplied by ``behind_scale`` where the rendered surface
lies behind its target (r > 0). Below 1 it softens the pull of those too-near occlusion-edge targets, and with it the
pull on near objects rendered too far (background showing through weakly textured surfaces), which is most of what
the loss fixes at close range: a trade of near-band depth for image quality, off by default.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

RobustLoss = Literal["huber", "l1", "cauchy"]
Normalise = Literal["weights", "count"]


def sample_bilinear(image: torch.Tensor, pix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample (B, H, W) at pixel coordinates (B, M, 2) (pixel-centre convention): values (B, M) and in-image mask."""
    B, H, W = image.shape
    x = pix[..., 0].to(image.dtype)
    y = pix[..., 1].to(image.dtype)
    inside = (x >= 0) & (x <= W) & (y >= 0) & (y <= H)
    # align_corners=False maps -1 / +1 to the outer image edges, i.e. continuous coordinates 0 and W
    grid = torch.stack([2.0 * x / W - 1.0, 2.0 * y / H - 1.0], dim=-1)[:, :, None, :]  # (B, M, 1, 2)
    vals = F.grid_sample(image[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return vals[:, 0, :, 0], inside


def robust_penalty(r: torch.Tensor, loss: RobustLoss = "huber", scale: float = 0.05) -> torch.Tensor:
    """Element-wise robust penalty of residuals ``r`` (see the module docstring)."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    a = r.abs()
    if loss == "l1":
        return a
    if loss == "huber":
        return torch.where(a <= scale, 0.5 * r * r / scale, a - 0.5 * scale)
    if loss == "cauchy":
        return 0.5 * scale * torch.log1p((r / scale) ** 2)
    raise ValueError(f"unknown robust loss {loss!r} (choose huber, l1 or cauchy)")


def multiview_depth_loss(rendered_depth: torch.Tensor, pix: torch.Tensor, target_depth: torch.Tensor,
                         weights: torch.Tensor | None = None, loss: RobustLoss = "huber", scale: float = 0.05,
                         min_depth: float = 1e-3, behind_scale: float = 1.0,
                         normalise: Normalise = "weights") -> torch.Tensor:
    """Weighted robust log-depth error between rendered depth at matched pixels and triangulated depth.

    Shapes: ``rendered_depth`` (H, W) with ``pix`` (M, 2), ``target_depth`` (M,), ``weights`` (M,); or a batch
    (B, H, W) with (B, M, 2), (B, M), (B, M) (zero weights pad unequal counts), or with (M, 2)/(M,) shared by all
    B images. Depths in metres (z along the optical axis), pixels in the pixel-centre convention, ``scale`` in log
    depth units (0.05 ~ 5 %). ``behind_scale`` (>= 0) scales the penalty where rendered depth is farther than the
    target; ``normalise`` picks the weighted mean or the sum over the valid-point count (see the module docstring).
    Targets <= 0 or non-finite, and pixels outside the image, are ignored. Returns a scalar; 0 (still attached to
    ``rendered_depth``'s graph) when nothing is valid. Pure function, device-agnostic.
    """
    if rendered_depth.dim() == 2:
        rendered_depth = rendered_depth[None]
    if rendered_depth.dim() != 3:
        raise ValueError(f"rendered_depth must be (H, W) or (B, H, W), got {tuple(rendered_depth.shape)}")
    B = rendered_depth.shape[0]
    dev, dt = rendered_depth.device, rendered_depth.dtype
    pix = pix.to(dev, dt)
    target = target_depth.to(dev, dt)
    w = torch.ones_like(target) if weights is None else weights.to(dev, dt)
    if behind_scale < 0:
        raise ValueError(f"behind_scale must be >= 0, got {behind_scale}")
    if normalise not in ("weights", "count"):
        raise ValueError(f"unknown normalise {normalise!r} (choose weights or count)")
    if pix.dim() == 2:
        pix, target, w = pix[None].expand(B, -1, -1), target[None].expand(B, -1), w[None].expand(B, -1)
    if pix.shape[:2] != target.shape or target.shape != w.shape or pix.shape[0] != B or pix.shape[-1] != 2:
        raise ValueError(f"inconsistent shapes: pix {tuple(pix.shape)}, target {tuple(target.shape)}, "
                         f"weights {tuple(w.shape)} for depth {tuple(rendered_depth.shape)}")
    if pix.shape[1] == 0:
        return rendered_depth.sum() * 0.0
    sampled, inside = sample_bilinear(rendered_depth, pix)
    valid = inside & torch.isfinite(target) & (target > 0) & torch.isfinite(w) & (w > 0)
    safe_target = torch.where(valid, target, torch.ones_like(target))
    r = torch.log(sampled.clamp_min(min_depth)) - torch.log(safe_target)
    w = torch.where(valid, w, torch.zeros_like(w))
    r = torch.where(valid, r, torch.zeros_like(r))
    rho = robust_penalty(r, loss, scale)
    if behind_scale != 1.0:
        rho = torch.where(r > 0, behind_scale * rho, rho)
    total = (w * rho).sum()
    if normalise == "count":
        return total / valid.sum().clamp_min(1).to(dt)
    return total / w.sum().clamp_min(1e-12)
