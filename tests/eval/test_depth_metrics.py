"""Depth metrics by band: exact values on hand-made arrays, masks, torch inputs, empty bands."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recon.eval.depth_metrics import depth_metrics, format_metrics


def test_perfect_prediction_is_zero_error() -> None:
    gt = np.random.default_rng(0).uniform(1, 80, (32, 48)).astype(np.float32)
    m = depth_metrics(gt, gt)
    for band in ("overall", "near", "mid", "far"):
        assert m[band]["abs_rel"] == pytest.approx(0.0, abs=1e-7)
        assert m[band]["rmse"] == pytest.approx(0.0, abs=1e-5)
        assert m[band]["delta1"] == 1.0
    assert m["near"]["n"] + m["mid"]["n"] + m["far"]["n"] == m["overall"]["n"] == gt.size


def test_known_values_per_band() -> None:
    gt = np.array([[5.0, 20.0, 50.0, 0.0]])
    pred = np.array([[6.0, 20.0, 25.0, 3.0]])  # last pixel: gt unknown, never evaluated
    m = depth_metrics(pred, gt)
    assert m["overall"]["n"] == 3
    assert m["near"]["abs_rel"] == pytest.approx(0.2)
    assert m["near"]["rmse"] == pytest.approx(1.0)
    assert m["near"]["delta1"] == 1.0  # 6/5 = 1.2 < 1.25
    assert m["mid"]["abs_rel"] == pytest.approx(0.0)
    assert m["far"]["abs_rel"] == pytest.approx(0.5)
    assert m["far"]["delta1"] == 0.0  # 50/25 = 2
    assert m["overall"]["abs_rel"] == pytest.approx((0.2 + 0.0 + 0.5) / 3)
    assert m["overall"]["rmse"] == pytest.approx(math.sqrt((1 + 0 + 625) / 3))
    assert m["overall"]["delta1"] == pytest.approx(2 / 3)


def test_band_edges_are_half_open() -> None:
    gt = np.array([10.0, 40.0])
    m = depth_metrics(gt, gt)
    assert (m["near"]["n"], m["mid"]["n"], m["far"]["n"]) == (0, 1, 1)
    assert math.isnan(m["near"]["abs_rel"])


def test_mask_and_missing_prediction() -> None:
    gt = np.full((4, 4), 20.0)
    pred = gt.copy()
    pred[0, 0] = 0.0  # a hole in the prediction counts as an error unless masked out
    m = depth_metrics(pred, gt)
    assert m["overall"]["abs_rel"] == pytest.approx(1 / 16)
    assert m["overall"]["delta1"] == pytest.approx(15 / 16)
    m2 = depth_metrics(pred, gt, mask=pred > 0)
    assert m2["overall"]["abs_rel"] == 0.0 and m2["overall"]["n"] == 15


def test_torch_inputs_and_custom_bands() -> None:
    gt = torch.tensor([[2.0, 4.0], [8.0, 16.0]], requires_grad=True)
    pred = gt * 1.1
    m = depth_metrics(pred, gt, bands=((0, 5), (5, math.inf)))
    assert set(m) == {"overall", "0-5 m", ">5 m"}
    assert m["overall"]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert "AbsRel 0.100" in format_metrics(m)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        depth_metrics(np.ones((2, 3)), np.ones((3, 2)))
