"""Benchmark of recon.optics and the DfD priors against exact finite-aperture renders.

Prints (all measured, nothing hard-coded):
  1. defocus convolution (layered, occlusion-aware) vs the naive gather blur vs the unblurred pinhole image:
     PSNR against lens-sampled truth on textured planes (every focus / aperture made), whole image and the band of
     pixels around depth edges; the same on the synthetic street's finite-aperture images when recon.data.synth
     exists;
  2. bokeh (recon.optics.bokeh, exact thin-lens CoC) PSNR on the street;
  3. speed of one defocus call at 320x192 (B = 1 and 3; 1 and 2 threads; with and without hidden-content fill);
  4. depth from defocus: aperture pair and focal stack, coverage and AbsRel per band (near < 10 m, mid 10-40 m,
     far > 40 m) on textured pixels where the two blurs differ by >= 0.5 px (pair), and on confident pixels.

    .venv/bin/python benchmarks/bench_defocus.py [--street DIR] [--no-street] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recon.optics import aperture_for_max_blur, defocus, gather_defocus
from recon.optics.bokeh import BokehLens, render_bokeh
from recon.optics.planes import (
    edge_band,
    make_plane_scene,
    occlusion_band,
    psnr,
    render_pinhole,
    render_thin_lens,
)
from recon.priors.dfd import depth_from_focus, dfd_aperture_pair, dfd_focal_stack, texture_energy

BANDS = {"near": (0.0, 10.0), "mid": (10.0, 40.0), "far": (40.0, np.inf), "all": (0.0, np.inf)}


def t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None] if img.ndim == 3 else \
        torch.from_numpy(np.ascontiguousarray(img))[None, None]


def n(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


def bands(est: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> str:
    out = []
    for name, (lo, hi) in BANDS.items():
        band = (gt >= lo) & (gt < hi) & (gt > 0)
        sel = band & mask & (est > 0)
        ar = float(np.mean(np.abs(est[sel] - gt[sel]) / gt[sel])) if sel.any() else float("nan")
        out.append(f"{name} cov {sel.sum() / max(band.sum(), 1):.2f} AbsRel {ar:.3f}")
    return " | ".join(out)


def compare(img, depth, truth, fx, a, focus, band_px) -> str:
    lay = n(defocus(t(img), t(depth), fx, a, focus))
    nai = n(gather_defocus(t(img), t(depth), fx, a, focus))
    band = edge_band(depth, band_px, threshold=1e-3)
    occ = occlusion_band(fx * a * (1.0 / depth - 1.0 / focus))

    def both(mask: np.ndarray) -> str:
        if not mask.any():
            return "  (none)"
        return f"layered {psnr(lay[mask], truth[mask]):6.2f} gather {psnr(nai[mask], truth[mask]):6.2f}"

    inner = np.zeros_like(occ)
    inner[8:-8, 8:-8] = True
    return (f"layered {psnr(lay, truth):6.2f} | gather {psnr(nai, truth):6.2f} | pinhole {psnr(img, truth):6.2f} "
            f"|| edge band: {both(band)} || occlusion band ({occ.sum()} px): {both(occ)} || its pixels 8+ px from "
            f"the border ({(occ & inner).sum()} px): {both(occ & inner)}")


def planes_section(quick: bool) -> None:
    w, h, samples = (128, 96, 128) if quick else (192, 144, 256)
    scene = make_plane_scene(w, h, seed=0)
    img, depth = render_pinhole(scene)
    print(f"\n== defocus vs lens-sampled truth: textured planes at 2.5/6/15/60 m, {w}x{h}, {samples} lens samples")
    print("   PSNR dB (whole image || band within max-blur/2 + 2 px of depth edges || occlusion band: within "
          "max-blur/2 + 2 px of neighbours whose CoC differs by >= 0.5 px)")
    for focus in (2.5, 6.0, 15.0, 60.0):
        for max_blur in (4.0, 8.0, 12.0):
            mb = max_blur * w / 128
            a = aperture_for_max_blur(scene.fx, 2.5, 60.0, focus, mb)
            truth = render_thin_lens(scene, a, focus, samples)
            print(f"focus {focus:5.1f} m, max CoC {mb:5.1f} px: "
                  f"{compare(img, depth, truth, scene.fx, a, focus, int(mb / 2) + 2)}")

    print(f"\n== DfD on the planes ({w}x{h})")
    tex = texture_energy(img)[0, 0].numpy()
    textured = tex / (tex + 2e-4) > 0.5
    for focus, side in ((60.0, "near"), (2.0, "far")):
        a_l = aperture_for_max_blur(scene.fx, 2.5, 60.0, focus, 12.0 * w / 128)
        a_s = a_l / 8.0
        small, large = render_thin_lens(scene, a_s, focus, samples), render_thin_lens(scene, a_l, focus, samples)
        t0 = time.perf_counter()
        res = dfd_aperture_pair(small, large, scene.fx, a_s, a_l, focus, side=side, depth_range=(2.0, 100.0))
        dt = time.perf_counter() - t0
        differ = scene.fx * (a_l - a_s) * np.abs(1.0 / depth - 1.0 / focus) >= 0.5
        print(f"pair (N ratio 8, focus {focus} m, side {side}, {dt:.2f} s) textured & blur diff >= 0.5 px: "
              f"{bands(res.depth, depth, textured & differ)}")
        print(f"   same, confidence > 0.2: {bands(res.depth, depth, textured & differ & (res.confidence > 0.2))}")
    a = aperture_for_max_blur(scene.fx, 2.5, 60.0, 2.5, 12.0 * w / 128)
    focus = list(1.0 / np.linspace(1 / 2.2, 1 / 80.0, 6))
    stack = [render_thin_lens(scene, a, f, samples // 2) for f in focus]
    res = depth_from_focus(stack, focus)
    print(f"focal stack (6 images, 2.2..80 m) textured: {bands(res.depth, depth, textured)}")
    print(f"   same, confidence > 0.2: {bands(res.depth, depth, textured & (res.confidence > 0.2))}")


def street_section(root: Path | None, quick: bool) -> None:
    if importlib.util.find_spec("recon.data.synth") is None:
        print("\n== street: recon.data.synth not available, skipped")
        return
    from recon.data.scene import Scene
    from recon.data.synth import SynthConfig, make_street

    if root is None:
        root = Path(tempfile.mkdtemp(prefix="bench_defocus_")) / "street"
        # 16 sub-pixel samples (not the generator's default 4): a silhouette pixel's coverage integrated from 4
        # samples is off by up to 1/8 of a pixel, an error larger than the differences between blur methods at
        # f/2.8 and f/8 (sub-pixel blurs)
        cfg = SynthConfig(seed=0, width=320, height=192, n_frames=8, cameras=("front",), defocus_frames=1,
                          lens_samples=64 if quick else 512, antialias=16, defocus_f_numbers=(1.0, 2.8, 8.0),
                          defocus_focus_m=(3.0, 10.0, 40.0))
        t0 = time.perf_counter()
        make_street(cfg, root)
        print(f"\n(generated a 320x192 street with finite-aperture images in {time.perf_counter() - t0:.0f} s)")
    scene = Scene.load(root)
    print(f"\n== defocus / bokeh vs the street's finite-aperture images ({root})")
    print("   PSNR dB (whole image || band within 3 px of depth edges || occlusion band: within max-blur/2 + 2 px of "
          "neighbours whose CoC differs by >= 0.5 px); unknown depth (sky) = 10 km")
    by_key = {}
    for e in scene.defocus:
        fr = scene.frame(e.frame_id)
        cam = fr.camera
        img, depth = fr.load_image(), fr.load_depth()
        depth = np.where(depth > 0, depth, 1e4).astype(np.float32)
        truth = e.load_image()
        a = float(cam.focal_length_mm) / 1000.0 / e.f_number
        bok = render_bokeh(img, depth, BokehLens(e.focus_distance_m, e.f_number, float(cam.focal_length_mm),
                                                 cam.sensor_width_mm))
        cmax = float(np.abs(cam.fx * a * (1 / depth - 1 / e.focus_distance_m)).max())
        print(f"{e.frame_id} f/{e.f_number:<4g} focus {e.focus_distance_m:4g} m (max CoC {cmax:4.1f} px): "
              f"{compare(img, depth, truth, cam.fx, a, e.focus_distance_m, 3)} || bokeh {psnr(bok, truth):6.2f}")
        by_key[(e.frame_id, e.f_number, e.focus_distance_m)] = e
    fid = scene.defocus[0].frame_id
    fr = scene.frame(fid)
    cam = fr.camera
    depth = fr.load_depth()
    ns = sorted({k[1] for k in by_key if k[0] == fid})
    focuses = sorted({k[2] for k in by_key if k[0] == fid})
    print("\n== DfD on the street (true depth 0 = sky excluded)")
    for focus, side in ((focuses[0], "far"), (focuses[-1], "near")):
        small, large = by_key[(fid, ns[-1], focus)], by_key[(fid, ns[0], focus)]
        a_s, a_l = float(cam.focal_length_mm) / 1000 / ns[-1], float(cam.focal_length_mm) / 1000 / ns[0]
        res = dfd_aperture_pair(small.load_image(), large.load_image(), cam.fx, a_s, a_l, focus, side=side,
                                depth_range=(2.0, 300.0))
        tex = res.extra["texture"]
        textured = (tex / (tex + 2e-4) > 0.5) & (depth > 0)
        differ = cam.fx * (a_l - a_s) * np.abs(1.0 / np.maximum(depth, 1e-3) - 1.0 / focus) >= 0.5
        print(f"pair f/{ns[-1]:g} vs f/{ns[0]:g}, focus {focus:g} m, side {side} (fx*A_large = "
              f"{cam.fx * a_l:.1f} px.m), textured & blur diff >= 0.5 px: {bands(res.depth, depth, textured & differ)}")
        print(f"   same, confidence > 0.2: {bands(res.depth, depth, textured & differ & (res.confidence > 0.2))}")
    stack = [by_key[(fid, ns[0], f)].load_image() for f in focuses]
    res = depth_from_focus(stack, focuses)
    tex = texture_energy(stack[0])[0, 0].numpy()
    textured = (tex / (tex + 2e-4) > 0.5) & (depth > 0)
    print(f"focal stack f/{ns[0]:g} at {focuses} m, depth from focus, textured: {bands(res.depth, depth, textured)}")
    a_l = float(cam.focal_length_mm) / 1000 / ns[0]
    res = dfd_focal_stack(stack, focuses, cam.fx, a_l, depth_range=(2.0, 300.0))
    print(f"focal stack f/{ns[0]:g} at {focuses} m, thin-lens inversion, textured: "
          f"{bands(res.depth, depth, textured)}")


def speed_section() -> None:
    print("\n== speed of one defocus call, 320x192, max CoC 8 px (min of 5 runs; machine load "
          f"{open('/proc/loadavg').read().split()[0] if Path('/proc/loadavg').exists() else '?'})")
    g = torch.Generator().manual_seed(0)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for b in (1, 3):
            img = torch.rand(b, 3, 192, 320, generator=g)
            depth = 3.0 + 60.0 * torch.rand(b, 1, 192, 320, generator=g)
            a = aperture_for_max_blur(350.0, 3.0, 63.0, 10.0, 8.0)
            for fill in (False, True):
                defocus(img, depth, 350.0, a, 10.0, fill_hidden=fill)
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    defocus(img, depth, 350.0, a, 10.0, fill_hidden=fill)
                    times.append(time.perf_counter() - t0)
                d = depth.clone().requires_grad_()
                t0 = time.perf_counter()
                defocus(img, d, 350.0, a, 10.0, fill_hidden=fill).sum().backward()
                fb = time.perf_counter() - t0
                print(f"threads {threads}, B={b}, fill_hidden={fill!s:5}: forward {1000 * min(times):6.0f} ms, "
                      f"forward+backward {1000 * fb:6.0f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--street", type=Path, default=None, help="existing synthetic street scene folder to use")
    p.add_argument("--no-street", action="store_true", help="skip the street section")
    p.add_argument("--quick", action="store_true", help="smaller renders, fewer lens samples")
    args = p.parse_args()
    torch.set_num_threads(1)
    planes_section(args.quick)
    if not args.no_street:
        street_section(args.street, args.quick)
    speed_section()


if __name__ == "__main__":
    main()
