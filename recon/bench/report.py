"""The benchmark's report: ``results.json`` (strict JSON), ``results.md`` (mean ± std over seeds per scene and
method, then each method relative to the baselines) and the plots (PSNR per method, depth AbsRel per band per method,
crops of one test view across methods).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recon.bench.config import BenchConfig

BANDS = ("near", "mid", "far", "overall")
# summary key -> key of recon.eval.consistency's reprojection summary (depth checks that need no ground truth)
REPROJECTION_KEYS = {"reproj_depth_rel_err": "depth_rel_err", "reproj_consistent": "consistent",
                     "reproj_photo_l1": "photo_l1"}


@dataclass
class RunResult:
    """One finished run: its scene name (unique within a bench), method (preset), seed, eval metrics and train
    summary (``train_summary.json``: iters, train_seconds, n_gaussians, ...)."""

    scene: str
    method: str
    seed: int
    metrics: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    task_seconds: float | None = None
    """Wall time of the task that trained and evaluated it, measured inside the task (None: reused)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        return cls(d["scene"], d["method"], int(d["seed"]), d["metrics"], d.get("train") or {},
                   d.get("task_seconds"))


def strict_json(x: Any) -> Any:
    """``x`` with every NaN or infinite float replaced by None, so results.json is strict JSON (RFC 8259)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    return x


def _agg(vals: list[float | None]) -> tuple[float, float]:
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v))


def summarise(results: list[RunResult]) -> dict[str, Any]:
    """Mean and spread over seeds per (scene, method), plus per-method means over scenes."""
    table: dict[str, Any] = {}
    keys = sorted({(r.scene, r.method) for r in results}, key=lambda k: (k[0], k[1]))
    for scene, method in keys:
        rs = [r for r in results if r.scene == scene and r.method == method]
        row: dict[str, Any] = {"n_seeds": len(rs)}
        row["psnr"] = _agg([r.metrics["psnr"] for r in rs])
        row["ssim"] = _agg([r.metrics["ssim"] for r in rs])
        row["lpips"] = _agg([r.metrics.get("lpips") for r in rs])
        for key, src in REPROJECTION_KEYS.items():
            row[key] = _agg([(r.metrics.get("reprojection") or {}).get(src) for r in rs])
        row["train_s_per_iter"] = _agg([r.train.get("train_seconds", math.nan) / max(1, r.train.get("iters", 1))
                                        for r in rs])
        row["n_gaussians"] = _agg([r.train.get("n_gaussians") for r in rs])
        for b in BANDS:
            row[f"absrel_{b}"] = _agg([(r.metrics.get("depth") or {}).get(b, {}).get("abs_rel", math.nan)
                                       for r in rs])
            # share of the test pixels with a truth value in the band (sparse LiDAR: a few percent)
            row[f"coverage_{b}"] = _agg([(r.metrics.get("depth") or {}).get(b, {}).get("coverage") for r in rs])
        cams = sorted({c for r in rs for c in (r.metrics.get("per_camera") or {})})
        if len(cams) > 1:  # e.g. a held-out camera: novel views off the training trajectory, reported apart
            row["per_camera"] = {c: {
                "psnr": _agg([((r.metrics.get("per_camera") or {}).get(c) or {}).get("psnr") for r in rs]),
                "absrel_overall": _agg([((((r.metrics.get("per_camera") or {}).get(c) or {}).get("depth") or {})
                                         .get("overall") or {}).get("abs_rel") for r in rs]),
                "n_views": ((rs[0].metrics.get("per_camera") or {}).get(c) or {}).get("n_views")} for c in cams}
        table.setdefault(scene, {})[method] = row
    methods = sorted({r.method for r in results})
    overall = {}
    for m in methods:
        rs = [r for r in results if r.method == m]
        overall[m] = {"psnr": _agg([r.metrics["psnr"] for r in rs])[0],
                      "ssim": _agg([r.metrics["ssim"] for r in rs])[0],
                      **{key: _agg([(r.metrics.get("reprojection") or {}).get(src) for r in rs])[0]
                         for key, src in REPROJECTION_KEYS.items()},
                      "train_s_per_iter": _agg([r.train.get("train_seconds", math.nan) / max(1, r.train.get("iters", 1))
                                                for r in rs])[0],
                      **{f"absrel_{b}": _agg([(r.metrics.get("depth") or {}).get(b, {}).get("abs_rel", math.nan)
                                              for r in rs])[0] for b in BANDS}}
    return {"per_scene": table, "per_method": overall}


def _has_depth(rows: dict[str, Any]) -> bool:
    """Whether a scene's runs have depth metrics (ground-truth depth or LiDAR on the test views)."""
    return any(not math.isnan(r["absrel_overall"][0]) for r in rows.values())


def _per_camera_table(per_scene: dict[str, Any], f: Any) -> list[str]:
    """Image PSNR and overall depth AbsRel of each camera's test views, for scenes with several test cameras (a
    held-out camera shows quality off the training trajectory; the training camera's held-out frames, on it)."""
    rows = [(s, m, r) for s, ms in per_scene.items() for m, r in ms.items() if r.get("per_camera")]
    if not rows:
        return []
    out = ["", "Per camera (test views of each camera):", "",
           "| scene | method | camera | views | PSNR dB | AbsRel all |", "|" + "---|" * 6]
    for scene, method, r in rows:
        for cam, c in r["per_camera"].items():
            out.append(f"| {scene} | {method} | {cam} | {c['n_views']} | {f(c['psnr'], 2)} | "
                       f"{f(c['absrel_overall'])} |")
    return out


def markdown(summary: dict[str, Any], cfg: BenchConfig) -> str:
    """results.md: a depth table for scenes with depth ground truth, an image + reprojection table for the others
    (real footage without LiDAR), then each method relative to the baselines."""
    extra = f"; extra training flags: `{cfg.extra}`" if cfg.extra.strip() else ""
    lines = [f"Iterations {cfg.iters}; mean ± std over seeds {cfg.seeds}{extra}.", ""]

    def f(v: tuple[float, float], p: int = 3, scale: float = 1.0, unit: str = "") -> str:
        return "n/a" if math.isnan(v[0]) else f"{scale * v[0]:.{p}f}{unit} ± {scale * v[1]:.{p}f}{unit}"

    per_scene = summary["per_scene"]
    gt = {s: rows for s, rows in per_scene.items() if _has_depth(rows)}
    real = {s: rows for s, rows in per_scene.items() if s not in gt}
    if gt:
        hdr = ("| scene | method | PSNR dB | SSIM | AbsRel near | AbsRel mid | AbsRel far | AbsRel all | s/iter "
               "| Gaussians |")
        lines += [hdr, "|" + "---|" * 10]
        for scene, rows in gt.items():
            for method, r in rows.items():
                lines.append(f"| {scene} | {method} | {f(r['psnr'], 2)} | {f(r['ssim'])} | {f(r['absrel_near'])} | "
                             f"{f(r['absrel_mid'])} | {f(r['absrel_far'])} | {f(r['absrel_overall'])} | "
                             f"{f(r['train_s_per_iter'], 2)} | {f(r['n_gaussians'], 1, 1e-3, 'k')} |")
        for scene, rows in gt.items():
            first = next(iter(rows.values()))
            cov = ", ".join(f"{b} {f(first[f'coverage_{b}'], 1, 100, '%')}" for b in BANDS
                            if not math.isnan(first[f"coverage_{b}"][0]))
            if cov:
                lines += ["", f"{scene}: share of test pixels with a depth truth value, by band: {cov}."]
        lines += _per_camera_table(gt, f)
    if real:
        if gt:
            lines.append("")
        lines += ["Scenes without depth ground truth: image metrics on the held-out views and the multi-view "
                  "consistency of rendered depth (each test view against its nearest training view, "
                  "recon.eval.consistency).", "",
                  "| scene | method | PSNR dB | SSIM | LPIPS | median depth disagreement | pixels within 5% "
                  "| photometric L1 | s/iter | Gaussians |", "|" + "---|" * 10]
        for scene, rows in real.items():
            for method, r in rows.items():
                lines.append(f"| {scene} | {method} | {f(r['psnr'], 2)} | {f(r['ssim'])} | {f(r['lpips'])} | "
                             f"{f(r['reproj_depth_rel_err'], 1, 100, '%')} | {f(r['reproj_consistent'], 1, 100, '%')}"
                             f" | {f(r['reproj_photo_l1'])} | {f(r['train_s_per_iter'], 2)} "
                             f"| {f(r['n_gaussians'], 1, 1e-3, 'k')} |")
    pm = summary["per_method"]
    for ref, why in (("baseline", "the weak baseline"), ("lidar", "the strong conventional baseline")):
        if ref not in pm:
            continue
        # relative changes of the depth bands where depth ground truth exists, of the reprojection disagreement
        # where it does not
        cols = ([("far AbsRel change", "absrel_far"), ("near AbsRel change", "absrel_near"),
                 ("mid AbsRel change", "absrel_mid"), ("all AbsRel change", "absrel_overall")] if gt
                else [("depth disagreement change", "reproj_depth_rel_err")])
        cols.append(("time/iter change", "train_s_per_iter"))
        lines += ["", f"Relative to {ref}, {why} (mean over scenes and seeds):", "",
                  "| method | ΔPSNR dB | ΔSSIM | " + " | ".join(c for c, _ in cols) + " |",
                  "|" + "---|" * (3 + len(cols))]
        b = pm[ref]
        for m, r in pm.items():
            def rel(key: str, r: dict[str, Any] = r, b: dict[str, Any] = b) -> str:
                return "n/a" if not b[key] or math.isnan(b[key]) or math.isnan(r[key]) else \
                    f"{100 * (r[key] - b[key]) / b[key]:+.1f}%"
            lines.append(f"| {m} | {r['psnr'] - b['psnr']:+.2f} | {r['ssim'] - b['ssim']:+.3f} | "
                         + " | ".join(rel(k) for _, k in cols) + " |")
    return "\n".join(lines) + "\n"


def plots(results: list[RunResult], summary: dict[str, Any], out: Path) -> list[Path]:
    """PSNR per method and AbsRel per band per method (bar charts), written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recon.io.atomic import atomic_write_bytes

    pm = summary["per_method"]
    methods = list(pm)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(methods, [pm[m]["psnr"] for m in methods], color="tab:blue")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_ylim(min(pm[m]["psnr"] for m in methods) - 1, max(pm[m]["psnr"] for m in methods) + 0.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    paths.append(atomic_write_bytes(out / "psnr.png", buf.getvalue()))
    fig, ax = plt.subplots(figsize=(6, 3))
    w = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        ax.bar(np.arange(len(BANDS)) + i * w, [pm[m][f"absrel_{b}"] for b in BANDS], w, label=m)
    ax.set_xticks(np.arange(len(BANDS)) + 0.4 - w / 2, BANDS)
    ax.set_ylabel("depth AbsRel")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    paths.append(atomic_write_bytes(out / "absrel_by_band.png", buf.getvalue()))
    return paths


def crops(results: list[RunResult], runs_root: Path, out: Path) -> Path | None:
    """One test view of the first scene/seed across methods: rendered image over rendered depth, side by side."""
    from recon.io.images import read_image, write_image

    if not results:
        return None
    scene, seed = results[0].scene, results[0].seed
    rs = [r for r in results if r.scene == scene and r.seed == seed]
    frame = rs[0].metrics["per_view"][0]["frame"]
    cols = []
    for r in rs:
        d = runs_root / r.scene / r.method / f"seed{r.seed}" / "eval"
        img, dep = d / "images" / f"{frame}.png", d / "depth" / f"{frame}.png"
        if img.is_file() and dep.is_file():
            cols.append(np.concatenate([read_image(img), read_image(dep)], axis=0))
    if not cols:
        return None
    return write_image(out / "crops.png", np.concatenate(cols, axis=1))
