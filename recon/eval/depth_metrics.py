"""Depth error metrics by range band: AbsRel, RMSE and delta < 1.25, against metric ground truth.

Conventions: depths in metres, z-depth along the camera's optical axis; a ground-truth value <= 0 (or not finite)
means unknown and is never evaluated. Bands are half-open ``[lo, hi)`` intervals of the *ground-truth* depth, so
a pixel falls in exactly one band. Depth is never normalised: a prediction with the wrong metric scale is
penalised, which is the point.

Metrics (over the valid pixels of a band, ``n`` of them):
- ``abs_rel``: mean(|pred - gt| / gt)
- ``rmse``: sqrt(mean((pred - gt)^2)), metres
- ``delta1``: fraction of pixels with max(pred / gt, gt / pred) < 1.25 (a pred <= 0 counts as a miss)
A band with no valid pixel reports ``n = 0`` and NaN metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BANDS: tuple[tuple[float, float], ...] = ((0.0, 10.0), (10.0, 40.0), (40.0, math.inf))
DEFAULT_BAND_NAMES = ("near", "mid", "far")
METRIC_NAMES = ("abs_rel", "rmse", "delta1")


def _to_numpy(x: Any) -> np.ndarray:
    """A float64 numpy copy of a numpy array or a torch tensor (any device, grad detached)."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch for numpy callers
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def band_name(lo: float, hi: float) -> str:
    """The name of a band: near/mid/far for the default bands, ``'lo-hi m'`` otherwise."""
    for (blo, bhi), name in zip(DEFAULT_BANDS, DEFAULT_BAND_NAMES):
        if lo == blo and hi == bhi:
            return name
    return f"{lo:g}-{hi:g} m" if math.isfinite(hi) else f">{lo:g} m"


def _metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    n = int(gt.size)
    if n == 0:
        return {"abs_rel": math.nan, "rmse": math.nan, "delta1": math.nan, "n": 0}
    err = pred - gt
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pred > 0, np.maximum(pred / gt, gt / np.where(pred > 0, pred, 1.0)), np.inf)
    return {
        "abs_rel": float(np.mean(np.abs(err) / gt)),
        "rmse": float(np.sqrt(np.mean(err * err))),
        "delta1": float(np.mean(ratio < 1.25)),
        "n": n,
    }


def depth_metrics(
    pred: Any,
    gt: Any,
    mask: Any | None = None,
    bands: Sequence[tuple[float, float]] = DEFAULT_BANDS,
) -> dict[str, dict[str, float]]:
    """AbsRel, RMSE (metres) and delta<1.25 for each band of ground-truth depth and overall.

    Args:
        pred: predicted metric depth, any shape (typically [H, W]), numpy array or torch tensor, metres.
        gt: ground-truth depth of the same shape, metres; valid where > 0 and finite.
        mask: optional bool array of the same shape; only True pixels are evaluated (e.g. where a sparse prior
            has a value, or outside the sky).
        bands: ``(lo, hi)`` pairs in metres; ``hi`` may be ``inf``.

    Returns:
        ``{"overall": {...}, "<band>": {...}, ...}`` where each entry holds ``abs_rel``, ``rmse``, ``delta1`` and
        ``n`` (number of pixels evaluated). Default band names are ``near`` (< 10 m), ``mid`` (10-40 m) and
        ``far`` (> 40 m).
    """
    p, g = _to_numpy(pred), _to_numpy(gt)
    if p.shape != g.shape:
        raise ValueError(f"depth_metrics: pred shape {p.shape} does not match gt shape {g.shape}")
    valid = np.isfinite(g) & (g > 0)
    if mask is not None:
        m = _to_numpy(mask).astype(bool)
        if m.shape != g.shape:
            raise ValueError(f"depth_metrics: mask shape {m.shape} does not match gt shape {g.shape}")
        valid &= m
    # a non-finite prediction is as wrong as a missing one: count it as 0 (AbsRel 1, a delta miss)
    p = np.where(np.isfinite(p), p, 0.0)
    pv, gv = p[valid], g[valid]
    out: dict[str, dict[str, float]] = {"overall": _metrics(pv, gv)}
    for lo, hi in bands:
        sel = (gv >= lo) & (gv < hi)
        out[band_name(lo, hi)] = _metrics(pv[sel], gv[sel])
    return out


def format_metrics(metrics: dict[str, dict[str, float]], label: str = "") -> str:
    """One line: ``label  overall AbsRel .. RMSE .. d1 .. | near ... | mid ... | far ...``."""
    parts = []
    for name, m in metrics.items():
        if m["n"] == 0:
            parts.append(f"{name}: n/a")
        else:
            parts.append(f"{name}: AbsRel {m['abs_rel']:.3f} RMSE {m['rmse']:.2f} m d1 {m['delta1']:.3f} "
                         f"(n={int(m['n'])})")
    return (f"{label}  " if label else "") + " | ".join(parts)
