"""Brute-force dense reference rasterizer: every visible Gaussian evaluated at every pixel, sorted by depth.

Independent of tiling and binning; same cut-offs as gsplat (skip alpha < 1/255 or sigma < 0, alpha clamp 0.999,
exclusive stop at transmittance <= 1e-4). Plain autograd, so its gradients check the tiled rasterizer's backward.
Memory grows as pixels x Gaussians: for tests and small benchmark configurations only. The whole CPU pipeline
with this compositor is :func:`recon.render.cpu_backend.reference_rasterize`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .composite import ALPHA_THRESHOLD, MAX_ALPHA, T_EPS


def dense_composite(
    means2d: Tensor,
    conics: Tensor,
    colors: Tensor,
    opacities: Tensor,
    depths: Tensor,
    radii: Tensor,
    backgrounds: Tensor | None,
    width: int,
    height: int,
    pixel_chunk: int = 4096,
) -> tuple[Tensor, Tensor]:
    """Composite per camera: inputs [C, N, ...] (unpacked, radii 0 = culled); returns colours [C, H, W, D], alphas.

    Pixels are processed ``pixel_chunk`` at a time (each chunk keeps its own autograd graph).
    """
    n_cam = means2d.shape[0]
    d = colors.shape[-1]
    dev, dt = colors.device, colors.dtype
    ys, xs = torch.meshgrid(torch.arange(height, device=dev), torch.arange(width, device=dev), indexing="ij")
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).to(means2d.dtype) + 0.5  # [P, 2]
    outs, alphas = [], []
    for c in range(n_cam):
        vis = (radii[c] > 0).all(-1).nonzero().squeeze(1)
        order = vis[torch.argsort(depths[c, vis].detach(), stable=True)]
        m, con, col, op = means2d[c, order], conics[c, order], colors[c, order], opacities[c, order]
        img_c, img_a = [], []
        for s in range(0, pix.shape[0], pixel_chunk):
            p = pix[s : s + pixel_chunk]
            dx = m[None, :, 0] - p[:, 0:1]
            dy = m[None, :, 1] - p[:, 1:2]
            sigma = 0.5 * (con[None, :, 0] * dx**2 + con[None, :, 2] * dy**2) + con[None, :, 1] * dx * dy
            alpha = torch.clamp(op[None, :] * torch.exp(-sigma), max=MAX_ALPHA)
            ok = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
            a = torch.where(ok, alpha, torch.zeros_like(alpha))
            keep = torch.cumprod(1 - a, dim=1) > T_EPS
            a = torch.where(keep, a, torch.zeros_like(a))
            ones = torch.ones(a.shape[0], 1, dtype=a.dtype, device=a.device)
            trans = torch.cumprod(torch.cat([ones, 1 - a], dim=1), dim=1)
            w = a * trans[:, :-1]
            t_final = trans[:, -1]
            rgb = w @ col if col.shape[0] else torch.zeros(p.shape[0], d, device=dev, dtype=dt)
            if backgrounds is not None:
                rgb = rgb + t_final[:, None] * backgrounds[c][None, :]
            img_c.append(rgb)
            img_a.append(1 - t_final)
        outs.append(torch.cat(img_c).reshape(height, width, d))
        alphas.append(torch.cat(img_a).reshape(height, width, 1))
    return torch.stack(outs), torch.stack(alphas)
