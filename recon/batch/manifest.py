"""``OUT/manifest.json``: the state of every scene of a batch, written atomically by the driver only (tasks never
write it, so two writers cannot interleave and a killed driver leaves the last complete version).

Layout::

    {"format": "recon-batch-manifest", "version": 1, "updated": "2026-01-01 12:00:00",
     "scenes": {NAME: {"input": ..., "from": ..., "scene": ..., "state": "pending|running|done|failed",
                       "attempts": 3, "error": null | "one line",
                       "steps": {STEP: {"state": "pending|running|done|skipped|failed", "attempts": 1,
                                        "seconds": 12.3, "note": ..., "error": ..., "key": ...}},
                       "outputs": {"scene": ..., "points": ..., "run": ..., "metrics": ...},
                       "metrics": {"psnr": ..., "ssim": ..., ...}}}}

``attempts`` count the times the driver started a step (a task Ray retried after its worker died counts once;
its log shows every attempt). Scenes of earlier commands that this one does not name are kept as they were.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from recon.errors import ReconError
from recon.io.atomic import atomic_write_json

FORMAT = "recon-batch-manifest"
FINISHED = ("done", "skipped")


class Manifest:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    @classmethod
    def load(cls, out: Path) -> Manifest:
        """The manifest of ``out``, or a new one; a file that is not a batch manifest is an error (never
        overwritten)."""
        path = out / "manifest.json"
        if not path.exists():
            return cls(path, {"format": FORMAT, "version": 1, "scenes": {}})
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ReconError(f"{path}: not a readable recon batch manifest ({exc}); move it away or choose another "
                             "--out") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("scenes"), dict):
            raise ReconError(f"{path}: not a recon batch manifest; move it away or choose another --out")
        return cls(path, data)

    @property
    def scenes(self) -> dict[str, dict[str, Any]]:
        return self.data["scenes"]

    def scene(self, name: str, info: dict[str, Any], steps: list[str]) -> dict[str, Any]:
        """The entry of scene ``name`` (created if new), with ``steps`` present; a step a killed driver left
        'running' is pending again."""
        e = self.scenes.setdefault(name, {"state": "pending", "attempts": 0, "error": None, "steps": {},
                                          "outputs": {}, "metrics": {}})
        e.update(info)
        for s in steps:
            st = e["steps"].setdefault(s, {"state": "pending", "attempts": 0})
            if st["state"] in ("running", "failed"):
                st["state"] = "pending"
        return e

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        atomic_write_json(self.path, self.data)
