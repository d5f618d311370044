"""``recon eval``: render the test views of a run and measure images and depth.

Image metrics: PSNR, SSIM (LPIPS when its weights are on disk, otherwise said so). Reprojection consistency of the
rendered depth with the nearest training view (see recon.eval.consistency), which needs no ground truth.
Depth metrics against the scene's
ground-truth depth maps where it has them (synthetic scenes), else against projected LiDAR: AbsRel, RMSE, delta<1.25
for near (< 10 m), mid (10-40 m), far (> 40 m) and overall, pooled over all test pixels. Writes ``eval/metrics.json``,
and per view the rendered image, depth (``.npy`` metres and a PNG coloured by :mod:`recon.io.colormap` between 1 and
400 m) beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from recon.data.scene import Scene
from recon.errors import ReconError
from recon.eval.consistency import nearest_train_view, pair_consistency
from recon.eval.consistency import summarise as summarise_consistency
from recon.eval.depth_metrics import depth_metrics
from recon.eval.image_metrics import LpipsMetric, psnr, ssim
from recon.io.atomic import atomic_write_json
from recon.io.colormap import depth_colormap
from recon.io.folders import ensure_dir
from recon.io.images import write_depth, write_image
from recon.model.gaussians import activated
from recon.model.render_frame import apply_exposure, render_frame
from recon.run.load import load_run
from recon.train.views import load_views

DEPTH_PNG_RANGE_M = (1.0, 400.0)
"""Near and far ends (metres) of the depth PNGs' colour map: fixed, so colours compare across views and runs."""


def evaluate_run(run: str | Path, trainer: Any = None, write_outputs: bool = True, progress: bool = True
                 ) -> dict[str, Any]:
    """Evaluate the run's newest state (or a live ``trainer``) on the scene's test split.

    Always writes ``eval/metrics.json``; ``write_outputs`` adds the rendered images and depth maps. A checkpoint
    trained on another scene than the one ``config.json`` names is refused.
    """
    run = Path(run)
    if trainer is not None:
        # the trainer holds the scene as training sees it (no held-out LiDAR): the truth comes from disk
        scene, device = Scene.load(trainer.scene.root), trainer.device
        params, sky, sh_degree = trainer.params, trainer.sky, trainer.cfg.optim.sh_degree
        exposure, cam_names, downscale = trainer.exposure, trainer.camera_names, trainer.cfg.downscale
    else:
        loaded = load_run(run)
        scene = Scene.load(loaded.scene_path)
        if loaded.scene_fingerprint is not None and loaded.scene_fingerprint != scene.fingerprint():
            raise ReconError(f"{loaded.checkpoint}: checkpoint was trained on another scene than "
                             f"{scene.root / 'scene.json'} (named by {run / 'config.json'}); refusing to evaluate")
        device = torch.device("cpu")
        params, sky, sh_degree = loaded.params, loaded.sky, loaded.sh_degree
        exposure, cam_names = loaded.exposure, loaded.camera_names or sorted(scene.cameras)
        downscale = float(loaded.config.get("downscale", 1.0))
    frames = scene.test_frames
    if not frames:
        raise ReconError(f"{scene.root / 'scene.json'}: no frames in the 'test' split to evaluate")
    views = load_views(frames, downscale, device, cam_names, lidar=not scene.has_depth(), gt_depth=True,
                       desc="loading test views")
    lp = LpipsMetric()
    # a live trainer already holds the decoded training views; only a run loaded from disk decodes them again
    train_views = trainer.views if trainer is not None else load_views(
        scene.train_frames, downscale, device, cam_names, desc="loading training views")
    per_view, preds, gts, consist, cams = [], [], [], [], []
    g = {k: v.detach() for k, v in activated(params).items()}
    out_dir = ensure_dir(run / "eval", "eval folder")  # before rendering: an unwritable run fails at once
    with torch.no_grad():
        for v in tqdm(views, desc="evaluating", leave=False, disable=not progress):
            out = render_frame(g, v.viewmat, v.K, v.width, v.height, sh_degree, sky)
            rgb = apply_exposure(out.rgb, exposure, v.camera_index).clamp(0, 1)
            rec = {"frame": v.frame.id, "camera": v.frame.camera.name, "psnr": psnr(rgb, v.image),
                   "ssim": ssim(rgb, v.image)}
            if train_views:
                tv = nearest_train_view(v, train_views)
                out_j = render_frame(g, tv.viewmat, tv.K, tv.width, tv.height, sh_degree, sky)
                consist.append(pair_consistency(out.depth, out_j.depth, v.image, tv.image, v.K, tv.K,
                                                torch.linalg.inv(v.viewmat), tv.viewmat))
            if lp.available:
                rec["lpips"] = lp(rgb, v.image)
            per_view.append(rec)
            gt = v.gt_depth if v.gt_depth is not None else v.lidar_depth
            depth = out.depth.cpu().numpy()
            if gt is not None:
                preds.append(depth.ravel())
                gts.append(gt.cpu().numpy().ravel())
                cams.append(v.frame.camera.name)
            if write_outputs:
                write_image(out_dir / "images" / f"{v.frame.id}.png", rgb.cpu().numpy())
                write_depth(out_dir / "depth" / f"{v.frame.id}.npy", depth)
                write_image(out_dir / "depth" / f"{v.frame.id}.png", depth_colormap(depth, *DEPTH_PNG_RANGE_M))
    metrics: dict[str, Any] = {
        "run": str(run), "scene": scene.name, "n_test_views": len(views),
        "psnr": float(np.mean([r["psnr"] for r in per_view])),
        "ssim": float(np.mean([r["ssim"] for r in per_view])),
        "lpips": float(np.mean([r["lpips"] for r in per_view])) if lp.available else None,
        "lpips_note": lp.reason or None,
        "depth_reference": "ground_truth" if scene.has_depth() else ("lidar" if scene.has_lidar() else None),
        "depth": _depth_with_coverage(preds, gts) if preds else None,
        "per_camera": _per_camera(per_view, preds, gts, cams),
        "reprojection": summarise_consistency(consist) if consist else None,
        "per_view": per_view,
    }
    atomic_write_json(out_dir / "metrics.json", metrics)  # also with --no-outputs, as its help says
    return metrics


def _depth_with_coverage(preds: list[np.ndarray], gts: list[np.ndarray]) -> dict[str, Any]:
    """Depth metrics pooled over the views, each band with its ``coverage``: the share of all evaluated pixels
    that have a truth value in that band (sparse LiDAR covers a few percent of a view)."""
    d = depth_metrics(np.concatenate(preds), np.concatenate(gts))
    total = sum(p.size for p in preds)
    for band in d.values():
        band["coverage"] = band["n"] / total if total else 0.0
    return d


def _per_camera(per_view: list[dict[str, Any]], preds: list[np.ndarray], gts: list[np.ndarray],
                cams: list[str]) -> dict[str, Any]:
    """Image and depth metrics of each camera's test views (a held-out camera shows novel-view quality apart)."""
    out: dict[str, Any] = {}
    for name in sorted({r["camera"] for r in per_view}):
        recs = [r for r in per_view if r["camera"] == name]
        sel = [i for i, c in enumerate(cams) if c == name]
        out[name] = {
            "n_views": len(recs),
            "psnr": float(np.mean([r["psnr"] for r in recs])),
            "ssim": float(np.mean([r["ssim"] for r in recs])),
            "n_depth_views": len(sel),
            "depth": _depth_with_coverage([preds[i] for i in sel], [gts[i] for i in sel]) if sel else None,
        }
    return out


def format_metrics(m: dict[str, Any]) -> str:
    """A small human-readable table of a run's metrics."""
    lines = [f"test views: {m['n_test_views']}   PSNR {m['psnr']:.2f} dB   SSIM {m['ssim']:.4f}"
             + (f"   LPIPS {m['lpips']:.4f}" if m.get("lpips") is not None else "")]
    if m.get("lpips_note"):
        lines.append(f"({m['lpips_note']})")
    r = m.get("reprojection")
    if r:
        lines.append(f"reprojection to the nearest training view: median depth disagreement "
                     f"{100 * r['depth_rel_err']:.1f}%, {100 * r['consistent']:.0f}% of pixels within 5%, "
                     f"photometric L1 {r['photo_l1']:.3f}")
    d = m.get("depth")
    if d:
        lines.append(f"depth vs {m['depth_reference']}:")
        lines.append(f"  {'band':<8}{'AbsRel':>9}{'RMSE m':>9}{'d<1.25':>9}{'pixels':>10}{'coverage':>10}")
        for band in ("near", "mid", "far", "overall"):
            b = d.get(band)
            if b and b["n"]:
                lines.append(f"  {band:<8}{b['abs_rel']:>9.3f}{b['rmse']:>9.2f}{b['delta1']:>9.3f}{int(b['n']):>10}"
                             f"{100 * b.get('coverage', float('nan')):>9.1f}%")
    pc = m.get("per_camera") or {}
    if len(pc) > 1:
        lines.append("per camera:")
        for name, c in pc.items():
            dd = (c.get("depth") or {}).get("overall")
            depth = (f"   depth AbsRel {dd['abs_rel']:.3f} over {c['n_depth_views']} views" if dd and dd["n"]
                     else "")
            lines.append(f"  {name:<10}{c['n_views']:>4} views   PSNR {c['psnr']:.2f} dB   SSIM {c['ssim']:.4f}"
                         + depth)
    return "\n".join(lines)
