"""Run reuse survives new options: a saved config lacking an option counts it at its default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from recon.train.config import TrainConfig
from recon.train.config_key import config_dict, config_key, saved_config_key
from recon.train.strategy import MCMCStrategyConfig


def _saved(cfg: TrainConfig) -> dict:
    return config_dict(cfg)


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


def test_strategy_kind_is_part_of_the_key_and_old_strategy_records_still_match() -> None:
    cfg = TrainConfig(data=Path("s"), out=Path("r"))
    mcmc = dataclasses.replace(cfg, strategy=MCMCStrategyConfig())
    assert config_key(mcmc) != config_key(cfg)
    assert saved_config_key(config_dict(mcmc)) == config_key(mcmc)
    # a config.json written when one strategy class held every option (kind and cap_max in one table)
    old = config_dict(cfg)
    old["strategy"] = {"kind": "default", "refine_start": 200, "refine_stop": 1800, "refine_every": 100,
                       "reset_every": 100000, "grow_grad2d": 0.0002, "prune_opa": 0.005, "cap_max": 150000,
                       "densify_from": "image"}
    assert saved_config_key(old) == config_key(cfg)
    old["strategy"]["densify_from"] = "all"
    assert saved_config_key(old) != config_key(cfg)
    old_mcmc = dict(old, strategy={**old["strategy"], "kind": "mcmc", "densify_from": "image"})
    assert saved_config_key(old_mcmc) == config_key(mcmc)
