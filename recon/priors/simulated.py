"""SIMULATED monocular depth prior, for the synthetic benchmark only: ground truth degraded like a real model.

This is not a model. It stands in for a metric monocular network (Depth Anything V2 metric, Metric3D) where no
weights are available, and every output it makes is labelled ``simulated``. To prove nothing by accident, it is
built to be *no better* than real metric models are on driving data (overall AbsRel >= 0.08, far band (> 40 m)
AbsRel >= 0.15, a global scale error of a few percent; ``tests/test_priors.py`` measures this on the synthetic
street). The error profile, applied to the ground-truth z-depth ``gt`` (metres), in this order:

1. edge blur: depth is smoothed across discontinuities (a Gaussian of ``edge_blur_frac`` x image width, computed
   in depth over the known pixels only), giving the in-between "flying" depths networks predict at object edges;
2. a global scale bias of ``scale_bias`` (magnitude drawn in [0.6, 1] x ``scale_bias``, sign drawn; the same for
   every frame of a seed) times a small per-frame jitter ``frame_scale_jitter``;
3. a smooth low-frequency multiplicative warp ``exp(w)``, ``w`` a bicubic-upsampled ``warp_cells`` x
   ``warp_cells`` Gaussian field of std ``warp_amplitude`` (networks' slowly varying, layout-dependent bias);
4. noise growing with distance: ``exp(sigma(d) * n)``, relative std ``sigma(d) = min(noise_near +
   noise_slope * d, noise_max)``, ``n`` a unit-variance field, part spatially correlated (object-sized blobs,
   ``noise_corr_frac`` x width) and part per-pixel.

Unknown ground truth (0: sky, no return) stays unknown. Confidence is the profile's own expected noise at the
*predicted* depth, ``noise_near / sigma(pred)`` (it never looks at the ground truth). Deterministic: every random
draw comes from ``numpy.random.default_rng([seed, crc32(frame id)])``.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

from recon.data.scene import Frame
from recon.errors import ReconError
from recon.priors.base import DepthPrior

SIMULATED_LABEL = "simulated"
SIMULATED_NOTE = ("SIMULATED monocular prior: ground truth degraded with a real-model error profile "
                  "(scale bias, low-frequency warp, distance-growing noise, edge blur); not a network")


@dataclass(frozen=True)
class MonoErrorProfile:
    """The error profile of the simulated monocular prior (see the module docstring; depths in metres)."""

    scale_bias: float = 0.05
    frame_scale_jitter: float = 0.01
    warp_amplitude: float = 0.04
    warp_cells: int = 3
    noise_near: float = 0.02
    noise_slope: float = 0.0025
    noise_max: float = 0.3
    noise_corr_frac: float = 0.02
    noise_white_share: float = 0.3
    edge_blur_frac: float = 0.008

    def sigma(self, depth: np.ndarray) -> np.ndarray:
        """Relative (log-space) noise std at ``depth`` metres."""
        return np.minimum(self.noise_near + self.noise_slope * np.asarray(depth, dtype=np.float64), self.noise_max)


def scene_scale_bias(seed: int, profile: MonoErrorProfile) -> float:
    """The global multiplicative scale factor of a seed (e.g. 1.043 = 4.3 % too far)."""
    rng = np.random.default_rng([seed, 0x5CA1E])
    return float(1.0 + rng.choice([-1.0, 1.0]) * profile.scale_bias * rng.uniform(0.6, 1.0))


def _smooth_unit_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), max(sigma_px, 0.5), mode="reflect")
    return (f - f.mean()) / max(float(f.std()), 1e-12)


def _warp_field(rng: np.random.Generator, shape: tuple[int, int], cells: int, amplitude: float) -> np.ndarray:
    from scipy.ndimage import zoom

    H, W = shape
    coarse = rng.standard_normal((cells + 1, cells + 1)) * amplitude
    w = zoom(coarse, ((H + 1) / (cells + 1), (W + 1) / (cells + 1)), order=3, mode="nearest")
    return w[:H, :W]


def _blur_known(depth: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur over the known (> 0) pixels only (normalised convolution); unknown stays 0."""
    from scipy.ndimage import gaussian_filter

    if sigma_px <= 0:
        return depth
    known = (depth > 0).astype(np.float64)
    num = gaussian_filter(depth * known, sigma_px, mode="nearest")
    den = gaussian_filter(known, sigma_px, mode="nearest")
    return np.where(known > 0, num / np.maximum(den, 1e-12), 0.0)


def simulate_mono_depth(
    gt: np.ndarray, key: str, seed: int = 0, profile: MonoErrorProfile | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Degrade ground-truth z-depth ``gt`` [H, W] (metres, 0 = unknown) with the profile.

    ``key`` (e.g. the frame id) makes the per-frame draws differ while staying deterministic. Returns
    ``(depth, confidence, info)``, float32 [H, W] each, and the scale factors used.
    """
    prof = profile or MonoErrorProfile()
    gt = np.asarray(gt, dtype=np.float64)
    H, W = gt.shape
    known = np.isfinite(gt) & (gt > 0)
    gt = np.where(known, gt, 0.0)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    bias = scene_scale_bias(seed, prof)
    frame_scale = bias * float(np.exp(prof.frame_scale_jitter * rng.standard_normal()))
    d = _blur_known(gt, prof.edge_blur_frac * W)
    warp = _warp_field(rng, (H, W), prof.warp_cells, prof.warp_amplitude)
    corr = _smooth_unit_field(rng, (H, W), prof.noise_corr_frac * W)
    white = rng.standard_normal((H, W))
    a = prof.noise_white_share
    n = np.sqrt(1.0 - a) * corr + np.sqrt(a) * white
    pred = d * frame_scale * np.exp(warp + prof.sigma(d) * n)
    pred = np.where(known & (pred > 0), pred, 0.0)
    conf = np.where(pred > 0, np.clip(prof.noise_near / prof.sigma(pred), 0.0, 1.0), 0.0)
    info = {"scene_scale_bias": bias, "frame_scale": frame_scale}
    return pred.astype(np.float32), conf.astype(np.float32), info


def simulated_prior(frame: Frame, seed: int = 0, profile: MonoErrorProfile | None = None) -> DepthPrior:
    """The simulated monocular prior of a frame with ground-truth depth (synthetic scenes); source ``simulated``."""
    gt = frame.load_depth()
    if gt is None:
        raise ReconError(f"frame '{frame.id}': the simulated monocular prior needs ground-truth depth "
                         "(synthetic scenes only); use --source mono with real weights instead")
    prof = profile or MonoErrorProfile()
    depth, conf, info = simulate_mono_depth(gt, frame.id, seed, prof)
    meta = {"simulated": True, "note": SIMULATED_NOTE, "seed": seed, "profile": asdict(prof), **info}
    return DepthPrior(depth, conf, SIMULATED_LABEL, meta)
