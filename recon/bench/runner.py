"""The benchmark runner: every method on every scene and seed with the same budget, then one table.

Methods are training presets (``configs/*.toml``): baseline (photometric only), lidar (+ LiDAR depth: the strong
conventional baseline), dof, mv, full. Scenes are ``synth:SEED`` (the embedded street generated on demand) or scene
folders. Each (scene, method, seed) trains into ``OUT/runs/<scene>/<method>/seed<k>`` and is evaluated; a run whose
``eval/metrics.json`` exists is not run again (resumable). Results: ``results.json`` (every run), ``results.md``
(mean and spread over seeds per scene and method), and plots (PSNR per method, depth AbsRel per band per method,
crops of one test view across methods).
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recon.errors import ReconError
from recon.io.atomic import atomic_write_json, atomic_write_text

BANDS = ("near", "mid", "far", "overall")
# summary key -> key of recon.eval.consistency's reprojection summary (depth checks that need no ground truth)
REPROJECTION_KEYS = {"reproj_depth_rel_err": "depth_rel_err", "reproj_consistent": "consistent",
                     "reproj_photo_l1": "photo_l1"}


@dataclass
class BenchConfig:
    """Benchmark baseline 3DGS against each supervision on the same scenes, seeds and iteration budget."""

    out: Path = Path("bench_out")
    """Output folder (runs/, scenes/, results.json, results.md, plots/)."""
    scenes: str = "synth:0,synth:1,synth:2"
    """Comma-separated: synth:SEED (generated into OUT/scenes) or paths to scene folders."""
    methods: str = "baseline,lidar,dof,mv,full"
    """Comma-separated preset names from configs/."""
    seeds: str = "0,1,2"
    iters: int = 1500
    synth_width: int = 320
    synth_height: int = 192
    synth_frames: int = 48
    downscale: float = 1.0
    quick: bool = False
    """Smoke run for CI: a tiny street (96x64, 9 frames), 1 seed, baseline and lidar, at most 40 iterations."""
    sfm: bool = True
    """Run `recon sfm` (known poses, pycolmap triangulation) on a scene folder that has neither LiDAR nor SfM points
    before training, so that every method starts from metric seeds; it writes SCENE/points3d.npy."""
    extra: str = ""
    """Extra `recon train` flags passed to every run, as one shell-quoted string (attach it with "=" so it is not
    read as a bench option): --extra="--init.max-points 20000 --loss.mv-weight 0.2"."""


@dataclass
class RunResult:
    scene: str
    method: str
    seed: int
    metrics: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)


def _list(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def resolve_scene(spec: str, cfg: BenchConfig) -> tuple[str, Path]:
    """(name, folder) of a scene spec; ``synth:S`` is generated once into ``OUT/scenes/synth_S``."""
    if spec.startswith("synth:"):
        from recon.data.synth import SynthConfig, make_street

        seed = int(spec.split(":", 1)[1])
        name = f"synth_{seed}"
        folder = cfg.out / "scenes" / name
        if not (folder / "scene.json").is_file():
            w, h, n = (96, 64, 9) if cfg.quick else (cfg.synth_width, cfg.synth_height, cfg.synth_frames)
            make_street(SynthConfig(seed=seed, width=w, height=h, n_frames=n, defocus_frames=0), folder,
                        overwrite=True)
        return name, folder
    folder = Path(spec)
    if not (folder / "scene.json").is_file():
        raise ReconError(f"{folder}: not a scene folder (no scene.json)")
    if cfg.sfm:
        from recon.data.scene import Scene

        scene = Scene.load(folder)
        if not scene.has_lidar() and scene.points_path is None:
            from recon.sfm.pipeline import run_sfm

            print(f"[bench] {folder}: no LiDAR and no SfM points: running recon sfm (writes points3d.npy)")
            res = run_sfm(scene)
            print(f"[bench] {len(res.points.xyz)} SfM points")
    return folder.name, folder


def run_one(scene_dir: Path, run_dir: Path, method: str, seed: int, cfg: BenchConfig) -> RunResult | None:
    from recon.eval.evaluate import evaluate_run
    from recon.train.build import build_trainer
    from recon.train.cli import build_config, prepare_out

    done = run_dir / "eval" / "metrics.json"
    if done.is_file():
        m = json.loads(done.read_text())
        t = json.loads((run_dir / "train_summary.json").read_text())
        return RunResult(scene_dir.name, method, seed, m, t)
    argv = [method, "--data", str(scene_dir), "--out", str(run_dir), "--iters", str(cfg.iters), "--seed", str(seed),
            "--downscale", str(cfg.downscale), "--no-eval-at-end", "--overwrite", *shlex.split(cfg.extra)]
    if cfg.quick:
        argv += ["--init.max-points", "3000", "--init.far-points", "500", "--checkpoint-every", "0"]
    tcfg, desc = build_config(argv, "recon train")
    prepare_out(tcfg)
    trainer = build_trainer(tcfg)
    trainer.preset_description = desc
    summary = trainer.train(progress=True)
    metrics = evaluate_run(run_dir, trainer=trainer, progress=False)
    return RunResult(scene_dir.name, method, seed, metrics, summary)


def strict_json(x: Any) -> Any:
    """``x`` with every NaN or infinite float replaced by None, so results.json is strict JSON (RFC 8259)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    return x


def _agg(vals: list[float | None]) -> tuple[float, float]:
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v))


def summarise(results: list[RunResult]) -> dict[str, Any]:
    """Mean and spread over seeds per (scene, method), plus per-method means over scenes."""
    table: dict[str, Any] = {}
    keys = sorted({(r.scene, r.method) for r in results}, key=lambda k: (k[0], k[1]))
    for scene, method in keys:
        rs = [r for r in results if r.scene == scene and r.method == method]
        row: dict[str, Any] = {"n_seeds": len(rs)}
        row["psnr"] = _agg([r.metrics["psnr"] for r in rs])
        row["ssim"] = _agg([r.metrics["ssim"] for r in rs])
        row["lpips"] = _agg([r.metrics.get("lpips") for r in rs])
        for key, src in REPROJECTION_KEYS.items():
            row[key] = _agg([(r.metrics.get("reprojection") or {}).get(src) for r in rs])
        row["train_s_per_iter"] = _agg([r.train.get("train_seconds", math.nan) / max(1, r.train.get("iters", 1))
                                        for r in rs])
        row["n_gaussians"] = _agg([r.train.get("n_gaussians") for r in rs])
        for b in BANDS:
            row[f"absrel_{b}"] = _agg([(r.metrics.get("depth") or {}).get(b, {}).get("abs_rel", math.nan)
                                       for r in rs])
        table.setdefault(scene, {})[method] = row
    methods = sorted({r.method for r in results})
    overall = {}
    for m in methods:
        rs = [r for r in results if r.method == m]
        overall[m] = {"psnr": _agg([r.metrics["psnr"] for r in rs])[0],
                      "ssim": _agg([r.metrics["ssim"] for r in rs])[0],
                      **{key: _agg([(r.metrics.get("reprojection") or {}).get(src) for r in rs])[0]
                         for key, src in REPROJECTION_KEYS.items()},
                      "train_s_per_iter": _agg([r.train.get("train_seconds", math.nan) / max(1, r.train.get("iters", 1))
                                                for r in rs])[0],
                      **{f"absrel_{b}": _agg([(r.metrics.get("depth") or {}).get(b, {}).get("abs_rel", math.nan)
                                              for r in rs])[0] for b in BANDS}}
    return {"per_scene": table, "per_method": overall}


def _has_depth(rows: dict[str, Any]) -> bool:
    """Whether a scene's runs have depth metrics (ground-truth depth or LiDAR on the test views)."""
    return any(not math.isnan(r["absrel_overall"][0]) for r in rows.values())


def markdown(summary: dict[str, Any], cfg: BenchConfig) -> str:
    """results.md: a depth table for scenes with depth ground truth, an image + reprojection table for the others
    (real footage without LiDAR), then each method relative to the baselines."""
    lines = [f"Iterations {cfg.iters}; mean ± std over seeds {cfg.seeds}.", ""]

    def f(v: tuple[float, float], p: int = 3, scale: float = 1.0, unit: str = "") -> str:
        return "n/a" if math.isnan(v[0]) else f"{scale * v[0]:.{p}f}{unit} ± {scale * v[1]:.{p}f}{unit}"

    per_scene = summary["per_scene"]
    gt = {s: rows for s, rows in per_scene.items() if _has_depth(rows)}
    real = {s: rows for s, rows in per_scene.items() if s not in gt}
    if gt:
        hdr = ("| scene | method | PSNR dB | SSIM | AbsRel near | AbsRel mid | AbsRel far | AbsRel all | s/iter "
               "| Gaussians |")
        lines += [hdr, "|" + "---|" * 10]
        for scene, rows in gt.items():
            for method, r in rows.items():
                lines.append(f"| {scene} | {method} | {f(r['psnr'], 2)} | {f(r['ssim'])} | {f(r['absrel_near'])} | "
                             f"{f(r['absrel_mid'])} | {f(r['absrel_far'])} | {f(r['absrel_overall'])} | "
                             f"{f(r['train_s_per_iter'], 2)} | {f(r['n_gaussians'], 1, 1e-3, 'k')} |")
    if real:
        if gt:
            lines.append("")
        lines += ["Scenes without depth ground truth: image metrics on the held-out views and the multi-view "
                  "consistency of rendered depth (each test view against its nearest training view, "
                  "recon.eval.consistency).", "",
                  "| scene | method | PSNR dB | SSIM | LPIPS | median depth disagreement | pixels within 5% "
                  "| photometric L1 | s/iter | Gaussians |", "|" + "---|" * 10]
        for scene, rows in real.items():
            for method, r in rows.items():
                lines.append(f"| {scene} | {method} | {f(r['psnr'], 2)} | {f(r['ssim'])} | {f(r['lpips'])} | "
                             f"{f(r['reproj_depth_rel_err'], 1, 100, '%')} | {f(r['reproj_consistent'], 1, 100, '%')}"
                             f" | {f(r['reproj_photo_l1'])} | {f(r['train_s_per_iter'], 2)} "
                             f"| {f(r['n_gaussians'], 1, 1e-3, 'k')} |")
    pm = summary["per_method"]
    for ref, why in (("baseline", "the weak baseline"), ("lidar", "the strong conventional baseline")):
        if ref not in pm:
            continue
        # relative changes of the depth bands where depth ground truth exists, of the reprojection disagreement
        # where it does not
        cols = ([("far AbsRel change", "absrel_far"), ("near AbsRel change", "absrel_near"),
                 ("mid AbsRel change", "absrel_mid")] if gt
                else [("depth disagreement change", "reproj_depth_rel_err")])
        cols.append(("time/iter change", "train_s_per_iter"))
        lines += ["", f"Relative to {ref}, {why} (mean over scenes and seeds):", "",
                  "| method | ΔPSNR dB | ΔSSIM | " + " | ".join(c for c, _ in cols) + " |",
                  "|" + "---|" * (3 + len(cols))]
        b = pm[ref]
        for m, r in pm.items():
            def rel(key: str, r: dict[str, Any] = r, b: dict[str, Any] = b) -> str:
                return "n/a" if not b[key] or math.isnan(b[key]) or math.isnan(r[key]) else \
                    f"{100 * (r[key] - b[key]) / b[key]:+.1f}%"
            lines.append(f"| {m} | {r['psnr'] - b['psnr']:+.2f} | {r['ssim'] - b['ssim']:+.3f} | "
                         + " | ".join(rel(k) for _, k in cols) + " |")
    return "\n".join(lines) + "\n"


def plots(results: list[RunResult], summary: dict[str, Any], out: Path) -> list[Path]:
    """PSNR per method and AbsRel per band per method (bar charts), written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recon.io.atomic import atomic_write_bytes

    pm = summary["per_method"]
    methods = list(pm)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(methods, [pm[m]["psnr"] for m in methods], color="tab:blue")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_ylim(min(pm[m]["psnr"] for m in methods) - 1, max(pm[m]["psnr"] for m in methods) + 0.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    paths.append(atomic_write_bytes(out / "psnr.png", buf.getvalue()))
    fig, ax = plt.subplots(figsize=(6, 3))
    w = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        ax.bar(np.arange(len(BANDS)) + i * w, [pm[m][f"absrel_{b}"] for b in BANDS], w, label=m)
    ax.set_xticks(np.arange(len(BANDS)) + 0.4 - w / 2, BANDS)
    ax.set_ylabel("depth AbsRel")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    paths.append(atomic_write_bytes(out / "absrel_by_band.png", buf.getvalue()))
    return paths


def crops(results: list[RunResult], runs_root: Path, out: Path) -> Path | None:
    """One test view of the first scene/seed across methods: rendered image over rendered depth, side by side."""
    from recon.io.images import read_image, write_image

    if not results:
        return None
    scene, seed = results[0].scene, results[0].seed
    rs = [r for r in results if r.scene == scene and r.seed == seed]
    frame = rs[0].metrics["per_view"][0]["frame"]
    cols = []
    for r in rs:
        d = runs_root / r.scene / r.method / f"seed{r.seed}" / "eval"
        img, dep = d / "images" / f"{frame}.png", d / "depth" / f"{frame}.png"
        if img.is_file() and dep.is_file():
            cols.append(np.concatenate([read_image(img), read_image(dep)], axis=0))
    if not cols:
        return None
    return write_image(out / "crops.png", np.concatenate(cols, axis=1))


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    if cfg.quick:
        cfg.scenes, cfg.methods, cfg.seeds = "synth:0", "baseline,lidar", "0"
        cfg.iters = min(cfg.iters, 40)
    cfg.out.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    t0 = time.perf_counter()
    for spec in _list(cfg.scenes):
        name, folder = resolve_scene(spec, cfg)
        for method in _list(cfg.methods):
            for seed in (int(s) for s in _list(cfg.seeds)):
                run_dir = cfg.out / "runs" / name / method / f"seed{seed}"
                print(f"[bench] {name} / {method} / seed {seed}")
                try:
                    r = run_one(folder, run_dir, method, seed, cfg)
                except ReconError as exc:
                    print(f"[bench] skipped {name}/{method}/seed{seed}: {exc}")
                    shutil.rmtree(run_dir, ignore_errors=True)
                    continue
                if r is not None:
                    results.append(r)
    summary = summarise(results)
    report = {"config": {k: str(v) for k, v in cfg.__dict__.items()}, "wall_seconds": time.perf_counter() - t0,
              "summary": summary,
              "runs": [{"scene": r.scene, "method": r.method, "seed": r.seed, "train": r.train,
                        "metrics": {k: v for k, v in r.metrics.items() if k != "per_view"}} for r in results]}
    report = strict_json(report)
    atomic_write_json(cfg.out / "results.json", report)
    md = markdown(summary, cfg)
    atomic_write_text(cfg.out / "results.md", md)
    if results:
        plots(results, summary, cfg.out / "plots")
        crops(results, cfg.out / "runs", cfg.out / "plots")
    print(md)
    return report
