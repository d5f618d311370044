"""The scene Camera's projection (recon.data.projection): round trips, z-depth against ray distance, the pixel-centre
convention, points behind the camera, and LiDAR projection with a z-buffer and the occlusion filter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support.cameras import yaw_pose

from recon.data import projection as P
from recon.data.scene import Camera, Frame

CAM = Camera("cam", 64, 48, fx=50.0, fy=55.0, cx=31.0, cy=25.0)


def test_world_pixel_world_round_trip_with_depth() -> None:
    rng = np.random.default_rng(0)
    c2w = yaw_pose(30.0, (1.0, -2.0, 5.0))
    cam_pts = np.stack([rng.uniform(-4, 4, 200), rng.uniform(-3, 3, 200), rng.uniform(0.5, 80, 200)], 1)
    world = P.transform_points(cam_pts, c2w)
    uv, z = CAM.world_to_pixel(world, c2w)
    np.testing.assert_allclose(z, cam_pts[:, 2], rtol=1e-12)
    back = CAM.pixel_to_world(uv[:, 0], uv[:, 1], z, c2w)
    np.testing.assert_allclose(back, world, atol=1e-9)
    # the camera-frame half of the chain, and a hand-written pinhole for one point
    np.testing.assert_allclose(CAM.unproject(*CAM.project(cam_pts), cam_pts[:, 2]), cam_pts, atol=1e-12)
    x, y, d = cam_pts[0]
    np.testing.assert_allclose(CAM.project(cam_pts[:1]), [[50.0 * x / d + 31.0], [55.0 * y / d + 25.0]])


def test_torch_and_numpy_agree() -> None:
    rng = np.random.default_rng(1)
    c2w = yaw_pose(-20.0, (0.5, 0.0, -1.0))
    depth = rng.uniform(1.0, 30.0, (CAM.height, CAM.width))
    pts_np = CAM.depth_to_world(depth, c2w)
    pts_t = CAM.depth_to_world(torch.from_numpy(depth), torch.from_numpy(c2w))
    assert isinstance(pts_t, torch.Tensor) and pts_t.shape == (CAM.height * CAM.width, 3)
    np.testing.assert_allclose(pts_t.numpy(), pts_np, atol=1e-12)
    uv_t, z_t = P.world_to_pixel(torch.from_numpy(pts_np), torch.from_numpy(np.linalg.inv(c2w)),
                                 torch.from_numpy(CAM.K))
    u, v = CAM.pixel_centres()
    np.testing.assert_allclose(uv_t[:, 0].numpy(), u.ravel(), atol=1e-9)
    np.testing.assert_allclose(z_t.numpy(), depth.ravel(), rtol=1e-12)


def test_pixel_centres_are_at_half_integers() -> None:
    u, v = CAM.pixel_centres()
    assert u.shape == v.shape == (48, 64)
    assert u[0, 0] == 0.5 and v[0, 0] == 0.5 and u[5, 7] == 7.5 and v[5, 7] == 5.5
    # the ray through the principal point (cx, cy) is the optical axis; pixel (col 30, row 24) has its centre
    # half a pixel before it, so its ray leans by 0.5 / f
    rays = CAM.rays()
    np.testing.assert_allclose(rays[24, 30], [-0.5 / 50.0, -0.5 / 55.0, 1.0])
    # a point projecting to image coordinates (u, v) lies in pixel (floor(u), floor(v)): just inside either edge
    c2w = np.eye(4)
    pts = CAM.unproject(np.array([10.0001, 10.9999]), np.array([3.0001, 3.9999]), np.array([5.0, 5.0]))
    rows, cols, z, idx = P.project_points(pts, c2w, CAM.K, CAM.width, CAM.height)
    assert rows.tolist() == [3, 3] and cols.tolist() == [10, 10] and idx.tolist() == [0, 1]
    np.testing.assert_allclose(z, 5.0)


def test_z_depth_and_ray_distance() -> None:
    z = np.full((CAM.height, CAM.width), 10.0)
    dist = CAM.ray_distance(z)
    # on the optical axis the two agree; elsewhere the ray distance is the length of the camera-frame point
    pts = CAM.unproject(*CAM.pixel_centres(), z)
    np.testing.assert_allclose(dist, np.linalg.norm(pts, axis=-1), rtol=1e-12)
    assert (dist > z).all()
    np.testing.assert_allclose(P.z_to_ray_distance(10.0, 31.0, 25.0, CAM.K), 10.0)
    corner = math.sqrt((0.5 - 31.0) ** 2 / 50.0**2 + (0.5 - 25.0) ** 2 / 55.0**2 + 1.0) * 10.0
    np.testing.assert_allclose(dist[0, 0], corner)
    np.testing.assert_allclose(CAM.z_depth(dist), z, rtol=1e-12)


def test_points_behind_the_camera_are_not_projected() -> None:
    c2w = yaw_pose(0.0, (0.0, 0.0, 0.0))
    # straight ahead, straight behind (would land on the principal point too), beside the camera, too near
    pts = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, -5.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.05]])
    rows, cols, z, idx = P.project_points(pts, c2w, CAM.K, CAM.width, CAM.height)
    assert idx.tolist() == [0] and rows.tolist() == [25] and cols.tolist() == [31]
    # a camera turned around sees the second point, not the first
    rows, cols, z, idx = P.project_points(pts, yaw_pose(180.0, (0.0, 0.0, 0.0)), CAM.K, CAM.width, CAM.height)
    assert idx.tolist() == [1] and z.tolist() == [5.0]
    # world_to_pixel reports negative z for a point behind: callers mask with it
    with np.errstate(divide="ignore", invalid="ignore"):  # the point beside the camera has z = 0
        _, zz = CAM.world_to_pixel(pts, c2w)
    assert zz[1] < 0


def test_lidar_zbuffer_keeps_the_nearest_point_per_pixel() -> None:
    """Three points on one ray at 4, 9 and 6 m and one alone elsewhere: the pixel gets 4 m, in any input order."""
    frame = Frame("f", CAM, 0.0, None, yaw_pose(10.0, (2.0, 1.0, -3.0)))  # type: ignore[arg-type]
    ray = CAM.rays()[20, 40]
    cam_pts = np.stack([ray * 4.0, ray * 9.0, ray * 6.0, CAM.rays()[5, 5] * 12.0])
    world = P.transform_points(cam_pts, frame.cam2world)
    for order in ([0, 1, 2, 3], [1, 2, 3, 0], [3, 2, 1, 0]):
        d = frame.sparse_depth(world[order], occlusion_radius_px=0)
        assert d.dtype == np.float32 and d.shape == (48, 64)
        assert d[20, 40] == pytest.approx(4.0) and d[5, 5] == pytest.approx(12.0)
        assert int((d > 0).sum()) == 2
    # the far cap drops points at or beyond max_depth before the z-buffer
    d = frame.sparse_depth(world, occlusion_radius_px=0, max_depth=5.0)
    assert d[20, 40] == pytest.approx(4.0) and d[5, 5] == 0.0


def test_lidar_occlusion_filter_drops_points_seen_through_a_nearer_surface() -> None:
    """A far wall at 30 m behind a sparse near wall at 5 m (a checkerboard of points in a rectangle): in the gaps of
    the near wall the z-buffer alone keeps the far wall; the occlusion filter drops it there and keeps it elsewhere."""
    frame = Frame("f", CAM, 0.0, None, np.eye(4))  # type: ignore[arg-type]
    u, v = CAM.pixel_centres()
    far = CAM.unproject(u, v, np.full(u.shape, 30.0)).reshape(-1, 3)
    rect = (u > 20) & (u < 44) & (v > 14) & (v < 34)
    near_mask = rect & ((np.floor(u) + np.floor(v)) % 2 == 0)
    near = CAM.unproject(u[near_mask], v[near_mask], np.full(int(near_mask.sum()), 5.0))
    pts = np.concatenate([far, near])
    unfiltered = frame.sparse_depth(pts, occlusion_radius_px=0)
    filtered = frame.sparse_depth(pts, occlusion_radius_px=2)
    gaps = (u > 23) & (u < 41) & (v > 17) & (v < 31) & ~near_mask  # gaps away from the rectangle's edge
    assert unfiltered[gaps] == pytest.approx(30.0)
    assert (filtered[gaps] == 0).all()
    assert filtered[near_mask] == pytest.approx(5.0)
    assert filtered[~rect] == pytest.approx(30.0)
