"""The same small ``recon bench`` under ``--executor local`` and ``--executor ray`` on this machine, in one run.

Prints (all measured here, nothing hard-coded), for N runs (one tiny synthetic street, the baseline preset, seeds
0..N-1, one torch thread per run):
  - local: wall time of the runs, one after another in this process;
  - Ray start: time to start a local Ray instance with this machine's cores (paid once per bench; each Ray
    measurement below starts a fresh one, so its workers start cold as in a new bench);
  - ray serial (--cpus-per-run = all cores, so one task at a time, like local): wall time, and the Ray overhead per
    task = (wall - sum of the tasks' own times, measured inside each task) / N: scheduling, a worker process
    started per task slot, shipping the run's spec and result;
  - ray parallel (--cpus-per-run 1): wall time with as many tasks at once as cores.
It also checks that the three give the same figures (PSNR, SSIM, depth AbsRel, Gaussian count) for every run.

    .venv/bin/python benchmarks/bench_executors.py [--runs 4] [--iters 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from recon.bench.config import BenchConfig
from recon.bench.plan import check_inputs, make_plan
from recon.bench.report import RunResult
from recon.bench.runner import execute

FLAGS = "--init.max-points 3000 --init.far-points 500 --checkpoint-every 0 --threads 1"


def timed(cfg: BenchConfig) -> tuple[float, list[RunResult]]:
    plan = make_plan(cfg, check_inputs(cfg))
    t0 = time.perf_counter()
    results, failed = execute(plan, cfg, progress=False)
    wall = time.perf_counter() - t0
    if failed:
        raise SystemExit(f"runs failed: {failed}")
    return wall, results


def figures(results: list[RunResult]) -> list[tuple]:
    return [(r.seed, r.metrics["psnr"], r.metrics["ssim"], r.metrics["depth"]["overall"]["abs_rel"],
             r.train["n_gaussians"]) for r in results]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    import ray

    from recon.data.synth import SynthConfig, make_street

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scene = root / "street"
        make_street(SynthConfig(seed=0, width=96, height=64, n_frames=9, defocus_frames=0), scene)
        seeds = ",".join(str(i) for i in range(args.runs))

        def cfg(name: str, executor: str, cpus: int = 1) -> BenchConfig:
            return BenchConfig(out=root / name, scenes=str(scene), methods="baseline", seeds=seeds, iters=args.iters,
                               extra=FLAGS, executor=executor, cpus_per_run=cpus)

        t_local, r_local = timed(cfg("local", "local"))

        def on_ray(name: str, cpus: int) -> tuple[float, float, list[RunResult]]:
            """(Ray start, wall, results) on a fresh local Ray instance (cold workers, like a new bench)."""
            t0 = time.perf_counter()
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            t_start = time.perf_counter() - t0
            try:
                return (t_start, *timed(cfg(name, "ray", cpus)))
            finally:
                ray.shutdown()

        t_start, t_serial, r_serial = on_ray("ray_serial", cores)
        t_start2, t_par, r_par = on_ray("ray_parallel", 1)
    n = args.runs
    in_local = sum(r.task_seconds or 0 for r in r_local)
    in_serial = sum(r.task_seconds or 0 for r in r_serial)
    same = figures(r_local) == figures(r_serial) == figures(r_par)
    print(f"{n} runs of {args.iters} iterations (96x64 street, 27 images, baseline, 1 torch thread each), "
          f"{cores} CPU cores")
    print(f"local          wall {t_local:6.1f} s   tasks' own time {in_local:6.1f} s   "
          f"overhead/task {(t_local - in_local) / n:5.2f} s")
    print(f"Ray start           {t_start:6.1f} s and {t_start2:.1f} s   (a local instance, once per bench)")
    print(f"ray serial     wall {t_serial:6.1f} s   tasks' own time {in_serial:6.1f} s   "
          f"overhead/task {(t_serial - in_serial) / n:5.2f} s   (--cpus-per-run {cores}: one task at a time)")
    print(f"ray parallel   wall {t_par:6.1f} s   ({cores} tasks at a time, --cpus-per-run 1): "
          f"{t_local / t_par:.2f}x local's wall, {t_local / (t_par + t_start2):.2f}x counting the Ray start")
    print(f"same figures (PSNR, SSIM, AbsRel, Gaussians) on all three: {same}")


if __name__ == "__main__":
    main()
