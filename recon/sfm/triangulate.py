"""COLMAP point triangulation with the scene's fixed poses, then per-point measurements and reliability filters.

:func:`triangulate_known_poses` runs ``pycolmap.triangulate_points`` (COLMAP's ``point_triangulator``: tracks built
from the verified matches through the correspondence graph, multi-view DLT with RANSAC, track merging and
completion, bundle adjustment of the points only: poses and intrinsics stay fixed). Two-view tracks are kept
(``ignore_two_view_tracks = False``): on a forward-moving car many points are seen by two frames only.

:func:`measure_points` reads every point back: world position (metres), track (frame ids, pixels), COLMAP's mean
reprojection error (pixels), the largest triangulation angle between any two observing rays (degrees), the
smallest depth z over the observing cameras (metres) and a colour (mean of the observing images at the observed
pixels, RGB in [0, 1]). :func:`filter_points` applies the thresholds and counts what each filter removed.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon.data.scene import Frame
from recon.errors import ReconError
from recon.match.point_filter import PointFilter, apply_in_order
from recon.sfm.colmap_model import ColmapIds


@dataclass
class TrackFilter(PointFilter):
    """Reliability thresholds of SfM points: :class:`recon.match.point_filter.PointFilter`'s (pixels, degrees,
    metres; ``min_depth_m`` over the observing cameras) plus the track length. ``min_track`` 0 means automatic: 3 (a
    third view confirms the depth; on KITTI two-view points miss their held-out reprojection twice as often) unless
    that keeps fewer than ``auto_track_min_points`` points, then 2."""

    max_reproj_px: float = 2.0
    min_angle_deg: float = 1.5
    min_depth_m: float = 0.1
    min_track: int = 0
    auto_track_min_points: int = 100


@dataclass
class MeasuredPoints:
    """N triangulated points. ``xyz`` float64 (N, 3) world metres; ``rgb`` float32 (N, 3) in [0, 1];
    ``track_length`` int (N,); ``reproj_px`` float (N,) mean reprojection error; ``angle_deg`` (N,) largest
    triangulation angle; ``min_depth_m`` (N,) smallest camera z over the track; ``obs``: per point the
    (frame id, x, y) observations (pixel-centre convention)."""

    xyz: np.ndarray
    rgb: np.ndarray
    track_length: np.ndarray
    reproj_px: np.ndarray
    angle_deg: np.ndarray
    min_depth_m: np.ndarray
    obs: list[list[tuple[str, float, float]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.xyz)

    def subset(self, keep: np.ndarray) -> MeasuredPoints:
        idx = np.flatnonzero(keep)
        return MeasuredPoints(self.xyz[idx], self.rgb[idx], self.track_length[idx], self.reproj_px[idx],
                              self.angle_deg[idx], self.min_depth_m[idx], [self.obs[i] for i in idx])

    def to_array(self) -> np.ndarray:
        """float32 (N, 8): x, y, z, r, g, b, track length, mean reprojection error (px): the points3d.npy rows."""
        return np.concatenate([self.xyz, self.rgb, self.track_length[:, None], self.reproj_px[:, None]],
                              1).astype(np.float32)


@contextlib.contextmanager
def _quiet_native(enabled: bool = True):
    """Silence COLMAP's C++ log lines (stderr / stdout file descriptors) for the duration of the block."""
    if not enabled:
        yield
        return
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def triangulate_known_poses(reconstruction, database_path: str | Path, output_path: str | Path,
                            min_angle_deg: float = 1.5, max_reproj_px: float = 4.0, quiet: bool = True):
    """Triangulate the database's verified matches into ``reconstruction`` (poses fixed). Returns the result."""
    import pycolmap

    pycolmap.logging.minloglevel = 2
    opts = pycolmap.IncrementalPipelineOptions()
    opts.extract_colors = False  # colours come from recon's own images (measure_points)
    opts.num_threads = 1
    opts.triangulation.ignore_two_view_tracks = False
    opts.triangulation.min_angle = float(min_angle_deg)
    opts.mapper.filter_min_tri_angle = float(min_angle_deg)
    opts.mapper.filter_max_reproj_error = float(max_reproj_px)
    Path(output_path).mkdir(parents=True, exist_ok=True)
    try:
        with _quiet_native(quiet):
            return pycolmap.triangulate_points(reconstruction, str(database_path), str(Path(database_path).parent),
                                               str(output_path), clear_points=True, options=opts,
                                               refine_intrinsics=False)
    except Exception as exc:  # COLMAP reports bad input through generic exceptions
        msg = str(exc).strip().splitlines()
        raise ReconError(f"{database_path}: COLMAP triangulation failed ({type(exc).__name__}: "
                         f"{msg[-1][:160] if msg else ''})") from None


def _max_ray_angle_deg(point: np.ndarray, centres: np.ndarray) -> float:
    rays = point[None] - centres
    rays /= np.linalg.norm(rays, axis=1, keepdims=True).clip(1e-12)
    cos = np.clip(rays @ rays.T, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos.min())))


def measure_points(reconstruction, frames: list[Frame], ids: ColmapIds,
                   images: dict[str, np.ndarray]) -> MeasuredPoints:
    """Read the reconstruction's points with their tracks and measurements (see the module docstring)."""
    frame_of = ids.frame_of
    by_id = {f.id: f for f in frames}
    w2c = {f.id: f.world2cam for f in frames}
    pids = sorted(reconstruction.points3D)  # by point id: deterministic
    n = len(pids)
    xyz = np.zeros((n, 3))
    rgb = np.zeros((n, 3), np.float32)
    tl = np.zeros(n, np.int64)
    err = np.zeros(n)
    ang = np.zeros(n)
    zmin = np.zeros(n)
    obs_all: list[list[tuple[str, float, float]]] = []
    for k, pid in enumerate(pids):
        p = reconstruction.points3D[pid]
        X = np.asarray(p.xyz, np.float64)
        obs, cols, zs, centres = [], [], [], []
        for el in p.track.elements:
            fid = frame_of[el.image_id]
            xy = reconstruction.images[el.image_id].points2D[el.point2D_idx].xy
            x, y = float(xy[0]), float(xy[1])
            obs.append((fid, x, y))
            img = images[fid]
            h, w = img.shape[:2]
            cols.append(img[min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1), :3])
            T = w2c[fid]
            zs.append(float(T[2, :3] @ X + T[2, 3]))
            centres.append(by_id[fid].center)
        xyz[k] = X
        rgb[k] = np.mean(cols, 0)
        tl[k] = len(obs)
        err[k] = float(p.error)
        ang[k] = _max_ray_angle_deg(X, np.asarray(centres))
        zmin[k] = min(zs)
        obs_all.append(obs)
    return MeasuredPoints(xyz, rgb, tl, err, ang, zmin, obs_all)


def filter_points(points: MeasuredPoints, cfg: TrackFilter) -> tuple[MeasuredPoints, dict[str, int], int]:
    """Points passing every filter, how many each filter removed (applied in order, so counts add up) and the
    track length threshold used (``cfg.min_track``, or the automatic choice when it is 0)."""
    shared = cfg.shared_tests(points.reproj_px, points.angle_deg, points.min_depth_m)
    tests = {
        "finite": np.isfinite(points.xyz).all(1) & np.isfinite(points.reproj_px),
        "behind_camera": shared["depth"],
        "reprojection": shared["reprojection"],
        "angle": shared["angle"],
    }
    keep, removed = apply_in_order(tests, np.ones(len(points), bool))
    min_track = cfg.min_track
    if min_track <= 0:
        min_track = 3 if int((keep & (points.track_length >= 3)).sum()) >= cfg.auto_track_min_points else 2
    ok = points.track_length >= min_track
    removed["track_length"] = int((keep & ~ok).sum())
    keep &= ok
    return points.subset(keep), removed, min_track
