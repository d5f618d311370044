"""Vectorised tile binning: (Gaussian, tile) intersections sorted by image, tile, then depth (gsplat's order)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Bins:
    """Intersections of projected Gaussians with the tiles of I images.

    ``flatten_ids`` [M] index the flattened [I * N] Gaussians; ``isect_ids`` [M] are gsplat's 64-bit keys
    (image | tile | float32 depth bits); ``tile_offsets`` [I, tile_height, tile_width] int32 are the start of each
    tile's range in ``flatten_ids`` (the range ends where the next tile starts, the last one at M).
    """

    tiles_per_gauss: Tensor  # [I, N] int32
    isect_ids: Tensor  # [M] int64
    flatten_ids: Tensor  # [M] int32
    tile_offsets: Tensor  # [I, tile_height, tile_width] int32
    tile_width: int
    tile_height: int


def tile_grid(width: int, height: int, tile_size: int) -> tuple[int, int]:
    """Number of tiles (across, down) covering a width x height image."""
    return math.ceil(width / tile_size), math.ceil(height / tile_size)


@torch.no_grad()
def isect_tiles(
    means2d: Tensor, radii: Tensor, depths: Tensor, tile_size: int, tile_width: int, tile_height: int
) -> Bins:
    """Bin Gaussians ``means2d`` [I, N, 2], ``radii`` [I, N, 2] (int, 0 = culled), ``depths`` [I, N] into tiles.

    Box rule as gsplat's IntersectTile.cu (float32): tiles [floor((m - r) / ts), ceil((m + r) / ts)) clamped to the
    grid. One sort on a (image, tile, depth-bits) key; ties keep Gaussian order (stable sort).
    """
    n_img, n = depths.shape
    dev = means2d.device
    m = means2d.detach().float().reshape(-1, 2) / tile_size
    r = radii.reshape(-1, 2).float() / tile_size
    lo = torch.floor(m - r)
    hi = torch.ceil(m + r)
    lim = torch.tensor([tile_width, tile_height], device=dev, dtype=torch.float32)
    lo = torch.minimum(lo.clamp_min(0), lim).long()
    hi = torch.minimum(hi.clamp_min(0), lim).long()
    span = (hi - lo).clamp_min(0)
    visible = (radii.reshape(-1, 2) > 0).all(dim=-1)
    counts = span[:, 0] * span[:, 1] * visible
    tiles_per_gauss = counts.reshape(n_img, n).int()

    sel = counts.nonzero().squeeze(1)  # flattened Gaussian ids with at least one tile
    cnt = counts[sel]
    total = int(cnt.sum().item()) if sel.numel() else 0
    n_tiles = tile_width * tile_height
    if total == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=dev)
        offsets = torch.zeros((n_img, tile_height, tile_width), dtype=torch.int32, device=dev)
        return Bins(tiles_per_gauss, empty, empty.int(), offsets, tile_width, tile_height)
    gid = sel.repeat_interleave(cnt)  # [M]
    # rank of each pair inside its Gaussian's box -> (tx, ty)
    starts = torch.cumsum(cnt, 0) - cnt
    local = torch.arange(total, device=dev) - starts.repeat_interleave(cnt)
    w = span[gid, 0]
    tx = lo[gid, 0] + local % w
    ty = lo[gid, 1] + local // w
    img = gid // n
    tile_key = img * n_tiles + ty * tile_width + tx
    depth_bits = depths.detach().float().reshape(-1)[gid].view(torch.int32).long() & 0xFFFFFFFF
    tile_bits = max(n_tiles.bit_length(), 1)
    isect_ids = (img << (32 + tile_bits)) | ((ty * tile_width + tx) << 32) | depth_bits
    key = (tile_key << 32) | depth_bits
    key, order = torch.sort(key, stable=True)
    flatten_ids = gid[order].int()
    isect_ids = isect_ids[order]
    per_tile = torch.bincount(key >> 32, minlength=n_img * n_tiles)
    offsets = (torch.cumsum(per_tile, 0) - per_tile).int().reshape(n_img, tile_height, tile_width)
    return Bins(tiles_per_gauss, isect_ids, flatten_ids, offsets, tile_width, tile_height)


@torch.no_grad()
def isect_tiles_cpp(
    means2d: Tensor, radii: Tensor, depths: Tensor, tile_size: int, tile_width: int, tile_height: int
) -> Bins:
    """:func:`isect_tiles` in the C++ extension (one radix sort by depth, then a counting sort into tiles)."""
    from .cpp_ext import load_extension

    tpg, isect_ids, flatten_ids, offsets = load_extension().isect_tiles(
        means2d.detach().contiguous(), radii.contiguous(), depths.detach().contiguous(), tile_size, tile_width,
        tile_height,
    )
    return Bins(tpg, isect_ids, flatten_ids, offsets, tile_width, tile_height)
