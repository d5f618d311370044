"""The benchmark runner on a tiny configuration: its files and table are produced and parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recon.bench.config import BenchConfig
from recon.bench.runner import run_bench
from recon.errors import ReconError


@pytest.mark.slow
def test_quick_bench_writes_results(tmp_path: Path) -> None:
    cfg = BenchConfig(out=tmp_path / "b", quick=True)
    cfg.iters = 8
    report = run_bench(cfg)
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert {r["method"] for r in res["runs"]} == {"baseline", "lidar"}
    for r in res["runs"]:
        assert r["metrics"]["psnr"] > 5 and r["metrics"]["depth"]["overall"]["n"] > 0
    md = (tmp_path / "b" / "results.md").read_text()
    main_table = md.split("Per camera")[0]  # then one row per camera and method
    assert main_table.count("| synth_0 |") == 2 and "Relative to baseline" in md and "Relative to lidar" in md
    assert "time/iter change" in md
    assert (tmp_path / "b" / "plots" / "psnr.png").stat().st_size > 1000
    assert (tmp_path / "b" / "plots" / "crops.png").is_file()
    assert report["summary"]["per_method"]["baseline"]["psnr"] == pytest.approx(
        res["summary"]["per_method"]["baseline"]["psnr"])
    # each run's output is in its log, copied into its run folder
    run = tmp_path / "b" / "runs" / "synth_0" / "baseline" / "seed0"
    assert "==== finished" in (run / "bench.log").read_text()
    assert (tmp_path / "b" / "logs" / "synth_0" / "baseline" / "seed0.log").is_file()
    # resumable: a second run of the same configuration trains nothing and gives the same numbers
    again = run_bench(BenchConfig(out=tmp_path / "b", quick=True, iters=8))
    assert again["summary"]["per_method"] == report["summary"]["per_method"]
    assert (run / "bench.log").read_text().count("attempt started") == 1
    # another budget does not reuse these runs under a new heading: it is refused before anything trains
    with pytest.raises(ReconError, match=r"holds a finished run of another configuration \(iters 8 \(now 40\)\)"):
        run_bench(BenchConfig(out=tmp_path / "b", quick=True))
