"""A full disk (or an exhausted quota) is a user's problem, not a crash: one line naming the output, no traceback.

Every output recon writes is atomic (:mod:`recon.io.atomic`), so a write that runs out of space leaves the
previous version of the file (or nothing) behind, never half a file: the message says so.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from recon.errors import ReconError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """True for the OSError of a write that found no space left (ENOSPC) or an exhausted quota (EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


@contextlib.contextmanager
def disk_full_is_one_line(output: str | Path, after: str = "") -> Iterator[None]:
    """Turn a disk-full error inside the block into a :class:`ReconError` naming ``output``; ``after`` adds what the
    user can do next (e.g. resume)."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on the device"
        raise ReconError(f"{output}: {what} (nothing half-written is kept: outputs are written atomically); free "
                         f"some space and run again{after}") from None
