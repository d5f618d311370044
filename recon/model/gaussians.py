"""The Gaussian parameters: a ``torch.nn.ParameterDict`` laid out the way gsplat's strategies expect.

Keys (N Gaussians, world frame, metres):
  ``means`` (N, 3); ``quats`` (N, 4) wxyz, unnormalised; ``scales`` (N, 3) log of the standard deviations;
  ``opacities`` (N,) logits; ``sh0`` (N, 1, 3) degree-0 SH coefficients; ``shN`` (N, K-1, 3) higher degrees.
"""

from __future__ import annotations

import math

import numpy as np
import torch

SH_C0 = 0.28209479177387814


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    """Degree-0 SH coefficient whose evaluation (plus gsplat's 0.5 offset) gives ``rgb``."""
    return (rgb - 0.5) / SH_C0


def knn_scale(xyz: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean distance to the ``k`` nearest neighbours of each point (metres), floored to avoid zero scales."""
    from scipy.spatial import cKDTree

    if len(xyz) <= 1:
        return np.full(len(xyz), 0.1, np.float32)
    k_eff = min(k + 1, len(xyz))
    d, _ = cKDTree(xyz).query(xyz, k=k_eff)
    d = d[:, 1:] if d.ndim == 2 else d[:, None]
    return np.maximum(d.mean(axis=1), 1e-3).astype(np.float32)


def create_gaussians(xyz: np.ndarray, rgb: np.ndarray, sh_degree: int = 3, init_opacity: float = 0.1,
                     init_scale: float = 1.0, seed: int = 0) -> torch.nn.ParameterDict:
    """Gaussians centred on ``xyz`` (N, 3) with colours ``rgb`` (N, 3), isotropic scales from k-NN distances."""
    gen = torch.Generator().manual_seed(seed)
    n = len(xyz)
    scale = torch.from_numpy(knn_scale(xyz)) * init_scale
    quats = torch.randn(n, 4, generator=gen)
    quats = quats / quats.norm(dim=-1, keepdim=True)
    k = (sh_degree + 1) ** 2
    params = {
        "means": torch.from_numpy(np.ascontiguousarray(xyz, dtype=np.float32)),
        "scales": torch.log(scale)[:, None].repeat(1, 3),
        "quats": quats,
        "opacities": torch.full((n,), math.log(init_opacity / (1 - init_opacity))),
        "sh0": rgb_to_sh0(torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)))[:, None, :],
        "shN": torch.zeros(n, k - 1, 3),
    }
    return torch.nn.ParameterDict({key: torch.nn.Parameter(v.float()) for key, v in params.items()})


def activated(params: torch.nn.ParameterDict) -> dict[str, torch.Tensor]:
    """Render-ready tensors: means, unit quats, scales (metres), opacities in (0, 1), SH coefficients (N, K, 3)."""
    return {
        "means": params["means"],
        "quats": params["quats"],
        "scales": torch.exp(params["scales"]),
        "opacities": torch.sigmoid(params["opacities"]),
        "sh": torch.cat([params["sh0"], params["shN"]], dim=1),
    }
