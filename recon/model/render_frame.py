"""Render one camera view of the Gaussians (+ sky) through ``recon.render.rasterize``.

Shared by the trainer and the evaluation so that the test-view metrics see the image training saw. Depth is the
expected z-depth (metres, OpenCV camera axes) of the Gaussians normalised by their accumulated opacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from recon.model.sky import SkyModel


@dataclass
class RenderOutput:
    """One rendered view. ``rgb`` (H, W, 3) with sky composited: clamped to [0, 1] when it carries no gradient
    (evaluation), left unclamped while training (so values may lie outside [0, 1] and the loss keeps its gradient);
    ``depth`` (H, W) metres; ``alpha`` (H, W) accumulated opacity of the Gaussians; ``info`` the rasterizer's info
    dict (for densification)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    info: dict[str, Any]


def apply_exposure(rgb: torch.Tensor, exposure: torch.Tensor | None, camera_index: int) -> torch.Tensor:
    """Per-camera affine colour correction: ``exposure`` is (n_cameras, 3, 4) [matrix | offset] or None."""
    if exposure is None:
        return rgb
    a = exposure[camera_index].to(rgb)
    return rgb @ a[:, :3].T + a[:, 3]


def render_frame(gaussians: dict[str, torch.Tensor], viewmat: torch.Tensor, K: torch.Tensor, width: int,
                 height: int, sh_degree: int, sky: SkyModel | None = None, backend: str = "auto",
                 antialiased: bool = False) -> RenderOutput:
    """Render ``gaussians`` (see :func:`recon.model.gaussians.activated`) from world-to-camera ``viewmat`` (4, 4)
    with intrinsics ``K`` (3, 3) at ``width`` x ``height`` pixels."""
    from recon.render import rasterize

    colors, alphas, info = rasterize(
        gaussians["means"], gaussians["quats"], gaussians["scales"], gaussians["opacities"], gaussians["sh"],
        viewmat[None], K[None], width, height, sh_degree=sh_degree, render_mode="RGB+ED",
        rasterize_mode="antialiased" if antialiased else "classic", backend=backend,
    )
    # views of the one camera's channels: their backward is a reshape and one concatenation, not a zero-filled
    # full-size buffer per index as with colors[0, ..., :3]
    rgb, depth = colors.squeeze(0).split((3, 1), dim=-1)
    depth, alpha = depth.squeeze(-1), alphas.squeeze(0).squeeze(-1)
    if sky is not None:
        rgb = sky.composite(rgb, alpha, viewmat, K, width, height)
    return RenderOutput(rgb=rgb.clamp(0.0, 1.0) if not rgb.requires_grad else rgb, depth=depth, alpha=alpha,
                        info=info)
