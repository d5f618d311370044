"""The reliability thresholds every triangulated point passes, two-view (the multi-view loss) or multi-view (SfM).

:class:`PointFilter` holds the three shared thresholds; :class:`recon.match.triangulate.TriangulationConfig` (pairs of
views, for the multi-view loss) and :class:`recon.sfm.triangulate.TrackFilter` (COLMAP tracks, for seeding and
priors) extend it with their own tests and defaults. Pixels, degrees and metres as named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PointFilter:
    """Reprojection error at most ``max_reproj_px`` (pixels), triangulation angle at least ``min_angle_deg``
    (degrees), depth in every observing camera at least ``min_depth_m`` (metres, z along the optical axis)."""

    max_reproj_px: float = 2.0
    min_angle_deg: float = 1.5
    min_depth_m: float = 0.1

    def shared_tests(self, reproj_px: np.ndarray, angle_deg: np.ndarray, min_depth_m: np.ndarray
                     ) -> dict[str, np.ndarray]:
        """Boolean masks of the shared tests, by name: ``depth``, ``reprojection``, ``angle``."""
        return {"depth": min_depth_m >= self.min_depth_m, "reprojection": reproj_px <= self.max_reproj_px,
                "angle": angle_deg >= self.min_angle_deg}


def apply_in_order(tests: dict[str, np.ndarray], keep: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """``keep`` and-ed with every test in order, and how many points each test removed (counts add up: a point is
    counted by the first test it fails)."""
    keep = keep.copy()
    removed: dict[str, int] = {}
    for name, ok in tests.items():
        removed[name] = int((keep & ~ok).sum())
        keep &= ok
    return keep, removed
