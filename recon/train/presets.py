"""Presets: small TOML files in ``configs/`` that override :class:`recon.train.config.TrainConfig` defaults.

``configs/`` is installed as the package ``recon.configs`` (pyproject.toml maps it), so the presets are found through
:mod:`importlib.resources` in a source checkout (editable install) and in an installed wheel alike.

A preset names only what differs from the defaults, e.g. ``configs/dof.toml``::

    description = "baseline + depth-of-field loss"
    [loss]
    dof_weight = 0.5

Users can pass their own file: ``recon train my_preset.toml --data ... --out ...``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from recon.errors import ReconError

PRESET_PACKAGE = "recon.configs"


def _preset_files() -> dict[str, Traversable]:
    """Preset name -> its TOML resource in the ``recon.configs`` package."""
    return {f.name.removesuffix(".toml"): f for f in resources.files(PRESET_PACKAGE).iterdir()
            if f.name.endswith(".toml") and f.is_file()}


def preset_names() -> list[str]:
    return sorted(_preset_files())


def preset_path(name_or_path: str) -> Path | Traversable:
    """A user's ``.toml`` file as given, else the named preset; unknown names are a one-line error."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        if not p.is_file():
            raise ReconError(f"{p}: preset file not found")
        return p
    found = _preset_files().get(name_or_path)
    if found is None:
        raise ReconError(f"unknown preset {name_or_path!r} (available: {', '.join(preset_names())})")
    return found


def apply_overrides(obj: Any, overrides: dict[str, Any], where: str) -> Any:
    """Return a copy of dataclass ``obj`` with (nested) ``overrides`` applied; unknown keys are an error."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ReconError(f"{where}: unknown option {key!r} for {type(obj).__name__}")
        cur = getattr(obj, key)
        if key == "strategy" and isinstance(value, dict) and "kind" in value:
            from recon.train.strategy import strategy_config  # [strategy] kind = "mcmc" picks the class

            value = dict(value)
            kind = value.pop("kind")
            try:
                cur = strategy_config(str(kind))
            except ReconError as exc:
                raise ReconError(f"{where} [strategy]: {exc}") from None
        if dataclasses.is_dataclass(cur) and isinstance(value, dict):
            changes[key] = apply_overrides(cur, value, f"{where} [{key}]")
        elif isinstance(cur, Path):
            changes[key] = Path(value)
        elif isinstance(cur, tuple):
            changes[key] = tuple(value)
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def load_preset(name_or_path: str, base: Any) -> tuple[Any, str]:
    """Apply a preset to ``base`` (a TrainConfig); returns the new config and the preset's description."""
    path = preset_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ReconError(f"{path}: not valid TOML ({exc})") from None
    desc = str(raw.pop("description", ""))
    cfg = apply_overrides(base, raw, str(path))
    return dataclasses.replace(cfg, preset=Path(name_or_path).stem), desc
