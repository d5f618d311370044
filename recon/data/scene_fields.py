"""Typed reading of the fields of ``scene.json``: every value is checked before it is used, so a hand-edited or
hostile file gives one line naming the field, never a traceback or a silently wrong scene.

- Numbers must be JSON numbers (not strings, not booleans) and finite (``NaN`` / ``Infinity``, which Python's JSON
  reader accepts, are refused).
- Paths must be relative, without ``..``, and resolve (symlinks followed) inside the scene folder. A path that
  leaves the folder is refused before any file is touched, with the same message whether or not the outside file
  exists.
- Frame ids become file names of ``recon eval`` outputs (``eval/images/<id>.png``), so they may not contain a path
  separator or start with a dot.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

MAX_COORD_M = 1e6
"""Largest camera translation or point coordinate (metres from the scene origin). float32, which the trainer uses
for positions, keeps centimetre precision only up to about 1e5 m and 6 cm at 1e6 m; beyond, the scene must be
recentred. Larger LiDAR / SfM coordinates are dropped like non-finite ones (see ``recon.data.scene.load_points``)."""
MAX_IMAGE_SIDE_PX = 100_000
"""Largest camera width or height in pixels."""

Bad = Callable[[str], Exception]


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message stays one short line whatever the file holds)."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def number(value: Any, what: str, bad: Bad, *, positive: bool = False) -> float:
    """A finite JSON number as float (``positive``: > 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"{what} must be a number, got {short(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise bad(f"{what} must be a finite number, got {short(value)}") from None
    if not math.isfinite(v):
        raise bad(f"{what} must be a finite number, got {short(value)}")
    if positive and not v > 0:
        raise bad(f"{what} must be positive, got {v:g}")
    return v


def integer(value: Any, what: str, bad: Bad, *, low: int | None = None, high: int | None = None) -> int:
    """A whole JSON number (``3`` or ``3.0``) as int, within [low, high] when given."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{what} must be a whole number, got {short(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "" if low is None else f">= {low}"
        hi = "" if high is None else f"<= {high}"
        raise bad(f"{what} must be {' and '.join(s for s in (lo, hi) if s)}, got {short(value)}")
    return value


def frame_id(value: Any, what: str, bad: Bad) -> str:
    """A frame id: a non-empty string (or a whole number) usable as a file name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise bad(f"{what}: id must be a non-empty string, got {short(value)}")
    if any(c in value for c in "/\\\x00") or value.startswith(".") or len(value) > 200:
        raise bad(f"{what}: id {short(value)} cannot be a file name (no '/', '\\' or NUL, no leading '.', at most "
                  "200 characters)")
    return value


def scene_file(root: Path, rel: Any, what: str, bad: Bad, must_exist: bool) -> Path:
    """``root / rel`` for a path ``rel`` named by the scene, checked to stay inside ``root`` (symlinks followed)
    before anything is opened; with ``must_exist`` it must be a file."""
    if not isinstance(rel, str) or not rel:
        raise bad(f"{what}: expected a relative path string, got {short(rel, 200)}")
    outside = bad(f"{what}: path {short(rel, 200)} leaves the scene folder (paths in scene.json must be relative and "
                  "stay inside it)")
    if "\x00" in rel:
        raise bad(f"{what}: path {short(rel, 200)} contains a NUL character")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        raise outside
    full = root / rel
    try:
        inside = full.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        raise bad(f"{what}: path {short(rel, 200)} cannot be resolved (a symlink loop?)") from None
    if not inside:
        raise outside
    if must_exist and not full.is_file():
        raise bad(f"{what}: file {rel} does not exist")
    return full
