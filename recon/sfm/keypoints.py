"""Per-image keypoint tables from pairwise matches, so that COLMAP can chain matches into multi-view tracks.

recon's matchers return correspondences per pair (:class:`recon.match.base.Matches`), not per-image keypoints with
ids. COLMAP needs one keypoint list per image and matches as index pairs into those lists. Keypoints of one image
coming from different pairs are merged when they fall into the same cell of a grid of ``merge_px`` pixels (LoFTR:
the same physical point refined separately in each pair lands a fraction of a pixel apart), or only when their
coordinates are bit-identical with ``merge_px = 0`` (SIFT: the same detection in every pair). A merged keypoint
sits at the mean of its members. Within one pair a keypoint is matched at most once on each side (the match with
the highest confidence wins), which COLMAP's correspondence graph requires.

Coordinates are in pixels of the scene image, pixel-centre convention (centre of pixel (u, v) at (u + 0.5, v + 0.5)),
which is COLMAP's own: they are written to the database unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon.match.base import Matches


@dataclass
class KeypointTables:
    """``keypoints[frame_id]``: float32 (K, 2) pixels; ``pair_matches[(f0, f1)]``: int64 (M, 2) keypoint indices
    into the tables of f0 and f1; ``pair_confidence[(f0, f1)]``: float32 (M,) the matcher's confidence."""

    keypoints: dict[str, np.ndarray]
    pair_matches: dict[tuple[str, str], np.ndarray]
    pair_confidence: dict[tuple[str, str], np.ndarray]

    def n_keypoints(self) -> int:
        return sum(len(k) for k in self.keypoints.values())


def _cell_keys(xy: np.ndarray, merge_px: float) -> np.ndarray:
    """(K, 2) int64 keys: grid cells of ``merge_px`` pixels, or the float32 bit patterns when ``merge_px`` is 0."""
    if merge_px > 0:
        return np.floor(xy.astype(np.float64) / merge_px).astype(np.int64)
    return np.ascontiguousarray(xy, np.float32).view(np.int32).astype(np.int64)


def _unique_per_side(idx: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Row indices of ``idx`` (M, 2) keeping, for every keypoint on either side, only its most confident match."""
    order = np.argsort(-conf, kind="stable")
    keep = order[np.unique(idx[order, 0], return_index=True)[1]]
    keep = keep[np.argsort(-conf[keep], kind="stable")]
    keep = keep[np.unique(idx[keep, 1], return_index=True)[1]]
    return np.sort(keep)


def build_keypoint_tables(frame_ids: list[str], matches: dict[tuple[str, str], Matches],
                          merge_px: float = 0.0) -> KeypointTables:
    """Merge the keypoints of all pairs into per-image tables and express every pair's matches as index pairs."""
    # every keypoint occurrence: (frame, pair, side) -> its rows in one big array per frame
    occ: dict[str, list[np.ndarray]] = {f: [] for f in frame_ids}
    for (f0, f1), m in matches.items():
        occ[f0].append(m.kpts0)
        occ[f1].append(m.kpts1)
    keypoints: dict[str, np.ndarray] = {}
    index_of: dict[str, list[np.ndarray]] = {}
    for fid, parts in occ.items():
        if not parts:
            keypoints[fid] = np.zeros((0, 2), np.float32)
            index_of[fid] = []
            continue
        xy = np.concatenate(parts).astype(np.float32)
        _, first, inverse = np.unique(_cell_keys(xy, merge_px), axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        n = len(first)
        counts = np.bincount(inverse, minlength=n).astype(np.float64)
        mean = np.stack([np.bincount(inverse, xy[:, k], n) for k in range(2)], 1) / counts[:, None]
        keypoints[fid] = mean.astype(np.float32)
        splits = np.cumsum([len(p) for p in parts])[:-1]
        index_of[fid] = list(np.split(inverse, splits))
    cursor = {f: 0 for f in frame_ids}
    pair_matches: dict[tuple[str, str], np.ndarray] = {}
    pair_conf: dict[tuple[str, str], np.ndarray] = {}
    for (f0, f1), m in matches.items():
        i0 = index_of[f0][cursor[f0]]
        cursor[f0] += 1
        i1 = index_of[f1][cursor[f1]]
        cursor[f1] += 1
        idx = np.stack([i0, i1], 1).astype(np.int64).reshape(-1, 2)
        keep = _unique_per_side(idx, m.confidence) if len(idx) else np.zeros(0, np.int64)
        pair_matches[(f0, f1)] = idx[keep]
        pair_conf[(f0, f1)] = m.confidence[keep]
    return KeypointTables(keypoints, pair_matches, pair_conf)
