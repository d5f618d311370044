"""Multi-view depth targets for training: match neighbouring views, triangulate, collect per-frame targets.

``sup = MultiViewSupervision(scene); t = sup.targets_for(frame_id)`` gives the tensors the multi-view loss takes:
``t.pix`` (M, 2) pixel coordinates in that frame (pixel-centre convention), ``t.depth`` (M,) triangulated z-depth in
metres in that frame's camera, ``t.weights`` (M,) reliability in (0, 1]. A frame in several pairs gets the points
of all of them. Bad pairs (no overlap, too few matches, too few reliable points, unreadable images) are skipped
with a one-line message; the rest go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from recon.data.scene import Frame, Scene
from recon.errors import ReconError
from recon.match.base import Matcher, Matches, notice
from recon.match.cache import MatchCache, cache_key
from recon.match.consistency import confirmed_masks
from recon.match.factory import MatcherKind, create_matcher
from recon.match.pairs import Pair, PairConfig, select_pairs
from recon.match.triangulate import PairPoints, TriangulationConfig, epipolar_directions_from_poses, triangulate_frames
from recon.match.verify import epipolar_texture


@dataclass
class ViewTargets:
    """Multi-view depth targets of one frame: pix (M, 2) px, depth (M,) metres, weights (M,), float32 tensors."""

    pix: torch.Tensor
    depth: torch.Tensor
    weights: torch.Tensor

    def __len__(self) -> int:
        return int(self.pix.shape[0])

    def to(self, device: str | torch.device) -> ViewTargets:
        return ViewTargets(self.pix.to(device), self.depth.to(device), self.weights.to(device))


@dataclass
class PairReport:
    """One row of the per-pair table. ``status`` is 'ok' or why the pair was skipped."""

    pair: Pair
    n_matches: int = 0
    n_reliable: int = 0
    median_reproj_px: float = float("nan")
    median_depth_rel_err: float = float("nan")
    cached: bool = False
    status: str = "ok"


@dataclass
class SupervisionConfig:
    """``max_side``: images are resized so that their longer side is at most this (pixels) before matching.
    ``min_matches`` / ``min_points``: pairs with fewer matches / reliable points are skipped.
    ``min_epipolar_texture``: points whose image varies too little along the epipolar line in either view (the
    aperture problem, see :func:`recon.match.verify.epipolar_texture`) are dropped; 0 disables the test.
    ``require_confirmation``: keep only points whose depth another pair confirms within ``confirm_tol`` (log
    depth) at the same pixel (within ``confirm_radius_px``), see :mod:`recon.match.consistency`."""

    max_side: int = 1024
    min_matches: int = 20
    min_points: int = 10
    min_epipolar_texture: float = 0.15
    require_confirmation: bool = True
    confirm_radius_px: float = 1.0
    confirm_tol: float = 0.1
    pairs: PairConfig = field(default_factory=PairConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)


def _resize(img: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Image resized to fit ``max_side`` and the factors (sx, sy) that map its pixel coordinates back."""
    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s >= 1.0:
        return img, (1.0, 1.0)
    from skimage.transform import resize

    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    out = resize(img, (nh, nw), anti_aliasing=True, preserve_range=True).astype(np.float32)
    return out, (w / nw, h / nh)


def sample_depth_gt(depth: np.ndarray, pix: np.ndarray, max_ratio: float = 1.1) -> np.ndarray:
    """Ground-truth z-depth at sub-pixel coordinates (pixel-centre convention); 0 outside the image or unknown.

    Inverse depth is affine in pixel coordinates over a plane, so it is interpolated bilinearly where the four
    neighbouring pixels are known and within ``max_ratio`` of each other; across a depth edge the nearest pixel is
    taken instead (an interpolated depth there would lie on no surface).
    """
    h, w = depth.shape
    x = np.asarray(pix[:, 0], np.float64) - 0.5
    y = np.asarray(pix[:, 1], np.float64) - 0.5
    out = np.zeros(len(pix), np.float32)
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < w) & (pix[:, 1] >= 0) & (pix[:, 1] < h)
    if not inside.any():
        return out
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, max(w - 2, 0))
    y0 = np.clip(np.floor(y).astype(np.int64), 0, max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = x - x0, y - y0
    q = np.stack([depth[y0, x0], depth[y0, x1], depth[y1, x0], depth[y1, x1]], 1).astype(np.float64)
    wts = np.stack([(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay], 1)
    smooth = (q > 0).all(1) & (q.max(1) <= max_ratio * q.min(1).clip(1e-12))
    with np.errstate(divide="ignore"):
        inv = (wts / np.where(q > 0, q, np.inf)).sum(1)
    nearest = depth[np.clip(np.floor(pix[:, 1]), 0, h - 1).astype(np.int64),
                    np.clip(np.floor(pix[:, 0]), 0, w - 1).astype(np.int64)]
    with np.errstate(divide="ignore"):
        val = np.where(smooth, 1.0 / np.where(smooth, inv, 1.0), nearest)
    out[inside] = val[inside]
    return out


class MultiViewSupervision:
    """Matches, triangulated points and per-frame targets for a scene (computed on first use, cached on disk).

    ``frames``: frame ids to use (default: the training split; test frames never take part). ``matcher``: a
    :class:`Matcher` or a kind for :func:`create_matcher`. ``cache_dir``: default ``<scene>/cache/matches``.
    ``device``: where LoFTR runs and where :meth:`targets_for` puts its tensors.
    """

    def __init__(self, scene: Scene, matcher: Matcher | MatcherKind = "auto", cache_dir: str | Path | None = None,
                 frames: list[str] | None = None, config: SupervisionConfig | None = None,
                 loftr_weights: str | Path | None = None, verbose: bool = True,
                 device: str | torch.device = "cpu") -> None:
        self.scene = scene
        self.config = config or SupervisionConfig()
        self.verbose = verbose
        self._matcher_arg = matcher
        self._loftr_weights = loftr_weights
        self.device = torch.device(device)
        self._matcher: Matcher | None = None
        self.cache = MatchCache(cache_dir if cache_dir is not None else Path(scene.root) / "cache" / "matches")
        ids = frames if frames is not None else [f.id for f in scene.train_frames]
        by_id = {f.id: f for f in scene.frames}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ReconError(f"{scene.root}: unknown frame id(s) for multi-view supervision: {missing[:5]}")
        self.frames: list[Frame] = [by_id[i] for i in ids]
        self.pair_points: list[PairPoints] = []
        self.reports: list[PairReport] = []
        self._targets: dict[str, ViewTargets] | None = None

    # ---------------------------------------------------------------- matching
    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            m = self._matcher_arg
            self._matcher = m if isinstance(m, Matcher) else create_matcher(m, self._loftr_weights, self.device)
        return self._matcher

    def _say(self, msg: str) -> None:
        if self.verbose:
            notice(msg)

    def matches_for(self, f0: Frame, f1: Frame) -> tuple[Matches, bool]:
        """Matches of (f0, f1) in full-resolution pixels, from the cache when present; and whether it was cached."""
        m = self.matcher
        key = cache_key(m.name, m.settings(), f0.image_path, f1.image_path, {"max_side": self.config.max_side})
        cached = self.cache.load(key)
        if cached is not None:
            return cached, True
        img0, s0 = _resize(f0.load_image(), self.config.max_side)
        img1, s1 = _resize(f1.load_image(), self.config.max_side)
        matches = m.match(img0, img1).scaled(s0, s1)
        self.cache.save(key, matches, {"frame0": f0.id, "frame1": f1.id, "matcher": m.describe()})
        return matches, False

    def prepare(self) -> MultiViewSupervision:
        """Select pairs, match (or load), triangulate and build per-frame targets. Idempotent."""
        if self._targets is not None:
            return self
        pairs = select_pairs(frames=self.frames, config=self.config.pairs)
        if not pairs:
            self._say(f"notice: {self.scene.root}: no overlapping view pairs among {len(self.frames)} frames: "
                      "no multi-view targets")
        by_id = {f.id: f for f in self.frames}
        self.pair_points, self.reports = [], []
        candidates: list[tuple[PairReport, Frame, Frame, PairPoints]] = []
        for pair in pairs:
            f0, f1 = by_id[pair.frame0], by_id[pair.frame1]
            rep = PairReport(pair)
            self.reports.append(rep)
            try:
                matches, rep.cached = self.matches_for(f0, f1)
            except ReconError as exc:
                rep.status = "unreadable"
                self._say(f"warning: pair {f0.id}-{f1.id} skipped: {exc}")
                continue
            rep.n_matches = len(matches)
            if len(matches) < self.config.min_matches:
                rep.status = "few matches"
                self._say(f"warning: pair {f0.id}-{f1.id} skipped: {len(matches)} matches "
                          f"(< {self.config.min_matches})")
                continue
            pts = triangulate_frames(f0, f1, matches, self.config.triangulation)
            if self.config.min_epipolar_texture > 0 and len(pts):
                pts = self._aperture_filter(f0, f1, pts)
            candidates.append((rep, f0, f1, pts))
        if self.config.require_confirmation:
            masks = confirmed_masks([c[3] for c in candidates], self.config.confirm_radius_px,
                                    self.config.confirm_tol)
            candidates = [(r, f0, f1, p.subset(m, "unconfirmed")) for (r, f0, f1, p), m in zip(candidates, masks)]
        for rep, f0, f1, pts in candidates:
            rep.n_reliable = len(pts)
            if len(pts):
                rep.median_reproj_px = float(np.median(pts.reproj_err))
            if len(pts) < self.config.min_points:
                rep.status = "few points"
                self._say(f"warning: pair {f0.id}-{f1.id} skipped: {len(pts)} reliable points "
                          f"(< {self.config.min_points}) of {rep.n_matches} matches")
                continue
            rep.median_depth_rel_err = self._gt_error(f0, f1, pts)
            self.pair_points.append(pts)
        self._targets = self._collect()
        return self

    def _aperture_filter(self, f0: Frame, f1: Frame, pts: PairPoints) -> PairPoints:
        d0, d1 = epipolar_directions_from_poses(f0.camera.K, f0.world2cam, f1.camera.K, f1.world2cam, pts.points)
        t = np.minimum(epipolar_texture(f0.load_image(), pts.pix0, d0),
                       epipolar_texture(f1.load_image(), pts.pix1, d1))
        return pts.subset(t >= self.config.min_epipolar_texture, "aperture")

    @staticmethod
    def _gt_error(f0: Frame, f1: Frame, pts: PairPoints) -> float:
        """Median relative error |d_tri - d_gt| / d_gt over both views, where ground-truth depth exists."""
        errs = []
        for f, pix, d in ((f0, pts.pix0, pts.depth0), (f1, pts.pix1, pts.depth1)):
            try:
                gt_map = f.load_depth()
            except ReconError:  # a broken ground-truth file only costs the report its error column
                gt_map = None
            if gt_map is None:
                continue
            gt = sample_depth_gt(gt_map, pix)
            ok = gt > 0
            errs.append(np.abs(d[ok] - gt[ok]) / gt[ok])
        e = np.concatenate(errs) if errs else np.zeros(0)
        return float(np.median(e)) if len(e) else float("nan")

    def _collect(self) -> dict[str, ViewTargets]:
        parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {f.id: [] for f in self.frames}
        for p in self.pair_points:
            parts[p.frame0].append((p.pix0, p.depth0, p.weights))
            parts[p.frame1].append((p.pix1, p.depth1, p.weights))
        out = {}
        for fid, lst in parts.items():
            if lst:
                pix, depth, w = (np.concatenate(x) for x in zip(*lst))
            else:
                pix, depth, w = np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32)
            out[fid] = ViewTargets(torch.from_numpy(np.ascontiguousarray(pix, np.float32)),
                                   torch.from_numpy(np.ascontiguousarray(depth, np.float32)),
                                   torch.from_numpy(np.ascontiguousarray(w, np.float32)))
        return out

    # ---------------------------------------------------------------- training interface
    def targets_for(self, frame_id: str, device: str | torch.device | None = None) -> ViewTargets:
        """Targets of one frame (empty tensors when it has none), on ``device`` (default: the supervision's
        device). Unknown ids raise KeyError."""
        self.prepare()
        assert self._targets is not None
        if frame_id not in self._targets:
            raise KeyError(f"frame {frame_id!r} is not among the multi-view supervised frames")
        return self._targets[frame_id].to(self.device if device is None else device)

    def n_points(self) -> int:
        self.prepare()
        return sum(len(p) for p in self.pair_points)
