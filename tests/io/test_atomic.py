"""Atomic writes leave either the old file/folder or the new one, never a partial one."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.io.atomic import atomic_directory, atomic_write_text, atomic_write_with


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    atomic_write_text(p, "old")

    def boom(f) -> None:
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_with(p, boom)
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_directory(tmp_path: Path) -> None:
    dest = tmp_path / "scene"
    with pytest.raises(ValueError), atomic_directory(dest) as tmp:
        (tmp / "x").write_text("1")
        raise ValueError("converter failed")
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    with atomic_directory(dest) as tmp:
        (tmp / "x").write_text("1")
    assert (dest / "x").read_text() == "1"
    with pytest.raises(FileExistsError), atomic_directory(dest) as tmp:
        (tmp / "y").write_text("2")
    with atomic_directory(dest, overwrite=True) as tmp:
        (tmp / "y").write_text("2")
    assert sorted(p.name for p in dest.iterdir()) == ["y"]
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]
