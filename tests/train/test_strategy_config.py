"""The strategy as a config union: command-line subcommands, presets, and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.errors import ReconError
from recon.train.cli import build_config
from recon.train.config import TrainConfig
from recon.train.presets import apply_overrides
from recon.train.strategy import DefaultStrategyConfig, MCMCStrategyConfig, normalise_strategy_args

BASE = ["--data", "scene", "--out", "run"]


def test_strategy_options_without_a_subcommand_apply_to_the_presets_strategy() -> None:
    cfg, _ = build_config([*BASE, "--strategy.refine-stop", "50", "--iters", "7", "baseline"], "recon train")
    assert isinstance(cfg.strategy, DefaultStrategyConfig)
    assert cfg.strategy.refine_stop == 50 and cfg.iters == 7
    assert cfg.strategy.densify_from == "image"


def test_mcmc_subcommand_anywhere_with_its_own_options() -> None:
    cfg, _ = build_config(["strategy:mcmc", *BASE, "--strategy.cap-max", "900", "--iters", "3"], "recon train")
    assert isinstance(cfg.strategy, MCMCStrategyConfig)
    assert (cfg.strategy.cap_max, cfg.strategy.opacity_reg, cfg.iters) == (900, 0.01, 3)


def test_an_option_of_the_other_strategy_is_refused() -> None:
    with pytest.raises(SystemExit):  # tyro: --strategy.cap-max is not an option of strategy:default
        build_config([*BASE, "--strategy.cap-max", "900"], "recon train")


def test_unknown_strategy_kind_is_one_line() -> None:
    with pytest.raises(ReconError, match="strategy:fancy: unknown strategy"):
        normalise_strategy_args(["strategy:fancy"], "default")


def test_normalise_keeps_values_with_their_flags() -> None:
    args = ["--strategy.refine-every=5", "--iters", "2", "--strategy.grow-grad2d", "1e-4", "--seed", "1"]
    assert normalise_strategy_args(args, "default") == [
        "--iters", "2", "--seed", "1", "strategy:default", "--strategy.refine-every=5", "--strategy.grow-grad2d",
        "1e-4"]
    assert normalise_strategy_args(["--iters", "2"], "mcmc") == ["--iters", "2"]


def test_preset_table_picks_the_strategy_class() -> None:
    base = TrainConfig(data=Path("s"), out=Path("r"))
    cfg = apply_overrides(base, {"strategy": {"kind": "mcmc", "cap_max": 1234}}, "my.toml")
    assert isinstance(cfg.strategy, MCMCStrategyConfig) and cfg.strategy.cap_max == 1234
    with pytest.raises(ReconError, match=r"my.toml \[strategy\]: unknown strategy kind 'x'"):
        apply_overrides(base, {"strategy": {"kind": "x"}}, "my.toml")
    with pytest.raises(ReconError, match="unknown option 'cap_max'"):
        apply_overrides(base, {"strategy": {"cap_max": 5}}, "my.toml")


def test_validation_checks_the_active_strategys_options() -> None:
    with pytest.raises(ReconError, match="--strategy.min-opacity must be in"):
        build_config(["strategy:mcmc", *BASE, "--strategy.min-opacity", "1.5"], "recon train")
