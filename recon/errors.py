"""User-facing errors.

Anything a user can cause (a bad file, a bad flag, a missing weight) raises :class:`ReconError` with a one-line
message that names the file and the problem. The CLI prints it as ``error: <message>`` and exits with status 2,
never with a traceback from deep inside torch.
"""

from __future__ import annotations

from pathlib import Path


class ReconError(Exception):
    """An error caused by input the user controls; its message is shown as is."""


def file_error(path: str | Path, problem: str) -> ReconError:
    """Build a :class:`ReconError` whose message starts with the offending path."""
    return ReconError(f"{path}: {problem}")
