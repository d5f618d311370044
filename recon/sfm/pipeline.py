"""The SfM pipeline with known poses: pairs -> matches -> epipolar verification -> COLMAP database -> pycolmap
triangulation (fixed poses) -> filters -> ``points3d.npy``.

Outputs (all written atomically):

- ``SCENE/points3d.npy``: float32 (N, 8): x, y, z (world metres), r, g, b in [0, 1], track length (observing
  frames), mean reprojection error (pixels). ``scene.json`` gets ``"points3d": "points3d.npy"``; nothing else in it
  changes.
- ``SCENE/sfm/report.json``: settings, pairs, matches, verified matches, points before / after each filter, medians
  of reprojection error, track length and triangulation angle, and the time taken.
- ``SCENE/sfm/colmap/``: the COLMAP database (``database.db``: keypoints, the verified matches, two-view
  geometries) and the triangulated model before recon's filters (``sparse/*.bin``), for COLMAP's own tools.

Matches are cached (``SCENE/cache/matches`` by default, keyed by matcher, settings, resize factor and image files).

The default matcher is COLMAP's SIFT, not ``auto`` (the learned default of ``recon match`` and the multi-view loss):
its keypoints are located more precisely, which is what triangulation needs. On the KITTI raw drive 0009 (45 training
views at 310x94, `benchmarks/sfm_vs_lidar.py`) SIFT gives 4552 points at a median reprojection error of 0.265 px
whose depth disagrees with the LiDAR by 7.6% in the median (58% within 10%); XFeat+LighterGlue, even with its
keypoints refined to sub-pixel on its heatmap, 4364 points at 0.630 px, 9.7% (51%).

A run holds the lock of ``SCENE/sfm`` and first removes what a killed run left there (``sfm/.colmap.*.partial``) and
beside ``points3d.npy`` / ``scene.json`` (their atomic-write temporaries). When a large share of the matched pairs
disagree with the scene's poses (fewer than half of a pair's matches on its epipolar lines; measured: at least 64%
on KITTI and 75% on the synthetic street with the true poses, see :data:`DISAGREE_BELOW`), a warning names them:
wrong poses or wrong intrinsics give wrong points.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from recon.data.scene import Frame, Scene, set_points_entry
from recon.errors import ReconError
from recon.io.atomic import atomic_directory, atomic_save_npy, atomic_write_json, clean_orphans, is_orphan_name
from recon.io.folders import ensure_dir
from recon.io.lock import FolderLock
from recon.match.base import Matcher, Matches
from recon.match.cache import MatchCache, cache_key
from recon.match.factory import MatcherKind, create_matcher
from recon.match.pairs import Pair, PairConfig, select_pairs
from recon.match.verify import epipolar_texture, verify_matches
from recon.sfm.colmap_model import assign_ids, build_reconstruction
from recon.sfm.database import write_database
from recon.sfm.keypoints import build_keypoint_tables
from recon.sfm.triangulate import MeasuredPoints, TrackFilter, filter_points, measure_points, triangulate_known_poses
from recon.sfm.verify import epipolar_directions, epipolar_distance, fundamental_matrix


@dataclass
class SfmConfig:
    """Settings of :func:`run_sfm`. Pixels are pixels of the scene's images."""

    matcher: MatcherKind = "sift"  # more precise points than the learned matchers (module docstring)
    loftr_weights: Path | None = None
    split: Literal["train", "all"] = "train"
    window: int = 3
    cross: bool = True
    max_side: int = 1024
    upscale: int = 1
    min_matches: int = 15
    max_epipolar_px: float = 1.5
    patch_ncc: float = 0.8
    min_epipolar_texture: float = 0.15
    merge_px: float | None = None
    filters: TrackFilter = field(default_factory=TrackFilter)
    min_points: int = 100
    cache_dir: Path | None = None
    progress: bool | None = None

    def check(self) -> None:
        if self.window < 1:
            raise ReconError(f"--window must be at least 1, got {self.window}")
        if self.upscale < 1:
            raise ReconError(f"--upscale must be at least 1, got {self.upscale}")
        if self.max_side < 16:
            raise ReconError(f"--max-side must be at least 16 pixels, got {self.max_side}")
        if self.filters.min_track == 1 or self.filters.min_track < 0:
            raise ReconError(f"--min-track must be 0 (automatic) or at least 2, got {self.filters.min_track}")
        for flag, v in (("--max-epipolar-px", self.max_epipolar_px), ("--max-reproj-px", self.filters.max_reproj_px)):
            if not (math.isfinite(v) and v > 0):
                raise ReconError(f"{flag} must be a positive number of pixels, got {v}")
        if not (math.isfinite(self.filters.min_angle_deg) and 0 <= self.filters.min_angle_deg < 90):
            raise ReconError(f"--min-angle-deg must be in [0, 90) degrees, got {self.filters.min_angle_deg}")
        if self.min_points < 1:
            raise ReconError(f"--min-points must be at least 1, got {self.min_points}")


DISAGREE_BELOW = 0.5
"""A matched pair disagrees with the poses when fewer than this share of its matches lie within ``max_epipolar_px``
of their epipolar lines (true poses: >= 0.64 per pair on the first KITTI frames, >= 0.75 on the synthetic street;
shuffled or perturbed poses: 0.02 - 0.5)."""
WARN_SHARE = 0.2
"""Warn when at least this share of the matched pairs (and at least 2) disagree with the poses."""


@dataclass
class PairStats:
    pair: Pair
    matches: int = 0
    epipolar: int = 0
    """Matches within ``max_epipolar_px`` of their epipolar lines (before the patch and texture checks)."""
    verified: int = 0
    status: str = "ok"


@dataclass
class SfmResult:
    """What :func:`run_sfm` produced: the kept points, per-pair statistics and the report written to disk."""

    points: MeasuredPoints
    pairs: list[PairStats]
    report: dict[str, Any]
    points_path: Path


def _scale_image(img: np.ndarray, factor: float) -> np.ndarray:
    """The image resized by ``factor`` (bicubic up, anti-aliased down); sizes rounded to whole pixels."""
    if factor == 1.0:
        return img
    from skimage.transform import resize

    h, w = img.shape[:2]
    out = resize(img, (max(1, round(h * factor)), max(1, round(w * factor))), order=3,
                 anti_aliasing=factor < 1.0, preserve_range=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def match_pair(matcher: Matcher, cache: MatchCache, f0: Frame, f1: Frame, images: dict[str, np.ndarray],
               factor: float) -> Matches:
    """Matches of (f0, f1) in scene pixels: images resized by ``factor`` for the matcher, keypoints mapped back."""
    key = cache_key(matcher.name, matcher.settings(), f0.image_path, f1.image_path, {"sfm_scale": factor})
    cached = cache.load(key)
    if cached is not None:
        return cached
    a, b = _scale_image(images[f0.id], factor), _scale_image(images[f1.id], factor)
    m = matcher.match(a, b).scaled((f0.camera.width / a.shape[1], f0.camera.height / a.shape[0]),
                                   (f1.camera.width / b.shape[1], f1.camera.height / b.shape[0]))
    cache.save(key, m, {"frame0": f0.id, "frame1": f1.id, "matcher": matcher.describe(), "sfm_scale": factor})
    return m


def verify_pair(f0: Frame, f1: Frame, m: Matches, images: dict[str, np.ndarray], cfg: SfmConfig) -> Matches:
    """The matches that lie within ``cfg.max_epipolar_px`` of their epipolar lines, whose small patches look alike
    (ZNCC >= ``cfg.patch_ncc``, :func:`recon.match.verify.verify_matches`; 0 disables) and whose image varies along
    the epipolar line in both views (``cfg.min_epipolar_texture``, :func:`recon.match.verify.epipolar_texture`: on an
    edge parallel to the line the match slides along it and its depth is arbitrary; 0 disables)."""
    F = fundamental_matrix(f0, f1)
    good = m.subset(epipolar_distance(F, m.kpts0, m.kpts1) <= cfg.max_epipolar_px)
    img0, img1 = images[f0.id], images[f1.id]
    if cfg.patch_ncc > 0 and len(good):
        good = verify_matches(img0, img1, good, min_ncc=cfg.patch_ncc)
    if cfg.min_epipolar_texture > 0 and len(good):
        d0, d1 = epipolar_directions(F, good.kpts0, good.kpts1)
        t = np.minimum(epipolar_texture(img0, good.kpts0, d0), epipolar_texture(img1, good.kpts1, d1))
        good = good.subset(t >= cfg.min_epipolar_texture)
    return good


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else float("nan")


def _clean_leftovers(root: Path) -> list[Path]:
    """Remove what a killed run left: temporaries under ``root/sfm`` and those of ``points3d.npy`` / ``scene.json``
    (call with the SfM folder locked). The match cache is left to its own cleaning."""
    removed = clean_orphans(root / "sfm")
    for p in root.iterdir():
        if is_orphan_name(p.name) and p.name.startswith((".points3d.npy.", ".scene.json.")) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _same_centre(frames: list[Frame], tol_m: float) -> bool:
    centres = np.stack([f.center for f in frames])
    return bool(np.linalg.norm(centres - centres[0], axis=1).max() < tol_m)


def disagreeing_pairs(stats: list[PairStats], min_matches: int) -> list[PairStats]:
    """The matched pairs (``min_matches`` or more) with fewer than ``DISAGREE_BELOW`` of their matches on their
    epipolar lines: the poses (or intrinsics) of at least one of the two frames are wrong."""
    return [st for st in stats if st.matches >= min_matches and st.epipolar < DISAGREE_BELOW * st.matches]


def pose_warning(stats: list[PairStats], min_matches: int, show: int = 6) -> str | None:
    """The warning for a run whose matched pairs disagree with the poses (see :data:`WARN_SHARE`), or None."""
    matched = [st for st in stats if st.matches >= min_matches]
    bad = disagreeing_pairs(stats, min_matches)
    if len(bad) < 2 or len(bad) < WARN_SHARE * len(matched):
        return None
    names = ", ".join(f"{st.pair.frame0}-{st.pair.frame1} ({st.epipolar / st.matches:.0%})" for st in bad[:show])
    more = f" and {len(bad) - show} more" if len(bad) > show else ""
    return (f"{len(bad)} of {len(matched)} matched pairs disagree with the scene's poses (under "
            f"{DISAGREE_BELOW:.0%} of their matches on the epipolar lines): {names}{more}; wrong poses or wrong "
            "intrinsics? the points may be wrong")


def run_sfm(scene: Scene, cfg: SfmConfig | None = None, overwrite: bool = False,
            device: str | torch.device = "cpu", matcher: Matcher | None = None) -> SfmResult:
    """Run the pipeline on ``scene`` and write its outputs (see the module docstring). ``matcher`` overrides
    ``cfg.matcher``. Raises :class:`ReconError` (one line) on input that cannot give points."""
    cfg = cfg or SfmConfig()
    cfg.check()
    root = Path(scene.root)
    if scene.points_path is not None and not overwrite:
        raise ReconError(f"{root}: the scene already has SfM points ({scene.points_path.name}); pass --overwrite "
                         "to replace them")
    frames = scene.train_frames if cfg.split == "train" else list(scene.frames)
    if len(frames) < 2:
        raise ReconError(f"{root}: SfM needs at least 2 {'training ' if cfg.split == 'train' else ''}frames, "
                         f"the scene has {len(frames)}")
    with FolderLock(ensure_dir(root / "sfm", "SfM folder"), "SfM folder"):
        _clean_leftovers(root)
        return _run_locked(scene, cfg, frames, device, matcher)


def _run_locked(scene: Scene, cfg: SfmConfig, frames: list[Frame], device: str | torch.device,
                matcher: Matcher | None) -> SfmResult:
    t_start = time.perf_counter()
    root = Path(scene.root)
    out_npy = root / "points3d.npy"
    pair_cfg = PairConfig(temporal_steps=tuple(range(1, cfg.window + 1)), cross=cfg.cross)
    pairs = select_pairs(frames=frames, config=pair_cfg)
    if not pairs and _same_centre(frames, pair_cfg.min_baseline_m):
        raise ReconError(f"{root}: all {len(frames)} frames have the same camera centre (identical poses?): SfM "
                         "needs the camera to move between frames; nothing to triangulate")
    if not pairs:
        raise ReconError(f"{root}: no pair of the {len(frames)} frames overlaps (frusta too far apart or pointing "
                         "away from each other): nothing to triangulate")
    # neighbouring pairs one after the other: the SIFT matcher keeps the features of the last few images
    order = {f.id: i for i, f in enumerate(sorted(frames, key=lambda f: (f.timestamp, f.camera.name, f.index)))}
    pairs.sort(key=lambda p: (min(order[p.frame0], order[p.frame1]), max(order[p.frame0], order[p.frame1])))
    m = matcher or create_matcher(cfg.matcher, cfg.loftr_weights, device)
    merge_px = cfg.merge_px if cfg.merge_px is not None else (0.0 if m.name == "sift" else 1.0)
    cache = MatchCache(cfg.cache_dir if cfg.cache_dir is not None else root / "cache" / "matches")
    long_side = max(max(f.camera.width, f.camera.height) for f in frames)
    factor = min(float(cfg.upscale), cfg.max_side / long_side)  # upscale tiny images, shrink huge ones

    used = {p.frame0 for p in pairs} | {p.frame1 for p in pairs}
    by_id = {f.id: f for f in frames}
    images = {fid: by_id[fid].load_image() for fid in used}
    stats: list[PairStats] = []
    verified: dict[tuple[str, str], Matches] = {}
    no_bar = None if cfg.progress is None else not cfg.progress  # None: bars only on a terminal
    bar = tqdm(pairs, desc=f"matching ({m.name})", unit="pair", disable=no_bar, leave=False)
    for p in bar:
        f0, f1 = by_id[p.frame0], by_id[p.frame1]
        st = PairStats(p)
        stats.append(st)
        mm = match_pair(m, cache, f0, f1, images, factor)
        st.matches = len(mm)
        if len(mm):
            st.epipolar = int((epipolar_distance(fundamental_matrix(f0, f1), mm.kpts0, mm.kpts1)
                               <= cfg.max_epipolar_px).sum())
        if len(mm) < cfg.min_matches:
            st.status = "few matches"
            continue
        good = verify_pair(f0, f1, mm, images, cfg)
        st.verified = len(good)
        if len(good) < cfg.min_matches:
            st.status = "few verified"
            continue
        verified[(f0.id, f1.id)] = good
    warning = pose_warning(stats, cfg.min_matches)
    if warning is not None:
        print(f"warning: {root}: {warning}", file=sys.stderr)
    if not verified:
        raise ReconError(f"{root}: none of the {len(pairs)} overlapping pairs has {cfg.min_matches} or more "
                         f"epipolar-consistent matches (matcher {m.name}): nothing to triangulate")

    # one keypoint table per image from the verified matches; the database's matches are the verified ones
    tables = build_keypoint_tables([f.id for f in frames], verified, merge_px)
    used_frames = [f for f in frames if len(tables.keypoints[f.id])]
    ids = assign_ids(used_frames)
    colmap_dir = root / "sfm" / "colmap"
    with atomic_directory(colmap_dir, overwrite=True) as tmp:
        db_path = write_database(
            tmp / "database.db", used_frames, ids, tables.keypoints, tables.pair_matches, tables.pair_matches,
            progress=tqdm(used_frames, desc="database", unit="image", leave=False, disable=no_bar))
        rec = build_reconstruction(used_frames, ids, tables.keypoints)
        with tqdm(total=1, desc="triangulating (pycolmap)", leave=False, disable=no_bar) as tbar:
            rec = triangulate_known_poses(rec, db_path, tmp / "sparse", cfg.filters.min_angle_deg,
                                          max(4.0, 2 * cfg.filters.max_reproj_px))
            tbar.update(1)
    measured = measure_points(rec, used_frames, ids, images)
    filters = replace(cfg.filters, auto_track_min_points=max(cfg.filters.auto_track_min_points, cfg.min_points))
    kept, removed, min_track = filter_points(measured, filters)

    n_verified = sum(len(v) for v in verified.values())
    report: dict[str, Any] = {
        "scene": str(root), "matcher": m.describe(), "frames": len(frames), "frames_with_keypoints": len(used_frames),
        "split": cfg.split, "match_scale": factor, "settings": _jsonable(asdict(cfg)),
        "pairs": len(pairs), "pairs_used": len(verified),
        "pairs_skipped": {s: sum(st.status == s for st in stats) for s in ("few matches", "few verified")},
        "matches": int(sum(st.matches for st in stats)), "verified_matches": int(n_verified),
        "keypoints": tables.n_keypoints(), "points_triangulated": len(measured), "points_removed": removed,
        "min_track": min_track,
        "points": len(kept), "median_reproj_px": _median(kept.reproj_px),
        "median_track_length": _median(kept.track_length.astype(float)),
        "median_angle_deg": _median(kept.angle_deg), "median_depth_m": _median(kept.min_depth_m),
        "pose_warning": warning,
        "per_pair": [{"frame0": s.pair.frame0, "frame1": s.pair.frame1, "kind": s.pair.kind, "matches": s.matches,
                      "epipolar": s.epipolar, "verified": s.verified, "status": s.status} for s in stats],
    }
    if len(kept) < cfg.min_points:
        report["time_s"] = round(time.perf_counter() - t_start, 2)
        atomic_write_json(root / "sfm" / "report.json", _jsonable(report))
        raise ReconError(f"{root}: SfM kept {len(kept)} points (< --min-points {cfg.min_points}) of "
                         f"{len(measured)} triangulated from {n_verified} verified matches; points3d.npy not written")
    atomic_save_npy(out_npy, kept.to_array())
    set_points_entry(root, out_npy)
    report["time_s"] = round(time.perf_counter() - t_start, 2)
    atomic_write_json(root / "sfm" / "report.json", _jsonable(report))
    return SfmResult(kept, stats, report, out_npy)


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, Path):
        return str(d)
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d

