"""Random Gaussians in front of an OpenCV camera at the origin, for the rasterizer tests (seeded, float64 default)."""

from __future__ import annotations

import torch


def random_gaussians(n: int = 60, seed: int = 0, dtype: torch.dtype = torch.float64, depth: float = 5.0,
                     spread: float = 1.2, channels: int = 3, sh: int | None = None) -> list[torch.Tensor]:
    """``[means, quats, scales, opacities, colours]``: means around ``depth`` metres ahead, random orientations,
    scales 3-28 cm, opacities 0.05-0.95; colours ``[n, channels]`` in [0, 1], or SH coefficients
    ``[n, (sh+1)^2, 3]`` when ``sh`` is a degree."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * torch.tensor([spread, spread * 0.7, 1.0], dtype=dtype)
    means[:, 2] += depth
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.25 + 0.03
    opac = torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05
    if sh is None:
        colors = torch.rand(n, channels, generator=g, dtype=dtype)
    else:
        colors = torch.randn(n, (sh + 1) ** 2, 3, generator=g, dtype=dtype) * 0.3
    return [means, quats, scales, opac, colors]
