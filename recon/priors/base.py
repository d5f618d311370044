"""The depth prior of one frame: metric depth, a per-pixel confidence and the name of the source that made it.

Conventions: ``depth`` is float32 [H, W] z-depth in metres along the camera's optical axis (OpenCV axes), 0 where
the source knows nothing; ``confidence`` is float32 [H, W] in [0, 1], 0 wherever depth is 0. ``source`` names the
producer (``lidar``, ``lidar-sparse``, ``sfm``, ``mono``, ``simulated``, ...): a simulated prior always says so.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recon.errors import file_error
from recon.io.atomic import atomic_write_bytes


@dataclass
class DepthPrior:
    """Metric depth with confidence for one frame (see the module docstring for units and conventions)."""

    depth: np.ndarray
    confidence: np.ndarray
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.depth = np.asarray(self.depth, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        if self.depth.ndim != 2 or self.depth.shape != self.confidence.shape:
            raise ValueError(f"DepthPrior: depth {self.depth.shape} and confidence {self.confidence.shape} "
                             "must be the same [H, W] shape")
        # unknown stays unknown: no NaN, no negative depth, no confidence without a depth
        ok = np.isfinite(self.depth) & (self.depth > 0)
        self.depth = np.where(ok, self.depth, 0.0).astype(np.float32)
        self.confidence = np.where(ok, np.clip(np.nan_to_num(self.confidence), 0.0, 1.0), 0.0).astype(np.float32)

    @property
    def valid(self) -> np.ndarray:
        """Bool [H, W]: True where the prior has a depth."""
        return self.depth > 0

    @property
    def coverage(self) -> float:
        """Fraction of pixels with a depth."""
        return float(self.valid.mean())

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.depth.shape[0]), int(self.depth.shape[1]))

    # ------------------------------------------------------------------ (de)serialisation
    def save(self, path: str | Path) -> Path:
        """Write the prior as a compressed ``.npz`` (depth, confidence, source, meta as JSON), atomically."""
        buf = io.BytesIO()
        np.savez_compressed(buf, depth=self.depth, confidence=self.confidence, source=np.array(self.source),
                            meta=np.array(json.dumps(self.meta, default=_json_default)))
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> DepthPrior:
        """Read a prior written by :meth:`save`; a damaged file raises a one-line ReconError naming it."""
        path = Path(path)
        if not path.is_file():
            raise file_error(path, "depth prior file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["depth"], z["confidence"], str(z["source"]), json.loads(str(z["meta"])))
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise file_error(path, f"not a readable depth prior ({type(exc).__name__}: {exc})") from None


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
