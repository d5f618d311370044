"""The matcher interface and the :class:`Matches` it returns.

Pixel convention (shared with gsplat and :mod:`recon.data.scene`): the centre of pixel (u, v) (column u, row v) is
at continuous image coordinates (u + 0.5, v + 0.5); the image spans [0, W] x [0, H]. Keypoints are (x, y) in that
frame, in pixels of the image that was passed to :meth:`Matcher.match`.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from recon.errors import ReconError


def notice(message: str) -> None:
    """Print a one-line notice or warning for the user on stderr (never a traceback)."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Matches:
    """Point correspondences between two images.

    ``kpts0``/``kpts1``: float32 (M, 2) pixel coordinates (x, y), pixel-centre convention above.
    ``confidence``: float32 (M,) in [0, 1], higher is better (matcher-specific meaning).
    """

    kpts0: np.ndarray
    kpts1: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        self.kpts0 = np.asarray(self.kpts0, dtype=np.float32).reshape(-1, 2)
        self.kpts1 = np.asarray(self.kpts1, dtype=np.float32).reshape(-1, 2)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if not (len(self.kpts0) == len(self.kpts1) == len(self.confidence)):
            raise ValueError(f"Matches: inconsistent lengths {len(self.kpts0)}, {len(self.kpts1)}, "
                             f"{len(self.confidence)}")

    def __len__(self) -> int:
        return len(self.kpts0)

    @staticmethod
    def empty() -> Matches:
        return Matches(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0))

    def subset(self, keep: np.ndarray) -> Matches:
        return Matches(self.kpts0[keep], self.kpts1[keep], self.confidence[keep])

    def scaled(self, s0: tuple[float, float], s1: tuple[float, float]) -> Matches:
        """Keypoints multiplied by per-axis factors (sx, sy) for each image: a resize of the image by (sx, sy).

        Exact under the pixel-centre convention, where an image resize maps the image edges onto each other.
        """
        return Matches(self.kpts0 * np.asarray(s0, np.float32), self.kpts1 * np.asarray(s1, np.float32),
                       self.confidence)

    def swapped(self) -> Matches:
        return Matches(self.kpts1, self.kpts0, self.confidence)


class Matcher(ABC):
    """Finds correspondences between two RGB images.

    Subclasses set :attr:`name` and return every setting that changes their output from :meth:`settings` (the
    on-disk cache is keyed by both).
    """

    name: str = "matcher"

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings that determine the output (part of the cache key)."""

    @abstractmethod
    def match(self, img0: np.ndarray, img1: np.ndarray) -> Matches:
        """Match two float images (H, W, 3) (or (H, W)) in [0, 1]; keypoints in pixels of each image."""

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.settings().items())
        return f"{self.name} ({opts})"


def to_gray(img: np.ndarray) -> np.ndarray:
    """Float32 (H, W) luminance in [0, 1] from an (H, W, 3) or (H, W) image (Rec. 601 weights)."""
    a = np.asarray(img)
    if not np.issubdtype(a.dtype, np.floating) or float(a.max(initial=0.0)) > 1.0 + 1e-3:
        raise ReconError("matcher input must be a float image in [0, 1]")
    a = a.astype(np.float32, copy=False)
    if a.ndim == 3 and a.shape[2] >= 3:
        a = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ReconError(f"matcher input must be an (H, W, 3) or (H, W) image, got shape {np.shape(img)}")
    return np.ascontiguousarray(np.clip(a, 0.0, 1.0))
