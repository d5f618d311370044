"""The benchmark runner: every method on every scene and seed with the same budget, then one table.

Methods are training presets (``configs/*.toml``): baseline (photometric only), lidar (+ LiDAR depth: the strong
conventional baseline), dof, mv, full. Scenes are ``synth:SEED`` (the embedded street generated on demand) or scene
folders. Every scene, preset and option is checked first (:mod:`recon.bench.plan`); then each (scene, method, seed)
trains into ``OUT/runs/<scene>/<method>/seed<k>`` and is evaluated, as a task of the chosen executor
(:mod:`recon.bench.executors`: in this process, or a Ray task), with its output in ``OUT/logs/<scene>/<method>/
seed<k>.log`` (copied into the run folder as ``bench.log`` when it finishes). A run finished under the same
configuration is not run again (resumable; :mod:`recon.bench.plan` explains the run key). Results
(:mod:`recon.bench.report`): ``results.json`` (every run), ``results.md`` (mean and spread over seeds per scene and
method), and plots.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from recon.bench.config import BenchConfig
from recon.bench.executors import Handle, Progress, TaskFailed, guarded, make_executor
from recon.bench.plan import (
    MARKER,
    BenchPlan,
    RunSpec,
    apply_quick,
    check_inputs,
    is_finished,
    make_plan,
    write_marker,
)
from recon.bench.report import RunResult, crops, markdown, plots, strict_json, summarise
from recon.io.atomic import atomic_write_json, atomic_write_text, atomic_write_with
from recon.io.lock import FolderLock

TaskFn = Callable[[RunSpec], dict[str, Any]]


def read_result(run: RunSpec) -> RunResult:
    """The result of a finished run, from its ``eval/metrics.json`` and ``train_summary.json``."""
    m = json.loads((run.run_dir / "eval" / "metrics.json").read_text())
    t = json.loads((run.run_dir / "train_summary.json").read_text())
    return RunResult(run.scene, run.method, run.seed, m, t)


def train_and_eval(run: RunSpec) -> RunResult:
    """Train and evaluate one run in its folder, under the folder's lock; a run already finished under the same
    configuration is read back instead. An unfinished one (a killed worker's) is started over: the trainer
    replaces it only once the new run starts, and its atomic writes never leave a half-written file."""
    import dataclasses

    from recon.eval.evaluate import evaluate_run
    from recon.io.folders import ensure_dir
    from recon.run.folder import is_recon_run, prepare_run_folder
    from recon.run.training import train_run
    from recon.train.build import build_trainer

    ensure_dir(run.run_dir.parent, "bench runs folder")
    with FolderLock(ensure_dir(run.run_dir, "run folder")):
        if is_finished(run):
            print(f"{run.title}: finished earlier under the same configuration; reused")
            return read_result(run)
        (run.run_dir / MARKER).unlink(missing_ok=True)
        tcfg = dataclasses.replace(run.train_cfg, overwrite=is_recon_run(run.run_dir))
        with prepare_run_folder(tcfg):
            trainer = build_trainer(tcfg)
            trainer.preset_description = run.preset_desc
            print(f"{run.title}: training {tcfg.iters} iterations from {trainer.params['means'].shape[0]} "
                  f"Gaussians ({trainer.init_source}) on {trainer.device}")
            summary = train_run(trainer, progress=False, prepared=True)
            print(f"{run.title}: trained in {summary['train_seconds']:.1f} s; evaluating")
            metrics = evaluate_run(run.run_dir, trainer=trainer, progress=False)
            write_marker(run)
    return RunResult(run.scene, run.method, run.seed, metrics, summary)


def run_task(run: RunSpec) -> dict[str, Any]:
    """The task of one run (a Ray task or a local call): ``{"ok": True, "result": RunResult dict}`` or
    ``{"ok": False, "error": one line}``; its output goes to ``run.log``, copied into the run folder at the end."""
    out = guarded(lambda: {"result": train_and_eval(run).to_dict()}, run.log, run.title)
    if out["ok"] and run.log.is_file():
        try:
            data = run.log.read_bytes()
            atomic_write_with(run.run_dir / "bench.log", lambda f: f.write(data))
        except OSError:
            pass
    return out


def execute(plan: BenchPlan, cfg: BenchConfig, task: TaskFn = run_task, progress: bool = True
            ) -> tuple[list[RunResult], dict[str, str]]:
    """Run every unfinished run of ``plan`` on the configured executor; finished ones are read back here.
    Returns the results in plan order and the one-line error of each failed run (by run title)."""
    results: dict[str, RunResult] = {}
    failed: dict[str, str] = {}
    todo = []
    for r in plan.runs:
        if is_finished(r):
            results[r.title] = read_result(r)
        else:
            todo.append(r)
    if results:
        print(f"[bench] {len(results)} of {len(plan.runs)} runs finished earlier under the same configuration: "
              "reused")
    ex = make_executor(cfg.executor, cfg.ray_address, cfg.cpus_per_run, cfg.max_retries) if todo else None
    bar = Progress(len(plan.runs), f"bench ({cfg.executor})", enabled=progress)
    bar.update(done=len(results))
    if ex is not None:
        try:
            pending: dict[Handle, RunSpec] = {}
            for r in todo:
                pending[ex.submit(task, r, name=f"bench:{r.title}", log=r.log, gpu=True)] = r
            while pending:
                bar.update(running=ex.running(list(pending)))
                for h in ex.wait(list(pending), timeout=1.0):
                    r = pending.pop(h)
                    try:
                        out = ex.result(h)
                    except TaskFailed as exc:
                        out = {"ok": False, "error": str(exc)}
                    if out.get("ok"):
                        results[r.title] = RunResult.from_dict({**out["result"], "task_seconds": out.get("seconds")})
                        bar.update(done=1, running=ex.running(list(pending)))
                    else:
                        failed[r.title] = out.get("error", "failed")
                        bar.update(failed=1, running=ex.running(list(pending)))
                        bar.bar.write(f"[bench] {r.title} failed: {failed[r.title]} (log: {r.log})")
        finally:
            ex.close()
    bar.close()
    return [results[r.title] for r in plan.runs if r.title in results], failed


def run_bench(cfg: BenchConfig, task: TaskFn = run_task, progress: bool = True) -> dict[str, Any]:
    """Check everything, run what is not finished, and write results.json, results.md and the plots."""
    from recon.io.folders import ensure_dir

    apply_quick(cfg)
    out = cfg.out
    t0 = time.perf_counter()
    inputs = check_inputs(cfg)  # writes nothing: a bad option, scene or preset stops here
    with FolderLock(ensure_dir(out, "bench folder"), "bench folder"):
        plan = make_plan(cfg, inputs)
        prepare_scenes(plan, cfg)
        results, failed = execute(plan, cfg, task, progress)
        summary = summarise(results)
        report = {"config": {k: str(v) for k, v in cfg.__dict__.items()}, "wall_seconds": time.perf_counter() - t0,
                  "summary": summary,
                  "runs": [{"scene": r.scene, "method": r.method, "seed": r.seed, "train": r.train,
                            "task_seconds": r.task_seconds,
                            "metrics": {k: v for k, v in r.metrics.items() if k != "per_view"}} for r in results],
                  "failed": [{"run": k, "error": v} for k, v in failed.items()]}
        report = strict_json(report)
        atomic_write_json(out / "results.json", report)
        md = markdown(summary, cfg)
        if failed:
            md += "\nFailed runs (not in the table):\n\n" + "".join(f"- {k}: {v}\n" for k, v in failed.items())
        atomic_write_text(out / "results.md", md)
        if results:
            plots(results, summary, out / "plots")
            crops(results, out / "runs", out / "plots")
    print(md)
    return report


def prepare_scenes(plan: BenchPlan, cfg: BenchConfig) -> None:
    """Run ``recon sfm`` (on this machine) on each scene folder with neither LiDAR nor SfM points (``--sfm``)."""
    if not cfg.sfm:
        return
    from recon.data.scene import Scene

    for s in plan.scenes:
        if s.synth_seed is not None:
            continue
        scene = Scene.load(s.folder)
        if not scene.has_lidar() and scene.points_path is None:
            from recon.sfm.pipeline import run_sfm

            print(f"[bench] {s.folder}: no LiDAR and no SfM points: running recon sfm (writes points3d.npy)")
            res = run_sfm(scene)
            print(f"[bench] {len(res.points.xyz)} SfM points")
