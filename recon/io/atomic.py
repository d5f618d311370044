"""Atomic writes: a reader (or a crash) never sees a half-written file or folder.

Every output of recon goes through these helpers: the data is written to a temporary sibling, flushed, then
renamed over the destination (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# names of the temporaries below: "." + destination name + "." + mkstemp's 8 random characters + suffix
_TMP_FILE_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_TMP_DIR_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.(partial|old)$")


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{suffix}.tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def atomic_write_with(path: str | Path, writer: Callable[[BinaryIO], Any]) -> Path:
    """Call ``writer(fileobj)`` on a temporary file next to ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 1) -> Path:
    """Serialise ``obj`` as JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Save ``array`` as a ``.npy`` file atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    """``torch.save`` to ``path`` atomically (a checkpoint is either the old one or the new one, never half)."""
    import torch

    return atomic_write_with(path, lambda f: torch.save(obj, f))


@contextlib.contextmanager
def atomic_directory(dest: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and move it to ``dest`` only when the block succeeds.

    On any exception the temporary folder is removed and ``dest`` is untouched. With ``overwrite`` an existing
    ``dest`` is replaced (moved aside first, deleted after the new one is in place).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if dest.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(dest)
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
        os.rmdir(old)
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_orphans(folder: str | Path) -> list[Path]:
    """Remove the temporaries these helpers leave when a process is killed mid-write, anywhere under ``folder``.

    Only names of this module's own pattern (``.<name>.<8 random>.tmp`` files, ``.partial`` / ``.old`` folders)
    are touched. Call it only while no other process writes ``folder`` (under its :mod:`recon.io.lock`).
    """
    removed: list[Path] = []
    for root, dirs, files in os.walk(folder):
        for name in files:
            if _TMP_FILE_RE.match(name):
                p = Path(root) / name
                p.unlink(missing_ok=True)
                removed.append(p)
        for name in list(dirs):
            if _TMP_DIR_RE.match(name):
                p = Path(root) / name
                shutil.rmtree(p, ignore_errors=True)
                dirs.remove(name)
                removed.append(p)
    return removed


def is_orphan_name(name: str) -> bool:
    """True for the name of a temporary file or folder these helpers create."""
    return bool(_TMP_FILE_RE.match(name) or _TMP_DIR_RE.match(name))


@contextlib.contextmanager
def replacing_contents(folder: str | Path, keep: Collection[str] = ()) -> Iterator[None]:
    """Replace what ``folder`` holds by what the block writes into it, or keep the old contents if the block fails.

    The old entries (all but the names in ``keep``) are moved into a hidden folder inside ``folder`` first (renames:
    instant, nothing copied). When the block succeeds that folder is deleted; when it raises, the block's new
    entries are deleted and the old ones moved back. A process killed in between leaves the hidden folder, which
    :func:`clean_orphans` removes later.
    """
    folder = Path(folder)
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder))
    keep = set(keep) | {aside.name}
    old = [p for p in folder.iterdir() if p.name not in keep]
    for p in old:
        os.replace(p, aside / p.name)
    try:
        yield
    except BaseException:
        for p in folder.iterdir():
            if p.name not in keep:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        for p in aside.iterdir():
            os.replace(p, folder / p.name)
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)
