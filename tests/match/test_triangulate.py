"""Linear triangulation, reliability filters, weights, cross-pair consistency, and accuracy on rendered scenes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from recon.match.base import Matches
from recon.match.consistency import confirmed_masks
from recon.match.triangulate import (
    PairPoints,
    TriangulationConfig,
    depth_sensitivity,
    epipolar_directions_from_poses,
    project,
    triangulate_dlt,
    triangulate_matches,
)
from recon.match.verify import epipolar_texture

K = np.array([[200.0, 0.0, 160.0], [0.0, 200.0, 96.0], [0.0, 0.0, 1.0]])


def _w2c(yaw_deg: float, centre: np.ndarray) -> np.ndarray:
    a = math.radians(yaw_deg)
    R = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])  # cam2world
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R.T, -R.T @ centre
    return T


def _points_in_view(rng: np.random.Generator, n: int, offset: np.ndarray) -> np.ndarray:
    return offset + np.stack([rng.uniform(-8, 8, n), rng.uniform(-3, 2, n), rng.uniform(5, 40, n)], 1)


@pytest.mark.parametrize("offset", [0.0, 1e5])
def test_dlt_recovers_exact_points_even_far_from_the_origin(offset: float) -> None:
    rng = np.random.default_rng(0)
    o = np.array([offset, -offset / 3, offset / 2])
    w0, w1 = _w2c(0.0, o), _w2c(8.0, o + np.array([1.5, 0.1, 0.8]))
    X = _points_in_view(rng, 200, o)
    x0, _ = project(K, w0, X)
    x1, _ = project(K, w1, X)
    Y = triangulate_dlt(K, w0, K, w1, x0, x1)
    assert np.abs(Y - X).max() < 1e-6 * max(1.0, offset / 1e3)


def test_filters_reject_outliers_behind_and_degenerate_points() -> None:
    rng = np.random.default_rng(1)
    w0, w1 = _w2c(0.0, np.zeros(3)), _w2c(0.0, np.array([2.0, 0.0, 0.0]))  # 2 m stereo baseline
    X = _points_in_view(rng, 300, np.zeros(3))
    x0, _ = project(K, w0, X)
    x1, _ = project(K, w1, X)
    x0n = x0 + rng.normal(0, 0.2, x0.shape)
    x1n = x1 + rng.normal(0, 0.2, x1.shape)
    # 30 gross outliers (random pixels in view 1): off the epipolar line by many pixels
    bad = np.arange(30)
    x1n[bad] = rng.uniform([0, 0], [320, 192], (30, 2))
    # 10 matches with the disparity of the wrong sign: they triangulate behind the cameras
    behind = np.arange(30, 40)
    x1n[behind, 0] = x0n[behind, 0] + 15.0
    x1n[behind, 1] = x0n[behind, 1]
    conf = np.ones(len(X))
    pts = triangulate_matches(K, w0, K, w1, Matches(x0n, x1n, conf), TriangulationConfig(max_rel_depth_per_px=1.0))
    kept = set(np.round(pts.pix0[:, 0], 3).tolist())  # identify points by their (random) x coordinate

    def was_kept(idx: np.ndarray) -> bool:
        return any(round(float(x0n[i, 0]), 3) in kept for i in idx)

    off_line = bad[np.abs(x1n[bad, 1] - x0n[bad, 1]) > 2.0]  # a random pixel may land near the epipolar line
    assert len(off_line) >= 25 and not was_kept(off_line)
    assert not was_kept(behind)
    assert pts.rejected["behind"] >= 10
    assert len(pts) >= 0.9 * 260  # nearly all good points survive
    rel = np.abs(pts.depth0 - pts.points[:, 2]) / pts.points[:, 2]
    assert rel.max() < 1e-5  # depth0 is the z of the world point in camera 0 (which is the world frame here)
    assert (pts.reproj_err <= 1.0).all() and (pts.weights > 0).all() and (pts.weights <= 1).all()
    # the weight falls with the reprojection error and with the depth sensitivity
    order = np.argsort(pts.reproj_err)
    lo, hi = order[: len(order) // 4], order[-len(order) // 4:]
    assert np.median(pts.weights[lo] * pts.rel_depth_per_px[lo]) > np.median(pts.weights[hi] * pts.rel_depth_per_px[hi])
    # a pure rotation has no triangulation angle: nothing is reliable
    w_rot = _w2c(10.0, np.zeros(3))
    xr, _ = project(K, w_rot, X)
    none = triangulate_matches(K, w0, K, w_rot, Matches(x0 + 0.01, xr, conf))
    assert len(none) == 0


def test_depth_sensitivity_and_epipolar_direction_for_a_stereo_pair() -> None:
    b = 0.5
    w0, w1 = _w2c(0.0, np.zeros(3)), _w2c(0.0, np.array([b, 0.0, 0.0]))
    X = np.array([[0.5, 0.2, 5.0], [-1.0, 0.0, 20.0], [0.0, 0.0, 50.0]])
    s = depth_sensitivity(K, w0, K, w1, X)
    # disparity f b / z: one pixel of disparity error is a relative depth error of z / (f b)
    np.testing.assert_allclose(s, X[:, 2] / (K[0, 0] * b), rtol=2e-3)
    d0, d1 = epipolar_directions_from_poses(K, w0, K, w1, X)
    np.testing.assert_allclose(np.abs(d0[:, 0]), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.abs(d1[:, 0]), 1.0, atol=1e-9)


def test_epipolar_texture_detects_the_aperture_problem() -> None:
    img = np.zeros((40, 40), np.float32)
    img[20:] = 1.0  # a horizontal edge
    pix = np.array([[20.0, 20.0]])
    along_x = epipolar_texture(img, pix, np.array([[1.0, 0.0]]))
    along_y = epipolar_texture(img, pix, np.array([[0.0, 1.0]]))
    assert along_x[0] < 0.01 and along_y[0] > 0.99


def _pp(frame0: str, frame1: str, pix0: np.ndarray, pix1: np.ndarray, d0: np.ndarray, d1: np.ndarray) -> PairPoints:
    n = len(pix0)
    z = np.zeros(n, np.float32)
    return PairPoints(frame0, frame1, pix0.astype(np.float32), pix1.astype(np.float32), np.zeros((n, 3)),
                      d0.astype(np.float32), d1.astype(np.float32), np.ones(n, np.float32), z, z, z)


def test_cross_pair_confirmation() -> None:
    pix = np.array([[10.0, 10.0], [50.0, 20.0], [30.0, 30.0]])
    far = pix + 100.0
    # pair A-B and A-C share frame A's keypoints: the first agrees, the second is 60 % off, the third only in A-B
    ab = _pp("A", "B", pix, far, np.array([10.0, 20.0, 5.0]), np.ones(3))
    ac = _pp("A", "C", pix[:2] + 0.3, far[:2], np.array([10.4, 8.0]), np.ones(2))
    m_ab, m_ac = confirmed_masks([ab, ac], radius_px=1.0, tol=0.1)
    assert m_ab.tolist() == [True, False, False]
    assert m_ac.tolist() == [True, False]


def test_synthetic_street_triangulation_against_ground_truth(tmp_path: Path) -> None:
    """SIFT matches between two views of the synthetic street (recon.data.synth; front-left camera, 320x192, 0.8 m
    apart) triangulate to within 1 % of the exact depth (median)."""
    from recon.data.synth import SynthConfig, make_street
    from recon.match.sift import SiftMatcher
    from recon.match.supervision import sample_depth_gt
    from recon.match.triangulate import triangulate_frames

    cfg = SynthConfig(seed=0, width=320, height=192, n_frames=2, cameras=("front_left",), defocus_frames=0)
    f0, f1 = make_street(cfg, tmp_path / "street").frames
    m = SiftMatcher().match(f0.load_image(), f1.load_image())
    pts = triangulate_frames(f0, f1, m)
    gt = sample_depth_gt(f0.load_depth(), pts.pix0)
    ok = gt > 0
    err = np.abs(pts.depth0[ok] - gt[ok]) / gt[ok]
    print(f"synthetic street 320x192, 0.8 m baseline: {len(m)} matches, {len(pts)} reliable, "
          f"median depth error {100 * np.median(err):.2f}%")
    assert len(m) >= 200 and len(pts) >= 100 and ok.mean() > 0.9
    assert np.median(err) < 0.01
