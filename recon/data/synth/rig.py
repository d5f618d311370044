"""Ego trajectory and the camera / LiDAR rig.

World frame: metres, z up, x along the street, y left. Ego frame: x forward, y left, z up, origin on the ground
below the rear axle. Cameras: OpenCV axes (x right, y down, z forward), ``cam2world`` 4x4 float64.
"""

from __future__ import annotations

import math

import numpy as np

from recon.data.synth.config import KNOWN_CAMERAS, LAYOUTS, SynthConfig

CAMERA_HEIGHT_M = 1.6
LIDAR_MOUNT = (1.2, 0.0, 2.0)   # ego frame, metres
_CAMERA_MOUNT = {"front": (1.6, 0.0), "front_left": (1.5, 0.25), "front_right": (1.5, -0.25),
                 "side_left": (1.0, 0.45), "side_right": (1.0, -0.45)}


def ego_poses(cfg: SynthConfig) -> list[np.ndarray]:
    """4x4 ego-to-world poses of the time steps: constant speed down the street, a gentle S-curve in the lane."""
    lay = LAYOUTS[cfg.layout]
    rng = np.random.default_rng(cfg.seed + 7919)
    amp, period, phase = rng.uniform(0.25, 0.6), rng.uniform(50.0, 80.0), rng.uniform(0, 2 * math.pi)
    poses = []
    for i in range(cfg.n_frames):
        x = i * cfg.speed_mps / cfg.frame_rate_hz
        k = 2 * math.pi / period
        y = lay.lane_offset + amp * math.sin(k * x + phase)
        yaw = math.atan(amp * k * math.cos(k * x + phase))
        c, s = math.cos(yaw), math.sin(yaw)
        pose = np.eye(4)
        pose[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        pose[:3, 3] = [x, y, 0.0]
        poses.append(pose)
    return poses


def camera_to_ego(name: str) -> np.ndarray:
    """4x4 camera-to-ego transform: OpenCV axes, yaw from :data:`KNOWN_CAMERAS`, level, 1.6 m high."""
    yaw = math.radians(KNOWN_CAMERAS[name])
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = right, down, fwd
    mx, my = _CAMERA_MOUNT[name]
    m[:3, 3] = [mx, my, CAMERA_HEIGHT_M]
    return m


def lidar_origin(ego_pose: np.ndarray) -> np.ndarray:
    """World position (3,) of the LiDAR for an ego pose."""
    return (ego_pose @ np.array([*LIDAR_MOUNT, 1.0]))[:3]
