"""A spinning LiDAR: ``beams`` elevations from +2 to -24 degrees, a full turn of azimuths, one sweep per step.

Returns world-frame float32 (N, 3) points. Returns beyond the range or on sky are dropped; the range gets
gaussian noise. The scene is static, so a sweep has no motion distortion.
"""

from __future__ import annotations

import math

import numpy as np

from recon.data.synth.raycast import Tracer

ELEVATION_DEG = (2.0, -24.0)


def beam_directions(beams: int, azimuth_steps: int, yaw: float = 0.0) -> np.ndarray:
    """Unit directions (beams * azimuth_steps, 3) in the world frame for a sensor rotated by ``yaw`` (radians)."""
    elev = np.radians(np.linspace(ELEVATION_DEG[0], ELEVATION_DEG[1], beams))
    az = yaw + np.arange(azimuth_steps) * (2 * math.pi / azimuth_steps)
    ce, se = np.cos(elev)[:, None], np.sin(elev)[:, None]
    d = np.stack([ce * np.cos(az)[None, :], ce * np.sin(az)[None, :], np.broadcast_to(se, (beams, azimuth_steps))],
                 axis=-1)
    return d.reshape(-1, 3).astype(np.float32)


def sweep(tracer: Tracer, origin: np.ndarray, yaw: float, beams: int, azimuth_steps: int, range_m: float,
          noise_m: float, rng: np.random.Generator) -> np.ndarray:
    """One sweep: world-frame float32 (N, 3) points within ``range_m`` metres, range noise sigma ``noise_m``."""
    d = beam_directions(beams, azimuth_steps, yaw)
    o = np.broadcast_to(np.asarray(origin, np.float32), d.shape)
    t = tracer.cast(o, d).t
    keep = np.isfinite(t) & (t <= range_m)
    r = t[keep].astype(np.float64) + rng.normal(0.0, noise_m, int(keep.sum()))
    return (np.asarray(origin, np.float64)[None] + d[keep] * r[:, None]).astype(np.float32)
