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
