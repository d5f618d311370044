"""Initial points: far points seeded at a metric prior's depth where one is given (priors -> model)."""

from __future__ import annotations

import numpy as np

from recon.data.projection import project_points
from recon.data.scene import Scene
from recon.model.init_points import InitConfig, far_points


def _seed_depth_error(scene: Scene, prior: bool) -> tuple[float, int]:
    """Median |z - true z| / true z of the far seeds of one frame, and how many were placed."""
    frame = scene.frames[0]
    images = {frame.id: frame.load_image()}
    gt = frame.load_depth()
    cfg = InitConfig(far_points=400)
    xyz, _ = far_points([frame], images, None, cfg, np.random.default_rng(0),
                        {frame.id: gt} if prior else None)
    cam = frame.camera
    v, u, z, _ = project_points(xyz, frame.cam2world, cam.K, cam.width, cam.height, min_depth=0.05)
    truth = gt[v, u]
    ok = truth > 0
    return float(np.median(np.abs(z[ok] - truth[ok]) / truth[ok])), len(xyz)


def test_far_points_follow_the_prior(small_street: Scene) -> None:
    scene = small_street
    err_prior, n_prior = _seed_depth_error(scene, prior=True)
    err_uniform, n_uniform = _seed_depth_error(scene, prior=False)
    assert n_prior == n_uniform > 100
    assert err_prior < 0.02  # the prior here is the exact depth: the seeds land on the surfaces
    assert err_uniform > 10 * err_prior
