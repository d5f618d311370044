"""The steps of a batch scene, each a task function (run on this machine or a Ray worker) that calls the existing
commands' Python functions: ``recon data convert`` / ``recon data synth``, ``recon sfm``, ``recon train``,
``recon eval``.

Every step is idempotent: it first looks for its own finished output (a converted scene, SfM points, a finished run
of the same configuration, metrics newer than the run) and returns it instead of doing the work again, so a task
retried after its worker died, or re-run after the driver died, never repeats finished work or mixes two attempts
(the commands' outputs are written atomically, and a run folder is locked while it trains).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recon.batch.inputs import Item, convert_args, synth_config
from recon.bench.executors import guarded
from recon.errors import ReconError


@dataclass
class StepTask:
    """One step of one scene (absolute paths; picklable for Ray)."""

    step: str
    item: Item
    run_dir: Path
    log: Path
    train_cfg: Any  # recon.train.config.TrainConfig
    preset_desc: str

    @property
    def title(self) -> str:
        return f"{self.item.name}/{self.step}"


def convert(t: StepTask) -> dict[str, Any]:
    it = t.item
    if it.converter is None:
        return {"note": "input is a scene folder", "outputs": {"scene": str(it.scene_dir)}, "skipped": True}
    if (it.scene_dir / "scene.json").is_file():  # converters write the folder atomically: it is complete
        return {"note": "converted earlier", "outputs": {"scene": str(it.scene_dir)}}
    if it.converter == "synth":
        from recon.data.synth import make_street

        make_street(synth_config(it), it.scene_dir)
    else:
        from recon.data.convert.dispatch import run

        run(convert_args(it))
    return {"outputs": {"scene": str(it.scene_dir)}}


def sfm(t: StepTask) -> dict[str, Any]:
    from recon.data.scene import Scene

    scene = Scene.load(t.item.scene_dir)
    if scene.points_path is not None:
        return {"note": "scene has SfM points", "outputs": {"points": str(scene.points_path)}, "skipped": True}
    if scene.has_lidar():
        return {"note": "scene has LiDAR (no SfM needed)", "outputs": {}, "skipped": True}
    from recon.sfm.pipeline import run_sfm

    res = run_sfm(scene)
    return {"note": f"{len(res.points.xyz)} points", "outputs": {"points": str(res.points_path)}}


def _finished_run(t: StepTask) -> bool:
    """Whether the run folder holds a finished run of this configuration on this scene; a finished run of another
    one is refused (the batch never replaces a finished run)."""
    from recon.train.config_key import config_key

    run = t.run_dir
    if not (run / "train_summary.json").is_file():
        return False
    try:
        d = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        return False
    same_scene = Path(str(d.get("data", ""))).resolve() == t.item.scene_dir.resolve()
    if same_scene and d.get("config_key") == config_key(t.train_cfg):
        return True
    raise ReconError(f"{run}: holds a finished run of another configuration or scene (preset {d.get('preset')!r}, "
                     f"iters {d.get('iters')}); use another --out, or remove that folder to train it again")


def train(t: StepTask) -> dict[str, Any]:
    import dataclasses

    from recon.io.folders import ensure_dir
    from recon.io.lock import FolderLock
    from recon.run.folder import is_recon_run, prepare_run_folder, user_entries
    from recon.run.training import train_run
    from recon.train.build import build_trainer

    run = t.run_dir
    ensure_dir(run.parent, "batch runs folder")
    with FolderLock(ensure_dir(run, "run folder")):
        if _finished_run(t):
            summary = json.loads((run / "train_summary.json").read_text())
            return {"note": "trained earlier", "outputs": {"run": str(run)}, "train": summary}
        if user_entries(run) and not is_recon_run(run):
            raise ReconError(f"{run}: not a recon run folder; recon batch will not write into it")
        tcfg = dataclasses.replace(t.train_cfg, overwrite=is_recon_run(run))
        with prepare_run_folder(tcfg):
            trainer = build_trainer(tcfg)
            trainer.preset_description = t.preset_desc
            print(f"{t.title}: training {tcfg.iters} iterations on {trainer.device}")
            summary = train_run(trainer, progress=False, prepared=True)
    return {"outputs": {"run": str(run)}, "train": summary}


HEADLINE = ("psnr", "ssim", "lpips")


def evaluate(t: StepTask) -> dict[str, Any]:
    from recon.eval.evaluate import evaluate_run

    run = t.run_dir
    metrics_path = run / "eval" / "metrics.json"
    summary = run / "train_summary.json"
    if not summary.is_file():
        raise ReconError(f"{run}: no finished run to evaluate (add train to --steps)")
    if metrics_path.is_file() and metrics_path.stat().st_mtime >= summary.stat().st_mtime:
        metrics = json.loads(metrics_path.read_text())
        note = "evaluated earlier"
    else:
        metrics = evaluate_run(run, progress=False)
        note = None
    head = {k: metrics.get(k) for k in HEADLINE}
    depth = (metrics.get("depth") or {}).get("overall") or {}
    if "abs_rel" in depth:
        head["absrel_overall"] = depth["abs_rel"]
    return {"note": note, "outputs": {"metrics": str(metrics_path)}, "metrics": head}


STEP_FUNCTIONS = {"convert": convert, "sfm": sfm, "train": train, "eval": evaluate}


def run_step(t: StepTask) -> dict[str, Any]:
    """The task of one step: ``{"ok": True, "outputs": {...}, ...}`` or ``{"ok": False, "error": one line}``; its
    output goes to ``t.log``."""
    return guarded(lambda: STEP_FUNCTIONS[t.step](t), t.log, t.title)
