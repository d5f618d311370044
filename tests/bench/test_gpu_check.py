"""benchmarks/gpu_check.py's comparison, tolerance, table and exit-status logic on the CPU (the CUDA check skips)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from support.scripts import load_benchmark

gc = load_benchmark("gpu_check")
SMALL = [(150, 48, 32, "classic", 0), (150, 48, 32, "antialiased", 1)]


def _perturbed(render, what: str):  # noqa: ANN001, ANN202
    """The CPU rasterizer with one thing changed: a colour offset, a moved camera or a wrong means2d gradient."""

    def out(g, viewmat, K, w, h, mode):  # noqa: ANN001, ANN202
        if what == "pose":
            viewmat = viewmat.clone()
            viewmat[0, 3] += 0.01
        rgb, depth, alpha, m2d = render(g, viewmat, K, w, h, mode)
        if what == "colour":
            rgb = rgb + 0.01
        if what == "depth":
            depth = depth * 1.01
        return rgb, depth, alpha, m2d

    return out


def test_cpu_rasterizer_against_itself_passes() -> None:
    cpu = gc.recon_renderer("cpu")
    checks = gc.parity_checks(cpu, cpu, "cpu", "cpu", cases=SMALL)
    names = {c.name.split(": ", 1)[1] for c in checks}
    assert {"rgb max |diff|", "alpha mean |diff|", "depth max rel diff", "d/dmeans rel L2", "d/dscales rel L2",
            "d/dquats rel L2", "d/dopacities rel L2", "d/dcolors rel L2", "d/dmeans2d rel L2"} <= names
    assert all(c.passed for c in checks) and gc.exit_status(checks) == 0
    assert all(c.value == 0 for c in checks)  # the same renderer on the same input is deterministic


@pytest.mark.parametrize("what,failing", [("colour", "rgb max |diff|"), ("depth", "depth max rel diff"),
                                          ("pose", "d/dmeans rel L2")])
def test_a_perturbed_renderer_fails_and_sets_the_exit_status(what: str, failing: str) -> None:
    cpu = gc.recon_renderer("cpu")
    checks = gc.parity_checks(cpu, _perturbed(cpu, what), "cpu", "cpu", cases=SMALL[:1])
    bad = [c.name.split(": ", 1)[1] for c in checks if not c.passed]
    assert failing in bad
    assert gc.exit_status(checks) == 1
    assert "MISMATCH" in gc.format_checks(checks)


def test_compare_outputs_tolerances_and_missing_quantities() -> None:
    tol = gc.Tolerances()
    h, w = 4, 5
    ref = {"rgb": torch.zeros(h, w, 3, dtype=torch.float64), "alpha": torch.full((h, w), 0.9, dtype=torch.float64),
           "depth": torch.full((h, w), 10.0, dtype=torch.float64), "grad_means": torch.ones(7, 3, dtype=torch.float64)}
    ref["alpha"][2, 2] = 0.1
    test = {k: v.clone() for k, v in ref.items()}
    test["rgb"][0, 0, 0] = 0.5 * tol.image_max_abs  # within tolerance
    test["depth"][1, 1] = 10.0 * (1 + 0.5 * tol.depth_max_rel)
    test["grad_means"] = ref["grad_means"] * (1 + 0.5 * tol.grad_rel_l2)
    assert all(c.passed for c in gc.compare_outputs(ref, test, tol))
    test["depth"][2, 2] = 99.0  # depth where alpha is low is not compared...
    assert all(c.passed for c in gc.compare_outputs(ref, test, tol) if "depth" in c.name)
    test["grad_means"] = ref["grad_means"] * (1 + 2 * tol.grad_rel_l2)  # ...but a gradient 2% off is
    bad = [c.name for c in gc.compare_outputs(ref, test, tol) if not c.passed]
    assert bad == ["d/dmeans rel L2"]
    del test["grad_means"]
    missing = [c for c in gc.compare_outputs(ref, test, tol) if c.name == "d/dmeans rel L2"]
    assert len(missing) == 1 and not missing[0].passed and missing[0].value == math.inf
    assert gc.rel_l2(torch.ones(3), torch.zeros(3)) == pytest.approx(math.sqrt(3))


def test_training_table_goals_and_exit_status() -> None:
    rows = [gc.TrainRow("demo", "baseline", 1200, 0.02, 24.0, 900.0, 24.5, 60000),
            gc.TrainRow("demo", "dof", 1200, 0.024, 28.8, 1000.0, 24.7, 61000),
            gc.TrainRow("kitti", "baseline", 3000, 0.025, 75.0, 1200.0, 18.1, 90000),
            gc.TrainRow("kitti", "dof", 3000, 0.035, 105.0, 1300.0, 18.3, 95000),
            gc.TrainRow("kitti", "mv", 3000, math.nan, math.nan, math.nan, math.nan, 0, "boom")]
    table = gc.format_training_table(rows, "Some GPU")
    assert "Training on Some GPU" in table
    assert "| demo | baseline | 1200 | 20.0 | 24.0 | 900 | 24.50 | 60000 |" in table
    assert "| kitti | mv | 3000 | failed: boom |" in table
    goals = {g.name: g for g in gc.goal_checks(rows)}
    assert goals["demo: 1200 baseline iterations, s"].passed
    assert not goals["kitti: 3000 baseline iterations, s"].passed
    assert goals["demo: time per iteration the DoF loss adds"].value == pytest.approx(0.2)
    assert goals["demo: time per iteration the DoF loss adds"].passed
    assert not goals["kitti: time per iteration the DoF loss adds"].passed
    assert "MISSED" in gc.format_goals(list(goals.values()))
    ok = [gc.Check("x", 0.0, 1.0, True)]
    assert gc.exit_status(ok, list(goals.values())) == 0
    assert gc.exit_status(ok, list(goals.values()), require_goals=True) == 1


@pytest.fixture(scope="module")
def lidar_street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recon.data.synth import SynthConfig, make_street

    out = tmp_path_factory.mktemp("gpu_check") / "street"
    make_street(SynthConfig(seed=3, width=64, height=40, n_frames=9, defocus_frames=0), out)
    return out


@pytest.mark.parametrize("densify_from", ["image", "all"])
def test_densify_statistic_check_on_cpu(lidar_street: Path, tmp_path: Path, densify_from: str) -> None:
    """The CPU backend's one-pass split: the kept statistic is the image terms' gradient; with 'all' it is not,
    and the check says so."""
    from recon.train.build import build_trainer
    from recon.train.cli import build_config

    cfg, _ = build_config(["--data", str(lidar_street), "--out", str(tmp_path / "run"), "lidar", "--device", "cpu",
                           "--iters", "10", "--threads", "1", "--init.max-points", "800", "--init.far-points", "100",
                           "--strategy.densify-from", densify_from, "--checkpoint-every", "0", "--no-eval-at-end"],
                          "t")
    checks = gc.densify_statistic_checks(build_trainer(cfg))
    assert checks[1].passed  # the LiDAR term does move the screen-space gradient
    assert checks[0].passed == (densify_from == "image")
    assert gc.exit_status(checks) == (0 if densify_from == "image" else 1)


def test_main_without_cuda_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gc.main(["--skip-training"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (gsplat's kernels are CUDA only)")
def test_gsplat_cuda_matches_the_cpu_rasterizer() -> None:
    checks = gc.parity_checks(gc.recon_renderer("cpu"), gc.recon_renderer("gsplat"), "cpu", "cuda",
                              cases=[(500, 96, 64, "classic", 0), (500, 96, 64, "antialiased", 1)])
    assert gc.exit_status(checks) == 0, gc.format_checks([c for c in checks if not c.passed])
