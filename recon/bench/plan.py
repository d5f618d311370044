"""The benchmark's plan: every option, scene and preset checked, and every run's folder and configuration fixed,
before the first run trains.

A run is identified by its **run key**: a hash of its training configuration (``recon.train.trainer.config_key``:
preset, iterations, seed, every option the extra flags change; not paths, threads or logging) and of its scene's
fingerprint (frames, poses, cameras). A finished run (``bench_run.json`` written after its evaluation) is reused
only under the same key; a finished run of another configuration in the same folder stops the bench before
anything trains, with one line saying what differs. Scene names are the folder names; two different folders with
the same name get the name plus a short hash of their path, so each has its own run folders.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recon.bench.config import BenchConfig
from recon.bench.options import (
    OWNED_BY_RUNNER,
    check_run_options,
    parse_seeds,
    split_extra,
    split_list,
    train_config,
)
from recon.errors import ReconError

MARKER = "bench_run.json"
QUICK_FLAGS = ["--init.max-points", "3000", "--init.far-points", "500", "--checkpoint-every", "0"]
BENCH_OWNED_EXTRA = {"--downscale": "use recon bench --downscale"}


@dataclass
class SceneSpec:
    """One scene of the bench: the name its runs are filed under, its folder, and (synthetic) its seed."""

    spec: str
    name: str
    folder: Path
    synth_seed: int | None = None
    fingerprint: str = ""


@dataclass
class RunSpec:
    """Everything a worker needs to train and evaluate one run (absolute paths; picklable for Ray)."""

    scene: str
    method: str
    seed: int
    scene_dir: Path
    run_dir: Path
    log: Path
    train_cfg: Any  # recon.train.config.TrainConfig
    preset_desc: str
    key: str
    key_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.scene}/{self.method}/seed{self.seed}"


@dataclass
class BenchPlan:
    scenes: list[SceneSpec]
    methods: list[str]
    seeds: list[int]
    runs: list[RunSpec]


def apply_quick(cfg: BenchConfig) -> None:
    if cfg.quick:
        cfg.scenes, cfg.methods, cfg.seeds = "synth:0", "baseline,lidar", "0"
        cfg.iters = min(cfg.iters, 40)


def parse_scene_specs(value: str, out: Path) -> list[SceneSpec]:
    """``--scenes`` items: ``synth:SEED`` (generated into OUT/scenes/synth_SEED) or scene folders (must exist)."""
    specs: list[SceneSpec] = []
    for item in split_list(value, "--scenes"):
        if item.startswith("synth:"):
            tail = item.split(":", 1)[1]
            try:
                seed = int(tail)
            except ValueError:
                raise ReconError(f"--scenes: {item!r} is not synth:SEED with an integer SEED") from None
            if seed < 0:
                raise ReconError(f"--scenes: {item!r}: the synthetic street's seed must be >= 0")
            specs.append(SceneSpec(item, f"synth_{seed}", (out / "scenes" / f"synth_{seed}").resolve(), seed))
            continue
        folder = Path(item)
        if not folder.is_dir():
            raise ReconError(f"--scenes: {folder}: no such scene folder")
        if not (folder / "scene.json").is_file():
            raise ReconError(f"--scenes: {folder}: not a scene folder (no scene.json)")
        specs.append(SceneSpec(item, folder.resolve().name, folder.resolve()))
    kept: list[SceneSpec] = []
    for s in specs:
        same = next((k for k in kept if k.folder == s.folder), None)
        if same is not None:
            print(f"note: --scenes: {s.spec} is the same scene as {same.spec}; it is run once")
            continue
        kept.append(s)
    return unique_names(kept)


def unique_names(specs: list[Any], attr: str = "name", path_attr: str = "folder") -> list[Any]:
    """Give every item sharing a name with another one ``NAME_<6 hex of its path>``, so none shares a folder."""
    counts: dict[str, int] = {}
    for s in specs:
        counts[getattr(s, attr)] = counts.get(getattr(s, attr), 0) + 1
    for s in specs:
        if counts[getattr(s, attr)] > 1:
            h = hashlib.sha1(str(getattr(s, path_attr)).encode()).hexdigest()[:6]
            setattr(s, attr, f"{getattr(s, attr)}_{h}")
    return specs


def check_methods(methods: list[str]) -> None:
    from recon.train.presets import preset_path

    for m in methods:
        try:
            preset_path(m)
        except ReconError as exc:
            raise ReconError(f"--methods: {exc}") from None


def _synth_shape(cfg: BenchConfig) -> tuple[int, int, int]:
    return (96, 64, 9) if cfg.quick else (cfg.synth_width, cfg.synth_height, cfg.synth_frames)


def ensure_synth(s: SceneSpec, cfg: BenchConfig) -> None:
    """Generate a synthetic scene once; an existing one of another size is an error (its results would lie)."""
    from recon.data.scene import Scene
    from recon.data.synth import SynthConfig, make_street

    w, h, n = _synth_shape(cfg)
    if not s.folder.exists():
        make_street(SynthConfig(seed=s.synth_seed or 0, width=w, height=h, n_frames=n, defocus_frames=0), s.folder)
        return
    if not (s.folder / "scene.json").is_file():
        raise ReconError(f"{s.folder}: exists but is not a scene folder; remove it so that {s.spec} can be generated")
    scene = Scene.load(s.folder)
    cams = list(scene.cameras.values())
    have = (cams[0].width, cams[0].height, len(scene.frames) // max(1, len(cams)))
    if have != (w, h, n):
        raise ReconError(f"{s.folder}: was generated at {have[0]}x{have[1]}, {have[2]} frames, this bench asks "
                         f"{w}x{h}, {n} frames (--synth-width/--synth-height/--synth-frames, --quick); use another "
                         "--out or remove that folder")


def run_key(train_cfg: Any, fingerprint: str) -> str:
    from recon.train.config_key import config_key

    return hashlib.sha1(f"{config_key(train_cfg)}:{fingerprint}".encode()).hexdigest()[:16]


@dataclass
class Inputs:
    """The checked options of a bench: nothing has been written yet."""

    scenes: list[SceneSpec]
    methods: list[str]
    seeds: list[int]
    tokens: list[str]
    base: dict[str, tuple[Any, str]]  # method -> (TrainConfig without scene, run folder or seed; description)


def check_inputs(cfg: BenchConfig) -> Inputs:
    """Check every option, scene folder and preset (with the extra flags) without writing anything."""
    check_run_options(cfg.iters, cfg.out, cfg.executor, cfg.cpus_per_run)
    scenes = parse_scene_specs(cfg.scenes, cfg.out)
    methods = split_list(cfg.methods, "--methods")
    check_methods(methods)
    seeds = parse_seeds(cfg.seeds)
    tokens = (QUICK_FLAGS if cfg.quick else []) + split_extra(cfg.extra, owned={**OWNED_BY_RUNNER,
                                                                                **BENCH_OWNED_EXTRA})
    base = {m: train_config(m, cfg.out / "scenes" / "_", cfg.out / "runs" / "_", tokens, iters=cfg.iters,
                            seed=seeds[0], downscale=cfg.downscale) for m in methods}
    from recon.data.scene import Scene

    for s in scenes:
        if s.synth_seed is None:
            s.fingerprint = Scene.load(s.folder).fingerprint()
    return Inputs(scenes, methods, seeds, tokens, base)


def make_plan(cfg: BenchConfig, inp: Inputs) -> BenchPlan:
    """Generate the synthetic scenes and fix every run's folder, configuration and key; refuse run folders that
    hold something else (see :func:`check_run_folder`). Nothing trains here."""
    from recon.data.scene import Scene

    for s in inp.scenes:
        if s.synth_seed is not None:
            ensure_synth(s, cfg)
            s.fingerprint = Scene.load(s.folder).fingerprint()
    runs: list[RunSpec] = []
    root = cfg.out.resolve()
    own_threads = "--threads" in {t.split("=")[0].replace("_", "-") for t in inp.tokens}
    for s in inp.scenes:
        for m in inp.methods:
            tcfg0, desc = inp.base[m]
            for seed in inp.seeds:
                run_dir = root / "runs" / s.name / m / f"seed{seed}"
                tcfg = dataclasses.replace(tcfg0, data=s.folder, out=run_dir, seed=seed)
                if cfg.executor == "ray" and not own_threads:
                    tcfg = dataclasses.replace(tcfg, threads=cfg.cpus_per_run)
                fields = {"preset": m, "iters": cfg.iters, "seed": seed, "downscale": cfg.downscale,
                          "extra": " ".join(inp.tokens), "scene": str(s.folder), "scene_fingerprint": s.fingerprint}
                runs.append(RunSpec(s.name, m, seed, s.folder, run_dir, root / "logs" / s.name / m / f"seed{seed}.log",
                                    tcfg, desc, run_key(tcfg, s.fingerprint), fields))
    for r in runs:
        check_run_folder(r)
    return BenchPlan(inp.scenes, inp.methods, inp.seeds, runs)


def read_marker(run_dir: Path) -> dict[str, Any] | None:
    try:
        d = json.loads((run_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _legacy_key(run: RunSpec) -> str | None:
    """A run finished by an older recon bench (no marker): its config key, when config.json names our scene."""
    from recon.train.config_key import config_key

    try:
        d = json.loads((run.run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or Path(str(d.get("data", ""))).resolve() != run.scene_dir:
        return None
    return run.key if d.get("config_key") == config_key(run.train_cfg) else "other"


def _saved_key(run: RunSpec, fingerprint: str) -> str | None:
    """The run key of the configuration saved in the run folder, options added since at their defaults."""
    from recon.train.config_key import saved_config_key

    try:
        d = json.loads((run.run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict):
        return None
    return hashlib.sha1(f"{saved_config_key(d)}:{fingerprint}".encode()).hexdigest()[:16]


def is_finished(run: RunSpec) -> bool:
    """Whether ``run`` has finished under this exact configuration (its results can be read back). A run trained
    before an option existed still counts when the option's default is what this bench asks for."""
    if not ((run.run_dir / "eval" / "metrics.json").is_file() and (run.run_dir / "train_summary.json").is_file()):
        return False
    m = read_marker(run.run_dir)
    if m is not None:
        if m.get("key") == run.key:
            return True
        fp = m.get("scene_fingerprint")
        return isinstance(fp, str) and _saved_key(run, fp) == run.key
    return _legacy_key(run) == run.key


def check_run_folder(run: RunSpec) -> None:
    """Refuse, before anything trains, a run folder holding a finished run of another configuration, or
    something that is not a recon run."""
    from recon.run.folder import is_recon_run, user_entries

    d = run.run_dir
    if d.exists() and not d.is_dir():
        raise ReconError(f"{d}: is a file where recon bench keeps a run folder; remove it or choose another --out")
    if not d.is_dir() or not user_entries(d):
        return
    if not is_recon_run(d):
        raise ReconError(f"{d}: not a recon run folder; recon bench will not write into it (remove it or choose "
                         "another --out)")
    finished = (d / "eval" / "metrics.json").is_file() and (d / "train_summary.json").is_file()
    if not finished or is_finished(run):
        return
    m = read_marker(d) or {}
    diff = [f"{k} {m.get(k)!r} (now {v!r})" for k, v in run.key_fields.items() if k in m and m.get(k) != v]
    what = ", ".join(diff) if diff else "its training configuration or scene differs"
    raise ReconError(f"{d}: holds a finished run of another configuration ({what}); choose another --out, or "
                     "remove that folder to train it again")


def write_marker(run: RunSpec) -> None:
    from recon.io.atomic import atomic_write_json

    atomic_write_json(run.run_dir / MARKER, {"key": run.key, **run.key_fields, "pid": os.getpid()})
