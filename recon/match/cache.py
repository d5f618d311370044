"""On-disk cache of matches, one ``.npz`` per image pair.

The key hashes the matcher's name and settings, the matching resolution and the identity of both image files
(resolved path, size, modification time), so editing an image or changing a setting never returns stale matches.
Files are written atomically; a file that cannot be read is reported in one line and recomputed. The temporaries
of writes that were killed midway (``.<key>.npz.<8 random>.tmp``) are removed when a cache is opened, once they are
older than :data:`STALE_TMP_S` (a live write of another process is never that old).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from recon.io.atomic import atomic_write_bytes, is_orphan_name
from recon.match.base import Matches, notice

CACHE_VERSION = 1
STALE_TMP_S = 600.0


def file_identity(path: str | Path) -> str:
    """Resolved path, size and mtime of a file (a cheap stand-in for hashing its contents)."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}:{st.st_size}:{st.st_mtime_ns}"


def cache_key(matcher_name: str, settings: dict[str, Any], image0: str | Path, image1: str | Path,
              extra: dict[str, Any] | None = None) -> str:
    """Hex SHA-1 over everything that determines the matches of (image0, image1), in that order."""
    blob = json.dumps({"v": CACHE_VERSION, "matcher": matcher_name, "settings": settings, "extra": extra or {},
                       "img0": file_identity(image0), "img1": file_identity(image1)}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


class MatchCache:
    """A folder of ``<key>.npz`` files holding kpts0, kpts1, confidence (float32)."""

    def __init__(self, root: str | Path, clean: bool = True) -> None:
        self.root = Path(root)
        if clean:
            self.clean_temporaries()

    def clean_temporaries(self, max_age_s: float = STALE_TMP_S) -> list[Path]:
        """Remove the temporary files of interrupted writes older than ``max_age_s`` seconds; returns them."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                if not (name.endswith(".tmp") and is_orphan_name(name)):
                    continue
                p = Path(folder) / name
                try:
                    if now - p.stat().st_mtime >= max_age_s:
                        p.unlink()
                        removed.append(p)
                except FileNotFoundError:
                    pass  # another process finished or removed it
        return removed

    def path(self, key: str) -> Path:
        return self.root / f"{key[:2]}" / f"{key}.npz"

    def load(self, key: str) -> Matches | None:
        """Cached matches, or None when absent or unreadable (the latter with a one-line warning)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                m = Matches(z["kpts0"], z["kpts1"], z["confidence"])
            if not (np.isfinite(m.kpts0).all() and np.isfinite(m.kpts1).all()):
                raise ValueError("non-finite keypoints")
            return m
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            notice(f"warning: {p}: corrupt match cache file ({type(exc).__name__}), recomputing")
            return None

    def save(self, key: str, matches: Matches, meta: dict[str, Any] | None = None) -> Path:
        buf = io.BytesIO()
        np.savez(buf, kpts0=matches.kpts0, kpts1=matches.kpts1, confidence=matches.confidence,
                 meta=np.array(json.dumps(meta or {}, default=str)))
        return atomic_write_bytes(self.path(key), buf.getvalue())
