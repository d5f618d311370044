"""A tiny textured street made of planes, rendered exactly by ray-plane intersection (tests and demos of matching).

World frame: OpenCV-like, y down (the ground is the plane y = +camera_height), the cars drive along +z. Walls
at x = +-half_width, an end wall at z = end_z; above the walls is a featureless sky (depth 0). Textures are real
photographs from ``skimage.data`` tiled over each plane. Depth maps are exact z-depth at pixel centres; images are
supersampled for antialiasing. Everything is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon.data.scene import Camera, Frame, Scene
from recon.io.images import write_depth, write_image

SKY_RGB = (0.62, 0.74, 0.90)


@dataclass
class ToyStreetConfig:
    """Image size in pixels, yaws in degrees (positive = to the right), distances in metres, time in seconds."""

    width: int = 320
    height: int = 192
    hfov_deg: float = 70.0
    yaws_deg: tuple[float, ...] = (-45.0, 0.0, 45.0)
    rig_radius_m: float = 0.6
    n_frames: int = 4
    step_m: float = 1.0
    dt_s: float = 0.1
    camera_height: float = 1.6
    half_width: float = 7.0
    wall_height: float = 10.0
    end_z: float = 70.0
    supersample: int = 3


def _textures() -> list[np.ndarray]:
    from scipy.ndimage import gaussian_filter
    from skimage import data

    out = []
    for img, tint in ((data.brick(), (1.0, 0.75, 0.6)), (data.gravel(), (0.8, 0.8, 0.75)),
                      (data.grass(), (0.6, 0.9, 0.5)), (data.brick(), (0.7, 0.7, 0.9))):
        g = gaussian_filter(np.asarray(img, np.float32) / 255.0, 1.0)
        out.append(np.stack([g * t for t in tint], -1))
    return out


def _planes(cfg: ToyStreetConfig) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]]:
    """(point, normal, axis_a, axis_b, metres per texture tile, texture index) for each plane."""
    h, w = cfg.camera_height, cfg.half_width
    ex, ey, ez = np.eye(3)
    return [
        (np.array([0.0, h, 0.0]), ey, ex, ez, 8.0, 1),            # ground
        (np.array([-w, 0.0, 0.0]), ex, ez, ey, 6.0, 0),           # left facade
        (np.array([w, 0.0, 0.0]), -ex, ez, ey, 6.0, 3),           # right facade
        (np.array([0.0, 0.0, cfg.end_z]), -ez, ex, ey, 10.0, 2),  # end wall
    ]


def render_view(cfg: ToyStreetConfig, K: np.ndarray, cam2world: np.ndarray,
                textures: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RGB float32 (H, W, 3) in [0, 1] (supersampled) and exact z-depth float32 (H, W) at pixel centres (0 = sky)."""
    from scipy.ndimage import map_coordinates

    tex = textures if textures is not None else _textures()
    planes = _planes(cfg)
    R, c = cam2world[:3, :3], cam2world[:3, 3]

    def trace(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
        d = d_cam @ R.T  # world direction whose camera z is 1, so the ray parameter is z-depth
        best_t = np.full(u.shape, np.inf)
        rgb = np.empty(u.shape + (3,), np.float32)
        rgb[:] = SKY_RGB
        for p0, n, a, b, tile, ti in planes:
            denom = d @ n
            with np.errstate(divide="ignore", invalid="ignore"):
                t = ((p0 - c) @ n) / denom
            X = c + t[..., None] * d
            ok = (t > 1e-6) & (t < best_t) & np.isfinite(t)
            if ti != 1:  # walls end at wall_height above the ground
                ok &= X[..., 1] >= cfg.camera_height - cfg.wall_height
            if not ok.any():
                continue
            T = tex[ti]
            s = ((X[ok] - p0) @ a) / tile * T.shape[1]
            r = ((X[ok] - p0) @ b) / tile * T.shape[0]
            for ch in range(3):
                rgb[..., ch][ok] = map_coordinates(T[..., ch], [r - 0.5, s - 0.5], order=1, mode="grid-wrap")
            best_t = np.where(ok, t, best_t)
        return rgb, np.where(np.isfinite(best_t), best_t, 0.0)

    H, W, ss = cfg.height, cfg.width, cfg.supersample
    sub = (np.arange(ss) + 0.5) / ss
    vv, uu = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    acc = np.zeros((H, W, 3), np.float32)
    for dy in sub:
        for dx in sub:
            acc += trace(uu + dx, vv + dy)[0]
    _, depth = trace(uu + 0.5, vv + 0.5)
    return np.clip(acc / ss**2, 0, 1), depth.astype(np.float32)


def _cam2world(yaw_deg: float, position: np.ndarray) -> np.ndarray:
    a = math.radians(yaw_deg)
    # rotation about world y (down): camera z (forward) turns toward +x (right) for positive yaw
    R = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, position
    return T


def make_toy_street(cfg: ToyStreetConfig, out: str | Path) -> Scene:
    """Render the toy street into a recon scene folder ``out`` (images/, depth/, scene.json) and load it."""
    out = Path(out)
    fx = cfg.width / 2 / math.tan(math.radians(cfg.hfov_deg) / 2)
    textures = _textures()
    cams: dict[str, Camera] = {}
    frames: list[Frame] = []
    for ci, yaw in enumerate(cfg.yaws_deg):
        name = f"cam{ci}"
        cam = Camera(name, cfg.width, cfg.height, fx, fx, cfg.width / 2, cfg.height / 2)
        cams[name] = cam
        for i in range(cfg.n_frames):
            # cameras sit on a circle around the rig centre, facing outwards (a real rig has a baseline)
            a = math.radians(yaw)
            pos = np.array([cfg.rig_radius_m * math.sin(a), 0.0, cfg.rig_radius_m * (math.cos(a) - 1.0)])
            c2w = _cam2world(yaw, pos + np.array([0.0, 0.0, i * cfg.step_m]))
            rgb, depth = render_view(cfg, cam.K, c2w, textures)
            fid = f"{name}_{i:03d}"
            write_image(out / "images" / f"{fid}.png", rgb)
            write_depth(out / "depth" / f"{fid}.npy", depth)
            frames.append(Frame(fid, cam, i * cfg.dt_s, out / "images" / f"{fid}.png", c2w, "train", i,
                                depth_path=out / "depth" / f"{fid}.npy"))
    Scene(out, cams, frames, name="toy-street", source="recon.match.toyscene").save()
    return Scene.load(out)
