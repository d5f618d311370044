"""Metrics logging: one JSON object per line in ``metrics.jsonl``, and TensorBoard when it is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricLogger:
    def __init__(self, run: Path, tensorboard: bool = True) -> None:
        self.path = run / "metrics.jsonl"
        self._fh = open(self.path, "a", buffering=1)  # line-buffered: each record lands whole
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run / "tb"))
            except Exception:  # tensorboard not installed: JSONL only
                self._tb = None

    def log(self, step: int, **values: Any) -> None:
        rec = {"step": step, **{k: (float(v) if hasattr(v, "__float__") else v) for k, v in values.items()}}
        self._fh.write(json.dumps(rec) + "\n")
        if self._tb is not None:
            for k, v in rec.items():
                if k != "step" and isinstance(v, float):
                    self._tb.add_scalar(k, v, step)

    def truncate_after(self, step: int) -> None:
        """Drop records after ``step`` (used on resume so the log matches the checkpoint)."""
        self._fh.close()
        keep = [ln for ln in self.path.read_text().splitlines() if (n := _step(ln)) is not None and n <= step]
        from recon.io.atomic import atomic_write_text

        atomic_write_text(self.path, "".join(ln + "\n" for ln in keep))
        self._fh = open(self.path, "a", buffering=1)

    def close(self) -> None:
        """Close the log (again is harmless)."""
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _step(line: str) -> int | None:
    """The step of one JSONL record; None for a blank line or one cut short by a kill."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return int(rec.get("step", 0)) if isinstance(rec, dict) else None
