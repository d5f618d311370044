"""Edge-aware densification of sparse metric depth (projected LiDAR or SfM points) within a bounded radius.

Depth is z-depth in metres, 0 = unknown; pixels follow the scene's convention (pixel centres at +0.5).
"""

from __future__ import annotations

import math

import numpy as np


def auto_radius(sparse: np.ndarray, lo: int = 2, hi: int = 16) -> int:
    """A densification radius (pixels) from the sparse coverage: 1.5 x the mean sample spacing."""
    cov = float((sparse > 0).mean())
    if cov <= 0:
        return lo
    return int(np.clip(math.ceil(1.5 / math.sqrt(cov)), lo, hi))


def densify(
    sparse: np.ndarray,
    image: np.ndarray | None = None,
    radius_px: int | None = None,
    sigma_color: float = 0.1,
    depth_tol: float = 0.15,
    decay_px: float | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Fill a sparse metric depth map edge-aware, within a bounded radius; returns ``(depth, confidence)``.

    Interpolation is a weighted mean in inverse depth over the measured pixels within ``radius_px`` (a disk):
    spatial Gaussian weight (sigma = radius / 2) times a colour-similarity weight from ``image`` (float RGB in
    [0, 1], Gaussian with ``sigma_color``) times a depth-consistency weight that keeps only samples on the
    same surface as the *best* sample (the one with the largest spatial x colour weight): a log inverse-depth
    difference above ``depth_tol`` per pixel of distance (Gaussian falloff; slanted surfaces change depth with
    distance) is suppressed, so foreground and background are not averaged into a depth that exists nowhere.
    Measured pixels keep their measurement. A pixel is filled only *between* samples of its surface (within
    ``radius_px`` in two opposite 45-degree sectors): no extrapolation past the edge of the coverage (beyond the
    LiDAR's range) nor into a gap between two surfaces. Other pixels stay 0.

    Confidence is 1 at measured pixels and ``exp(-dist / decay_px)`` elsewhere (``dist`` = distance in pixels to
    the nearest measured pixel, ``decay_px`` defaults to ``radius_px / 2``), 0 where no depth was filled.
    Runs in torch on ``device`` (CPU by default; a CUDA device is much faster for large images).
    """
    import torch
    from scipy.ndimage import distance_transform_edt

    sparse = np.asarray(sparse, dtype=np.float32)
    H, W = sparse.shape
    has = sparse > 0
    if not has.any():
        return np.zeros_like(sparse), np.zeros_like(sparse)
    R = auto_radius(sparse) if radius_px is None else int(radius_px)
    R = max(R, 1)
    decay = R / 2.0 if decay_px is None else float(decay_px)
    dist = distance_transform_edt(~has).astype(np.float32)

    dev = torch.device(device)
    inv = torch.from_numpy(np.where(has, 1.0 / np.where(has, sparse, 1.0), 0.0).astype(np.float32)).to(dev)
    hs = torch.from_numpy(has.astype(np.float32)).to(dev)
    img = None
    if image is not None:
        img = torch.from_numpy(np.asarray(image, dtype=np.float32).reshape(H, W, -1)).to(dev).permute(2, 0, 1)
    pad = (R, R, R, R)
    inv_p = torch.nn.functional.pad(inv[None], pad)[0]
    has_p = torch.nn.functional.pad(hs[None], pad)[0]
    img_p = torch.nn.functional.pad(img, pad, mode="replicate") if img is not None else None
    offsets = [(dy, dx) for dy in range(-R, R + 1) for dx in range(-R, R + 1) if dy * dy + dx * dx <= R * R]
    sig_s2 = 2.0 * (R / 2.0) ** 2

    def window(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        return t[..., R + dy:R + dy + H, R + dx:R + dx + W]

    def base_weight(dy: int, dx: int) -> torch.Tensor:
        w = window(has_p, dy, dx) * math.exp(-(dy * dy + dx * dx) / sig_s2)
        if img_p is not None and img is not None:
            diff = ((window(img_p, dy, dx) - img) ** 2).sum(0)
            w = w * torch.exp(-diff / (2.0 * sigma_color**2))
        return w

    # pass 1: the best sample per pixel defines which surface the pixel is on
    best_w = torch.zeros(H, W, device=dev)
    ref = torch.zeros(H, W, device=dev)
    for dy, dx in offsets:
        w = base_weight(dy, dx)
        better = w > best_w
        best_w = torch.where(better, w, best_w)
        ref = torch.where(better, window(inv_p, dy, dx), ref)
    # pass 2: robust weighted mean in inverse depth of the samples on that surface
    acc = torch.zeros(H, W, device=dev)
    acc_w = torch.zeros(H, W, device=dev)
    # samples on that surface are also marked per 45-degree sector: a pixel is filled only *between* samples
    # of its surface (two opposite sectors), never extrapolated past the edge of the coverage (beyond the LiDAR's
    # range, above the last scan line) nor into a gap between two different surfaces
    sector = torch.zeros(8, H, W, dtype=torch.bool, device=dev)
    log_ref = torch.log(ref.clamp_min(1e-12))
    for dy, dx in offsets:
        s = window(inv_p, dy, dx)
        tol = depth_tol * max(1.0, math.hypot(dy, dx))  # a slanted surface changes depth with distance
        z = (torch.log(s.clamp_min(1e-12)) - log_ref) / tol
        w = base_weight(dy, dx) * torch.exp(-0.5 * z**2)
        acc += w * s
        acc_w += w
        if dy or dx:
            k = int(round(math.atan2(dy, dx) / (math.pi / 4))) % 8
            sector[k] |= (window(has_p, dy, dx) > 0) & (z.abs() < 2.0)
    between = (sector[:4] & sector[4:]).any(0)
    filled = (acc_w > 1e-12) & (ref > 0) & between
    dense_inv = torch.where(filled, acc / acc_w.clamp_min(1e-12), torch.zeros_like(acc))
    dense_inv = torch.where(hs > 0, inv, dense_inv)  # measurements are kept exactly
    dense_inv_np = dense_inv.cpu().numpy()
    ok = (dense_inv_np > 0) & (dist <= R)
    depth = np.where(ok, 1.0 / np.where(ok, dense_inv_np, 1.0), 0.0).astype(np.float32)
    conf = np.where(ok, np.exp(-dist / max(decay, 1e-6)), 0.0).astype(np.float32)
    return depth, conf
