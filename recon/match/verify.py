"""Local photometric verification of matches: a small patch around each keypoint must look alike in both images.

Descriptor-based keypoints near an occlusion edge can follow the foreground edge while sitting on the background
(their descriptor window straddles the edge): such a match is consistent with the epipolar geometry, so no
reprojection test catches it, but it triangulates at the foreground depth. The small patch centred on the keypoint
(``radius`` pixels, much smaller than a SIFT descriptor window) sees only the background there, and it does not
match in the other image. The patch in image 1 is searched over +-``search`` pixels (integer steps) and the best
zero-normalised cross-correlation (ZNCC) must reach ``min_ncc``; textureless patches (standard deviation under
``min_std``) are kept, since they carry no evidence either way.
"""

from __future__ import annotations

import numpy as np

from recon.match.base import Matches, to_gray


def _patches(gray: np.ndarray, xy: np.ndarray, radius: int) -> np.ndarray:
    """(M, (2r+1)^2) bilinear samples of ``gray`` on a pixel grid centred on ``xy`` (pixel-centre convention)."""
    from scipy.ndimage import map_coordinates

    o = np.arange(-radius, radius + 1, dtype=np.float64)
    oy, ox = np.meshgrid(o, o, indexing="ij")
    rows = xy[:, 1, None] - 0.5 + oy.reshape(1, -1)
    cols = xy[:, 0, None] - 0.5 + ox.reshape(1, -1)
    vals = map_coordinates(gray, [rows.ravel(), cols.ravel()], order=1, mode="nearest")
    return vals.reshape(len(xy), -1)


def _zncc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1)).clip(1e-12)
    return (a * b).sum(1) / den


def patch_similarity(img0: np.ndarray, img1: np.ndarray, matches: Matches, radius: int = 2,
                     search: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Best ZNCC (M,) of the patch around each kpts0 against patches around kpts1 +- search px, and the
    smaller of the two patches' standard deviations (M,) (grey levels in [0, 1])."""
    g0, g1 = to_gray(img0), to_gray(img1)
    if len(matches) == 0:
        return np.zeros(0), np.zeros(0)
    p0 = _patches(g0, matches.kpts0.astype(np.float64), radius)
    best = np.full(len(matches), -1.0)
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            p1 = _patches(g1, matches.kpts1.astype(np.float64) + np.array([dx, dy]), radius)
            best = np.maximum(best, _zncc(p0, p1))
    p1 = _patches(g1, matches.kpts1.astype(np.float64), radius)
    std = np.minimum(p0.std(1), p1.std(1))
    return best, std


def verify_matches(img0: np.ndarray, img1: np.ndarray, matches: Matches, radius: int = 2, search: int = 1,
                   min_ncc: float = 0.8, min_std: float = 0.01) -> Matches:
    """The matches whose small patches agree (see the module docstring)."""
    if len(matches) == 0:
        return matches
    ncc, std = patch_similarity(img0, img1, matches, radius, search)
    return matches.subset((ncc >= min_ncc) | (std < min_std))


def epipolar_texture(img: np.ndarray, pix: np.ndarray, direction: np.ndarray, radius: int = 2) -> np.ndarray:
    """Share of the local gradient energy along the epipolar direction, in [0, 1] (M,).

    A match can only be located along the epipolar line where the image varies along it: on an edge parallel to
    the line (the aperture problem) the keypoint slides along the edge and the triangulated depth is arbitrary.
    With the structure tensor S summed over a (2 radius + 1)^2 window and the unit direction e, the share is
    e^T S e / trace(S); 0.5 is isotropic texture, ~0 an edge along the epipolar line.
    """
    g = to_gray(img).astype(np.float64)
    gy, gx = np.gradient(g)
    px = np.asarray(pix, np.float64)
    ix = _patches(gx, px, radius)
    iy = _patches(gy, px, radius)
    sxx, syy, sxy = (ix * ix).sum(1), (iy * iy).sum(1), (ix * iy).sum(1)
    e = np.asarray(direction, np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
    along = e[:, 0] ** 2 * sxx + 2 * e[:, 0] * e[:, 1] * sxy + e[:, 1] ** 2 * syy
    return along / (sxx + syy).clip(1e-12)
