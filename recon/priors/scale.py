"""Scale (and shift) recovery of a relative or monocular depth prior against sparse metric depth.

Model, in inverse depth (metres^-1): ``1 / depth_metric = scale * x + shift`` where ``x`` is the prior's inverse
depth (``kind="depth"``: x = 1 / pred) or its disparity-like output as is (``kind="disparity"``, what relative
models such as Depth Anything output). Fitting in inverse depth is what affine-invariant models need; with
``shift=False`` a metric-but-biased depth prior is corrected by one factor (``depth_metric = pred / scale``).

Residuals are relative, ``(scale * x + shift) * target - 1``, so a 5 % error weighs the same at 5 m and 50 m.
Robustness: RANSAC on minimal samples (seeded, deterministic) picks the inlier set, then IRLS with a Huber loss
(threshold from the inliers' MAD) refines on all points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from recon.errors import ReconError


@dataclass
class ScaleShift:
    """``1 / depth = scale * x + shift`` (inverse depth, metres^-1); fit statistics alongside."""

    scale: float
    shift: float
    inlier_ratio: float
    n: int
    median_rel_error: float

    @property
    def depth_scale(self) -> float:
        """For a shift-free fit of a depth prior: the factor that multiplies the prior's depth (1 / scale)."""
        return 1.0 / self.scale

    def apply(self, pred: np.ndarray, kind: Literal["depth", "disparity"] = "depth") -> np.ndarray:
        """Metric depth (float32, metres) from a prior; 0 where the prior is unknown or the fit gives 1/d <= 0."""
        x = _inverse_input(np.asarray(pred, dtype=np.float64), kind)
        inv = self.scale * x + self.shift
        ok = np.isfinite(inv) & (inv > 0) & np.isfinite(x) & (x > 0 if kind == "depth" else np.isfinite(x))
        return np.where(ok, 1.0 / np.where(ok, inv, 1.0), 0.0).astype(np.float32)


def _inverse_input(pred: np.ndarray, kind: str) -> np.ndarray:
    if kind == "depth":
        with np.errstate(divide="ignore"):
            return np.where(pred > 0, 1.0 / np.where(pred > 0, pred, 1.0), 0.0)
    if kind == "disparity":
        return pred
    raise ValueError(f"kind must be 'depth' or 'disparity', got {kind!r}")


def _weighted_ls(x: np.ndarray, y: np.ndarray, w: np.ndarray, shift: bool) -> tuple[float, float]:
    """Minimise sum w * ((s x + t) y - 1)^2 (relative inverse-depth residuals; y = target depth)."""
    a = x * y
    if not shift:
        den = float(np.sum(w * a * a))
        return (float(np.sum(w * a)) / den if den > 0 else math.nan), 0.0
    A = np.stack([a, y], axis=1) * np.sqrt(w)[:, None]
    b = np.sqrt(w)
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    return float(sol[0]), float(sol[1])


def fit_scale_shift(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    kind: Literal["depth", "disparity"] = "depth",
    shift: bool = True,
    ransac_iters: int = 200,
    inlier_rel: float = 0.1,
    huber_iters: int = 10,
    max_points: int = 50_000,
    min_points: int = 10,
    seed: int = 0,
) -> ScaleShift:
    """Fit ``1 / target = scale * x + shift`` robustly over pixels where the target depth is known.

    Args:
        pred: the prior, any shape (depth in metres or relative disparity, see ``kind``).
        target: sparse metric depth (metres) of the same shape, 0 = unknown (a projected LiDAR / SfM map).
        mask: optional extra bool mask of pixels to use.
        shift: fit the inverse-depth shift too (affine-invariant priors); False fits a single scale.
        inlier_rel: RANSAC inlier threshold on the relative residual.
        max_points: a seeded random subset of at most this many pixels is used (speed).

    Raises:
        ReconError: fewer than ``min_points`` usable pixels, or no fit with a positive scale.
    """
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"fit_scale_shift: pred has {p.size} values but target {t.size}")
    x = _inverse_input(p, kind)
    ok = np.isfinite(t) & (t > 0) & np.isfinite(x) & (x > 0 if kind == "depth" else True)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool).ravel()
    idx = np.nonzero(ok)[0]
    if len(idx) < min_points:
        raise ReconError(f"scale recovery: only {len(idx)} pixels have both a prior and a sparse metric depth "
                         f"(need {min_points})")
    rng = np.random.default_rng(seed)
    if len(idx) > max_points:
        idx = np.sort(rng.choice(idx, max_points, replace=False))
    x, y = x[idx], t[idx]
    n = len(x)
    k = 2 if shift else 1

    def residual(s: float, sh: float) -> np.ndarray:
        return (s * x + sh) * y - 1.0

    best = (-1, math.nan, math.nan)
    for _ in range(ransac_iters):
        sub = rng.choice(n, k, replace=False)
        s, sh = _weighted_ls(x[sub], y[sub], np.ones(k), shift)
        if not (math.isfinite(s) and s > 0):
            continue
        count = int(np.sum(np.abs(residual(s, sh)) < inlier_rel))
        if count > best[0]:
            best = (count, s, sh)
    if best[0] < 0:
        raise ReconError("scale recovery: no sample gave a positive scale (is the prior inverted or constant?)")
    inl = np.abs(residual(best[1], best[2])) < inlier_rel
    s, sh = _weighted_ls(x[inl], y[inl], np.ones(int(inl.sum())), shift)
    # IRLS with a Huber weight; the threshold follows the inliers' spread (MAD), never below 1 %
    for _ in range(huber_iters):
        r = residual(s, sh)
        mad = float(np.median(np.abs(r[np.abs(r) < inlier_rel]))) if np.any(np.abs(r) < inlier_rel) else inlier_rel
        delta = max(1.345 * 1.4826 * mad, 0.01)
        w = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12))
        w[np.abs(r) > 3 * inlier_rel] = 0.0  # gross outliers get no vote at all
        s_new, sh_new = _weighted_ls(x, y, w, shift)
        if not (math.isfinite(s_new) and s_new > 0):
            break
        converged = abs(s_new - s) <= 1e-9 * abs(s) and abs(sh_new - sh) <= 1e-9 * (abs(sh) + abs(s))
        s, sh = s_new, sh_new
        if converged:
            break
    r = residual(s, sh)
    return ScaleShift(scale=s, shift=sh, inlier_ratio=float(np.mean(np.abs(r) < inlier_rel)), n=n,
                      median_rel_error=float(np.median(np.abs(r))))


def align_to_sparse(
    pred: np.ndarray, sparse: np.ndarray, kind: Literal["depth", "disparity"] = "depth", shift: bool = True,
    **fit_opts: object,
) -> tuple[np.ndarray, ScaleShift]:
    """Metric depth (float32 [H, W], metres) of a prior aligned to sparse metric depth, and the fit."""
    fit = fit_scale_shift(pred, sparse, kind=kind, shift=shift, **fit_opts)  # type: ignore[arg-type]
    return fit.apply(pred, kind), fit
