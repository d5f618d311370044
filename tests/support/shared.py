"""Real data in ``../shared/data`` (next to the repository), or a skip with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path of a folder under ../shared/data, or skip the test with a clear reason when it is absent."""
    p = SHARED_DATA / name
    if not p.is_dir():
        pytest.skip(f"real data folder shared/data/{name} not present in this checkout")
    return p
