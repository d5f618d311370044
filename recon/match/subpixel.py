"""Sub-pixel refinement of detector keypoints on the detector's own score map.

A detector such as XFeat reports the whole pixels where its score map has a local maximum. The map's values around
that pixel say where, between pixels, the peak lies. Two ways to read them (``mode``):

- ``quadratic``: a 2D quadratic fitted to the *log* of the score in the 3x3 window (gradient and Hessian by central
  differences, as SIFT refines its extrema), whose maximum is the refined position. It is exact for a Gaussian peak
  of any covariance, and for XFeat the log-score is the keypoint head's logit up to a per-8x8-cell constant.
- ``softargmax``: the score-weighted mean position in the 3x3 window (the soft-argmax of the log-score at
  temperature 1, as ALIKED and DISK read theirs). It is biased towards the window's centre for wide peaks.

Coordinates: ``(x, y)`` = (column, row) in the score map's own pixel frame, where the centre of pixel ``(i, j)`` is
at ``(i, j)`` (kornia's frame; add 0.5 for recon's pixel-centre frame). Offsets are clamped to half a pixel per
axis, so a keypoint never leaves its pixel. Along an axis where the window runs off the map (a keypoint on the first
or last row or column) the position is kept, and the other axis is refined alone.
"""

from __future__ import annotations

from typing import Literal

import torch

from recon.errors import ReconError

SubpixelMode = Literal["none", "quadratic", "softargmax"]
SUBPIXEL_MODES: tuple[str, ...] = ("none", "quadratic", "softargmax")


def _windows(logscore: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, 3) values around each pixel (rows y-1..y+1, columns x-1..x+1; off-map entries repeat the edge) and
    whether the x and y neighbours lie on the map, (N,) booleans each."""
    H, W = logscore.shape
    x, y = xy[:, 0], xy[:, 1]
    d = torch.arange(-1, 2, device=xy.device)
    cols = (x[:, None] + d).clamp(0, W - 1)
    rows = (y[:, None] + d).clamp(0, H - 1)
    win = logscore[rows[:, :, None], cols[:, None, :]]
    return win, (x > 0) & (x < W - 1), (y > 0) & (y < H - 1)


def _quadratic(win: torch.Tensor, has_x: torch.Tensor, has_y: torch.Tensor) -> torch.Tensor:
    c = win[:, 1, 1]
    gx = (win[:, 1, 2] - win[:, 1, 0]) / 2
    gy = (win[:, 2, 1] - win[:, 0, 1]) / 2
    hxx = win[:, 1, 2] - 2 * c + win[:, 1, 0]
    hyy = win[:, 2, 1] - 2 * c + win[:, 0, 1]
    hxy = (win[:, 2, 2] - win[:, 2, 0] - win[:, 0, 2] + win[:, 0, 0]) / 4
    zero = torch.zeros_like(c)
    # both axes: the maximum of the fitted paraboloid, where its Hessian is negative definite
    det = hxx * hyy - hxy * hxy
    both = has_x & has_y & (hxx < 0) & (det > 0)
    safe = torch.where(both, det, torch.ones_like(det))
    dx2 = -(hyy * gx - hxy * gy) / safe
    dy2 = -(hxx * gy - hxy * gx) / safe
    # one axis: a parabola through the three values along it
    only_x = has_x & ~both & (hxx < 0)
    only_y = has_y & ~both & (hyy < 0)
    dx1 = -gx / torch.where(only_x, hxx, torch.ones_like(hxx))
    dy1 = -gy / torch.where(only_y, hyy, torch.ones_like(hyy))
    dx = torch.where(both, dx2, torch.where(only_x, dx1, zero))
    dy = torch.where(both, dy2, torch.where(only_y, dy1, zero))
    return torch.stack([dx, dy], 1)


def _softargmax(win: torch.Tensor, has_x: torch.Tensor, has_y: torch.Tensor) -> torch.Tensor:
    w = torch.softmax(win.reshape(len(win), 9), 1).reshape(-1, 3, 3)
    d = torch.arange(-1, 2, device=win.device, dtype=win.dtype)
    dx = (w.sum(1) * d).sum(1)
    dy = (w.sum(2) * d).sum(1)
    return torch.stack([torch.where(has_x, dx, 0.0), torch.where(has_y, dy, 0.0)], 1)


def subpixel_offsets(logscore: torch.Tensor, xy: torch.Tensor, mode: SubpixelMode = "quadratic") -> torch.Tensor:
    """Offsets (N, 2) float, in pixels of the map and within [-0.5, 0.5] per axis, that move the integer keypoints
    ``xy`` (N, 2) (x, y) of the (H, W) log-score map ``logscore`` (the natural log of a positive score) to their
    sub-pixel peaks; zeros for ``mode="none"``."""
    if mode not in SUBPIXEL_MODES:
        raise ReconError(f"unknown sub-pixel mode {mode!r} (choose {', '.join(SUBPIXEL_MODES)})")
    xy = xy.round().long().reshape(-1, 2)
    if mode == "none" or len(xy) == 0:
        return torch.zeros(len(xy), 2, dtype=logscore.dtype, device=logscore.device)
    win, has_x, has_y = _windows(logscore, xy)
    d = _quadratic(win, has_x, has_y) if mode == "quadratic" else _softargmax(win, has_x, has_y)
    return torch.nan_to_num(d, nan=0.0).clamp(-0.5, 0.5)


def refine_keypoints(logscore: torch.Tensor, xy: torch.Tensor, mode: SubpixelMode = "quadratic") -> torch.Tensor:
    """The integer keypoints ``xy`` (N, 2) moved to their sub-pixel peaks on ``logscore`` (see
    :func:`subpixel_offsets`), as float in the map's frame (pixel centres on integers)."""
    return xy.to(logscore.dtype) + subpixel_offsets(logscore, xy, mode)
