"""Shared fixtures. Everything is seeded and small; nothing touches the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

# Keep tests deterministic and polite on 2-core CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "2")



@pytest.fixture(autouse=True)
def _seed() -> None:
    import torch

    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def small_street(tmp_path_factory: pytest.TempPathFactory):
    """A small synthetic street scene (160x96, 3 cameras, 16 frames each), generated once per test session."""
    from recon.data.synth import SynthConfig, make_street

    out = tmp_path_factory.mktemp("street") / "street"
    cfg = SynthConfig(seed=0, width=160, height=96, n_frames=16, defocus_frames=1, lens_samples=48)
    return make_street(cfg, out)


@pytest.fixture
def single_thread():
    """Small tensors: one intra-op thread is much faster than two on a busy 2-core CI machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_street(tmp_path_factory: pytest.TempPathFactory):
    from recon.data.synth import SynthConfig, make_street

    out = tmp_path_factory.mktemp("tiny") / "street"
    return make_street(SynthConfig(seed=1, width=64, height=40, n_frames=9, defocus_frames=0), out)


@pytest.fixture(scope="session")
def bench_street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 96x64 synthetic street, 9 frames of 3 cameras, with LiDAR (the bench and batch tests' scene)."""
    from support.bench import make_tiny_street

    return make_tiny_street(tmp_path_factory.mktemp("tiny") / "street")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[object]:
    """A local Ray instance with 2 CPUs for the whole session (skipped where Ray is not installed)."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[cluster]'")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        started = True
    yield ray
    if started:
        ray.shutdown()
