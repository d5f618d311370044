"""The identity of a training configuration: the options that change the optimisation, hashed.

A run's ``config.json`` and every checkpoint carry this key: resuming refuses a checkpoint of another config, and
``recon bench`` reuses a finished run whose key matches. The strategy's kind is part of the key (its options alone
do not say which strategy they belong to).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from recon.train.config import TrainConfig
from recon.train.strategy import STRATEGIES

NOT_KEYED = ("data", "out", "resume", "overwrite", "threads", "eval_at_end", "log_every", "checkpoint_every",
             "keep_checkpoints", "device")


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Every option of ``cfg`` as JSON values (paths as strings), with ``strategy.kind`` recorded."""
    d = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    d["strategy"] = {"kind": cfg.strategy.kind, **d["strategy"]}
    return d


def _key_of(d: dict[str, Any]) -> str:
    d = {k: v for k, v in d.items() if k not in NOT_KEYED}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_key(cfg: TrainConfig) -> str:
    """Hash of the options that change the optimisation (not paths, logging or resume flags)."""
    return _key_of(config_dict(cfg))


def _with_defaults(saved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` with every key ``saved`` has taken from ``saved`` (nested); keys ``saved`` lacks keep their
    default, keys ``defaults`` lacks are dropped."""
    out = {}
    for k, v in defaults.items():
        if k in saved and isinstance(v, dict) and isinstance(saved[k], dict):
            out[k] = _with_defaults(saved[k], v)
        else:
            out[k] = saved.get(k, v)
    return out


def saved_config_key(saved: dict[str, Any]) -> str:
    """The config key of a run's saved ``config.json`` as this recon computes keys: an option added since the run
    was trained is taken at its default (the behaviour the run had), so a new option with a default that keeps the
    old behaviour does not orphan finished runs; a value the file records (a default that changed since) counts.
    The defaults are those of the strategy kind the file names (runs saved before strategies were separate
    classes name theirs too)."""
    strategy = saved.get("strategy") if isinstance(saved.get("strategy"), dict) else {}
    kind = strategy.get("kind", "default")
    base = TrainConfig(data=Path("."), out=Path("."))
    if kind in STRATEGIES:
        base = dataclasses.replace(base, strategy=STRATEGIES[kind]())
    return _key_of(_with_defaults(saved, config_dict(base)))
