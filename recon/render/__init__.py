"""Rendering: :func:`rasterize` (gsplat CUDA kernels on GPU, recon's tile rasterizer on CPU; one signature)."""

from .api import rasterize

__all__ = ["rasterize"]
