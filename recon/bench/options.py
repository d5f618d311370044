"""Parsing the list and pass-through options of ``recon bench`` and ``recon batch`` into one-line errors.

tyro reports a bad flag in a multi-line box and exits; here its message is captured and raised as one
:class:`ReconError` line naming the option (``--extra: Unrecognized options: --name``), and every list option
(``--seeds 0,1,2``, ``--methods``, ``--scenes``) is checked before anything runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from recon.errors import ReconError

T = TypeVar("T")

# training options recon bench / recon batch set themselves (flag -> what to use instead)
OWNED_BY_RUNNER = {
    "--out": "recon bench and recon batch own their run folders",
    "--data": "the scene comes from --scenes (bench) or the inputs (batch)",
    "--overwrite": "a finished run of the same configuration is reused, an unfinished one is started over",
    "--resume": "a finished run of the same configuration is reused, an unfinished one is started over",
    "--preset": "use --methods (bench) or --preset (batch)",
    "--iters": "use the command's own --iters",
    "--seed": "use --seeds (bench) or --seed (batch)",
    "--eval-at-end": "evaluation is a step of its own",
}


def tyro_one_line(cls: type[T], args: list[str], what: str, default: T | None = None, prog: str = "recon") -> T:
    """``tyro.cli(cls, args)``, with a parse error raised as one ReconError line prefixed by ``what``.

    ``--help`` is not captured (tyro prints it and exits as usual).
    """
    import tyro

    if any(a in ("-h", "--help") for a in args):
        return tyro.cli(cls, args=args, default=default, prog=prog)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
            return tyro.cli(cls, args=args, default=default, prog=prog)
    except SystemExit:
        raise ReconError(f"{what}: {_first_message_line(buf.getvalue())}") from None


def _first_message_line(text: str) -> str:
    """The message of a tyro error box on one line (its title, rules and help pointers dropped)."""
    lines = [ln.strip().strip("│╭╮╰╯─|").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and set(ln) - set("-─━ ")]
    body: list[str] = []
    for ln in lines[1:]:
        if ln.lower().startswith(("for full helptext", "argument helptext")):
            break
        body.append(ln)
    return " ".join(body) if body else (lines[0] if lines else "invalid arguments")


def check_run_options(iters: int, out: Path, executor: str, cpus_per_run: int) -> None:
    """The options `recon bench` and `recon batch` share, checked before anything is written."""
    if iters < 1:
        raise ReconError(f"--iters: {iters} is not a number of iterations (>= 1)")
    if out.exists() and not out.is_dir():
        raise ReconError(f"--out: {out} is a file, not a folder")
    if executor == "ray" and cpus_per_run < 1:
        raise ReconError(f"--cpus-per-run: {cpus_per_run} is not a CPU count (>= 1)")


def split_list(value: str, option: str) -> list[str]:
    """Items of a comma-separated option, stripped; an empty list is an error; repeats are dropped (with a note)."""
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        raise ReconError(f"{option}: nothing given (expected a comma-separated list)")
    return dedupe(items, option)


def dedupe(items: Iterable[T], option: str, key: Any = None) -> list[T]:
    """``items`` without repeats (first occurrence kept); prints one note per repeat."""
    seen: set[Any] = set()
    out: list[T] = []
    for it in items:
        k = key(it) if key else it
        if k in seen:
            print(f"note: {option}: {it} is listed more than once; it is run once")
            continue
        seen.add(k)
        out.append(it)
    return out


def parse_seeds(value: str, option: str = "--seeds") -> list[int]:
    """Non-negative integer seeds from ``"0,1,2"``; repeats dropped with a note."""
    seeds: list[int] = []
    for tok in split_list(value, option):
        try:
            s = int(tok)
        except ValueError:
            raise ReconError(f"{option}: {tok!r} is not an integer seed") from None
        if s < 0:
            raise ReconError(f"{option}: seed {s} is negative (seeds are >= 0)")
        seeds.append(s)
    return dedupe(seeds, option)


def split_extra(extra: str, option: str = "--extra", owned: dict[str, str] | None = None) -> list[str]:
    """Shell-split ``extra`` and refuse the flags the runner sets itself (``owned``, default OWNED_BY_RUNNER)."""
    try:
        tokens = shlex.split(extra)
    except ValueError as exc:
        raise ReconError(f"{option}: cannot split {extra!r} into flags ({exc})") from None
    owned = OWNED_BY_RUNNER if owned is None else owned
    for tok in tokens:
        if tok in ("-h", "--help"):
            raise ReconError(f"{option}: --help is not a training option (see `recon train --help`)")
        if not tok.startswith("--"):
            continue
        name = tok.split("=", 1)[0].replace("_", "-")
        base = "--" + name[len("--no-"):] if name.startswith("--no-") else name
        if base in owned:
            raise ReconError(f"{option}: {name} is not allowed here ({owned[base]})")
    return tokens


def train_config(preset: str, scene: Path, run: Path, tokens: list[str], option: str = "--extra",
                 **fields: Any) -> tuple[Any, str]:
    """The TrainConfig of one run: the preset applied to the defaults, then ``fields`` (iters, seed, ...), then the
    pass-through flags ``tokens``; validated (one-line errors). Returns (config, preset description)."""
    from recon.train.config import TrainConfig
    from recon.train.presets import load_preset
    from recon.train.validate import validate_config

    base = TrainConfig(data=scene, out=run)
    base, desc = load_preset(preset, base)
    base = dataclasses.replace(base, eval_at_end=False, overwrite=False, resume=False, **fields)
    if tokens:
        from recon.train.strategy import normalise_strategy_args

        try:
            tokens = normalise_strategy_args(tokens, base.strategy.kind)
        except ReconError as exc:
            raise ReconError(f"{option}: {exc}") from None
        base = tyro_one_line(TrainConfig, tokens, option, default=base, prog="recon train")
    try:
        validate_config(base)
    except ReconError as exc:
        raise ReconError(f"{option if tokens else 'preset ' + repr(preset)}: {exc}") from None
    return base, desc
