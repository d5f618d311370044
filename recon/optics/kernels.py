"""Aperture kernels (point-spread functions) whose weights are smooth functions of a continuous radius.

A kernel is described by :class:`ApertureKernel` (``disk``, ``gaussian`` or a regular polygon with ``blades``
sides, e.g. ``hexagon``). :func:`kernel_weights` samples it on a ``(2R+1)^2`` pixel grid for a batch of radii;
sizes never depend on a rounded radius, and the disk / polygon edge is anti-aliased with a one-pixel linear ramp,
so the weights vary continuously with the radius. ``radius`` is half the CoC diameter, in pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from recon.errors import ReconError

POLYGONS = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "heptagon": 7, "octagon": 8}
SHAPES = ("disk", "gaussian", *POLYGONS)


@dataclass(frozen=True)
class ApertureKernel:
    """An aperture shape: ``disk``, ``gaussian`` (same variance as the disk, sigma = r / 2) or ``polygon``.

    For ``polygon`` the circumradius equals the CoC radius; ``rotation_deg`` turns the blades.
    """

    shape: str = "disk"
    blades: int = 0
    rotation_deg: float = 0.0

    @property
    def point_symmetric(self) -> bool:
        """True when k(x) = k(-x) (its Fourier transform is then real)."""
        return self.shape != "polygon" or self.blades % 2 == 0


def parse_kernel(kernel: str | ApertureKernel) -> ApertureKernel:
    """An :class:`ApertureKernel` from a name (``disk``, ``gaussian``, ``hexagon``, ``polygon5``, ...)."""
    if isinstance(kernel, ApertureKernel):
        return kernel
    name = str(kernel).lower().strip()
    if name in ("disk", "gaussian"):
        return ApertureKernel(name)
    if name in POLYGONS:
        return ApertureKernel("polygon", POLYGONS[name])
    if name.startswith("polygon") and name[7:].isdigit() and int(name[7:]) >= 3:
        return ApertureKernel("polygon", int(name[7:]))
    raise ReconError(f"--shape: unknown aperture shape {kernel!r} (choose from {', '.join(SHAPES)} or polygonN)")


def kernel_half_size(max_radius: float) -> int:
    """Half size R of a grid that holds every kernel of radius <= ``max_radius`` (plus the anti-aliasing ramp)."""
    return int(math.ceil(max(float(max_radius), 0.0) + 1.0))


def kernel_weights(radius: torch.Tensor, half_size: int, kernel: str | ApertureKernel = "disk") -> torch.Tensor:
    """Normalised kernels ``[L, 2R+1, 2R+1]`` for radii ``[L]`` (pixels) on a grid of half size ``R``.

    Weights are continuous, piecewise-smooth functions of the radius; a radius of 0 gives a delta.
    """
    k = parse_kernel(kernel)
    r = radius.reshape(-1, 1, 1).abs()
    ax = torch.arange(-half_size, half_size + 1, device=radius.device, dtype=radius.dtype)
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    if k.shape == "gaussian":
        var = (r * r) / 4.0 + 1e-8  # a disk of radius r has per-axis variance r^2 / 4
        w = torch.exp(-(x * x + y * y) / (2.0 * var))
    elif k.shape == "disk":
        dist = torch.sqrt(x * x + y * y)
        w = (r + 0.5 - dist).clamp(0.0, 1.0)
    else:
        n = k.blades
        rot = math.radians(k.rotation_deg)
        phis = torch.tensor([rot + (2 * i + 1) * math.pi / n for i in range(n)], device=radius.device,
                            dtype=radius.dtype)
        # a regular polygon is {p : max_i <p, n_i> <= apothem}; ramp the edge over one pixel
        proj = (x[None] * torch.cos(phis)[:, None, None] + y[None] * torch.sin(phis)[:, None, None]).amax(0)
        w = (r * math.cos(math.pi / n) + 0.5 - proj).clamp(0.0, 1.0)
    return w / w.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
