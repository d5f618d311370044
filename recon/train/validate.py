"""Check a :class:`TrainConfig` before anything runs: every bad value is one line naming its flag.

Called by ``build_config`` (``recon train``, ``recon bench``), so a preset or a flag with an impossible value stops
at once instead of as a traceback deep in torch (``--downscale 0``) or a silently useless run (``--iters 0``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from recon.errors import ReconError

Check = tuple[Callable[[Any], bool], str]

POSITIVE: Check = (lambda v: v > 0, "> 0")
NON_NEGATIVE: Check = (lambda v: v >= 0, ">= 0")
AT_LEAST_1: Check = (lambda v: v >= 1, ">= 1")
FRACTION: Check = (lambda v: 0 <= v <= 1, "in [0, 1]")
OPEN_FRACTION: Check = (lambda v: 0 < v < 1, "in (0, 1)")

# dotted field -> check; learning rates are added below (all >= 0: 0 freezes a parameter group)
RULES: dict[str, Check] = {
    "iters": AT_LEAST_1,
    "seed": NON_NEGATIVE,
    "downscale": (lambda v: 0 < v <= 1, "in (0, 1] (a resize factor: 0.5 halves the images)"),
    "init_opacity": OPEN_FRACTION,
    "checkpoint_every": NON_NEGATIVE,
    "keep_checkpoints": NON_NEGATIVE,
    "log_every": AT_LEAST_1,
    "threads": NON_NEGATIVE,
    "init.voxel_size_m": NON_NEGATIVE,
    "init.max_points": AT_LEAST_1,
    "init.outlier_neighbors": NON_NEGATIVE,
    "init.outlier_std": POSITIVE,
    "init.far_points": NON_NEGATIVE,
    "init.far_near_m": POSITIVE,
    "init.far_far_m": POSITIVE,
    "init.random_points": AT_LEAST_1,
    "strategy.refine_start": NON_NEGATIVE,
    "strategy.refine_stop": NON_NEGATIVE,
    "strategy.refine_every": AT_LEAST_1,
    "strategy.reset_every": AT_LEAST_1,
    "strategy.grow_grad2d": POSITIVE,
    "strategy.prune_opa": FRACTION,
    "strategy.cap_max": AT_LEAST_1,
    "strategy.noise_lr": NON_NEGATIVE,
    "strategy.min_opacity": OPEN_FRACTION,
    "strategy.opacity_reg": NON_NEGATIVE,
    "strategy.scale_reg": NON_NEGATIVE,
    "optim.sh_degree": (lambda v: 0 <= v <= 4, "in 0..4"),
    "optim.sh_degree_interval": AT_LEAST_1,
    "loss.ssim_lambda": FRACTION,
    "loss.sky_weight": NON_NEGATIVE,
    "loss.lidar_depth_weight": NON_NEGATIVE,
    "loss.dof_weight": NON_NEGATIVE,
    "loss.dof_focus_count": AT_LEAST_1,
    "loss.dof_max_blur_px": POSITIVE,
    "loss.dof_far_saturation": POSITIVE,
    "loss.dof_lenses_per_step": NON_NEGATIVE,
    "loss.dof_start": NON_NEGATIVE,
    "loss.mv_weight": NON_NEGATIVE,
    "loss.mv_start": NON_NEGATIVE,
    "loss.mv_max_rel_depth_per_px": POSITIVE,
    "loss.mv_behind_scale": NON_NEGATIVE,
    "loss.mv_scale": POSITIVE,
    "loss.depth_fade_from": FRACTION,
}


def flag(field: str) -> str:
    """The command-line spelling of a dotted config field: ``loss.mv_behind_scale`` -> ``--loss.mv-behind-scale``."""
    return "--" + field.replace("_", "-")


def _get(cfg: Any, dotted: str) -> Any:
    """The value of a dotted field; None where the config has no such field (another strategy's option)."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part, None)
    return cfg


def _lr_fields(cfg: Any) -> list[str]:
    return [f"optim.{f.name}" for f in dataclasses.fields(cfg.optim) if f.name.endswith("_lr")]


def validate_config(cfg: Any) -> None:
    """Raise :class:`ReconError` for the first option of ``cfg`` (a TrainConfig) that has an impossible value."""
    if cfg.resume and cfg.overwrite:
        raise ReconError("--resume and --overwrite contradict each other (continue the run, or start it over)")
    rules = dict(RULES)
    rules.update({name: NON_NEGATIVE for name in _lr_fields(cfg)})
    for name, (ok, want) in rules.items():
        v = _get(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise ReconError(f"{flag(name)} must be a finite number, got {v}")
        if not ok(v):
            raise ReconError(f"{flag(name)} must be {want}, got {v:g}")
    if cfg.init.far_far_m <= cfg.init.far_near_m:
        raise ReconError(f"{flag('init.far_far_m')} ({cfg.init.far_far_m:g}) must be larger than "
                         f"{flag('init.far_near_m')} ({cfg.init.far_near_m:g})")
