"""Initial point clouds for the Gaussians: LiDAR or SfM points cleaned with open3d, plus far points.

Driving scenes span 2 m to several hundred metres. LiDAR (about 75 m range) and SfM cover the near and mid field;
the distant field (skyline, hills) and the tops of facades above the LiDAR's highest beam have no measurement, so
plain 3DGS fills them with floaters close to the cameras. We seed them with *far points* (see :func:`far_points`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from recon.data.projection import ray_directions
from recon.data.scene import Frame, Scene, load_points
from recon.errors import ReconError
from recon.model.ground import camera_height, estimate_up, ground_depth


@dataclass
class InitConfig:
    """How the Gaussians are seeded."""

    source: str = "auto"
    """'auto' (LiDAR, else SfM points, else random), 'lidar', 'sfm' or 'random'."""
    voxel_size_m: float = 0.12
    """Voxel size for open3d downsampling of the merged sweeps (metres)."""
    max_points: int = 60_000
    """Upper bound on seeded points after downsampling (random subset, seeded)."""
    outlier_neighbors: int = 12
    """Statistical outlier removal: neighbours considered (0 disables)."""
    outlier_std: float = 2.5
    """Statistical outlier removal: standard-deviation ratio."""
    far_points: int = 8_000
    """Points seeded in the distant field beyond LiDAR range (0 disables)."""
    far_near_m: float = 60.0
    """Nearest depth of far points in image columns without any LiDAR return (metres)."""
    far_far_m: float = 400.0
    """Farthest depth of far points (metres)."""
    far_from_prior: bool = False
    """Place far points at the metric depth prior's depth (the DoF prior, ``--loss.dof-prior``) where it has one,
    instead of uniformly in inverse depth; the caller passes the prior's depth maps (see :func:`far_points`)."""
    far_above_ground: bool = False
    """Keep far points out of the ground: below the horizon a far point is placed no deeper than where its ray meets
    the road plane, at the cameras' height above the road measured from the seed points (recon.model.ground).
    Without it, textureless road that LiDAR or SfM left uncovered is seeded tens of metres underground."""
    random_points: int = 30_000
    """Points for the 'random' fallback, spread in the cameras' frusta."""


@dataclass
class InitPoints:
    """Seed points: xyz world metres (N, 3) float32 and rgb in [0, 1] (N, 3) float32, with their provenance."""

    xyz: np.ndarray
    rgb: np.ndarray
    source: str


def _project(frame: Frame, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, z, index) of the world points in front of ``frame`` (z > 5 cm) that land in its image."""
    return frame.project_points(pts, min_depth=0.05)


def colorize(points: np.ndarray, frames: list[Frame], images: dict[str, np.ndarray]) -> np.ndarray:
    """Colour world points by the nearest (smallest z) training view that sees them; grey where none does."""
    rgb = np.full((len(points), 3), 0.5, np.float32)
    best = np.full(len(points), np.inf)
    for f in frames:
        rows, cols, z, idx = _project(f, points)
        better = z < best[idx]
        sel = idx[better]
        rgb[sel] = images[f.id][rows[better], cols[better]]
        best[sel] = z[better]
    return rgb


def clean_points(xyz: np.ndarray, cfg: InitConfig, rng: np.random.Generator) -> np.ndarray:
    """Voxel-downsample and remove statistical outliers with open3d; cap the count (seeded)."""
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
    if cfg.voxel_size_m > 0:
        pcd = pcd.voxel_down_sample(cfg.voxel_size_m)
    if cfg.outlier_neighbors > 0 and len(pcd.points) > cfg.outlier_neighbors * 4:
        pcd, _ = pcd.remove_statistical_outlier(cfg.outlier_neighbors, cfg.outlier_std)
    out = np.asarray(pcd.points, dtype=np.float32)
    if len(out) > cfg.max_points:
        out = out[np.sort(rng.choice(len(out), cfg.max_points, replace=False))]
    return out


def far_points(frames: list[Frame], images: dict[str, np.ndarray], near_xyz: np.ndarray | None, cfg: InitConfig,
               rng: np.random.Generator, prior_depths: dict[str, np.ndarray] | None = None,
               ground: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seed what LiDAR misses: non-sky pixels with no near point, back-projected at depths drawn uniformly in
    inverse depth between the farthest LiDAR depth of the pixel's image column and ``far_far_m``; where
    ``prior_depths`` (frame id -> metric depth [H, W], 0 = unknown, at the camera's resolution) has a depth for the
    pixel, at that depth instead.

    The column bound matters: LiDAR stops a few degrees above the horizon, so the upper part of a facade at 15 m
    has no return; placing its seeds beyond 60 m would leave the baseline a hole to climb out of. Columns without
    any LiDAR return start at ``far_near_m``. ``ground`` (world up, camera height in metres) caps each point below
    the horizon at the depth where its ray meets the road plane.
    """
    if cfg.far_points <= 0 or not frames:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    per = max(1, cfg.far_points // len(frames))
    xyz_all, rgb_all = [], []
    for f in frames:
        cam = f.camera
        covered = np.zeros((cam.height, cam.width), bool)
        col_far = np.full(cam.width, cfg.far_near_m)
        if near_xyz is not None and len(near_xyz):
            from scipy.ndimage import binary_dilation

            vi, ui, z, _ = _project(f, near_xyz)
            covered[vi, ui] = True
            # LiDAR is sparse on the image: spread each hit over a small neighbourhood.
            covered = binary_dilation(covered, iterations=3)
            seen = np.zeros(cam.width)
            np.maximum.at(seen, ui, z)
            col_far = np.where(seen > 0, np.clip(seen, 2.0, cfg.far_far_m), cfg.far_near_m)
        sky = f.load_sky_mask()
        if sky is not None:
            covered |= sky
        cand = np.flatnonzero(~covered.ravel())
        if len(cand) == 0:
            continue
        pick = rng.choice(cand, min(per, len(cand)), replace=False)
        v, u = np.divmod(pick, cam.width)
        inv = rng.uniform(1.0 / cfg.far_far_m, 1.0 / col_far[u])
        z = 1.0 / inv
        prior = None if prior_depths is None else prior_depths.get(f.id)
        if prior is not None and prior.shape == (cam.height, cam.width):
            pz = prior[v, u]
            z = np.where(pz > 0, np.minimum(pz, cfg.far_far_m), z)
        rays = ray_directions(u + 0.5, v + 0.5, cam.K)  # through the pixel centres, camera z = 1
        if ground is not None:
            z = np.minimum(z, ground_depth(rays, f.cam2world, ground[0], ground[1]))
        xyz_all.append(cam.pixel_to_world(u + 0.5, v + 0.5, z, f.cam2world).astype(np.float32))
        rgb_all.append(images[f.id][v, u])
    if not xyz_all:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    return np.concatenate(xyz_all), np.concatenate(rgb_all).astype(np.float32)


def _row_count(path) -> int:
    """Rows stored in a point file, valid or not (``load_points`` drops non-finite and out-of-range rows)."""
    try:
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    except Exception:  # load_points has already named an unreadable file
        return 0


def load_seed_points(paths: list, what: str) -> np.ndarray:
    """The valid xyz rows of ``paths`` merged; refuse when none is valid, warn when most are not.

    A sweep full of NaN or a points3d.npy of garbage would otherwise seed training from the far points alone
    (a few hundred points), which trains without complaint and ends with metres of depth error."""
    parts = [load_points(p)[:, :3] for p in paths]  # one-line error if unreadable
    valid = sum(len(x) for x in parts)
    total = sum(_row_count(p) for p in paths)
    where = str(paths[0]) if len(paths) == 1 else f"{len(paths)} {what} files ({paths[0].parent})"
    if valid == 0:
        raise ReconError(f"{where}: no valid seed point ({total} rows, all non-finite or out of range); fix the "
                         f"{what} data or seed with --init.source random")
    if valid < 0.5 * total:
        warnings.warn(f"{where}: only {valid} of {total} {what} points are finite and in range; seeding from "
                      "those", stacklevel=2)
    return np.concatenate(parts).astype(np.float32)


def random_points(frames: list[Frame], n: int, rng: np.random.Generator, near: float = 2.0,
                  far: float = 100.0) -> np.ndarray:
    """Points spread in the training frusta, uniform in inverse depth (fallback without LiDAR or SfM)."""
    per = max(1, n // max(1, len(frames)))
    out = []
    for f in frames:
        cam = f.camera
        u = rng.uniform(0, cam.width, per)
        v = rng.uniform(0, cam.height, per)
        z = 1.0 / rng.uniform(1.0 / far, 1.0 / near, per)
        out.append(cam.pixel_to_world(u, v, z, f.cam2world))
    return np.concatenate(out).astype(np.float32)


def initial_points(scene: Scene, frames: list[Frame], images: dict[str, np.ndarray], cfg: InitConfig,
                   seed: int = 0, prior_depths: dict[str, np.ndarray] | None = None) -> InitPoints:
    """Seed points for the Gaussians from the scene's LiDAR, SfM points, or (with a warning) random points.

    ``prior_depths`` (frame id -> metric depth map) places the far points (see :func:`far_points`)."""
    rng = np.random.default_rng(seed)
    source = cfg.source
    if source == "auto":
        source = "lidar" if scene.has_lidar() else ("sfm" if scene.points_path is not None else "random")
        if source == "random":
            warnings.warn(f"{scene.root}: scene has no LiDAR and no SfM points; seeding Gaussians at random "
                          "depths in the training frusta (expect slower convergence)", stacklevel=2)
    if source == "lidar":
        if not scene.has_lidar():
            raise ReconError(f"{scene.root}: init source 'lidar' requested but the scene has no LiDAR sweeps")
        xyz = clean_points(load_seed_points(scene.lidar_sweeps(), "LiDAR"), cfg, rng)
        rgb = colorize(xyz, frames, images)
    elif source == "sfm":
        if scene.points_path is None:
            raise ReconError(f"{scene.root}: init source 'sfm' requested but the scene has no points3d file")
        xyz = clean_points(load_seed_points([scene.points_path], "SfM"), cfg, rng)
        rgb = colorize(xyz, frames, images)
    elif source == "random":
        xyz = random_points(frames, cfg.random_points, rng)
        rgb = colorize(xyz, frames, images)
    else:
        raise ReconError(f"unknown init source {cfg.source!r} (choose auto, lidar, sfm or random)")
    ground = None
    if cfg.far_above_ground and source != "random":
        c2ws = np.stack([f.cam2world for f in frames])
        up = estimate_up(c2ws)
        h = camera_height(xyz, c2ws, up)
        if h is None:
            warnings.warn(f"{scene.root}: too few seed points on the road ahead of the cameras to find its height; "
                          "far points are not kept out of the ground", stacklevel=2)
        else:
            ground = (up, h)
    fxyz, frgb = far_points(frames, images, xyz if source != "random" else None, cfg, rng, prior_depths, ground)
    return InitPoints(np.concatenate([xyz, fxyz]), np.concatenate([rgb, frgb]), source)
