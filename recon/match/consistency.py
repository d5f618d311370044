"""Cross-pair depth consistency: a triangulated point is kept only when another pair confirms its depth.

Two-view geometry cannot reject a wrong match that lies on the epipolar line: a window matched to the next window
of a regular facade, a keypoint sliding along an edge. Such a match triangulates at a wrong but plausible depth.
The same keypoint of a frame is usually matched in several pairs (previous, next, two steps away): keypoint
detection is deterministic per image, so its pixel coordinates coincide across those pairs. A point is
*confirmed* when, in either of its two frames, a point of another pair lies within ``radius_px`` pixels and agrees
in depth to ``tol`` (|log(d_a / d_b)| <= tol); a wrong match across periodic structure gives different depths with
different baselines and is not confirmed. Unconfirmed points are dropped.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from recon.match.triangulate import PairPoints


def confirmed_masks(pair_points: list[PairPoints], radius_px: float = 1.0, tol: float = 0.1) -> list[np.ndarray]:
    """One boolean mask per pair: True where the point is confirmed by another pair (see the module docstring)."""
    from scipy.spatial import cKDTree

    masks = [np.zeros(len(p), bool) for p in pair_points]
    # frame id -> list of (pair index, pixel coords, log depth) for both sides of every pair
    per_frame: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = defaultdict(list)
    for i, p in enumerate(pair_points):
        if len(p) == 0:
            continue
        per_frame[p.frame0].append((i, p.pix0.astype(np.float64), np.log(p.depth0.astype(np.float64))))
        per_frame[p.frame1].append((i, p.pix1.astype(np.float64), np.log(p.depth1.astype(np.float64))))
    for entries in per_frame.values():
        if len(entries) < 2:
            continue
        pair_idx = np.concatenate([np.full(len(px), i) for i, px, _ in entries])
        local = np.concatenate([np.arange(len(px)) for _, px, _ in entries])
        pix = np.concatenate([px for _, px, _ in entries])
        logd = np.concatenate([ld for _, _, ld in entries])
        tree = cKDTree(pix)
        for a, b in tree.query_pairs(radius_px, output_type="ndarray"):
            if pair_idx[a] != pair_idx[b] and abs(logd[a] - logd[b]) <= tol:
                masks[pair_idx[a]][local[a]] = True
                masks[pair_idx[b]][local[b]] = True
    return masks
