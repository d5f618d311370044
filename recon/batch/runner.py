"""The batch driver: checks every input and option, then runs each scene's steps as a chain of tasks (the next
step is submitted when the previous one finished), all scenes at once, on the chosen executor; records every
transition in ``OUT/manifest.json`` (:mod:`recon.batch.manifest`) and prints a summary.

A re-run of the same command continues where the last one stopped: steps the manifest records as finished (whose
outputs still exist, and for train under the same configuration) are not run again, steps a killed driver left
running start over (each step is idempotent, see :mod:`recon.batch.steps`), failed ones are tried again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recon.batch.config import BatchConfig
from recon.batch.inputs import Item, parse_items, parse_steps
from recon.batch.manifest import FINISHED, Manifest
from recon.batch.steps import StepTask, run_step
from recon.bench.executors import Handle, Progress, TaskFailed, make_executor
from recon.bench.options import check_run_options, split_extra, train_config
from recon.io.lock import FolderLock

StepFn = Callable[[StepTask], dict[str, Any]]


@dataclasses.dataclass
class _Scene:
    item: Item
    entry: dict[str, Any]
    tasks: dict[str, StepTask]


def _outputs_exist(step: str, entry: dict[str, Any], key: str | None) -> bool:
    """Whether a step the manifest records as finished still has its outputs (else it runs again)."""
    st = entry["steps"][step]
    if st["state"] == "skipped":
        return True
    out = entry.get("outputs", {})
    if step == "convert":
        return Path(str(out.get("scene", ""))).joinpath("scene.json").is_file()
    if step == "sfm":
        return Path(str(out.get("points", ""))).is_file()
    if step == "train":
        return st.get("key") == key and Path(str(out.get("run", ""))).joinpath("train_summary.json").is_file()
    return Path(str(out.get("metrics", ""))).is_file()


def check(cfg: BatchConfig) -> tuple[list[str], list[Item], Any, str]:
    """Every option and input checked (nothing written): steps, items, the TrainConfig template and its preset
    description."""
    steps = parse_steps(cfg.steps)
    check_run_options(cfg.iters, cfg.out, cfg.executor, cfg.cpus_per_run)
    items = parse_items(cfg, steps)
    tokens = split_extra(cfg.extra)
    tcfg, desc = train_config(cfg.preset, cfg.out / "scenes" / "_", cfg.out / "runs" / "_", tokens,
                              iters=cfg.iters, seed=cfg.seed)
    if cfg.executor == "ray" and "--threads" not in {t.split("=")[0].replace("_", "-") for t in tokens}:
        tcfg = dataclasses.replace(tcfg, threads=cfg.cpus_per_run)
    return steps, items, tcfg, desc


def run_batch(cfg: BatchConfig, step_fn: StepFn = run_step, progress: bool = True) -> dict[str, Any]:
    """Run the batch; returns the manifest's data. Scenes that fail keep their one-line error in it."""
    from recon.io.folders import ensure_dir
    from recon.train.config_key import config_key

    steps, items, tcfg0, desc = check(cfg)
    out = cfg.out.resolve()
    with FolderLock(ensure_dir(out, "batch folder"), "batch folder"):
        manifest = Manifest.load(out)
        scenes: dict[str, _Scene] = {}
        key = config_key(tcfg0)
        for it in items:
            run_dir = out / "runs" / it.name
            tasks = {s: StepTask(s, it, run_dir, out / "logs" / it.name / f"{s}.log",
                                 dataclasses.replace(tcfg0, data=it.scene_dir, out=run_dir), desc) for s in steps}
            entry = manifest.scene(it.name, it.to_json(), steps)
            for s in steps:
                st = entry["steps"][s]
                if st["state"] in FINISHED and not _outputs_exist(s, entry, key):
                    st["state"] = "pending"
            if "train" in steps and entry["steps"]["train"]["state"] == "pending" and "eval" in steps:
                entry["steps"]["eval"]["state"] = "pending"  # a new run is evaluated again
            entry["state"] = "done" if all(entry["steps"][s]["state"] in FINISHED for s in steps) else "pending"
            entry["error"] = None if entry["state"] == "done" else entry.get("error")
            scenes[it.name] = _Scene(it, entry, tasks)
        manifest.save()
        _drive(cfg, manifest, scenes, steps, key, step_fn, progress)
    _print_summary(manifest, [it.name for it in items])
    return manifest.data


def _next_step(sc: _Scene, steps: list[str]) -> str | None:
    return next((s for s in steps if sc.entry["steps"][s]["state"] not in FINISHED), None)


def _drive(cfg: BatchConfig, manifest: Manifest, scenes: dict[str, _Scene], steps: list[str], key: str,
           step_fn: StepFn, progress: bool) -> None:
    total = len(scenes) * len(steps)
    finished = sum(e.entry["steps"][s]["state"] in FINISHED for e in scenes.values() for s in steps)
    todo = [sc for sc in scenes.values() if _next_step(sc, steps) is not None]
    ex = make_executor(cfg.executor, cfg.ray_address, cfg.cpus_per_run, cfg.max_retries) if todo else None
    bar = Progress(total, f"batch ({cfg.executor})", enabled=progress)
    bar.update(done=finished)
    if ex is None:
        bar.close()
        return
    pending: dict[Handle, tuple[_Scene, str]] = {}

    def submit(sc: _Scene) -> None:
        step = _next_step(sc, steps)
        if step is None:
            sc.entry["state"], sc.entry["error"] = "done", None
            return
        st = sc.entry["steps"][step]
        st["state"], st["attempts"] = "running", st.get("attempts", 0) + 1
        sc.entry["state"], sc.entry["attempts"] = "running", sc.entry.get("attempts", 0) + 1
        t = sc.tasks[step]
        pending[ex.submit(step_fn, t, name=f"batch:{t.title}", log=t.log, gpu=step == "train")] = (sc, step)

    try:
        for sc in todo:
            submit(sc)
        manifest.save()
        while pending:
            bar.update(running=ex.running(list(pending)))
            for h in ex.wait(list(pending), timeout=1.0):
                sc, step = pending.pop(h)
                try:
                    res = ex.result(h)
                except TaskFailed as exc:
                    res = {"ok": False, "error": str(exc)}
                st = sc.entry["steps"][step]
                st.pop("started", None)
                st["seconds"] = res.get("seconds")
                if res.get("ok"):
                    st["state"] = "skipped" if res.get("skipped") else "done"
                    st["note"], st["error"] = res.get("note"), None
                    if step == "train":
                        st["key"] = key
                        tr = res.get("train") or {}
                        sc.entry["train"] = {k: tr.get(k) for k in ("iters", "train_seconds", "n_gaussians")}
                    sc.entry["outputs"].update(res.get("outputs") or {})
                    if "metrics" in res:
                        sc.entry["metrics"] = res["metrics"]
                    bar.update(done=1)
                    submit(sc)
                else:
                    err = res.get("error", "failed")
                    st["state"], st["error"] = "failed", err
                    sc.entry["state"], sc.entry["error"] = "failed", f"{step}: {err}"
                    rest = sum(sc.entry["steps"][s]["state"] not in FINISHED for s in steps) - 1
                    bar.bar.total -= rest
                    bar.update(failed=1)
                    bar.bar.write(f"[batch] {sc.item.name} failed at {step}: {err} (log: {sc.tasks[step].log})")
                manifest.save()
                bar.update(running=ex.running(list(pending)))
    finally:
        for sc, step in pending.values():  # interrupted: these start over next time
            sc.entry["steps"][step]["state"] = "pending"
        if pending:
            manifest.save()
        ex.close()
        bar.close()


def _print_summary(manifest: Manifest, names: list[str]) -> None:
    rows = []
    for n in names:
        e = manifest.scenes[n]
        m = e.get("metrics") or {}
        fig = " ".join(f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float)))
        rows.append(f"{n:<24} {e['state']:<8} {fig or ''}{('  ' + e['error']) if e.get('error') else ''}")
    done = sum(manifest.scenes[n]["state"] == "done" for n in names)
    print(f"[batch] {done} of {len(names)} scenes done; manifest: {manifest.path}")
    print("\n".join(rows))
