"""Which views to match: temporal neighbours of one camera and neighbouring cameras at the same time.

For each camera, frames are ordered by timestamp (then index) and each is paired with the next one and, by
default, the one after (``temporal_steps``): with a forward-moving car the doubled baseline halves the relative
depth error of a triangulated point and lets farther points pass the sensitivity filter. Cameras are
ordered by their yaw relative to a reference camera of the rig (averaged over time), and each camera's frame is
paired with the frame of the next camera in that order taken closest in time (within half a frame interval). A
candidate is kept only when the camera centres are at least ``min_baseline_m`` apart (a pure rotation has nothing
to triangulate) and the two view frusta overlap: points sampled in each frustum over a depth range must project
inside the other image, in front of it, for at least ``min_overlap`` of the samples (both ways).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from recon.data.projection import camera_to_pixel, transform_points
from recon.data.scene import Camera, Frame, Scene


@dataclass(frozen=True)
class Pair:
    """Two views to match. ``kind``: 'temporal' (same camera) or 'cross' (neighbouring cameras)."""

    frame0: str
    frame1: str
    kind: str
    overlap: float


@dataclass
class PairConfig:
    """Pair selection. Depths in metres along the optical axis; overlap is a fraction of frustum samples."""

    temporal: bool = True
    cross: bool = True
    temporal_steps: tuple[int, ...] = (1, 2)
    depth_min: float = 2.0
    depth_max: float = 80.0
    min_overlap: float = 0.1
    min_baseline_m: float = 0.01


def _frustum_samples(cam: Camera, depth_min: float, depth_max: float, n_px: int = 12, n_d: int = 8) -> np.ndarray:
    """Camera-frame points (N, 3) on a pixel grid times depths log-spaced in [depth_min, depth_max]."""
    u = (np.arange(n_px) + 0.5) / n_px * cam.width
    v = (np.arange(n_px) + 0.5) / n_px * cam.height
    d = np.geomspace(depth_min, depth_max, n_d)
    uu, vv, dd = np.meshgrid(u, v, d, indexing="ij")
    return cam.unproject(uu, vv, dd).reshape(-1, 3)


def _visible_fraction(f0: Frame, f1: Frame, depth_min: float, depth_max: float) -> float:
    """Fraction of f0's frustum samples that f1 sees (inside its image, z in (0, depth_max * 2])."""
    pts_w = transform_points(_frustum_samples(f0.camera, depth_min, depth_max), f0.cam2world)
    pc = transform_points(pts_w, f1.world2cam)
    z = pc[:, 2]
    front = z > 1e-3
    c = f1.camera
    u, v = camera_to_pixel(pc, c.K, np.where(front, z, 1.0))  # points behind are masked out below
    inside = front & (u >= 0) & (u <= c.width) & (v >= 0) & (v <= c.height) & (z <= 2.0 * depth_max)
    return float(inside.mean())


def frustum_overlap(f0: Frame, f1: Frame, depth_min: float = 2.0, depth_max: float = 80.0) -> float:
    """Symmetric frustum overlap in [0, 1]: the smaller of the two visible fractions."""
    return min(_visible_fraction(f0, f1, depth_min, depth_max), _visible_fraction(f1, f0, depth_min, depth_max))


def _yaw_deg(ref: Frame, f: Frame) -> float:
    """Azimuth of f's optical axis in ref's camera frame (degrees, positive to ref's right)."""
    fwd = ref.world2cam[:3, :3] @ (f.cam2world[:3, :3] @ np.array([0.0, 0.0, 1.0]))
    return math.degrees(math.atan2(fwd[0], fwd[2]))


def _nearest_in_time(frames: list[Frame], t: float) -> Frame:
    return min(frames, key=lambda f: abs(f.timestamp - t))


def _median_interval(frames: list[Frame]) -> float:
    ts = np.array([f.timestamp for f in frames])
    return float(np.median(np.diff(ts))) if len(ts) > 1 else math.inf


def camera_order(frames: list[Frame]) -> list[str]:
    """Camera names ordered by yaw (left to right) relative to the first camera, averaged over its frames."""
    by_cam: dict[str, list[Frame]] = defaultdict(list)
    for f in frames:
        by_cam[f.camera.name].append(f)
    names = list(by_cam)
    if len(names) < 2:
        return names
    ref_frames = sorted(by_cam[names[0]], key=lambda f: (f.timestamp, f.index))
    yaw: dict[str, float] = {}
    for name, fs in by_cam.items():
        angles = [_yaw_deg(_nearest_in_time(ref_frames, f.timestamp), f) for f in fs]
        # circular mean: a rig that spans +-180 degrees must not average to 0
        yaw[name] = math.degrees(math.atan2(np.mean(np.sin(np.radians(angles))), np.mean(np.cos(np.radians(angles)))))
    return sorted(names, key=lambda n: yaw[n])


def select_pairs(scene: Scene | None = None, frames: list[Frame] | None = None,
                 config: PairConfig | None = None) -> list[Pair]:
    """Pairs among ``frames`` (default: the scene's training frames), each unordered pair once, frusta overlapping.

    Test frames are left out by default so that held-out images never inform training.
    """
    cfg = config or PairConfig()
    if frames is None:
        if scene is None:
            raise ValueError("select_pairs needs a scene or a list of frames")
        frames = scene.train_frames
    by_cam: dict[str, list[Frame]] = defaultdict(list)
    for f in frames:
        by_cam[f.camera.name].append(f)
    for fs in by_cam.values():
        fs.sort(key=lambda f: (f.timestamp, f.index))

    candidates: list[tuple[Frame, Frame, str]] = []
    if cfg.temporal:
        for step in cfg.temporal_steps:
            for fs in by_cam.values():
                for i in range(len(fs) - step):
                    candidates.append((fs[i], fs[i + step], "temporal"))
    order = camera_order(frames)
    if cfg.cross and len(order) >= 2:
        neighbours = [(order[i], order[i + 1]) for i in range(len(order) - 1)]
        if len(order) >= 3:
            neighbours.append((order[-1], order[0]))  # a surround rig closes the ring; overlap decides
        for a, b in neighbours:
            tol = 0.5 * min(_median_interval(by_cam[a]), _median_interval(by_cam[b]))
            for f in by_cam[a]:
                g = _nearest_in_time(by_cam[b], f.timestamp)
                if abs(g.timestamp - f.timestamp) <= (tol if math.isfinite(tol) else math.inf):
                    candidates.append((f, g, "cross"))

    seen: set[tuple[str, str]] = set()
    pairs: list[Pair] = []
    for f0, f1, kind in candidates:
        key = (min(f0.id, f1.id), max(f0.id, f1.id))
        if key in seen or f0.id == f1.id:
            continue
        seen.add(key)
        if np.linalg.norm(f0.center - f1.center) < cfg.min_baseline_m:
            continue  # a pure rotation: nothing to triangulate
        ov = frustum_overlap(f0, f1, cfg.depth_min, cfg.depth_max)
        if ov >= cfg.min_overlap:
            pairs.append(Pair(f0.id, f1.id, kind, ov))
    return pairs
