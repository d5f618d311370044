"""The depth prior of a frame from world points (LiDAR sweeps, SfM points): project, keep the visible ones, densify.

Projection, z-buffering (nearest point per pixel) and occlusion filtering are :mod:`recon.data.projection`'s
(OpenCV camera axes, pixel centres at +0.5); densification is :func:`recon.priors.densify.densify`. The LiDAR and
SfM priors differ only in where their points come from, so they share :class:`PointPriorOptions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recon.data.scene import Frame
from recon.priors.base import DepthPrior
from recon.priors.densify import auto_radius, densify


@dataclass(frozen=True)
class PointPriorOptions:
    """How world points become a depth prior. Pixels and metres as named."""

    dense: bool = True
    """Densify edge-aware (source ``lidar`` / ``sfm``); False keeps the projected points only (``*-sparse``)."""
    radius_px: int | None = None
    """Densification radius (default: 1.5 x the mean sample spacing, :func:`recon.priors.densify.auto_radius`)."""
    occlusion_radius_px: int = 2
    """Radius of the occlusion filter (0 keeps every z-buffered point): a LiDAR above / behind the camera, or
    sparse SfM points, show surfaces the camera does not see."""
    use_image: bool = True
    """Let densification follow image edges."""
    use_sky_mask: bool = True
    """Fill nothing into the frame's sky mask."""
    max_depth: float = math.inf
    """Drop points farther than this (metres)."""
    device: str = "cpu"
    """torch device of the densification (does not change the result)."""


def points_prior(frame: Frame, points_world: np.ndarray, name: str, options: PointPriorOptions,
                 meta: dict | None = None) -> DepthPrior:
    """The prior of ``frame`` from ``points_world`` (N, 3+) world metres: source ``name`` (densified) or
    ``name-sparse``."""
    o = options
    sparse = frame.sparse_depth(points_world, o.occlusion_radius_px, max_depth=o.max_depth)
    meta = {**(meta or {}), "points": int(len(points_world)), "sparse_pixels": int((sparse > 0).sum())}
    sky = frame.load_sky_mask() if o.use_sky_mask else None
    if sky is not None:
        sparse = np.where(sky, 0.0, sparse).astype(np.float32)
    if not o.dense:
        return DepthPrior(sparse, (sparse > 0).astype(np.float32), f"{name}-sparse", meta)
    R = auto_radius(sparse) if o.radius_px is None else o.radius_px
    image = frame.load_image() if o.use_image else None
    depth, conf = densify(sparse, image, radius_px=R, device=o.device)
    if sky is not None:
        depth = np.where(sky, 0.0, depth)
    return DepthPrior(depth, conf, name, {**meta, "radius_px": int(R)})
