"""benchmarks/bench_train.py: its option building, stage timers, summaries and tables, and one tiny run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from support.scripts import load_benchmark

bt = load_benchmark("bench_train")


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recon.data.synth import SynthConfig, make_street

    out = tmp_path_factory.mktemp("bench_train") / "street"
    make_street(SynthConfig(seed=2, width=64, height=40, n_frames=9, defocus_frames=0), out)
    return out


def test_equal_gaussians_options_keep_every_seed_and_never_densify() -> None:
    args = bt.equal_gaussian_args(1443, 100)
    opts = dict(zip(args[::2], args[1::2]))
    assert opts["--init.max-points"] == opts["--init.random-points"] == "1443"
    assert opts["--init.voxel-size-m"] == "0" and opts["--init.far-points"] == "0"
    assert opts["--init.outlier-neighbors"] == "0"
    assert int(opts["--strategy.refine-start"]) > 100
    with pytest.raises(ValueError):
        bt.equal_gaussian_args(0, 100)


def test_train_argv_parses_as_recon_train_does(tmp_path: Path) -> None:
    from recon.train.cli import build_config

    argv = bt.train_argv(tmp_path / "scene", tmp_path / "out", "baseline", 50, 3, 0.25, 2, "cpu", 1000,
                         ["--no-sky-model"])
    cfg, _ = build_config(argv, "t")
    assert (cfg.iters, cfg.seed, cfg.downscale, cfg.threads, cfg.device) == (50, 3, 0.25, 2, "cpu")
    assert cfg.init.max_points == 1000 and cfg.init.far_points == 0 and cfg.strategy.refine_start > 50
    assert cfg.checkpoint_every == 0 and not cfg.eval_at_end and not cfg.sky_model


def test_stage_timer_counts_nested_calls_once_and_keeps_function_attributes() -> None:
    ticks = iter(range(100))
    timer = bt.StageTimer(clock=lambda: float(next(ticks)))  # a fake clock: 1 s per reading

    class Obj:
        def inner(self) -> int:
            return 1

        def outer(self) -> int:
            return self.inner() + 1

    o = Obj()
    Obj.outer.marker = "kept"
    assert timer.wrap(o, "inner", "losses") and timer.wrap(o, "outer", "render")
    assert not timer.wrap(o, "missing", "render")
    assert o.outer() == 2 and getattr(o.outer, "marker", None) == "kept"
    rec = timer.take(5.0)

    assert rec["render"] == 1.0 and rec["losses"] == 0.0  # the nested stage is charged to the outer one
    assert rec["other"] == 4.0 and rec["total"] == 5.0
    assert timer.take(0.0)["render"] == 0.0  # reset after take


def test_summary_medians_after_warmup_and_shares() -> None:
    recs = [{**{k: 0.0 for k in bt.STAGES}, "total": 9.0, "cpu": 9.0}]  # warm-up, left out
    for t in (1.0, 2.0, 3.0):
        recs.append({"render": t / 2, "losses": 0.0, "backward": t / 4, "optimizer": 0.0, "strategy": 0.0,
                     "other": t / 4, "total": t, "cpu": 2 * t})
    s = bt.summarise_iterations(recs, warmup=1)
    assert s["total"] == 2.0 and s["cpu"] == 4.0 and s["render"] == 1.0 and s["n_timed"] == 3
    assert math.isclose(s["share_render"], 0.5) and math.isclose(sum(s[f"share_{k}"] for k in bt.STAGES), 1.0)
    assert bt.summarise_iterations(recs[:1], warmup=5)["total"] == 9.0  # nothing after warm-up: all of them
    with pytest.raises(ValueError):
        bt.summarise_iterations([], 0)


def test_tables_and_comparison() -> None:
    timing = {**{k: 0.01 for k in bt.STAGES}, **{f"share_{k}": 1 / 6 for k in bt.STAGES}, "total": 0.06,
              "cpu": 0.05}
    row = {"scene": "colmap", "code": "new", "width": 250, "height": 164, "iters": 100, "n_gaussians_start": 1443,
           "n_gaussians_end": 1443, "timing": timing, "peak_rss_mib": 700.0, "rss_before_train_mib": 650.0,
           "peak_cuda_mib": None, "test_psnr": 13.97, "train_psnr": 14.2}
    table = bt.format_results([row])
    assert "| colmap | new | 250x164 | 100 | 1443->1443 | 0.0600 | 0.0500 | 700 | 650 | - | 13.97 | 14.20 |" in table
    assert "| colmap (new) | 60.0 | 10.0 (17%) |" in table
    c = bt.compare_summary([0.2, 0.1, 0.3], [0.05, 0.1, 0.15])
    assert c["old_s"] == 0.2 and c["new_s"] == 0.1 and c["ratio"] == 0.5
    text = bt.format_compare({"scene": "colmap", "wall": c, "cpu": c, "round_medians": {"old": [0.2], "new": [0.1]},
                              "psnr": {"old": [13.9], "new": [14.0]}}, rounds=1)
    assert "new/old = 0.500 (2.00x faster)" in text


def test_a_tiny_run_reports_stages_memory_and_psnr(tiny_scene: Path, tmp_path: Path) -> None:
    argv = bt.train_argv(tiny_scene, tmp_path / "run", "baseline", 4, 0, 1.0, 1, "cpu", 300)
    res = bt.run_training(argv, warmup=1)
    assert res["iters"] == 4 and len(res["iterations"]) == 4 and res["timing"]["n_timed"] == 3
    assert res["n_gaussians_start"] == res["n_gaussians_end"] <= 300
    assert {"render", "losses", "backward", "optimizer", "strategy"} <= set(res["instrumented"])
    it = res["iterations"][-1]
    assert it["render"] > 0 and it["backward"] > 0 and it["optimizer"] > 0
    assert math.isclose(sum(it[k] for k in bt.STAGES), it["total"], rel_tol=1e-9) or it["other"] == 0.0
    assert 5 < res["test_psnr"] < 60 and 5 < res["train_psnr"] < 60
    assert res["peak_rss_mib"] >= res["rss_before_train_mib"] > 0 and res["peak_cuda_mib"] is None
    assert (res["width"], res["height"]) == (64, 40) and not (tmp_path / "run").exists()  # nothing written
