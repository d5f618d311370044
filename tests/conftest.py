"""Shared fixtures. Everything is seeded and small; nothing touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Keep tests deterministic and polite on 2-core CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    import torch

    np.random.seed(0)
    torch.manual_seed(0)


def shared_data(name: str) -> Path:
    """Path of a folder under ../shared/data, or skip the test with a clear reason when it is absent."""
    p = SHARED_DATA / name
    if not p.is_dir():
        pytest.skip(f"real data folder shared/data/{name} not present in this checkout")
    return p


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
