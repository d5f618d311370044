"""Where a run's depth is wrong: per band, the share of LiDAR-scored test pixels rendered too far or too near.

For scenes scored against LiDAR (``recon eval`` / ``recon bench``), this prints for each run folder and each band
(near < 10 m, mid 10-40 m, far > 40 m): pixels, AbsRel, the median signed relative error (positive: rendered too
far) and the shares rendered more than 25% too far / too near; then the same band split into pixels at an occlusion
edge (a LiDAR return nearer than ``EDGE_RATIO`` x the pixel's depth within ``EDGE_RADIUS_PX``) and the rest.
It also prints the cameras' height above the road as recon.model.ground measures it from the scene's SfM points
and from the training frames' LiDAR.

    python benchmarks/depth_error_breakdown.py --scene SCENE RUN [RUN ...]

The runs must have been evaluated with outputs (``RUN/eval/depth/<frame>.npy``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from recon.data.scene import Scene
from recon.data.splits import training_scene
from recon.eval.depth_metrics import DEFAULT_BAND_NAMES, DEFAULT_BANDS
from recon.model.ground import camera_height, estimate_up
from recon.train.views import sparse_lidar_depth

EDGE_RADIUS_PX = 3
EDGE_RATIO = 0.7


def occlusion_edge(gt: np.ndarray, radius_px: int = EDGE_RADIUS_PX, ratio: float = EDGE_RATIO) -> np.ndarray:
    """Scored pixels of ``gt`` (z-depth metres, 0 = none) with a return nearer than ``ratio`` x theirs within
    ``radius_px`` pixels (a square window): the far side of an occlusion edge."""
    from scipy.ndimage import minimum_filter

    nearest = minimum_filter(np.where(gt > 0, gt, np.inf), size=2 * radius_px + 1)
    return (gt > 0) & (nearest < ratio * gt)


def _band_stats(r: np.ndarray) -> dict[str, float]:
    nan = float("nan")
    return {"n": len(r), "abs_rel": float(np.abs(r).mean()) if len(r) else nan,
            "median_signed": float(np.median(r)) if len(r) else nan,
            "too_far": float((r > 0.25).mean()) if len(r) else nan,
            "too_near": float((r < -0.25).mean()) if len(r) else nan}


def breakdown(scene: Scene, run: Path) -> dict[str, dict[str, float]]:
    """Per band (and per band at / away from occlusion edges, ``<band> edge`` / ``<band> other``): pixel count,
    AbsRel, median signed relative error and the shares more than 25% too far / too near."""
    rel_all, gt_all, edge_all = [], [], []
    for f in scene.test_frames:
        pred_path = run / "eval" / "depth" / f"{f.id}.npy"
        if f.lidar_path is None or not pred_path.is_file():
            continue
        gt = sparse_lidar_depth(f, f.camera.K, f.camera.width, f.camera.height)
        pred = np.load(pred_path)
        m = gt > 0
        rel_all.append((pred[m] - gt[m]) / gt[m])
        gt_all.append(gt[m])
        edge_all.append(occlusion_edge(gt)[m])
    rel, gt, edge = np.concatenate(rel_all), np.concatenate(gt_all), np.concatenate(edge_all)
    out = {}
    for (lo, hi), name in zip(DEFAULT_BANDS, DEFAULT_BAND_NAMES):
        band = (gt >= lo) & (gt < hi)
        out[name] = _band_stats(rel[band])
        out[f"{name} edge"] = _band_stats(rel[band & edge])
        out[f"{name} other"] = _band_stats(rel[band & ~edge])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, required=True)
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args()
    scene = Scene.load(args.scene)
    train = scene.train_frames
    c2ws = np.stack([f.cam2world for f in train])
    up = estimate_up(c2ws)
    pts = scene.load_sfm_points()
    if pts is not None:
        print(f"camera height above the road from the SfM points: {camera_height(pts[:, :3], c2ws, up):.3f} m")
    seen = training_scene(scene)
    sweeps = [f.load_lidar() for f in seen.train_frames if f.lidar_path is not None]
    if sweeps:
        h = camera_height(np.concatenate(sweeps), c2ws, up)
        print(f"camera height above the road from the training LiDAR: {h:.3f} m")
    for run in args.runs:
        print(run)
        for band, b in breakdown(scene, run).items():
            print(f"  {band:<10} n {b['n']:>7}  AbsRel {b['abs_rel']:.3f}  "
                  f"median signed {100 * b['median_signed']:+.1f}%  >25% too far {100 * b['too_far']:.0f}%  "
                  f">25% too near {100 * b['too_near']:.0f}%")


if __name__ == "__main__":
    main()
