"""Check and time recon's CUDA path: gsplat's kernels against recon's CPU rasterizer, training on CUDA, densification.

(a) Parity: the same random Gaussians (SH degree 3, classic and antialiased) rendered by gsplat's CUDA rasterization
    and by recon's CPU rasterizer through :func:`recon.render.rasterize` ("RGB+ED"): image, expected depth, alpha,
    the gradients of a fixed random linear function of the three with respect to means, scales, quats, opacities,
    colours and the screen-space means (the densification statistic), within :class:`Tolerances`.
(b) Training on CUDA: the demo scene (``make demo``'s synthetic street) for 1200 iterations and the KITTI excerpt
    for 3000 with each preset (baseline, dof, mv, full): seconds per iteration, training seconds, peak GPU memory,
    test PSNR, Gaussians; then the goals (demo <= 30 s, KITTI <= 60 s, the DoF loss adding <= 25% per iteration).
(c) ``--strategy.densify-from image`` on CUDA (two backward passes there): the statistic the trainer keeps equals
    the image terms' screen-space gradient, and a short run densifies.
(d) Exit status 1 on any mismatch (parity or densification), 0 otherwise; with ``--require-goals`` a missed goal
    fails too. Without CUDA: exit status 2 and a one-line reason.

The comparisons are plain functions of two renderer callables (``tests/test_gpu_check.py`` runs them on the CPU).

    python benchmarks/gpu_check.py                       # everything (about 20 minutes on one modern GPU)
    python benchmarks/gpu_check.py --skip-training       # (a) and (c) only, a minute
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

GRAD_KEYS = ("means", "scales", "quats", "opacities", "colors")
PRESETS = ("baseline", "dof", "mv", "full")
GOAL_DEMO_S = 30.0
"""The demo's 1200 iterations (baseline) in at most this many seconds."""
GOAL_KITTI_S = 60.0
"""The KITTI excerpt's 3000 iterations (baseline) in at most this many seconds."""
GOAL_DOF_OVERHEAD = 0.25
"""The DoF loss adds at most this fraction to the baseline's time per iteration."""


@dataclass(frozen=True)
class Tolerances:
    """How close two float32 renderers must be (different summation orders and exp implementations, not maths).

    Images and alpha are in [0, 1]: absolute errors. Depth (metres) is compared relative to itself where both
    alphas exceed ``depth_min_alpha`` (elsewhere expected depth divides by a vanishing alpha). Gradients: relative
    L2 error ``||g - g_ref|| / ||g_ref||``, which allows the few pixels where a Gaussian sits exactly at the 1/255
    alpha cut-off or the transmittance stop to go either way.
    """

    image_max_abs: float = 2e-3
    image_mean_abs: float = 1e-4
    depth_max_rel: float = 2e-3
    depth_min_alpha: float = 0.5
    grad_rel_l2: float = 1e-2


@dataclass
class Check:
    """One compared quantity: ``value`` against ``limit`` (passed when value <= limit)."""

    name: str
    value: float
    limit: float
    passed: bool
    note: str = ""


# A renderer: (gaussians, viewmat [4, 4], K [3, 3], width, height, rasterize_mode) -> (rgb [H, W, 3], expected
# depth [H, W], alpha [H, W], means2d [N, 2] with retain_grad, or None), on the device of its inputs.
RenderFn = Callable[[dict[str, Tensor], Tensor, Tensor, int, int, str], tuple[Tensor, Tensor, Tensor, Tensor | None]]


def recon_renderer(backend: str, sh_degree: int = 3) -> RenderFn:
    """recon's :func:`recon.render.rasterize` with ``backend`` ("gsplat": CUDA kernels, "cpu": recon's rasterizer)."""
    from recon.render import rasterize

    def render(g: dict[str, Tensor], viewmat: Tensor, K: Tensor, width: int, height: int,
               mode: str) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        colors, alphas, info = rasterize(g["means"], g["quats"], g["scales"], g["opacities"], g["colors"],
                                         viewmat[None], K[None], width, height, sh_degree=sh_degree,
                                         render_mode="RGB+ED", rasterize_mode=mode, backend=backend)
        m2d = info.get("means2d")
        if isinstance(m2d, Tensor) and m2d.requires_grad:
            m2d.retain_grad()
        return colors[0, ..., :3], colors[0, ..., 3], alphas[0, ..., 0], m2d

    return render


def random_gaussians(n: int, width: int, height: int, seed: int = 0, sh_degree: int = 3
                     ) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """``n`` Gaussians 3-40 m in front of an identity camera (OpenCV axes, 60 degree horizontal field of view),
    overlapping and partly outside the image; float32 CPU tensors in the rasterizer's convention (scales in metres,
    opacities in (0, 1), unnormalised quats, SH coefficients [n, (sh_degree + 1)^2, 3])."""
    gen = torch.Generator().manual_seed(seed)
    f = 0.5 * width / math.tan(math.radians(30))
    z = 3 + 37 * torch.rand(n, generator=gen) ** 2
    x = (torch.rand(n, generator=gen) - 0.5) * 2.4 * z * (0.5 * width / f)
    y = (torch.rand(n, generator=gen) - 0.5) * 2.4 * z * (0.5 * height / f)
    g = {
        "means": torch.stack([x, y, z], -1),
        "quats": torch.randn(n, 4, generator=gen),
        "scales": (0.02 + 0.015 * z)[:, None] * torch.exp(0.5 * torch.randn(n, 3, generator=gen)),
        "opacities": 0.05 + 0.9 * torch.rand(n, generator=gen),
        "colors": 0.4 * torch.randn(n, (sh_degree + 1) ** 2, 3, generator=gen),
    }
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    viewmat = torch.eye(4)
    viewmat[:3, 3] = torch.tensor([0.1, -0.05, 0.0])
    return g, viewmat, K


def render_with_grads(render: RenderFn, gaussians: dict[str, Tensor], viewmat: Tensor, K: Tensor, width: int,
                      height: int, mode: str, device: torch.device | str, seed: int = 1) -> dict[str, Tensor]:
    """Outputs and gradients of ``sum(w1 rgb) + sum(w2 alpha) + sum(w3 depth alpha) / depth scale`` (fixed random
    weights from ``seed``; depth weighted by alpha is the accumulated depth, smooth where alpha vanishes), as float64
    CPU tensors: ``rgb``, ``depth``, ``alpha``, ``grad_<key>`` for :data:`GRAD_KEYS` and ``grad_means2d``."""
    leaves = {k: v.detach().to(device).clone().requires_grad_(k in GRAD_KEYS) for k, v in gaussians.items()}
    rgb, depth, alpha, m2d = render(leaves, viewmat.to(device), K.to(device), width, height, mode)
    gen = torch.Generator().manual_seed(seed)
    w_rgb = torch.rand(rgb.shape, generator=gen).to(device)
    w_a = torch.rand(alpha.shape, generator=gen).to(device)
    w_d = torch.rand(depth.shape, generator=gen).to(device)
    zscale = float(gaussians["means"][:, 2].abs().mean())
    loss = (rgb * w_rgb).sum() + (alpha * w_a).sum() + (depth * alpha * w_d).sum() / zscale
    loss.backward()
    out = {"rgb": rgb, "depth": depth, "alpha": alpha}
    out.update({f"grad_{k}": leaves[k].grad for k in GRAD_KEYS})
    if m2d is not None and m2d.grad is not None:
        out["grad_means2d"] = m2d.grad.reshape(-1, 2)
    return {k: v.detach().double().cpu() for k, v in out.items() if v is not None}


def rel_l2(test: Tensor, ref: Tensor) -> float:
    """``||test - ref|| / ||ref||`` (the absolute norm when ``ref`` is all zeros)."""
    den = float(ref.norm())
    num = float((test - ref).norm())
    return num / den if den > 0 else num


def compare_outputs(ref: dict[str, Tensor], test: dict[str, Tensor], tol: Tolerances, label: str = "") -> list[Check]:
    """Checks of ``test`` against ``ref`` (dicts from :func:`render_with_grads`); a missing quantity fails."""
    pre = f"{label} " if label else ""
    checks: list[Check] = []

    def add(name: str, value: float, limit: float, note: str = "") -> None:
        checks.append(Check(pre + name, value, limit, bool(value <= limit), note))

    for key in ("rgb", "alpha"):
        if key not in test or test[key].shape != ref[key].shape:
            add(f"{key} max |diff|", math.inf, tol.image_max_abs, "missing or wrong shape")
            continue
        d = (test[key] - ref[key]).abs()
        add(f"{key} max |diff|", float(d.max()), tol.image_max_abs)
        add(f"{key} mean |diff|", float(d.mean()), tol.image_mean_abs)
    if "depth" in test and test["depth"].shape == ref["depth"].shape:
        both = (ref["alpha"] > tol.depth_min_alpha) & (test["alpha"] > tol.depth_min_alpha)
        if both.any():
            rel = ((test["depth"] - ref["depth"]).abs() / ref["depth"].abs().clamp_min(1e-6))[both]
            add("depth max rel diff", float(rel.max()), tol.depth_max_rel, f"{int(both.sum())} px")
        else:
            add("depth max rel diff", math.inf, tol.depth_max_rel, "no pixel with alpha above the threshold")
    else:
        add("depth max rel diff", math.inf, tol.depth_max_rel, "missing or wrong shape")
    for k in (*GRAD_KEYS, "means2d"):
        key = f"grad_{k}"
        if key not in ref:
            continue
        if key not in test or test[key].shape != ref[key].shape:
            add(f"d/d{k} rel L2", math.inf, tol.grad_rel_l2, "missing or wrong shape")
            continue
        add(f"d/d{k} rel L2", rel_l2(test[key], ref[key]), tol.grad_rel_l2)
    return checks


def parity_checks(ref_render: RenderFn, test_render: RenderFn, ref_device: str, test_device: str,
                  cases: list[tuple[int, int, int, str, int]] | None = None,
                  tol: Tolerances = Tolerances()) -> list[Check]:
    """Render each case ``(n_gaussians, width, height, rasterize_mode, seed)`` with both renderers and compare."""
    cases = cases or [(200, 64, 48, "classic", 0), (3000, 320, 192, "classic", 1), (3000, 320, 192, "antialiased", 2)]
    checks = []
    for n, w, h, mode, seed in cases:
        g, vm, K = random_gaussians(n, w, h, seed)
        ref = render_with_grads(ref_render, g, vm, K, w, h, mode, ref_device)
        test = render_with_grads(test_render, g, vm, K, w, h, mode, test_device)
        checks += compare_outputs(ref, test, tol, label=f"{n} gs {w}x{h} {mode}:")
    return checks


def format_checks(checks: list[Check]) -> str:
    lines = ["| check | value | limit | result |", "|---|---|---|---|"]
    for c in checks:
        note = f" ({c.note})" if c.note else ""
        lines.append(f"| {c.name}{note} | {c.value:.3g} | {c.limit:.3g} | {'ok' if c.passed else 'MISMATCH'} |")
    return "\n".join(lines)


def exit_status(mismatches: list[Check], goals: list[Check] | None = None, require_goals: bool = False) -> int:
    """1 when any check of ``mismatches`` (or, with ``require_goals``, of ``goals``) failed, else 0."""
    failed = [c for c in mismatches if not c.passed]
    if require_goals:
        failed += [c for c in goals or [] if not c.passed]
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------------- training
@dataclass
class TrainRow:
    """One CUDA training run: seconds per iteration (median after warm-up), training seconds, peak GPU MiB."""

    scene: str
    preset: str
    iters: int
    s_per_iter: float
    train_s: float
    peak_gpu_mib: float
    test_psnr: float
    n_gaussians: int
    error: str = ""


def format_training_table(rows: list[TrainRow], device_name: str) -> str:
    lines = [f"Training on {device_name}:", "",
             "| scene | preset | iters | ms/iter (median) | training s | peak GPU MiB | test PSNR dB | Gaussians |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.scene} | {r.preset} | {r.iters} | failed: {r.error} | | | | |")
            continue
        lines.append(f"| {r.scene} | {r.preset} | {r.iters} | {1e3 * r.s_per_iter:.1f} | {r.train_s:.1f} | "
                     f"{r.peak_gpu_mib:.0f} | {r.test_psnr:.2f} | {r.n_gaussians} |")
    return "\n".join(lines)


def goal_checks(rows: list[TrainRow], demo: str = "demo", kitti: str = "kitti") -> list[Check]:
    """The issue's goals from the table: baseline training time of the demo and of KITTI, DoF overhead per scene."""
    by = {(r.scene, r.preset): r for r in rows if not r.error}
    out = []
    for scene, limit in ((demo, GOAL_DEMO_S), (kitti, GOAL_KITTI_S)):
        r = by.get((scene, "baseline"))
        if r is not None:
            out.append(Check(f"{scene}: {r.iters} baseline iterations, s", r.train_s, limit, r.train_s <= limit))
    for scene in dict.fromkeys(r.scene for r in rows):
        base, dof = by.get((scene, "baseline")), by.get((scene, "dof"))
        if base is not None and dof is not None and base.s_per_iter > 0:
            extra = dof.s_per_iter / base.s_per_iter - 1
            out.append(Check(f"{scene}: time per iteration the DoF loss adds", extra, GOAL_DOF_OVERHEAD,
                             extra <= GOAL_DOF_OVERHEAD))
    return out


def format_goals(goals: list[Check]) -> str:
    lines = ["| goal | measured | limit | result |", "|---|---|---|---|"]
    lines += [f"| {g.name} | {g.value:.3g} | {g.limit:.3g} | {'met' if g.passed else 'MISSED'} |" for g in goals]
    return "\n".join(lines)


def prepare_demo(work: Path) -> Path:
    """``make demo``'s scene: ``recon data synth --seed 0`` with the default settings."""
    out = work / "demo_street"
    if not (out / "scene.json").is_file():
        from recon.cli import main as recon_main

        if recon_main(["data", "synth", "--out", str(out), "--seed", "0"]) != 0:
            raise RuntimeError("recon data synth failed")
    return out


def prepare_kitti(work: Path, which: str) -> Path:
    """The KITTI excerpt at a quarter of its resolution, as the README converts it; ``recon sfm`` on the odometry
    excerpt (no LiDAR) gives the seeds and depth prior the presets need, as ``recon bench`` does."""
    from recon.cli import main as recon_main
    from recon.data.scene import Scene

    if which == "kitti":
        src, opts = SHARED / "kitti_odometry_seq1", ["--from", "kitti"]
    else:
        src = SHARED / "kitti_raw_0009" / "2011_09_26" / "2011_09_26_drive_0009_sync"
        opts = ["--from", "kitti-raw", "--holdout-camera", "cam3"]
    if not src.exists():
        raise RuntimeError(f"{src}: data folder not present")
    out = work / f"{which}_x4"
    converted = (out / "scene.json").is_file()
    if not converted and recon_main(["data", "convert", str(src), *opts, "--out", str(out), "--downscale", "4"]):
        raise RuntimeError(f"converting {src} failed")
    scene = Scene.load(out)
    if not scene.has_lidar() and scene.points_path is None and recon_main(["sfm", "--data", str(out)]):
        raise RuntimeError(f"recon sfm on {out} failed")
    return out


def train_rows(scenes: dict[str, tuple[Path, int]], presets: tuple[str, ...], work: Path, warmup: int = 20
               ) -> list[TrainRow]:
    """Train every scene (name -> (folder, iterations)) with every preset on CUDA, each run in its own process
    (``bench_train``'s runner, without stage timers: plain speed)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_train

    rows = []
    for name, (folder, iters) in scenes.items():
        for preset in presets:
            argv = bench_train.train_argv(folder, work / "runs" / f"{name}_{preset}", preset, iters, 0, 1.0, 0,
                                          "cuda")
            print(f"[gpu_check] training {name} {preset}: recon train {' '.join(argv)}", file=sys.stderr)
            try:
                res = bench_train.run_child(REPO, argv, warmup, progress=False, stages=False)
            except RuntimeError as exc:
                rows.append(TrainRow(name, preset, iters, math.nan, math.nan, math.nan, math.nan, 0, str(exc)[:80]))
                continue
            rows.append(TrainRow(name, preset, iters, res["timing"]["total"], res["train_seconds"],
                                 res["peak_cuda_mib"] or math.nan, res["test_psnr"], res["n_gaussians_end"]))
    return rows


# ---------------------------------------------------------------------------------------------------- densify
def densify_statistic_checks(trainer: Any, step: int = 0, tol: float = 1e-3) -> list[Check]:
    """With ``densify_from='image'``, the screen-space gradient the trainer keeps for densification equals the image
    terms' own gradient (CUDA: two backward passes; CPU: one split pass), and differs from the gradient of all terms
    (else the check would be vacuous: the config must have a non-image term, e.g. the LiDAR depth loss)."""
    from recon.train.trainer import IMAGE_TERMS

    view = trainer.views[0]

    def statistic(which: str) -> Tensor:
        for p in trainer.params.values():
            p.grad = None
        out = trainer.render(view, step)
        m2d = out.info["means2d"]
        if m2d.requires_grad:
            m2d.retain_grad()  # as the strategy's step_pre_backward does (gsplat does not retain it itself)
        terms = trainer.losses(step, view, out)
        if which == "trainer":
            trainer._backward(step, terms, out)
        else:
            kept = [v for k, v in terms.items() if which == "all" or k in IMAGE_TERMS]
            torch.stack(kept).sum().backward()
        g = out.info["means2d"].grad
        return g.detach().double().cpu().reshape(-1, 2)

    kept, image, every = statistic("trainer"), statistic("image"), statistic("all")
    for p in trainer.params.values():
        p.grad = None
    spread, err = rel_l2(every, image), rel_l2(kept, image)
    return [Check("densify-from image: kept statistic vs the image terms' gradient, rel L2", err, tol, err <= tol),
            Check("densify-from image: all terms' gradient vs the image terms' (rel L2, must exceed the limit)",
                  spread, tol, spread > tol)]


def densify_run(scene: Path, work: Path, iters: int = 300) -> tuple[list[Check], str]:
    """Build a CUDA trainer with the LiDAR depth loss and ``--strategy.densify-from image``, check its statistic and
    train ``iters`` iterations with densification from iteration 100 (must grow the Gaussians)."""
    from recon.train.build import build_trainer
    from recon.train.cli import build_config

    cfg, _ = build_config(["--data", str(scene), "--out", str(work / "runs" / "densify"), "lidar", "--device",
                           "cuda", "--iters", str(iters), "--strategy.densify-from", "image",
                           "--strategy.refine-start", "100", "--strategy.refine-every", "50",
                           "--checkpoint-every", "0", "--no-eval-at-end"], "gpu_check")
    trainer = build_trainer(cfg)
    checks = densify_statistic_checks(trainer)
    n0 = int(trainer.params["means"].shape[0])
    for step in range(iters):
        trainer.train_step(step)
        trainer.step = step + 1
    n1 = int(trainer.params["means"].shape[0])
    checks.append(Check("densify-from image: Gaussians after the run (must exceed the limit: the count before)", n1,
                        n0, n1 > n0))
    return checks, f"{iters} iterations on CUDA with densify-from image: {n0} -> {n1} Gaussians"


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-training", action="store_true", help="only (a) parity and (c) densification")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--demo-iters", type=int, default=1200)
    ap.add_argument("--kitti-iters", type=int, default=3000)
    ap.add_argument("--kitti", choices=("kitti", "kitti_raw"), default="kitti",
                    help="the KITTI excerpt: odometry sequence (no LiDAR; recon sfm runs first) or raw drive 0009")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "recon_gpu_check")
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    ap.add_argument("--require-goals", action="store_true", help="a missed speed goal also fails the exit status")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (tests/test_gpu_check.py covers the CPU-side logic)",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    args.work.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name()
    print(f"gpu_check on {name} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    report: dict[str, Any] = {"device": name}

    tol = Tolerances()
    print(f"\n(a) gsplat CUDA rasterization against recon's CPU rasterizer; tolerances {asdict(tol)}\n")
    parity = parity_checks(recon_renderer("cpu"), recon_renderer("gsplat"), "cpu", "cuda", tol=tol)
    print(format_checks(parity))
    report["parity"] = [asdict(c) for c in parity]

    print("\n(c) --strategy.densify-from image on CUDA\n")
    demo = prepare_demo(args.work)
    try:
        dens, line = densify_run(demo, args.work)
        print(line)
    except Exception as exc:  # noqa: BLE001 - a failure here is a mismatch to report, not a crash
        dens = [Check(f"densify-from image run: {type(exc).__name__}: {str(exc)[:100]}", math.inf, 0, False)]
    print(format_checks(dens))
    report["densify"] = [asdict(c) for c in dens]

    goals: list[Check] = []
    if not args.skip_training:
        presets = tuple(p for p in args.presets.split(",") if p)
        kitti = prepare_kitti(args.work, args.kitti)
        rows = train_rows({"demo": (demo, args.demo_iters), args.kitti: (kitti, args.kitti_iters)}, presets,
                          args.work)
        print("\n(b) " + format_training_table(rows, name))
        goals = goal_checks(rows, "demo", args.kitti)
        print("\nGoals:\n")
        print(format_goals(goals))
        report["training"] = [asdict(r) for r in rows]
        report["goals"] = [asdict(g) for g in goals]
        for r in rows:
            if r.error:
                dens.append(Check(f"training {r.scene} {r.preset} failed", math.inf, 0, False, r.error))
    status = exit_status(parity + dens, goals, args.require_goals)
    print(f"\n{'all checks passed' if status == 0 else 'MISMATCH: see the rows marked above'}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
