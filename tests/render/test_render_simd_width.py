"""The AVX2 build of the C++ compositor (8 float lanes) gives bit for bit the images, alphas, contributor counts
and gradients of the 16-byte build (4 float lanes): same per-lane arithmetic, no fused multiply-add, and the
backward's per-lane sums folded in the order of the 4-lane build.
"""

from __future__ import annotations

import pytest
import torch
from support.gaussians import random_gaussians

from recon.render import cpp_ext

pytestmark = pytest.mark.skipif(not cpp_ext.extension_available(), reason="no C++ ext (no compiler)")
needs_avx2 = pytest.mark.skipif(not cpp_ext.cpu_has_avx2(), reason="this CPU has no AVX2: only the 16-byte build runs")


def composite_inputs(n: int, seed: int, w: int, h: int, tile_size: int, d: int, dtype: torch.dtype,
                     n_img: int = 1, bg: bool = False) -> tuple:
    """``rasterize_fwd`` arguments for ``n`` random Gaussians (about 5 m ahead, scales 3-28 cm) seen by ``n_img``
    pinhole cameras (identity pose, focal 0.9 w pixels, principal point at the image centre)."""
    from recon.render.binning import isect_tiles_cpp, tile_grid
    from recon.render.projection import project_gaussians

    means, quats, scales, opac, _ = random_gaussians(n, seed, torch.float64, spread=0.8)
    vm = torch.eye(4, dtype=torch.float64)[None].repeat(n_img, 1, 1)
    vm[:, 0, 3] = torch.linspace(0, 0.3, n_img, dtype=torch.float64)  # cameras side by side
    f = 0.9 * w
    ks = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=torch.float64)[None].repeat(n_img, 1, 1)
    with torch.no_grad():
        proj = project_gaussians(means, quats, scales, opac, vm, ks, w, h)
    tw, th = tile_grid(w, h, tile_size)
    bins = isect_tiles_cpp(proj.means2d, proj.radii, proj.depths, tile_size, tw, th)
    g = torch.Generator().manual_seed(seed + 1)
    colors = torch.rand(n_img * n, d, generator=g, dtype=torch.float64)
    backgrounds = torch.rand(n_img, d, generator=g, dtype=torch.float64) if bg else None
    opacities = opac[None].repeat(n_img, 1).reshape(-1)
    floats = [proj.means2d.reshape(-1, 2), proj.conics.reshape(-1, 3), colors, opacities]
    floats = [t.to(dtype).contiguous() for t in floats]
    bgt = backgrounds.to(dtype).contiguous() if backgrounds is not None else None
    return (*floats, bgt, w, h, tile_size, bins.tile_offsets.int().contiguous(), bins.flatten_ids.int().contiguous())


def forward_and_backward(ext, args: tuple, split: bool, seed: int = 5) -> list[torch.Tensor]:
    """Forward outputs, then the backward's gradients (with absgrad, and the second-loss means2d gradient when
    ``split``) of fixed random output gradients."""
    out, t_final, alphas, n_contrib = ext.rasterize_fwd(*args)
    g = torch.Generator().manual_seed(seed)
    g_out = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    g_alpha = torch.randn(alphas.shape[:-1], generator=g, dtype=torch.float64).to(out.dtype)
    g_out2 = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype) if split else None
    g_alpha2 = torch.randn(alphas.shape[:-1], generator=g, dtype=torch.float64).to(out.dtype) if split else None
    grads = ext.rasterize_bwd(*args, t_final, n_contrib, g_out, g_alpha, True, g_out2, g_alpha2)
    return [out, t_final, alphas, n_contrib, *grads]


NAMES = ["image", "t_final", "alpha", "n_contrib", "v_means2d", "v_conics", "v_colors", "v_opacities",
         "v_means2d_abs", "v_means2d_split"]


@needs_avx2
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("w", "h", "tile_size", "d", "n_img", "split"), [
    (61, 37, 16, 3, 1, False),   # odd image size, partial tiles
    (45, 29, 13, 4, 2, True),    # tile size not a multiple of 8 (nor 4), two cameras, second loss
    (33, 27, 16, 19, 1, False),  # more than 16 channels (the backward's second colour path)
    (40, 24, 8, 33, 1, True),
])
def test_avx2_build_equals_baseline_build_bit_for_bit(dtype, w, h, tile_size, d, n_img, split):
    base, wide = cpp_ext.load_extension(cpp_ext.BASELINE), cpp_ext.load_extension(cpp_ext.AVX2)
    assert base is not wide
    args = composite_inputs(220, seed=w + d, w=w, h=h, tile_size=tile_size, d=d, dtype=dtype, n_img=n_img,
                            bg=split)
    a = forward_and_backward(base, args, split)
    b = forward_and_backward(wide, args, split)
    # the scene exercises the cut-offs: opaque pixels stop early, some pixels see nothing
    assert (a[1] < 0.05).any() and (a[1] == 1).any()
    for name, x, y in zip(NAMES, a, b):
        assert x.abs().max() > 0 or (name == "v_means2d_split" and not split), name
        assert torch.equal(x, y), f"{name}: max difference {(x.double() - y.double()).abs().max().item():.3g}"


@needs_avx2
def test_avx2_exp_equals_baseline_exp():
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.linspace(-90.0, 1.0, 100_003), -6 * torch.rand(10_001, generator=g)])
    ya = cpp_ext.load_extension(cpp_ext.BASELINE).exp_f32(x.contiguous())
    yb = cpp_ext.load_extension(cpp_ext.AVX2).exp_f32(x.contiguous())
    assert torch.equal(ya, yb)


def test_environment_forces_the_baseline_build(monkeypatch):
    monkeypatch.setenv(cpp_ext.SIMD_ENV, "sse2")
    assert cpp_ext.simd_variant() == cpp_ext.BASELINE
    assert cpp_ext.load_extension() is cpp_ext.load_extension(cpp_ext.BASELINE)
    monkeypatch.delenv(cpp_ext.SIMD_ENV)
    want = cpp_ext.AVX2 if cpp_ext.cpu_has_avx2() else cpp_ext.BASELINE
    assert cpp_ext.simd_variant() == want
    assert cpp_ext.load_extension() is cpp_ext.load_extension(want)
