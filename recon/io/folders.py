"""Output folders: create them, or say in one line why they cannot be (a file in the way, no permission)."""

from __future__ import annotations

import os
from pathlib import Path

from recon.errors import ReconError


def ensure_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` (and its parents) if needed and check that it is a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ReconError(f"{path}: {what} is a file, not a folder (choose another path)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ReconError(f"{path}: cannot create the {what} (a file stands in its path)") from None
    except OSError as exc:
        raise ReconError(f"{path}: cannot create the {what} ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ReconError(f"{path}: {what} is not writable")
    return path


def check_parent_writable(path: str | Path, what: str = "output folder") -> None:
    """Check, before any work, that ``path`` could be created: its nearest existing ancestor is a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ReconError(f"{path}: {what} is a file, not a folder (choose another path)")
    anc = path.parent if not path.exists() else path
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise ReconError(f"{path}: cannot create the {what} ({anc} is a file)")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise ReconError(f"{path}: cannot create the {what} ({anc} is not writable)")
