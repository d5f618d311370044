"""Benchmark recon's CPU rasterizer: forward and forward+backward median time and peak memory per configuration.

Each configuration runs in its own subprocess so ``resource.getrusage`` max RSS is that configuration's peak
(includes the Python + torch baseline, printed separately). The brute-force dense reference is timed in the same
run where pixels x Gaussians stays small enough (forward: <= --ref-max-pairs; forward+backward: <= 1/20 of it);
elsewhere it is reported as skipped. Gaussians come from the synthetic street's LiDAR points (``recon.data.synth``)
with scales from nearest-neighbour distances and the first front frame's camera, or from a random street-like scene
in front of a camera (``--random``, or when the generator is unavailable).

``--profile`` also splits forward+backward (C++ path) into its stages, medians over the repetitions: EWA projection,
tile binning (boxes, depth sort, dealing into tiles), compositing forward, compositing backward (per-pixel recompute,
back-to-front gradient walk, per-thread gradient buffers and their sum), projection backward, and the rest (Python
and autograd between the kernels, SH/colour set-up, output and gradient tensors).

    python benchmarks/bench_rasterizer.py [--quick] [--random] [--threads 2] [--profile]
                                          [--sizes 320x192 ...] [--counts 100000 ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def random_scene(n: int, width: int, height: int, seed: int = 0):
    """Street-like random scene: depths 3-60 m (denser near), 0.3x the field of view margin, scales ~ 1 cm/m."""
    import torch

    g = torch.Generator().manual_seed(seed)
    f = 0.5 * width / 0.466  # 50 degree horizontal field of view
    z = 3 + torch.rand(n, generator=g) ** 2 * 57
    x = (torch.rand(n, generator=g) - 0.5) * 2.2 * z * (0.5 * width / f)
    y = (torch.rand(n, generator=g) - 0.5) * 2.2 * z * (0.5 * height / f)
    means = torch.stack([x, y, z], -1)
    scales = (0.02 + 0.01 * z)[:, None] * torch.exp(torch.randn(n, 3, generator=g) * 0.3)
    viewmat = torch.eye(4)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    return means, scales, viewmat, K


def street_scene(n: int, width: int, height: int, cache: Path):
    """Means sampled from the synthetic street's LiDAR points, scales from nearest-neighbour distances."""
    import numpy as np
    import torch
    from scipy.spatial import cKDTree

    from recon.data.scene import Scene
    from recon.data.synth import SynthConfig, make_street

    out = cache / "street"
    if (out / "scene.json").exists():
        scene = Scene.load(out)
    else:
        cfg = SynthConfig(seed=0, width=160, height=96, n_frames=2, defocus_frames=0, lens_samples=8, antialias=1)
        scene = make_street(cfg, out)
    pts = np.concatenate([np.load(p)[:, :3] for p in scene.lidar_sweeps()]).astype(np.float64)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(pts), size=n, replace=len(pts) < n)
    means = pts[idx] + rng.normal(scale=0.02, size=(n, 3))  # jitter so repeated points are distinct
    d, _ = cKDTree(means).query(means, k=4)
    s = np.clip(d[:, 1:].mean(1), 0.01, 1.0)
    frame = scene.frames[0]
    K = frame.camera.K.copy()
    K[:2] *= width / frame.camera.width
    viewmat = torch.tensor(frame.world2cam, dtype=torch.float32)
    scales = torch.tensor(s, dtype=torch.float32)[:, None].repeat(1, 3)
    return torch.tensor(means, dtype=torch.float32), scales, viewmat, torch.tensor(K, dtype=torch.float32)


STAGES = (("project_fwd", "project"), ("isect_tiles", "binning"), ("rasterize_fwd", "composite"),
          ("rasterize_bwd", "composite bwd"), ("project_bwd", "project bwd"))


def stage_timer() -> dict[str, float]:
    """Wrap the C++ extension's kernels so each call adds its wall time (seconds) to the returned dict."""
    from recon.render.cpp_ext import load_extension

    ext = load_extension()
    acc = {label: 0.0 for _, label in STAGES}
    for fn_name, label in STAGES:
        orig = getattr(ext, fn_name)

        def timed(*args, _orig=orig, _label=label):
            t0 = time.perf_counter()
            try:
                return _orig(*args)
            finally:
                acc[_label] += time.perf_counter() - t0

        setattr(ext, fn_name, timed)
    return acc


def run_config(cfg: dict) -> dict:
    """Child process: time one configuration and report max RSS."""
    import torch

    from recon.render import rasterize
    from recon.render.cpu_backend import reference_rasterize

    torch.set_num_threads(cfg["threads"])
    n, w, h = cfg["n"], cfg["width"], cfg["height"]
    src = "random"
    if not cfg["random"]:
        try:
            means, scales, viewmat, K = street_scene(n, w, h, Path(cfg["cache"]))
            src = "synthetic street"
        except Exception as exc:  # noqa: BLE001 - benchmark falls back to the random scene
            print(f"(street scene unavailable: {type(exc).__name__}: {exc}; using random)", file=sys.stderr)
            means, scales, viewmat, K = random_scene(n, w, h)
    else:
        means, scales, viewmat, K = random_scene(n, w, h)
    g = torch.Generator().manual_seed(1)
    quats = torch.randn(n, 4, generator=g)
    opac = torch.rand(n, generator=g) * 0.9 + 0.05
    colors = torch.rand(n, 3, generator=g)
    params = [means, quats, scales, opac, colors]
    vm, ks = viewmat[None], K[None]

    def fwd(fn, **kw):
        with torch.no_grad():
            fn(*params, vm, ks, w, h, **kw)

    def fwdbwd(fn, **kw):
        ps = [p.clone().requires_grad_() for p in params]
        r, a, _ = fn(*ps, vm, ks, w, h, **kw)
        (r.sum() + a.sum()).backward()

    def median_ms(f, reps, warmup=True):
        if warmup:
            f()  # warm-up (also builds the C++ extension on first use)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(ts)

    res = {"source": src, "n": n, "width": w, "height": h}
    kw = {"backend": "cpu", "cpu_impl": cfg["impl"]}
    res["fwd_ms"] = median_ms(lambda: fwd(rasterize, **kw), cfg["reps"])
    res["fwdbwd_ms"] = median_ms(lambda: fwdbwd(rasterize, **kw), cfg["reps"])
    with torch.no_grad():
        _, _, info = rasterize(*params, vm, ks, w, h, **kw)
    res["visible"] = int((info["radii"] > 0).all(-1).sum())
    res["isects"] = int(info["flatten_ids"].numel())
    res["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pairs = res["visible"] * w * h
    res["ref_fwd_ms"] = median_ms(lambda: fwd(reference_rasterize), 1, False) if pairs <= cfg["ref_max_pairs"] else None
    res["ref_fwdbwd_ms"] = (median_ms(lambda: fwdbwd(reference_rasterize), 1, False)
                            if pairs <= cfg["ref_max_pairs"] // 20 else None)
    if cfg.get("profile"):
        from recon.render.cpp_ext import extension_available

        if cfg["impl"] == "torch" or not extension_available():
            res["stages_ms"] = None
            return res
        acc = stage_timer()
        per = {label: [] for label in acc} | {"rest": [], "total": []}
        for _ in range(cfg["reps"]):
            for k in acc:
                acc[k] = 0.0
            t0 = time.perf_counter()
            fwdbwd(rasterize, **kw)
            total = time.perf_counter() - t0
            for k, v in acc.items():
                per[k].append(v)
            per["rest"].append(total - sum(acc.values()))
            per["total"].append(total)
        res["stages_ms"] = {k: 1e3 * statistics.median(v) for k, v in per.items()}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="320x192 only, 20k and 100k, 3 repetitions")
    ap.add_argument("--random", action="store_true", help="random scene instead of the synthetic street")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--impl", default="auto", choices=["auto", "cpp", "torch"])
    ap.add_argument("--ref-max-pairs", type=float, default=2e9,
                    help="visible Gaussians x pixels limit for the reference")
    ap.add_argument("--profile", action="store_true", help="also print forward+backward per stage (C++ path)")
    ap.add_argument("--sizes", nargs="+", help="image sizes WxH (default 320x192 640x384; --quick: 320x192)")
    ap.add_argument("--counts", nargs="+", type=int, help="Gaussian counts (default 20000 100000 300000)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_config(json.loads(args.child))))
        return 0
    sizes = [(320, 192)] if args.quick else [(320, 192), (640, 384)]
    if args.sizes:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    counts = [20_000, 100_000] if args.quick else [20_000, 100_000, 300_000]
    if args.counts:
        counts = args.counts
    reps = 3 if args.quick else args.reps
    base = subprocess.run([sys.executable, "-c", "import resource, torch, recon.render; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
                          capture_output=True, text=True, cwd=REPO, env=None)
    print(f"baseline RSS (python + torch + recon.render imported): {base.stdout.strip()} MiB; threads={args.threads}")
    header = (f"{'size':>8} {'N':>7} {'visible':>7} {'isects':>8} {'fwd ms':>8} {'fwd+bwd ms':>10} {'peak MiB':>9} "
              f"{'ref fwd ms':>10} {'x':>6} {'ref f+b ms':>10} {'x':>6}  scene")
    print(header)
    profiles = []
    with tempfile.TemporaryDirectory() as cache:
        for w, h in sizes:
            for n in counts:
                cfg = {"n": n, "width": w, "height": h, "random": args.random, "threads": args.threads, "reps": reps,
                       "impl": args.impl, "cache": cache, "ref_max_pairs": int(args.ref_max_pairs),
                       "profile": args.profile}
                p = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)], capture_output=True,
                                   text=True, cwd=REPO)
                if p.returncode != 0:
                    print(f"{w}x{h} N={n}: failed: {p.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(p.stdout.strip().splitlines()[-1])

                def ref(key, mine, r=r):
                    v = r[key]
                    return (f"{v:10.0f} {v / mine:6.1f}") if v is not None else f"{'skipped':>10} {'-':>6}"

                print(f"{w}x{h:<4} {n:7d} {r['visible']:7d} {r['isects']:8d} {r['fwd_ms']:8.1f} {r['fwdbwd_ms']:10.1f} "
                      f"{r['rss_mib']:9.0f} {ref('ref_fwd_ms', r['fwd_ms'])} {ref('ref_fwdbwd_ms', r['fwdbwd_ms'])}"
                      f"  {r['source']}", flush=True)
                if r.get("stages_ms"):
                    profiles.append((f"{w}x{h}", n, r["stages_ms"]))
    print("ref = brute-force dense reference (every visible Gaussian at every pixel); 'skipped' = too large for "
          "memory/time (forward needs visible x pixels <= --ref-max-pairs, fwd+bwd 1/20 of that); x = ref / ours.")
    if profiles:
        labels = [label for _, label in STAGES] + ["rest", "total"]
        print("\nforward+backward by stage, median ms over the repetitions (rest = Python, autograd and tensor set-up "
              "between the kernels):")
        print(f"{'size':>8} {'N':>7} " + " ".join(f"{lab:>13}" for lab in labels))
        for size, n, st in profiles:
            print(f"{size:>8} {n:7d} " + " ".join(f"{st[lab]:13.1f}" for lab in labels))
    elif args.profile:
        print("(--profile needs the C++ extension; no stage times)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
