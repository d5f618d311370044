"""How good are a scene's SfM points as metric depth: each point against the LiDAR of the frames that see it.

For every training frame with a LiDAR sweep, the scene's SfM points (``points3d.npy``, from ``recon sfm``) are
projected into the frame; where the frame's sparse, occlusion-filtered LiDAR depth has a value at the same pixel,
the point's z-depth is compared with it (in every frame it lands in, whether or not that frame observed it, so an
occluded point counts against the occluder: the figures compare matchers, they are not the points' own accuracy).
Prints, per scene: the matcher that made the points, their median reprojection error and track length (from
``SCENE/sfm/report.json``), points, comparisons, median relative error, the share within 5% and 10%, by band of LiDAR
depth (near < 10 m, mid 10-40 m, far > 40 m).

    python benchmarks/sfm_vs_lidar.py SCENE [SCENE ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from recon.data.projection import project_points
from recon.data.scene import Scene
from recon.eval.depth_metrics import DEFAULT_BAND_NAMES, DEFAULT_BANDS
from recon.train.views import sparse_lidar_depth


def sfm_summary(scene: Scene) -> str:
    """Matcher (without its settings), median reprojection error and track length from the scene's SfM report."""
    try:
        r = json.loads((scene.root / "sfm" / "report.json").read_text())
        return (f"{str(r['matcher']).split(' ')[0]}, median reprojection {r['median_reproj_px']:.3f} px, "
                f"median track {r['median_track_length']:.0f}")
    except (OSError, ValueError, KeyError, TypeError):
        return "no SfM report"


def compare(scene: Scene) -> tuple[int, np.ndarray, np.ndarray]:
    pts = scene.load_sfm_points()
    if pts is None:
        raise SystemExit(f"{scene.root}: no points3d.npy (run recon sfm first)")
    rel, gt_all = [], []
    for f in scene.train_frames:
        if f.lidar_path is None:
            continue
        cam = f.camera
        gt = sparse_lidar_depth(f, cam.K, cam.width, cam.height)
        rows, cols, z, _ = project_points(pts[:, :3], f.cam2world, cam.K, cam.width, cam.height)
        g = gt[rows, cols]
        ok = g > 0
        rel.append((z[ok] - g[ok]) / g[ok])
        gt_all.append(g[ok])
    return len(pts), np.concatenate(rel), np.concatenate(gt_all)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenes", type=Path, nargs="+")
    args = ap.parse_args()
    for root in args.scenes:
        scene = Scene.load(root)
        n, rel, gt = compare(scene)
        print(f"{root}: {n} points ({sfm_summary(scene)}), {len(rel)} comparisons with LiDAR")
        for (lo, hi), name in [((0.0, np.inf), "all"), *zip(DEFAULT_BANDS, DEFAULT_BAND_NAMES)]:
            r = np.abs(rel[(gt >= lo) & (gt < hi)])
            if len(r):
                print(f"  {name:<5} n {len(r):>7}  median |rel| {100 * np.median(r):.1f}%  "
                      f"within 5% {100 * (r < 0.05).mean():.0f}%  within 10% {100 * (r < 0.10).mean():.0f}%")


if __name__ == "__main__":
    main()
