"""The offline matcher: SIFT keypoints + mutual nearest neighbours with a symmetric ratio test. Needs no weights.

Keypoints come from COLMAP's SIFT (pycolmap, C++, DoG with sub-pixel refinement) tuned for many features on small
images (a low peak threshold, the image upsampled once by ``first_octave=-1``); kornia's ``SIFTFeature`` is used
only when pycolmap cannot be imported. Descriptors are matched on the CPU or the given torch device in chunks.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from recon.match.base import Matcher, Matches, to_gray


def _pycolmap_sift(gray: np.ndarray, max_features: int, peak_threshold: float,
                   edge_threshold: float, first_octave: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) keypoints in the pixel-centre convention (COLMAP's own) and (N, 128) float32 descriptors."""
    import pycolmap

    pycolmap.logging.minloglevel = 2  # keep COLMAP's INFO lines off the user's terminal
    opts = pycolmap.FeatureExtractionOptions()
    opts.num_threads = 1
    opts.sift.max_num_features = max_features
    opts.sift.peak_threshold = peak_threshold
    opts.sift.edge_threshold = edge_threshold
    opts.sift.first_octave = first_octave
    if hasattr(pycolmap, "FeatureExtractor"):
        ext = pycolmap.FeatureExtractor.create(opts, pycolmap.Device.cpu)
        kps, descs = ext.extract_from_float32_array(gray)
        xy = np.array([(k.x, k.y) for k in kps], dtype=np.float32).reshape(-1, 2)
        desc = np.asarray(descs.data, dtype=np.float32).reshape(len(xy), 128)
    else:  # older pycolmap
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sift = pycolmap.Sift(opts, pycolmap.Device.cpu)
        k, desc = sift.extract(gray)
        xy = np.asarray(k, dtype=np.float32).reshape(-1, 4)[:, :2]
        desc = np.asarray(desc, dtype=np.float32).reshape(len(xy), 128)
    return xy, desc


def _kornia_sift(gray: np.ndarray, max_features: int) -> tuple[np.ndarray, np.ndarray]:
    from kornia.feature import SIFTFeature

    feat = SIFTFeature(num_features=max_features, upright=False)
    with torch.inference_mode():
        lafs, _resp, desc = feat(torch.from_numpy(gray)[None, None])
    # kornia puts pixel centres on integer coordinates: +0.5 gives recon's convention
    xy = lafs[0, :, :, 2].numpy().astype(np.float32) + 0.5
    return xy, desc[0].numpy().astype(np.float32)


def _top2_ratio(sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of a cosine-similarity matrix of unit vectors: nearest column and the L2 distance ratio d1 / d2."""
    top, arg = sim.topk(2, dim=1)
    d = (2.0 - 2.0 * top).clamp_min(0.0).sqrt()
    return arg[:, 0], d[:, 0] / d[:, 1].clamp_min(1e-6)


def _nearest_two(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``a`` (unit vectors): index of its nearest row of ``b`` and the ratio d1 / d2 (L2)."""
    idx, ratio = [], []
    for s in range(0, len(a), chunk):
        i, r = _top2_ratio(a[s:s + chunk] @ b.T)
        idx.append(i)
        ratio.append(r)
    return torch.cat(idx), torch.cat(ratio)


def match_descriptors(desc0: np.ndarray, desc1: np.ndarray, ratio: float = 0.9, mutual: bool = True,
                      device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mutual nearest neighbours passing the ratio test in both directions.

    Returns (i0, i1, ratio) with ratio = the larger of the two nearest/second-nearest distance ratios.
    """
    if len(desc0) < 2 or len(desc1) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    a = torch.nn.functional.normalize(torch.as_tensor(desc0, device=device, dtype=torch.float32), dim=1)
    b = torch.nn.functional.normalize(torch.as_tensor(desc1, device=device, dtype=torch.float32), dim=1)
    i0 = torch.arange(len(a), device=a.device)
    if mutual and len(a) * len(b) <= 16_000_000:
        # one similarity matrix (<= 64 MB); the ratio test only on the mutual nearest neighbours
        sim = a @ b.T
        nn01 = sim.argmax(1)
        nn10 = sim.argmax(0)
        cand = i0[nn10[nn01] == i0]
        _, r01 = _top2_ratio(sim[cand])
        _, r10 = _top2_ratio(sim[:, nn01[cand]].T)
        r = torch.maximum(r01, r10)
        keep = r <= ratio
        return (cand[keep].cpu().numpy(), nn01[cand[keep]].cpu().numpy(),
                r[keep].cpu().numpy().astype(np.float32))
    nn01, r01 = _nearest_two(a, b)
    nn10, r10 = _nearest_two(b, a)
    r = torch.maximum(r01, r10[nn01])
    keep = r <= ratio
    if mutual:
        keep &= nn10[nn01] == i0
    return i0[keep].cpu().numpy(), nn01[keep].cpu().numpy(), r[keep].cpu().numpy().astype(np.float32)


class SiftMatcher(Matcher):
    """SIFT + mutual nearest neighbour + symmetric ratio test; confidence = 1 - distance ratio.

    Defaults give several hundred matches per textured pair at 320x192 and at 160x96 (images whose longer side is
    under ``min_long_side`` pixels are upsampled by an integer factor first; keypoints are mapped back).
    """

    name = "sift"
    memo_size = 16

    def __init__(self, max_features: int = 8192, peak_threshold: float = 0.002, edge_threshold: float = 10.0,
                 first_octave: int = -1, ratio: float = 0.9, mutual: bool = True, min_long_side: int = 320,
                 device: str | torch.device = "cpu") -> None:
        self.max_features = int(max_features)
        self.peak_threshold = float(peak_threshold)
        self.edge_threshold = float(edge_threshold)
        self.first_octave = int(first_octave)
        self.ratio = float(ratio)
        self.mutual = bool(mutual)
        self.min_long_side = int(min_long_side)
        self.device = device
        self._memo: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        try:
            import pycolmap  # noqa: F401

            self.backend = "pycolmap"
        except ImportError:
            self.backend = "kornia"

    def settings(self) -> dict[str, Any]:
        return {"backend": self.backend, "max_features": self.max_features, "peak_threshold": self.peak_threshold,
                "edge_threshold": self.edge_threshold, "first_octave": self.first_octave, "ratio": self.ratio,
                "mutual": self.mutual, "min_long_side": self.min_long_side}

    def features(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 2) (pixel-centre convention) and descriptors (N, 128) of one image."""
        gray = to_gray(img)
        if self.backend == "pycolmap":
            return _pycolmap_sift(gray, self.max_features, self.peak_threshold, self.edge_threshold,
                                  self.first_octave)
        return _kornia_sift(gray, self.max_features)

    def _upsample_factor(self, img: np.ndarray) -> int:
        """Integer factor that brings the longer side to at least ``min_long_side`` (1 for large images)."""
        return max(1, int(np.ceil(self.min_long_side / max(img.shape[:2]))))

    def _features_upsampled(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gray = to_gray(img)
        # a frame takes part in several pairs: keep the features of the last few images (keyed by content)
        key = hashlib.sha1(gray.tobytes() + str(gray.shape).encode()).hexdigest()
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        out = self._features_uncached(gray)
        self._memo[key] = out
        while len(self._memo) > self.memo_size:
            self._memo.popitem(last=False)
        return out

    def _features_uncached(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        up = self._upsample_factor(gray)
        if up == 1:
            return self.features(gray)
        from skimage.transform import resize

        h, w = gray.shape
        big = resize(gray, (h * up, w * up), order=3, anti_aliasing=False)
        k, d = self.features(np.clip(big, 0.0, 1.0).astype(np.float32))
        return k / up, d  # exact under the pixel-centre convention

    def match(self, img0: np.ndarray, img1: np.ndarray) -> Matches:
        # SIFT finds few blobs in tiny images (about 50 matches at 160x96); a bicubic upsampling first gives ~10x
        k0, d0 = self._features_upsampled(img0)
        k1, d1 = self._features_upsampled(img1)
        i0, i1, r = match_descriptors(d0, d1, self.ratio, self.mutual, self.device)
        return Matches(k0[i0], k1[i1], np.clip(1.0 - r, 0.0, 1.0))
