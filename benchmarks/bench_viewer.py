"""Time to first frame of `recon view` in a real headless Chromium (SwiftShader WebGL, CPU only).

Serves a 300k-splat scene (a random ball of coloured splats, seeded; or ``--ply`` / a run folder), opens the page
and polls screenshots of the WebGL canvas until the splats cover the middle of the view. Prints the server start-up
time, the time from page load to splats drawn (resolution: one screenshot, printed too), the time to the first
server-rendered panel image, and whether anything was requested from outside the machine.

    .venv/bin/python benchmarks/bench_viewer.py [--splats 300000] [--ply PATH] [--render-width 320]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support.browser import canvas_pixels, chromium_path, free_port, headless_page  # noqa: E402

from recon.model.ply import SH_C0, save_ply  # noqa: E402


def random_ball(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` small opaque splats with random colours filling a ball of radius ~1.5 m around the origin."""
    rng = np.random.default_rng(seed)
    means = (rng.normal(size=(n, 3)) * 0.6).astype(np.float32)
    rgb = rng.uniform(0.0, 1.0, size=(n, 3)).astype(np.float32)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    log_scales = np.log(rng.uniform(0.005, 0.03, size=(n, 3))).astype(np.float32)
    return save_ply(path, means, quats, log_scales, np.full(n, 2.0, np.float32), ((rgb - 0.5) / SH_C0)[:, None, :],
                    np.zeros((n, 0, 3), np.float32))


def covered(px: np.ndarray, frac: float = 0.5) -> bool:
    """The middle of the canvas differs from viser's white background on at least ``frac`` of its pixels."""
    h, w = px.shape[:2]
    mid = px[h // 2 - 50: h // 2 + 50, w // 2 - 50: w // 2 + 50].astype(int)
    return bool(((255 - mid).max(axis=2) > 40).mean() >= frac)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splats", type=int, default=300_000)
    ap.add_argument("--ply", type=str, default=None, help="a 3DGS PLY or run folder instead of the random ball")
    ap.add_argument("--render-width", type=int, default=320)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--width", type=int, default=800, help="browser viewport width (pixels)")
    ap.add_argument("--height", type=int, default=600, help="browser viewport height (pixels)")
    args = ap.parse_args()
    if chromium_path() is None:
        print("chromium not installed (apt-get install chromium)")
        return 2

    from viewer.app import ViewerApp, ViewerOptions
    from viewer.loading import resolve_input

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(args.ply) if args.ply else random_ball(Path(tmp) / "ball.ply", args.splats)
        t0 = time.perf_counter()
        inp = resolve_input(src)
        t_load = time.perf_counter() - t0
        app = ViewerApp(inp, ViewerOptions(port=free_port(), render_width=args.render_width),
                        log=lambda s: None)
        t1 = time.perf_counter()
        app.start()
        t_start = time.perf_counter() - t1
        try:
            with headless_page(args.width, args.height) as b:
                page = b.page
                t_nav, t_nav_mono = time.perf_counter(), time.monotonic()
                page.goto(app.url)
                t_dom = time.perf_counter() - t_nav
                first_frame = shot_s = None
                n_shots = 0
                while time.perf_counter() - t_nav < args.timeout:
                    ts = time.perf_counter()
                    px = canvas_pixels(page)
                    shot_s = time.perf_counter() - ts
                    n_shots += 1
                    if covered(px):
                        first_frame = time.perf_counter() - t_nav
                        break
                panel_s = None
                while time.monotonic() - t_nav_mono < args.timeout:
                    done = [p.first_render_at for p in app.panels.values() if p.first_render_at is not None]
                    if done:
                        panel_s = min(done) - t_nav_mono
                        break
                    time.sleep(0.05)
                external = list(b.external_requests)
        finally:
            app.stop()

    n = len(inp.gaussians)
    print(f"scene: {src if args.ply else 'random ball'} with {n:,} splats (SH degree {inp.gaussians.sh_degree})")
    print(f"load PLY: {t_load:.2f} s; server start (incl. renderer warm-up, splat upload prep): {t_start:.2f} s")
    print(f"server renderer: {app.renderer.backend}")
    print(f"browser: headless chromium, SwiftShader WebGL (CPU), viewport {args.width}x{args.height}")
    print(f"page load (goto returned): {t_dom:.2f} s")
    if first_frame is None:
        print(f"time to first frame: not reached within {args.timeout:.0f} s ({n_shots} screenshots)")
    else:
        print(f"time to first frame (page load -> splats drawn): <= {first_frame:.2f} s "
              f"(upper bound: the screenshot that first showed them took {shot_s:.2f} s itself; "
              f"{n_shots} screenshot(s) polled)")
    print("first server-rendered panel image: " + (f"{panel_s:.2f} s after page load" if panel_s is not None
                                                    else "not within the timeout"))
    print(f"requests outside the machine: {len(external)}" + (f" ({external[:3]})" if external else ""))
    return 0 if first_frame is not None and math.isfinite(first_frame) else 1


if __name__ == "__main__":
    sys.exit(main())
