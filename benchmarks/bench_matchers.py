"""Matchers side by side on real KITTI pairs with ground-truth poses: matches, epipolar accuracy, time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_matchers.py [--data ../shared/data/kitti_odometry_seq1]
        [--downscale 4] [--frames 24] [--steps 1 2 4] [--matchers sift xfeat aliked disk] [--json OUT]

The KITTI odometry excerpt is converted with ``recon data convert --from kitti --downscale 4`` (306x92, the scale of
the KITTI benchmark) into a temporary folder; pairs are frames (i, i + s) for the first ``--frames`` even frames i and
each step s. Per matcher and pair: the number of matches, the share whose Sampson error under the known poses
(``poses.txt`` + ``calib.txt`` P0, through the scene's K) is within 1 px, that number ("good"), the median Sampson
error of the good matches (their localisation accuracy, in pixels of the scene image) and the wall time of the pair
with features extracted for both images (no reuse between pairs). The table prints the median over pairs (and the
medians of the widest step alone). Matchers whose weights are not installed are listed as skipped. A learned
matcher can be named with its sub-pixel refinement (``xfeat:none``, ``xfeat:quadratic``, ``xfeat:softargmax``;
plain ``xfeat`` is its default, see :mod:`recon.match.subpixel`).

    .venv/bin/python benchmarks/bench_matchers.py --cached SCENE [SCENE ...]

instead summarises the match cache a `recon sfm` / `recon match` run left in each scene (``SCENE/cache/matches``):
per matcher, the pairs, the mean matches per pair and the share of matches within 1 px of their epipolar lines (the
larger of the two point-to-line distances) under the scene's poses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.data.scene import Scene  # noqa: E402
from recon.errors import ReconError  # noqa: E402
from recon.match.base import Matcher  # noqa: E402
from recon.match.factory import create_matcher  # noqa: E402
from recon.match.learned import LEARNED, LearnedMatcher  # noqa: E402
from recon.sfm.verify import epipolar_distance, fundamental_matrix  # noqa: E402


def sampson_px(F: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """First-order geometric (Sampson) distance of each match to the epipolar geometry, in pixels."""
    h0 = np.concatenate([x0.astype(np.float64), np.ones((len(x0), 1))], 1)
    h1 = np.concatenate([x1.astype(np.float64), np.ones((len(x1), 1))], 1)
    Fx0 = h0 @ F.T
    Ftx1 = h1 @ F
    num = (h1 * Fx0).sum(1) ** 2
    den = Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2 + Ftx1[:, 0] ** 2 + Ftx1[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-18))


def convert(data: Path, downscale: float, out: Path) -> Scene:
    cmd = [sys.executable, "-m", "recon.cli", "data", "convert", "--from", "kitti", str(data), "--out", str(out),
           "--downscale", str(downscale)]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return Scene.load(out)


def forget(m: Matcher) -> None:
    """Drop the matcher's per-image feature memo so every pair pays for both extractions."""
    memo = getattr(m, "_memo", None)
    if memo is not None:
        memo.clear()


def run(matcher: Matcher, scene: Scene, pairs: list[tuple[int, int]]) -> list[dict[str, float]]:
    frames = sorted(scene.frames, key=lambda f: f.index)
    images = {f.index: f.load_image() for f in frames}
    by_index = {f.index: f for f in frames}
    rows = []
    matcher.match(images[pairs[0][0]], images[pairs[0][1]])  # warm-up (first call allocates)
    for i, j in pairs:
        forget(matcher)
        t0 = time.perf_counter()
        m = matcher.match(images[i], images[j])
        dt = time.perf_counter() - t0
        F = fundamental_matrix(by_index[i], by_index[j])
        err = sampson_px(F, m.kpts0, m.kpts1) if len(m) else np.zeros(0)
        good = int(np.sum(err <= 1.0))
        rows.append({"i": i, "j": j, "matches": len(m), "good": good,
                     "precision": good / len(m) if len(m) else float("nan"),
                     "good_err_px": float(np.median(err[err <= 1.0])) if good else float("nan"), "time_s": dt})
    return rows


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    def med(key: str) -> float:
        v = [r[key] for r in rows if np.isfinite(r[key])]
        return float(np.median(v)) if v else float("nan")

    return {"pairs": len(rows), "matches": med("matches"), "good": med("good"), "precision": med("precision"),
            "good_err_px": med("good_err_px"), "time_s": med("time_s")}


def make_matcher(spec: str) -> Matcher:
    """``NAME`` or ``NAME:SUBPIXEL`` (a learned matcher with that sub-pixel refinement)."""
    name, _, subpixel = spec.partition(":")
    if subpixel:
        if name not in LEARNED:
            raise ReconError(f"{spec}: only a learned matcher ({', '.join(LEARNED)}) takes a sub-pixel mode")
        return LearnedMatcher(name, subpixel=subpixel)  # type: ignore[arg-type]
    return create_matcher(name, quiet=True)  # type: ignore[arg-type]


def cached_summary(scene_dir: Path) -> None:
    """Print, per matcher, the epipolar accuracy of the matches cached in a scene by recon sfm / recon match."""
    scene = Scene.load(scene_dir)
    by_id = {f.id: f for f in scene.frames}
    stats: dict[str, list[tuple[int, int]]] = {}
    for p in sorted((scene.root / "cache" / "matches").rglob("*.npz")):
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            k0, k1 = z["kpts0"], z["kpts1"]
        f0, f1 = by_id.get(meta.get("frame0")), by_id.get(meta.get("frame1"))
        if f0 is None or f1 is None:
            continue
        d = epipolar_distance(fundamental_matrix(f0, f1), k0, k1) if len(k0) else np.zeros(0)
        name = str(meta.get("matcher", "?")).split(" ")[0]
        stats.setdefault(name, []).append((len(k0), int(np.sum(d <= 1.0))))
    for name, rows in stats.items():
        n = np.array(rows)
        print(f"{scene_dir}: {name}: {len(rows)} pairs, {n[:, 0].mean():.0f} matches per pair, "
              f"{100 * n[:, 1].sum() / max(1, n[:, 0].sum()):.1f}% within 1 px of the epipolar line")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--cached":
        for d in sys.argv[2:]:
            cached_summary(Path(d))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kitti_odometry_seq1")
    ap.add_argument("--downscale", type=float, default=4.0)
    ap.add_argument("--frames", type=int, default=24, help="number of first frames i (every other frame)")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--matchers", nargs="+", default=["sift", "xfeat", "aliked", "disk"])
    ap.add_argument("--json", type=Path, default=None, help="also write every pair's numbers here")
    args = ap.parse_args()
    if not (args.data / "poses.txt").is_file():
        print(f"error: {args.data}: no KITTI odometry sequence (poses.txt) there", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        scene = convert(args.data, args.downscale, Path(tmp) / "scene")
        n = len(scene.frames)
        pairs = [(i, i + s) for i in range(0, 2 * args.frames, 2) for s in args.steps if i + s < n]
        cam = scene.frames[0].camera
        print(f"{len(pairs)} pairs of {args.data.name} at {cam.width}x{cam.height} (steps {args.steps}); "
              f"medians over pairs; good = Sampson error <= 1 px under the known poses")
        head = (f"{'matcher':<16} {'matches':>8} {'good':>6} {'precision':>9} {'good err':>8} {'time/pair':>10}   "
                f"{'widest step: good':>17} {'precision':>9} {'good err':>8}")
        print(head)
        print("-" * len(head))
        report = {}
        for name in args.matchers:
            try:
                matcher = make_matcher(name)
            except ReconError as exc:
                print(f"{name:<16} skipped: {exc}")
                continue
            rows = run(matcher, scene, pairs)
            s = summary(rows)
            w = summary([r for r in rows if r["j"] - r["i"] == max(args.steps)])
            report[name] = {"matcher": matcher.describe(), "all": s, "widest": w, "pairs": rows}
            print(f"{name:<16} {s['matches']:>8.0f} {s['good']:>6.0f} {100 * s['precision']:>8.1f}% "
                  f"{s['good_err_px']:>6.3f}px {1000 * s['time_s']:>8.0f}ms   {w['good']:>17.0f} "
                  f"{100 * w['precision']:>8.1f}% {w['good_err_px']:>6.3f}px", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
