"""Scale / shift recovery: known affine inverse-depth maps with noise and gross outliers are recovered."""

from __future__ import annotations

import numpy as np
import pytest

from recon.errors import ReconError
from recon.priors.scale import align_to_sparse, fit_scale_shift


def _scene_depth(rng: np.random.Generator, shape: tuple[int, int] = (60, 80)) -> np.ndarray:
    return rng.uniform(2.0, 80.0, shape)


def _sparse(gt: np.ndarray, rng: np.random.Generator, frac: float = 0.1) -> np.ndarray:
    return np.where(rng.random(gt.shape) < frac, gt, 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_scale_and_shift_of_relative_disparity_with_outliers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = _scene_depth(rng)
    s_true, t_true = 0.37, 0.012  # 1/gt = s * disp + t  ->  disp = (1/gt - t) / s
    disp = (1.0 / gt - t_true) / s_true
    disp *= 1.0 + 0.01 * rng.standard_normal(disp.shape)  # 1 % noise
    sparse = _sparse(gt, rng)
    out = rng.random(gt.shape) < 0.25  # 25 % of the sparse points are garbage (wrong returns, moving objects)
    sparse = np.where(out & (sparse > 0), rng.uniform(1.0, 100.0, gt.shape), sparse)
    fit = fit_scale_shift(disp, sparse, kind="disparity", shift=True, seed=seed)
    assert fit.scale == pytest.approx(s_true, rel=0.03)
    assert fit.shift == pytest.approx(t_true, abs=0.002)
    assert 0.6 < fit.inlier_ratio < 0.9
    aligned = fit.apply(disp, kind="disparity")
    assert np.median(np.abs(aligned / gt - 1.0)) < 0.02


def test_scale_only_for_a_biased_metric_prior() -> None:
    rng = np.random.default_rng(3)
    gt = _scene_depth(rng)
    pred = gt * 1.06 * np.exp(0.03 * rng.standard_normal(gt.shape))  # 6 % too far, 3 % noise
    sparse = _sparse(gt, rng, 0.05)
    sparse = np.where((rng.random(gt.shape) < 0.2) & (sparse > 0), 0.3 * sparse, sparse)  # 20 % outliers
    aligned, fit = align_to_sparse(pred, sparse, kind="depth", shift=False)
    assert fit.shift == 0.0
    assert fit.depth_scale == pytest.approx(1 / 1.06, rel=0.01)
    assert np.median(aligned / gt) == pytest.approx(1.0, abs=0.01)


def test_deterministic() -> None:
    rng = np.random.default_rng(5)
    gt = _scene_depth(rng)
    disp = 1.0 / gt
    sparse = _sparse(gt, rng)
    a = fit_scale_shift(disp, sparse, kind="disparity", seed=7)
    b = fit_scale_shift(disp, sparse, kind="disparity", seed=7)
    assert (a.scale, a.shift) == (b.scale, b.shift)


def test_too_few_points_is_a_user_error() -> None:
    with pytest.raises(ReconError, match="only 0 pixels"):
        fit_scale_shift(np.ones((5, 5)), np.zeros((5, 5)))
