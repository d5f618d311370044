"""Photometric losses: L1 and SSIM between a rendered and a ground-truth image. Pure functions of tensors.

Images are (B, 3, H, W) float in [0, 1]; masks (B, 1, H, W) in [0, 1] weight pixels (e.g. to ignore ego-vehicle).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H, W) with a separable Gaussian window and reflect padding (same size output)."""
    c = a.shape[1]
    g = _gaussian_window(window, sigma, a.device, a.dtype)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    pad = window // 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    s_aa = blur(a * a) - mu_a**2
    s_bb = blur(b * b) - mu_b**2
    s_ab = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))


def _wmean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    m = mask.expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1e-6)


def l1_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return _wmean((pred - gt).abs(), mask)


def ssim_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 - mean SSIM."""
    return 1.0 - _wmean(ssim_map(pred, gt), mask)


def photometric_loss(pred: torch.Tensor, gt: torch.Tensor, ssim_lambda: float = 0.2,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """The 3DGS image loss: (1 - lambda) * L1 + lambda * (1 - SSIM)."""
    loss = (1.0 - ssim_lambda) * l1_loss(pred, gt, mask)
    if ssim_lambda > 0:
        loss = loss + ssim_lambda * ssim_loss(pred, gt, mask)
    return loss
