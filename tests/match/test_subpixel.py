"""Sub-pixel refinement of detector keypoints on a score map (recon.match.subpixel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.errors import ReconError
from recon.match.subpixel import refine_keypoints, subpixel_offsets


def _gaussian_log(h: int, w: int, centres: list[tuple[float, float]], cov: np.ndarray | None = None) -> torch.Tensor:
    """Log of a sum-free score map: at each pixel the strongest of Gaussian blobs at ``centres`` (x, y), in the
    map's frame (pixel centres on integers); ``cov`` is the blobs' 2x2 covariance (default identity * 1.5^2)."""
    cov = np.diag([1.5**2, 1.5**2]) if cov is None else cov
    inv = np.linalg.inv(cov)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    best = np.full((h, w), -np.inf)
    for cx, cy in centres:
        d = np.stack([xs - cx, ys - cy], -1)
        best = np.maximum(best, -0.5 * np.einsum("...i,ij,...j->...", d, inv, d))
    return torch.from_numpy(np.log(0.8) + best)


def _peak(c: tuple[float, float]) -> list[int]:
    return [int(np.floor(c[0] + 0.5)), int(np.floor(c[1] + 0.5))]


def test_quadratic_recovers_a_subpixel_gaussian_peak() -> None:
    logmap = _gaussian_log(16, 20, [(10.3, 7.6)])
    xy = torch.tensor([_peak((10.3, 7.6))])
    assert xy.tolist() == [[10, 8]]
    out = refine_keypoints(logmap, xy, "quadratic")
    np.testing.assert_allclose(out.numpy(), [[10.3, 7.6]], atol=0.05)
    np.testing.assert_allclose(out.numpy(), [[10.3, 7.6]], atol=1e-6)  # exact: a Gaussian's log is a quadratic


def test_quadratic_handles_correlated_peaks_and_many_keypoints_at_once() -> None:
    """A rotated, elongated peak needs the cross term; every keypoint of a map is refined in one call."""
    rng = np.random.default_rng(0)
    centres = [(6 + 12 * i + rng.uniform(-0.5, 0.5), 6 + 12 * j + rng.uniform(-0.5, 0.5))
               for i in range(4) for j in range(3)]
    cov = np.array([[2.0, 0.9], [0.9, 1.0]])
    logmap = _gaussian_log(36, 48, centres, cov)
    xy = torch.tensor([_peak(c) for c in centres])
    out = refine_keypoints(logmap, xy, "quadratic").numpy()
    np.testing.assert_allclose(out, centres, atol=1e-5)
    # without the cross term (one parabola per axis) the same peaks come out wrong
    win_only_axes = xy.numpy() + np.stack([[-(logmap[y, x + 1] - logmap[y, x - 1]).item() / 2
                                            / (logmap[y, x + 1] - 2 * logmap[y, x] + logmap[y, x - 1]).item(),
                                            -(logmap[y + 1, x] - logmap[y - 1, x]).item() / 2
                                            / (logmap[y + 1, x] - 2 * logmap[y, x] + logmap[y - 1, x]).item()]
                                           for x, y in xy.tolist()])
    assert np.abs(win_only_axes - centres).max() > 0.05


def test_integer_peaks_stay_on_their_pixels() -> None:
    logmap = _gaussian_log(16, 20, [(10.0, 7.0)])
    for mode in ("quadratic", "softargmax", "none"):
        off = subpixel_offsets(logmap, torch.tensor([[10, 7]]), mode)  # type: ignore[arg-type]
        assert off.abs().max().item() < 1e-9, mode


def test_softargmax_moves_towards_the_peak() -> None:
    """Soft-argmax in a 3x3 window is biased towards the window's centre, but moves the right way."""
    logmap = _gaussian_log(16, 20, [(10.3, 7.6)])
    out = refine_keypoints(logmap, torch.tensor([[10, 8]]), "softargmax").numpy()[0]
    assert 10.0 < out[0] < 10.3 and 7.6 < out[1] < 8.0


@pytest.mark.parametrize("mode", ["quadratic", "softargmax"])
def test_borders_refine_only_the_axis_that_has_both_neighbours(mode: str) -> None:
    h, w = 12, 14
    centres = [(0.3, 5.6), (8.4, 0.2), (13.2, 7.35), (0.1, 11.2)]  # left, top, right edge; bottom-left corner
    logmap = _gaussian_log(h, w, centres)
    xy = torch.tensor([[0, 6], [8, 0], [13, 7], [0, 11]])
    out = refine_keypoints(logmap, xy, mode).numpy()  # type: ignore[arg-type]
    assert out[0, 0] == 0 and out[1, 1] == 0 and out[2, 0] == 13 and (out[3] == [0, 11]).all()
    if mode == "quadratic":
        np.testing.assert_allclose([out[0, 1], out[1, 0], out[2, 1]], [5.6, 8.4, 7.35], atol=1e-5)
    else:
        assert 5.6 < out[0, 1] < 6.0 and 8.0 < out[1, 0] < 8.4 and 7.0 < out[2, 1] < 7.35


def test_offsets_stay_within_half_a_pixel_and_finite() -> None:
    """Windows that are not a peak (a ridge, a saddle, a pit, a plateau), or whose fitted peak lies beyond the
    pixel (a narrow diagonal ridge rising to (1.5, 1.5) px away), leave the keypoint in its pixel."""
    ridge = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])  # flat along x
    saddle = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    pit = saddle.abs()  # a minimum at the centre
    flat = torch.zeros(3, 3)
    d = torch.arange(-1.0, 2.0)
    y, x = torch.meshgrid(d, d, indexing="ij")
    far = -10 * (x - y) ** 2 - 0.01 * (x + y - 3) ** 2
    for m in (ridge, saddle, pit, flat, far):
        off = subpixel_offsets(m, torch.tensor([[1, 1]]), "quadratic")
        assert torch.isfinite(off).all() and off.abs().max() <= 0.5
    assert subpixel_offsets(ridge, torch.tensor([[1, 1]]), "quadratic")[0, 0] == 0  # no curvature along x
    assert subpixel_offsets(pit, torch.tensor([[1, 1]]), "quadratic").abs().max() == 0
    assert subpixel_offsets(far, torch.tensor([[1, 1]]), "quadratic").tolist() == [[0.5, 0.5]]  # clamped


def test_no_keypoints_and_unknown_mode() -> None:
    assert subpixel_offsets(torch.zeros(5, 5), torch.zeros(0, 2), "quadratic").shape == (0, 2)
    with pytest.raises(ReconError, match="unknown sub-pixel mode 'cubic'"):
        subpixel_offsets(torch.zeros(5, 5), torch.zeros(1, 2), "cubic")  # type: ignore[arg-type]
