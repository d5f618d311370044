"""Real spherical harmonics colours (degrees 0-4), the same basis and sign convention as gsplat / 3DGS."""

from __future__ import annotations

import torch
from torch import Tensor

C0 = 0.28209479177387814


def sh_bases(num_bases: int, dirs: Tensor) -> Tensor:
    """SH basis values [..., num_bases] at unit directions ``dirs`` [..., 3] (Sloan's fast evaluation order)."""
    if num_bases not in (1, 4, 9, 16, 25):
        raise ValueError(f"number of SH bases must be a square of 1..5, got {num_bases}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if num_bases > 1:
        a = 0.48860251190292
        out += [-a * y, a * z, -a * x]
    if num_bases > 4:
        z2 = z * z
        tb = -1.092548430592079 * z
        ta = 0.5462742152960395
        c1, s1 = x * x - y * y, 2 * x * y
        out += [ta * s1, tb * y, 0.9461746957575601 * z2 - 0.3153915652525201, tb * x, ta * c1]
    if num_bases > 9:
        tc = -2.285228997322329 * z2 + 0.4570457994644658
        tb = 1.445305721320277 * z
        ta = -0.5900435899266435
        c2, s2 = x * c1 - y * s1, x * s1 + y * c1
        out += [ta * s2, tb * s1, tc * y, z * (1.865881662950577 * z2 - 1.119528997770346), tc * x, tb * c1, ta * c2]
    if num_bases > 16:
        td = z * (-4.683325804901025 * z2 + 2.007139630671868)
        tc = 3.31161143515146 * z2 - 0.47308734787878
        tb = -1.770130769779931 * z
        ta = 0.6258357354491763
        c3, s3 = x * c2 - y * s2, x * s2 + y * c2
        p40 = 1.984313483298443 * z2 * (1.865881662950577 * z2 - 1.119528997770346) - 1.006230589874905 * (
            0.9461746957575601 * z2 - 0.3153915652525201
        )
        out += [ta * s3, tb * s2, tc * s1, td * y, p40, td * x, tc * c1, tb * c2, ta * c3]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Colour [..., 3] from SH ``coeffs`` [..., K, 3] using the first (degree + 1)^2 bases, view ``dirs`` [..., 3].

    ``dirs`` need not be normalised (Gaussian centre minus camera centre, metres). Returns the raw SH sum; the
    rasterizer adds 0.5 and clamps at 0 like gsplat.
    """
    n = (degree + 1) ** 2
    if coeffs.shape[-2] < n:
        raise ValueError(f"sh_degree {degree} needs {n} coefficients, got {coeffs.shape[-2]}")
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if n == 1:
        return C0 * coeffs[..., 0, :]
    return (sh_bases(n, d)[..., None] * coeffs[..., :n, :]).sum(dim=-2)
