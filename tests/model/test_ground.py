"""The road under the rig: camera height from seed points, ray-ground depth, far seeds kept out of the ground."""

from __future__ import annotations

import numpy as np
import pytest

from recon.data.scene import Camera, Frame
from recon.model.ground import camera_height, estimate_up, ground_depth
from recon.model.init_points import InitConfig, far_points


def _rig(n: int = 5, height: float = 1.6) -> np.ndarray:
    """Cameras driving along world +x, OpenCV axes (y down = world -z), ``height`` above the road z = 0."""
    c2ws = []
    for i in range(n):
        T = np.eye(4)
        T[:3, :3] = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # columns: cam x, y, z in world
        T[:3, 3] = [2.0 * i, 0.0, height]
        c2ws.append(T)
    return np.stack(c2ws)


def test_camera_height_is_the_road_layer_under_clutter_and_outliers() -> None:
    rng = np.random.default_rng(0)
    road = np.c_[rng.uniform(0, 40, 600), rng.uniform(-3, 3, 600), rng.normal(0, 0.02, 600)]
    cars = np.c_[rng.uniform(0, 40, 400), rng.uniform(-3, 3, 400), rng.uniform(0.2, 1.0, 400)]
    wrong = np.c_[rng.uniform(0, 40, 60), rng.uniform(-3, 3, 60), rng.uniform(-2.0, -0.3, 60)]
    c2ws = _rig()
    up = estimate_up(c2ws)
    assert np.allclose(up, [0, 0, 1])
    h = camera_height(np.concatenate([road, cars, wrong]), c2ws, up)
    assert h == pytest.approx(1.6, abs=0.03)
    assert camera_height(cars[:5], c2ws, up) is None  # nothing like a road seen


def test_ground_depth_of_rays() -> None:
    c2w = _rig(1)[0]
    rays = np.array([[0.0, 0.1, 1.0], [0.0, -0.1, 1.0], [0.3, 0.2, 1.0]])  # down, up, down-right
    z = ground_depth(rays, c2w, np.array([0.0, 0, 1]), 1.6)
    assert z[0] == pytest.approx(16.0) and np.isinf(z[1]) and z[2] == pytest.approx(8.0)


def test_far_seeds_below_the_horizon_stay_above_the_road(tmp_path) -> None:
    cam = Camera("c", 64, 32, 40.0, 40.0, 32.0, 16.0)
    frames = [Frame(f"f{i}", cam, float(i), tmp_path / "x.png", c2w) for i, c2w in enumerate(_rig(3))]
    images = {f.id: np.full((32, 64, 3), 0.5, np.float32) for f in frames}
    cfg = InitConfig(far_points=3000)
    near = np.array([[5.0, 0.0, 0.0]])  # one near point: nearly every pixel gets a far seed
    for ground in (None, (np.array([0.0, 0, 1]), 1.6)):
        xyz, _ = far_points(frames, images, near, cfg, np.random.default_rng(0), ground=ground)
        below = (xyz[:, 2] < -0.01).mean()
        if ground is None:
            assert below > 0.3  # half the image looks down: uniform far depths put those seeds underground
        else:
            assert below == 0.0 and (np.abs(xyz[:, 2]) < 0.01).mean() > 0.3  # on the road instead
