"""The one depth colour map (recon.io.colormap): turbo on log depth, near red, far blue, unknown black; the viewer's
depth panel and `recon eval`'s depth PNGs both use it."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps

from recon.io.colormap import depth_colormap, log_depth_position


def test_near_is_red_far_is_blue_and_beyond_is_clipped() -> None:
    rgb = depth_colormap(np.array([0.5, 2.0, 200.0, 1e4]), near=2.0, far=200.0)
    assert rgb.dtype == np.float32 and rgb.shape == (4, 3)
    turbo = colormaps["turbo"]
    np.testing.assert_allclose(rgb[1], turbo(1.0)[:3], atol=1e-6)  # near: turbo's dark-red end
    np.testing.assert_allclose(rgb[2], turbo(0.0)[:3], atol=1e-6)  # far: turbo's dark-blue end
    assert rgb[1, 0] > rgb[1, 2] and rgb[2, 2] > rgb[2, 0]
    np.testing.assert_array_equal(rgb[0], rgb[1])
    np.testing.assert_array_equal(rgb[3], rgb[2])


def test_log_depth_axis() -> None:
    """Equal depth ratios get equal steps; the geometric mean of near and far is the middle colour."""
    p = log_depth_position(np.array([1.0, 2.0, 100.0, 200.0, 20.0]), near=1.0, far=400.0)
    assert p[1] - p[0] == pytest.approx(p[3] - p[2])
    assert log_depth_position(20.0, 1.0, 400.0) == pytest.approx(0.5)
    np.testing.assert_allclose(depth_colormap(np.array([20.0]), 1.0, 400.0)[0], colormaps["turbo"](0.5)[:3],
                               atol=1e-6)
    with pytest.raises(ValueError):
        log_depth_position(5.0, near=10.0, far=1.0)


def test_unknown_depth_is_black() -> None:
    d = np.array([[0.0, -1.0], [np.nan, 5.0]])
    rgb = depth_colormap(d, 1.0, 400.0)
    assert (rgb[0] == 0).all() and (rgb[1, 0] == 0).all() and rgb[1, 1].max() > 0.1


def test_viewer_and_eval_use_the_same_map() -> None:
    from recon.eval import evaluate
    from viewer.imaging import colorize_depth, depth_limits, to_uint8

    rng = np.random.default_rng(0)
    d = rng.uniform(2.0, 150.0, (12, 20)).astype(np.float32)
    d[:2] = 0.0
    np.testing.assert_array_equal(colorize_depth(d, bar=False), to_uint8(depth_colormap(d, *depth_limits(d))))
    assert (colorize_depth(d, bar=False)[:2] == 0).all()
    assert evaluate.depth_colormap is depth_colormap and evaluate.DEPTH_PNG_RANGE_M == (1.0, 400.0)
