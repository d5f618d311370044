"""recon bench on a local Ray instance (2 CPUs): a worker SIGKILLed mid-run is retried, and the results equal the
local executor's for the same seeds; finished runs are reused without a task."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import support.bench
from support.bench import TINY_FLAGS, kill_self_once

from recon.bench.config import BenchConfig
from recon.bench.plan import RunSpec
from recon.bench.runner import run_bench, run_task
from recon.io.atomic import is_orphan_name


def kill_seed1_once(run: RunSpec) -> dict:
    """The bench task, except that the worker running seed 1 kills itself at step 3 on its first attempt."""
    if run.seed == 1:
        kill_self_once(run.log.with_suffix(".killed"))
    return run_task(run)


def _cfg(out: Path, scene: Path, executor: str) -> BenchConfig:
    return BenchConfig(out=out, scenes=str(scene), methods="baseline", seeds="0,1", iters=8, executor=executor,
                       cpus_per_run=1, max_retries=2, extra=TINY_FLAGS)


def _figures(report: dict) -> list[tuple]:
    """Every run's accuracy figures (not its timings)."""
    out = []
    for r in report["runs"]:
        m = r["metrics"]
        out.append((r["scene"], r["method"], r["seed"], m["psnr"], m["ssim"],
                    json.dumps(m["depth"], sort_keys=True), r["train"]["n_gaussians"], r["train"]["final_train_psnr"]))
    return out


@pytest.mark.slow
def test_killed_worker_is_retried_and_results_equal_local(tmp_path: Path, bench_street: Path,
                                                          ray_local: object) -> None:
    ray = ray_local
    for mod in (sys.modules[__name__], support.bench):  # the test's task wrapper travels by value
        ray.cloudpickle.register_pickle_by_value(mod)
    local = run_bench(_cfg(tmp_path / "local", bench_street, "local"), progress=False)
    assert not local["failed"] and len(local["runs"]) == 2

    out = tmp_path / "ray"
    remote = run_bench(_cfg(out, bench_street, "ray"), task=kill_seed1_once, progress=False)
    log1 = out / "logs" / "street" / "baseline" / "seed1.log"
    assert log1.with_suffix(".killed").is_file()  # the first attempt did die
    assert log1.read_text().count("attempt started") == 2  # and Ray ran it again
    assert (out / "logs" / "street" / "baseline" / "seed0.log").read_text().count("attempt started") == 1
    assert not remote["failed"]
    assert _figures(remote) == _figures(local)
    # the half-written folder of the killed attempt was replaced cleanly: no temporaries, a complete run
    run1 = out / "runs" / "street" / "baseline" / "seed1"
    assert not [p for p in run1.rglob("*") if is_orphan_name(p.name)]
    assert (run1 / "bench_run.json").is_file() and (run1 / "bench.log").is_file()
    # the same table, but for the time per iteration
    rows = [[ln.split("|")[1:9] + ln.split("|")[10:11]
             for ln in (d / "results.md").read_text().split("Per camera")[0].splitlines()
             if ln.startswith("| street |")] for d in (tmp_path / "local", out)]
    assert rows[0] == rows[1] and len(rows[0]) == 1

    # a second bench reuses both runs: no task runs (no new attempt in the logs), same figures
    again = run_bench(_cfg(out, bench_street, "ray"), progress=False)
    assert _figures(again) == _figures(local)
    assert log1.read_text().count("attempt started") == 2
