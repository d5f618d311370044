"""Run reuse survives new options: a saved config lacking an option counts it at its default."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from recon.train.config import TrainConfig
from recon.train.trainer import config_key, saved_config_key


def _saved(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def test_saved_config_without_a_new_option_keys_as_its_default() -> None:
    cfg = TrainConfig(data=Path("s"), out=Path("r"), iters=123)
    saved = _saved(cfg)
    assert saved_config_key(saved) == config_key(cfg)
    del saved["init"]["far_above_ground"], saved["use_lidar"]  # a run trained before these options existed
    assert saved_config_key(saved) == config_key(cfg)
    on = dataclasses.replace(cfg, init=dataclasses.replace(cfg.init, far_above_ground=True))
    assert saved_config_key(saved) != config_key(on)  # the old run did not keep far seeds above the road
    saved["iters"] = 124
    assert saved_config_key(saved) != config_key(cfg)
