"""The benchmark's report on real footage (no depth ground truth): table columns, relative changes, strict JSON."""

from __future__ import annotations

import json
import math

from recon.bench.config import BenchConfig
from recon.bench.report import RunResult, markdown, strict_json, summarise


def _run(method: str, seed: int, psnr: float, rel_err: float, n_gaussians: int = 60_000) -> RunResult:
    metrics = {"psnr": psnr, "ssim": 0.5 + psnr / 100, "lpips": None, "depth": None,
               "reprojection": {"overlap": 1.0, "depth_rel_err": rel_err, "consistent": 0.5, "photo_l1": math.nan}}
    return RunResult("kitti", method, seed, metrics,
                     {"train_seconds": 10.0, "iters": 100, "n_gaussians": n_gaussians})


def test_real_scene_table_reports_reprojection_not_depth_bands() -> None:
    results = [_run("baseline", 0, 22.0, 0.04, 60_000), _run("baseline", 1, 24.0, 0.06, 64_000),
               _run("mv", 0, 25.0, 0.025)]
    summary = summarise(results)
    md = markdown(summary, BenchConfig(seeds="0,1"))
    assert "| kitti | baseline | 23.00 ± 1.00 |" in md
    assert "median depth disagreement" in md and "AbsRel near" not in md
    assert ("| kitti | baseline | 23.00 ± 1.00 | 0.730 ± 0.010 | n/a | 5.0% ± 1.0% | 50.0% ± 0.0% | n/a | "
            "0.10 ± 0.00 | 62.0k ± 2.0k |") in md
    # mv against baseline: +2 dB, disagreement 2.5% against a mean of 5.0%: -50%
    assert "| mv | +2.00 | +0.020 | -50.0% | +0.0% |" in md


def test_results_json_is_strict() -> None:
    summary = summarise([_run("baseline", 0, 22.0, math.nan)])
    text = json.dumps(strict_json({"summary": summary, "x": [math.inf, 1.5]}), allow_nan=False)
    back = json.loads(text)
    assert back["x"] == [None, 1.5]
    assert back["summary"]["per_scene"]["kitti"]["baseline"]["reproj_photo_l1"] == [None, None]


def _lidar_run(method: str, seed: int, cam_psnr: dict[str, float], absrel: float) -> RunResult:
    """A run scored against sparse LiDAR with a held-out camera (two test cameras)."""
    band = {"abs_rel": absrel, "rmse": 1.0, "delta1": 0.9, "n": 500, "coverage": 0.04}
    per_camera = {c: {"n_views": 6 if c == "cam2" else 51, "psnr": p, "ssim": 0.7, "n_depth_views": 6,
                      "depth": {"overall": {**band, "abs_rel": absrel * (1.5 if c == "cam3" else 1.0)}}}
                  for c, p in cam_psnr.items()}
    metrics = {"psnr": sum(cam_psnr.values()) / 2, "ssim": 0.7, "lpips": None, "reprojection": None,
               "depth": {b: dict(band) for b in ("overall", "near", "mid", "far")}, "per_camera": per_camera}
    return RunResult("kitti_raw", method, seed, metrics, {"train_seconds": 10.0, "iters": 100, "n_gaussians": 1000})


def test_lidar_scored_scene_reports_coverage_and_each_camera() -> None:
    results = [_lidar_run("lidar", 0, {"cam2": 22.0, "cam3": 20.0}, 0.2),
               _lidar_run("lidar_full", 0, {"cam2": 22.5, "cam3": 20.1}, 0.15)]
    md = markdown(summarise(results), BenchConfig(seeds="0"))
    assert "AbsRel near" in md and "kitti_raw: share of test pixels with a depth truth value, by band: near 4.0%" in md
    assert "| kitti_raw | lidar_full | cam3 | 51 | 20.10 ± 0.00 | 0.225 ± 0.000 |" in md
    assert "| kitti_raw | lidar | cam2 | 6 | 22.00 ± 0.00 | 0.200 ± 0.000 |" in md
    # relative to the strong baseline: -25% in every band and overall
    assert "| lidar_full | +0.30 | +0.000 | -25.0% | -25.0% | -25.0% | -25.0% | +0.0% |" in md
