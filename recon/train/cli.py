"""``recon train --data SCENE --out RUN [PRESET]``: train Gaussians on a scene folder.

PRESET is a name from ``configs/`` (baseline, lidar, dof, mv, full) or a path to your own ``.toml``; it may stand
first or last. Every option of the preset can still be overridden by a flag (``--iters 500``, ``--loss.dof-weight
0.2``, ...).
"""

from __future__ import annotations

import sys

import tyro

from recon.errors import ReconError
from recon.io.diskfull import disk_full_is_one_line
from recon.run.folder import prepare_run_folder
from recon.train.config import TrainConfig
from recon.train.presets import load_preset, preset_names
from recon.train.strategy import normalise_strategy_args
from recon.train.validate import validate_config


def _bool_flags(cls: type, prefix: str = "") -> set[str]:
    """Command-line spellings of the boolean options (they take no value, so a preset may follow them)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        name = prefix + f.name
        if dataclasses.is_dataclass(t):
            out |= _bool_flags(t, name + ".")
        elif t is bool:
            head, _, leaf = name.rpartition(".")
            for lf in {leaf, leaf.replace("_", "-")}:
                pre = f"{head}." if head else ""
                out |= {f"--{pre}{lf}", f"--{pre}no-{lf}"}
    return out


def split_preset(argv: list[str]) -> tuple[str, list[str]]:
    """Find the preset (a positional token naming a preset or a ``.toml`` file, or ``--preset NAME``).

    A token counts as positional unless it is the value of the option before it.
    """
    names = set(preset_names())
    args = list(argv)
    if "--preset" in args:
        i = args.index("--preset")
        if i + 1 >= len(args):
            raise ReconError("--preset needs a name or a .toml path")
        name = args[i + 1]
        del args[i:i + 2]
        return name, args
    bools = _bool_flags(TrainConfig)
    for i, tok in enumerate(args):
        if tok.startswith("-") or not (tok in names or tok.endswith(".toml")):
            continue
        prev = args[i - 1] if i > 0 else ""
        if prev.startswith("--") and "=" not in prev and prev not in bools:
            continue  # the value of an option, e.g. --data baseline
        del args[i]
        return tok, args
    return "baseline", args


def build_config(argv: list[str], prog: str) -> tuple[TrainConfig, str]:
    preset, rest = split_preset(argv)
    base = TrainConfig(data=tyro.MISSING, out=tyro.MISSING)  # type: ignore[arg-type]
    base, desc = load_preset(preset, base)
    rest = normalise_strategy_args(rest, base.strategy.kind)
    cfg = tyro.cli(TrainConfig, args=rest, default=base, prog=prog,
                   description=f"{__doc__}\nPresets: {', '.join(preset_names())}. Active preset: {preset} "
                               f"({desc}).")
    validate_config(cfg)
    return cfg, desc


def main(argv: list[str], prog: str = "recon train") -> int:
    if any(a in ("-h", "--help") for a in argv):
        build_config(argv, prog)  # tyro prints help and exits
        return 0
    cfg, desc = build_config(argv, prog)
    with disk_full_is_one_line(cfg.out, "; --resume continues from the last checkpoint"), prepare_run_folder(cfg):
        return _train(cfg, desc)


def _train(cfg: TrainConfig, desc: str) -> int:
    from recon.run.training import train_run
    from recon.train.build import build_trainer

    trainer = build_trainer(cfg)
    trainer.preset_description = desc
    print(f"training '{cfg.preset}' on {trainer.scene.name}: {len(trainer.views)} views, "
          f"{trainer.params['means'].shape[0]} initial Gaussians ({trainer.init_source}), device {trainer.device}",
          file=sys.stderr)
    summary = train_run(trainer, prepared=True)
    print(f"trained {summary['iters']} iterations in {summary['train_seconds']:.1f} s, "
          f"{summary['n_gaussians']} Gaussians -> {cfg.out}", file=sys.stderr)
    if cfg.eval_at_end:
        from recon.eval.evaluate import evaluate_run, format_metrics

        metrics = evaluate_run(cfg.out, trainer=trainer)
        print(format_metrics(metrics))
    return 0
