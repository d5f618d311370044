"""Benchmark recon's training step: seconds per iteration, where the time goes, peak memory and test PSNR.

Each scene trains in its own subprocess (so ``resource.getrusage`` max RSS is that run's peak) through the same
code path as ``recon train`` (:func:`recon.train.cli.build_config` + :func:`recon.train.build.build_trainer`),
driving ``Trainer.train_step`` for a fixed number of iterations. The trainer's stages are timed with wall clocks
wrapped around the methods it calls (render forward, losses, backward, optimiser steps, densification strategy);
the rest of the iteration is "python/other". On CUDA every stage boundary synchronises, so the breakdown is exact
and the total a little slower than an unsynchronised run.

Scenes (real data in ``../shared/data``, converted once with ``recon data convert`` into ``--work``):
  colmap     the COLMAP sample (23 photographs, 1443 SfM points); quarter resolution = 250x165
  kitti      the KITTI odometry excerpt (51 greyscale frames, no LiDAR: random seeds); quarter = 306x92
  kitti_raw  KITTI raw drive 0009 (51 timesteps x 2 cameras, LiDAR seeds, right camera held out); quarter = 310x94
or the path of any recon scene folder.

``--equal-gaussians N`` seeds at most N points (no voxel downsampling, outlier removal or far points) and keeps
densification off, so every iteration renders the seed count (1443 on the COLMAP sample, as in OpenSplat's first
iterations). ``--compare-with PATH`` times another recon checkout (e.g. ``git worktree add /tmp/recon_old HEAD``)
against this one, alternating the two runs over ``--rounds`` rounds, and prints the ratio of the medians.

    python benchmarks/bench_train.py --scenes colmap --iters 100 --equal-gaussians 1443 --threads 2
    python benchmarks/bench_train.py --scenes colmap,kitti,kitti_raw --iters 1000 --threads 2
    python benchmarks/bench_train.py --scenes colmap --iters 100 --equal-gaussians 1443 --compare-with /tmp/old
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

STAGES = ("render", "losses", "backward", "optimizer", "strategy", "other")
"""Per-iteration stages, in the order the trainer runs them ("other" = the rest of ``train_step``)."""

SCENES: dict[str, tuple[str, list[str]]] = {
    "colmap": ("colmap_sample", ["--from", "colmap"]),
    "kitti": ("kitti_odometry_seq1", ["--from", "kitti"]),
    "kitti_raw": ("kitti_raw_0009/2011_09_26/2011_09_26_drive_0009_sync",
                  ["--from", "kitti-raw", "--holdout-camera", "cam3"]),
}
"""Scene name -> (folder under ../shared/data, ``recon data convert`` options). Converted at full resolution."""


# ---------------------------------------------------------------------------------------------------- pure parts
def equal_gaussian_args(n: int, iters: int) -> list[str]:
    """``recon train`` options that seed at most ``n`` points and never densify within ``iters`` iterations.

    Seeds keep every point (no voxel grid, no outlier removal, no far points; a random subset when there are more
    than ``n``; ``n`` random points on a scene with neither LiDAR nor SfM points). Refinement starts after the last
    iteration, so gsplat's strategy still gathers its statistics (as it does before densification starts) but the
    count never changes.
    """
    if n <= 0:
        raise ValueError(f"--equal-gaussians must be positive, got {n}")
    return ["--init.max-points", str(n), "--init.random-points", str(n), "--init.voxel-size-m", "0",
            "--init.outlier-neighbors", "0", "--init.far-points", "0",
            "--strategy.refine-start", str(iters + 1), "--strategy.refine-stop", str(iters + 2)]


def train_argv(scene: Path, out: Path, preset: str, iters: int, seed: int, downscale: float, threads: int,
               device: str, equal_gaussians: int = 0, extra: list[str] | None = None) -> list[str]:
    """The ``recon train`` command line (without ``recon train``) of one benchmark run."""
    argv = ["--data", str(scene), "--out", str(out), preset, "--iters", str(iters), "--seed", str(seed),
            "--downscale", str(downscale), "--threads", str(threads), "--device", device,
            "--checkpoint-every", "0", "--no-eval-at-end"]
    if equal_gaussians:
        argv += equal_gaussian_args(equal_gaussians, iters)
    return argv + list(extra or [])


class StageTimer:
    """Exclusive wall time per stage within one iteration; nested timed calls count for the outer stage only.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs at each outermost stage boundary so asynchronous device work is
    charged to the stage that queued it.
    """

    def __init__(self, sync: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.sync = sync
        self.clock = clock
        self.current: dict[str, float] = {}
        self._depth = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if self.sync is not None:
            self.sync()
        self._depth = 1
        t0 = self.clock()
        try:
            yield
        finally:
            if self.sync is not None:
                self.sync()
            self.current[name] = self.current.get(name, 0.0) + self.clock() - t0
            self._depth = 0

    def wrap(self, obj: Any, attr: str, name: str) -> bool:
        """Replace ``obj.attr`` (a callable) by a timed version on the instance; False when it has no such attr."""
        fn = getattr(obj, attr, None)
        if fn is None or not callable(fn):
            return False

        @functools.wraps(fn)  # keeps markers such as the LR scheduler's on ``optimizer.step``
        def timed(*a: Any, **kw: Any) -> Any:
            with self.stage(name):
                return fn(*a, **kw)

        setattr(obj, attr, timed)
        return True

    def take(self, total_s: float) -> dict[str, float]:
        """This iteration's seconds per stage (``other`` = ``total_s`` minus the timed stages); resets."""
        rec = {k: self.current.get(k, 0.0) for k in STAGES if k != "other"}
        rec["other"] = max(0.0, total_s - sum(rec.values()))
        rec["total"] = total_s
        self.current = {}
        return rec


def summarise_iterations(records: list[dict[str, float]], warmup: int) -> dict[str, float]:
    """Median seconds per stage and in total over the iterations after ``warmup`` (all of them if none remain);
    ``cpu`` is the median CPU time of the process per iteration (all threads) where the records have it.

    The stage medians need not add up to the total's median; ``share`` is each stage's mean fraction of the total.
    """
    kept = records[warmup:] or records
    if not kept:
        raise ValueError("no iterations to summarise")
    out: dict[str, float] = {k: statistics.median(r[k] for r in kept) for k in (*STAGES, "total")}
    if all("cpu" in r for r in kept):
        out["cpu"] = statistics.median(r["cpu"] for r in kept)
    tot = sum(r["total"] for r in kept)
    for k in STAGES:
        out[f"share_{k}"] = sum(r[k] for r in kept) / tot if tot > 0 else 0.0
    out["n_timed"] = len(kept)
    return out


def format_breakdown(label: str, s: dict[str, float]) -> str:
    """One table row: median ms per stage, the share of the mean iteration in parentheses."""
    cells = [f"{1e3 * s[k]:.1f} ({100 * s[f'share_{k}']:.0f}%)" for k in STAGES]
    return f"| {label} | {1e3 * s['total']:.1f} | " + " | ".join(cells) + " |"


def breakdown_header() -> str:
    cols = ["run", "ms/iter (median)"] + [f"{k} ms (share)" for k in STAGES]
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def format_results(rows: list[dict[str, Any]]) -> str:
    """The main table: one row per run (scene, tree), then the per-stage breakdown."""
    lines = ["| scene | code | resolution | iters | Gaussians | s/iter (median) | CPU s/iter | peak RSS MiB | RSS "
             "before training MiB | peak CUDA MiB | test PSNR dB | train PSNR dB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cuda = f"{r['peak_cuda_mib']:.0f}" if r.get("peak_cuda_mib") is not None else "-"
        lines.append(f"| {r['scene']} | {r['code']} | {r['width']}x{r['height']} | {r['iters']} | "
                     f"{r['n_gaussians_start']}->{r['n_gaussians_end']} | {r['timing']['total']:.4f} | "
                     f"{r['timing'].get('cpu', math.nan):.4f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['rss_before_train_mib']:.0f} | {cuda} | "
                     f"{r['test_psnr']:.2f} | {r['train_psnr']:.2f} |")
    lines += ["", "Where the time goes (median per iteration after warm-up):", "", breakdown_header()]
    lines += [format_breakdown(f"{r['scene']} ({r['code']})", r["timing"]) for r in rows]
    return "\n".join(lines)


def compare_summary(old: list[float], new: list[float]) -> dict[str, float]:
    """Median seconds per iteration of each side (pooled over rounds) and new / old."""
    mo, mn = statistics.median(old), statistics.median(new)
    return {"old_s": mo, "new_s": mn, "ratio": mn / mo if mo > 0 else math.nan}


def format_compare(c: dict[str, Any], rounds: int) -> str:
    """The old-vs-new lines of one scene (wall clock and process CPU time, medians pooled over the rounds)."""
    w, u = c["wall"], c["cpu"]
    return (f"{c['scene']}: old {w['old_s']:.4f} s/iter, new {w['new_s']:.4f} s/iter (wall, medians over {rounds} "
            f"alternating rounds): new/old = {w['ratio']:.3f} ({1 / w['ratio']:.2f}x faster); CPU time old "
            f"{u['old_s']:.4f}, new {u['new_s']:.4f} s/iter: new/old = {u['ratio']:.3f}\n"
            f"  round medians (wall) old {[round(x, 4) for x in c['round_medians']['old']]}, new "
            f"{[round(x, 4) for x in c['round_medians']['new']]}; test PSNR old {c['psnr']['old']}, new "
            f"{c['psnr']['new']}")


def _rss_mib() -> float:
    """Current resident set size (MiB) from /proc, or the peak where /proc is absent."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------------- one run
def instrument(trainer: Any, timer: StageTimer) -> list[str]:
    """Wrap the trainer's stage methods with ``timer``; returns the stages found (missing ones fall into other)."""
    found = []
    for attr, name in (("render", "render"), ("losses", "losses"), ("_backward", "backward"),
                       ("_scale_mean_steps", "optimizer")):
        if timer.wrap(trainer, attr, name):
            found.append(name)
    strat = getattr(trainer, "strategy", None)
    if strat is not None:
        for attr in ("step_pre_backward", "step_post_backward"):
            if timer.wrap(strat, attr, "strategy"):
                found.append("strategy")
    opts = list(getattr(trainer, "optimizers", {}).values())
    opts += [o for o in (getattr(trainer, "aux_opt", None), getattr(trainer, "means_sched", None)) if o is not None]
    for o in opts:
        for attr in ("step", "zero_grad"):
            if timer.wrap(o, attr, "optimizer"):
                found.append("optimizer")
    return sorted(set(found))


def evaluate_psnr(trainer: Any, views: list[Any]) -> float:
    """Mean PSNR (dB) of ``views`` rendered at the full SH degree, as ``recon eval`` computes it."""
    import torch

    from recon.eval.image_metrics import psnr
    from recon.model.gaussians import activated
    from recon.model.render_frame import apply_exposure, render_frame

    vals = []
    with torch.no_grad():
        g = {k: v.detach() for k, v in activated(trainer.params).items()}
        for v in views:
            out = render_frame(g, v.viewmat, v.K, v.width, v.height, trainer.cfg.optim.sh_degree, trainer.sky,
                               antialiased=trainer.cfg.antialiased)
            vals.append(psnr(apply_exposure(out.rgb, trainer.exposure, v.camera_index).clamp(0, 1), v.image))
    return float(sum(vals) / len(vals)) if vals else math.nan


def run_training(argv: list[str], warmup: int = 10, progress: bool = False, stages: bool = True) -> dict[str, Any]:
    """Build the trainer as ``recon train ARGV`` does, run its iterations with stage timers, then score it.

    ``stages=False`` leaves the trainer as it is (no timers, no synchronisation between stages on CUDA): the plain
    speed, every iteration's time then counted as "other".

    Returns per-iteration stage seconds, their summary, Gaussian counts, test / train PSNR (dB), the image size
    and memory: peak RSS of this process (MiB, includes the Python + torch runtime), RSS once the trainer is built
    (before the first iteration) and, on CUDA, ``torch.cuda.max_memory_allocated`` (MiB).
    """
    import torch

    from recon.train.build import build_trainer
    from recon.train.cli import build_config
    from recon.train.views import load_views

    cfg, _ = build_config(argv, "bench_train")
    trainer = build_trainer(cfg)
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timer = StageTimer(sync=torch.cuda.synchronize if cuda else None)
    instrumented = instrument(trainer, timer) if stages else []
    rss_before = _rss_mib()
    n0 = int(trainer.params["means"].shape[0])
    records = []
    t_start = time.perf_counter()
    for step in range(cfg.iters):
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step(step)
        if cuda:
            torch.cuda.synchronize()
        records.append(timer.take(time.perf_counter() - t0))
        records[-1]["cpu"] = time.process_time() - c0
        trainer.step = step + 1
        if progress and (step + 1) % max(1, cfg.iters // 10) == 0:
            print(f"  iteration {step + 1}/{cfg.iters}: {records[-1]['total']:.3f} s", file=sys.stderr)
    train_s = time.perf_counter() - t_start
    test_views = load_views(trainer.scene.test_frames, cfg.downscale, trainer.device, trainer.camera_names)
    v0 = trainer.views[0]
    return {
        "iters": cfg.iters, "preset": cfg.preset, "device": str(trainer.device),
        "device_name": torch.cuda.get_device_name() if cuda else "cpu",
        "threads": torch.get_num_threads(), "width": v0.width, "height": v0.height,
        "n_train_views": len(trainer.views), "n_test_views": len(test_views),
        "n_gaussians_start": n0, "n_gaussians_end": int(trainer.params["means"].shape[0]),
        "instrumented": instrumented, "iterations": records, "timing": summarise_iterations(records, warmup),
        "train_seconds": train_s, "test_psnr": evaluate_psnr(trainer, test_views),
        "train_psnr": evaluate_psnr(trainer, trainer.views),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_train_mib": rss_before,
        "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


# ---------------------------------------------------------------------------------------------------- driver
def prepare_scene(name: str, work: Path) -> Path:
    """The recon scene folder of ``name`` (a key of :data:`SCENES`, converted into ``work`` once) or a path."""
    if name not in SCENES:
        p = Path(name)
        if not (p / "scene.json").is_file():
            raise SystemExit(f"error: {name}: neither a known scene ({', '.join(SCENES)}) nor a scene folder")
        return p
    folder, opts = SCENES[name]
    src = SHARED / folder
    if not src.exists():
        raise SystemExit(f"error: {src}: data folder not present (see ../shared/data/README.md)")
    out = work / name
    if not (out / "scene.json").is_file():
        from recon.cli import main as recon_main

        print(f"[bench_train] converting {src} -> {out}", file=sys.stderr)
        if recon_main(["data", "convert", str(src), *opts, "--out", str(out)]) != 0:
            raise SystemExit(f"error: converting {src} failed")
    return out


def child_env(repo: Path) -> dict[str, str]:
    """Environment of a run of the checkout ``repo``: another checkout compiles its C++ rasterizer into its own
    cache folder, so alternating runs of two checkouts do not rebuild the extension each time."""
    env = dict(os.environ)
    env.setdefault("TQDM_DISABLE", "1")
    if repo.resolve() != REPO:
        tag = hashlib.sha1(str(repo.resolve()).encode()).hexdigest()[:12]
        env["RECON_EXT_CACHE"] = str(Path(tempfile.gettempdir()) / "recon_bench_ext" / tag)
    return env


def run_child(repo: Path, argv: list[str], warmup: int, progress: bool, stages: bool = True) -> dict[str, Any]:
    """Run :func:`run_training` in a fresh Python importing recon from ``repo``; its JSON result."""
    job = json.dumps({"repo": str(repo), "argv": argv, "warmup": warmup, "progress": progress, "stages": stages})
    proc = subprocess.run([sys.executable, __file__, "--child", job], env=child_env(repo), stdout=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the benchmark run failed (exit {proc.returncode}): recon train {' '.join(argv)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_main(job_json: str) -> int:
    job = json.loads(job_json)
    sys.path.insert(0, job["repo"])
    res = run_training(job["argv"], job["warmup"], job["progress"], job.get("stages", True))
    print(json.dumps(res))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", default="colmap,kitti,kitti_raw",
                    help="comma-separated: colmap, kitti, kitti_raw or scene folders")
    ap.add_argument("--iters", type=int, default=100, help="training iterations per run (PSNR is measured after)")
    ap.add_argument("--warmup", type=int, default=10, help="first iterations left out of the median")
    ap.add_argument("--downscale", type=float, default=0.25,
                    help="training resolution as a fraction of the original images (0.25: COLMAP 250x165)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--preset", default="baseline", help="recon train preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--equal-gaussians", type=int, default=0, metavar="N",
                    help="seed at most N points and do not densify (0: the preset's seeding and densification)")
    ap.add_argument("--extra", default="", help="more recon train options, e.g. --extra='--no-sky-model'")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "recon_bench_train",
                    help="folder for the converted scenes and run folders")
    ap.add_argument("--compare-with", type=Path, default=None, metavar="PATH",
                    help="another recon checkout timed against this one, alternating (old vs new)")
    ap.add_argument("--rounds", type=int, default=3, help="with --compare-with: runs of each checkout per scene")
    ap.add_argument("--json", type=Path, default=None, help="also write every result here")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--no-stages", action="store_true",
                    help="time whole iterations only (no stage timers, no synchronisation between stages on CUDA)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.iters <= args.warmup:
        raise SystemExit(f"error: --iters ({args.iters}) must exceed --warmup ({args.warmup})")
    sys.path.insert(0, str(REPO))
    args.work.mkdir(parents=True, exist_ok=True)
    trees = [("new", REPO)]
    if args.compare_with is not None:
        if not (args.compare_with / "recon" / "__init__.py").is_file():
            raise SystemExit(f"error: {args.compare_with}: not a recon checkout (no recon/__init__.py)")
        trees = [("old", args.compare_with.resolve()), ("new", REPO)]
    rounds = args.rounds if args.compare_with is not None else 1
    extra = args.extra.split() if args.extra else []
    rows, compares = [], []
    for name in [s for s in args.scenes.split(",") if s]:
        scene = prepare_scene(name, args.work)
        per_tree: dict[str, list[dict[str, Any]]] = {t: [] for t, _ in trees}
        for r in range(rounds):
            order = trees if r % 2 == 0 else trees[::-1]  # ABBA: drift of the machine's load cancels out
            for code, repo in order:
                out = args.work / "runs" / f"{Path(name).name}_{code}"
                argv_r = train_argv(scene, out, args.preset, args.iters, args.seed, args.downscale, args.threads,
                                    args.device, args.equal_gaussians, extra)
                print(f"[bench_train] {name} ({code}, round {r + 1}/{rounds}): recon train {' '.join(argv_r)}",
                      file=sys.stderr)
                try:
                    res = run_child(repo, argv_r, args.warmup, args.progress, stages=not args.no_stages)
                except RuntimeError as exc:
                    raise SystemExit(f"error: {exc}") from None
                res.update(scene=Path(name).name, code=code, round=r)
                per_tree[code].append(res)
                rows.append(res)
        if args.compare_with is not None:
            pooled = {(c, k): [it[k] for res in per_tree[c] for it in res["iterations"][args.warmup:]]
                      for c in per_tree for k in ("total", "cpu")}
            compares.append({"scene": Path(name).name,
                             "wall": compare_summary(pooled["old", "total"], pooled["new", "total"]),
                             "cpu": compare_summary(pooled["old", "cpu"], pooled["new", "cpu"]),
                             "round_medians": {c: [res["timing"]["total"] for res in per_tree[c]] for c in per_tree},
                             "psnr": {c: [res["test_psnr"] for res in per_tree[c]] for c in per_tree}})
    first = rows[0]
    print(f"recon training benchmark: preset {args.preset}, {args.iters} iterations ({args.warmup} warm-up), "
          f"downscale {args.downscale}, {first['threads']} threads, device {first['device_name']}, seed {args.seed}"
          + (f", seeds capped at {args.equal_gaussians} and no densification" if args.equal_gaussians else ""))
    print()
    print(format_results(rows))
    for c in compares:
        print(f"\n{format_compare(c, rounds)}")
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": rows, "compare": compares}, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2]))
    sys.exit(main())
