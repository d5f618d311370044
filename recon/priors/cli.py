"""``recon depth``: compute (and cache) a metric depth prior for every frame of a scene; score it when possible.

    recon depth --data SCENE --source lidar|sfm|mono|simulated|dfd [--out DIR] [--mono.model NAME_OR_PATH]
        [--align none|lidar|sfm]

Priors are written as ``.npz`` files (depth in metres, confidence in [0, 1]; see :mod:`recon.priors.registry`)
under ``--out`` (default ``SCENE/priors``). When the scene has ground-truth depth, each frame's error and the
overall error (all frames' pixels pooled) are printed by band: near < 10 m, mid 10-40 m, far > 40 m (AbsRel,
RMSE in metres, delta < 1.25), over the pixels where the prior has a depth (its coverage is printed beside),
and saved to ``<out>/<source>[-aligned-<align>]_metrics.json``. The simulated prior is labelled SIMULATED everywhere.
An aligned mono prior prints its fit per frame (scale, shift for a relative model, and the residual: the median
relative depth error at the sparse points) and the median residual over the frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

from recon.errors import ReconError


@dataclass
class MonoArgs:
    """The monocular network (``--source mono``)."""

    model: str | None = None
    """a transformers model folder, a hub name in the Hugging Face cache (`recon models fetch NAME` puts it there) or
    a TorchScript file; default: Depth Anything V2 metric outdoor from the Hugging Face cache"""
    input_size: int = 518
    """TorchScript models: short side of the network input (transformers models use their own processor)"""
    canonical_focal_px: float | None = None
    """TorchScript canonical-camera models (Metric3D): the focal length (pixels) the output assumes"""


@dataclass
class DepthArgs:
    """Compute metric depth priors for a scene (and their error against ground truth when the scene has it)."""

    data: Path
    """scene folder (with scene.json)"""
    source: Literal["lidar", "sfm", "mono", "simulated", "dfd"] = "lidar"
    """where depth comes from; `simulated` is ground truth degraded like a real monocular model (synthetic only)"""
    out: Path | None = None
    """folder for the prior files and the metrics JSON (default: SCENE/priors)"""
    mono: MonoArgs = field(default_factory=MonoArgs)
    weights: Path | None = None
    """mono: older name of --mono.model (a TorchScript file)"""
    sparse: bool = False
    """lidar/sfm: projected points only, no densification"""
    radius_px: int | None = None
    """lidar/sfm: densification radius in pixels (default: from the point density)"""
    align: Literal["none", "lidar", "sfm"] = "none"
    """mono/simulated: align to the frame's sparse LiDAR / SfM depth (a metric model: one robust scale factor; a
    relative model: scale and shift in inverse depth, required)"""
    seed: int = 0
    """simulated: seed of the degradation"""
    split: Literal["all", "train", "test", "val"] = "all"
    """which frames"""
    max_frames: int | None = None
    """at most this many frames (first ones of the split)"""
    device: str = "cpu"
    """torch device for densification / the network"""
    no_cache: bool = False
    """recompute even when a cached prior matches"""
    quiet: bool = False
    """print only the overall line"""


def _opts(args: DepthArgs) -> dict[str, object]:
    if args.source in ("lidar", "sfm"):
        o: dict[str, object] = {"dense": not args.sparse, "device": args.device}
        if args.radius_px is not None:
            o["radius_px"] = args.radius_px
        return o
    if args.source == "mono":
        o = {"model": args.mono.model if args.mono.model is not None else args.weights, "device": args.device,
             "align": args.align}
        if args.mono.input_size != 518:
            o["input_size"] = args.mono.input_size
        if args.mono.canonical_focal_px is not None:
            o["canonical_focal_px"] = args.mono.canonical_focal_px
        return o
    if args.source == "simulated":
        return {"seed": args.seed, "align": args.align}
    return {}


def main(argv: list[str], prog: str = "recon depth") -> int:
    from recon.data.scene import Scene
    from recon.eval.depth_metrics import depth_metrics, format_metrics
    from recon.io.atomic import atomic_write_json
    from recon.priors.registry import compute_prior
    from recon.priors.simulated import SIMULATED_NOTE

    args = tyro.cli(DepthArgs, args=argv, prog=prog)
    scene = Scene.load(args.data)
    frames = scene.frames if args.split == "all" else scene.split(args.split)
    if args.max_frames is not None:
        frames = frames[: max(0, args.max_frames)]
    if not frames:
        raise ReconError(f"{args.data}: no frames in split {args.split!r}")
    out = args.out if args.out is not None else scene.root / "priors"
    label = "SIMULATED monocular prior" if args.source == "simulated" else f"{args.source} prior"
    print(f"{label} for {len(frames)} frames of '{scene.name}' -> {out}")
    if args.source == "simulated":
        print(f"note: {SIMULATED_NOTE}")

    opts = _opts(args)
    preds, gts, per_frame = [], [], []
    coverage, residuals = [], []
    for fr in frames:
        prior = compute_prior(scene, fr, args.source, cache_dir=out, use_cache=not args.no_cache, **opts)
        coverage.append(prior.coverage)
        if "align_residual" in prior.meta:
            residuals.append(float(prior.meta["align_residual"]))
            if not args.quiet:
                print(f"  {fr.id}: {_fit_line(prior.meta)}")
        gt = fr.load_depth()
        if gt is None:
            if not args.quiet:
                print(f"  {fr.id}: {prior.source}, coverage {prior.coverage:.1%} (no ground truth)")
            continue
        m = depth_metrics(prior.depth, gt, mask=prior.valid)
        per_frame.append({"frame": fr.id, "coverage": prior.coverage, "metrics": m})
        sel = prior.valid & (gt > 0)
        preds.append(prior.depth[sel])
        gts.append(gt[sel])
        if not args.quiet:
            print(format_metrics(m, f"  {fr.id} [{prior.source}, cov {prior.coverage:.0%}]"))
    mean_cov = float(np.mean(coverage))
    if residuals:
        print(f"alignment to {args.align}: median residual {100 * float(np.median(residuals)):.1f}% over "
              f"{len(residuals)} frames (median relative depth error of the fit at the sparse points)")
    if not per_frame:
        print(f"coverage {mean_cov:.1%}; the scene has no ground-truth depth, nothing to score")
        return 0
    overall = depth_metrics(np.concatenate(preds), np.concatenate(gts))
    print(format_metrics(overall, f"OVERALL [{label}, cov {mean_cov:.0%}]"))
    report = {"source": args.source, "simulated": args.source == "simulated", "scene": scene.name,
              "align_median_residual": float(np.median(residuals)) if residuals else None,
              "options": {k: str(v) if isinstance(v, Path) else v for k, v in opts.items()},
              "mean_coverage": mean_cov, "overall": overall, "frames": per_frame}
    if args.source == "simulated":
        report["note"] = SIMULATED_NOTE
    tag = args.source if args.align == "none" or args.source not in ("mono", "simulated") else \
        f"{args.source}-aligned-{args.align}"
    path = atomic_write_json(Path(out) / f"{tag}_metrics.json", _finite(report))
    print(f"metrics written to {path}")
    return 0


def _fit_line(meta: dict[str, object]) -> str:
    """One line describing a prior's alignment fit (see recon.priors.registry._align)."""
    res = f"residual {100 * float(meta['align_residual']):.1f}%, inliers {100 * float(meta['align_inlier_ratio']):.0f}%"
    if meta.get("fitted_from") == "relative":
        return (f"relative model aligned to {meta['aligned_to']}: 1/depth = {float(meta['align_scale']):.4g} * x + "
                f"{float(meta['align_shift']):.4g}, {res}, {meta['align_points']} points")
    return (f"scaled to {meta['aligned_to']} by {float(meta['align_depth_scale']):.4f}, {res}, "
            f"{meta['align_points']} points")


def _finite(x: object) -> object:
    """JSON has no NaN: empty bands are written as null."""
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
