"""More parity checks of the C++ CPU rasterizer: float32 against the float64 dense reference, its float32 exp,
tile sizes that are not a multiple of the vector width, long feature vectors, and the split densification gradient.
"""

from __future__ import annotations

import pytest
import torch
from support.gaussians import random_gaussians

from recon.render import rasterize
from recon.render.cpp_ext import extension_available, load_extension
from recon.render.cpu_backend import reference_rasterize

pytestmark = pytest.mark.skipif(not extension_available(), reason="no C++ ext")
DT = torch.float64


def scene(n: int, seed: int, d: int = 3, dtype=DT, depth: float = 5.0, spread: float = 1.2):
    """N Gaussians in front of the camera (metres), random orientations, scales 3-28 cm, D-channel colours."""
    return random_gaussians(n, seed, dtype, depth, spread, channels=d)


def camera(w: int, h: int, f: float = 40.0, dtype=DT):
    """Identity pose, pinhole intrinsics in pixels with the principal point at the image centre."""
    return torch.eye(4, dtype=dtype)[None], torch.tensor([[[f, 0, w / 2], [0, f * 1.05, h / 2], [0, 0, 1]]],
                                                         dtype=dtype)


def render_and_grads(params, vm, ks, w, h, fn, seed: int = 1, **kw):
    """Outputs and the gradients of a fixed random weighting of colours and alphas."""
    ps = [p.detach().clone().requires_grad_() for p in params]
    r, a, info = fn(*ps, vm, ks, w, h, **kw)
    g = torch.Generator().manual_seed(seed)
    loss = (r * torch.rand(r.shape, generator=g, dtype=r.dtype)).sum()
    loss = loss + 0.7 * (a * torch.rand(a.shape, generator=g, dtype=a.dtype)).sum()
    grads = torch.autograd.grad(loss, ps)
    return r.detach(), a.detach(), grads


def test_float32_exp_within_one_ulp():
    x = torch.linspace(-87.0, 0.0, 2_000_003, dtype=torch.float32)
    x = torch.cat([x, -torch.rand(100_000, generator=torch.Generator().manual_seed(0)) * 6])  # the alpha range
    y = load_extension().exp_f32(x.contiguous()).double()
    ref = torch.exp(x.double())
    ulp = (torch.nextafter(ref.float(), torch.tensor(float("inf"))).double() - ref.float().double())
    assert ((y - ref).abs() / ulp).max() <= 1.0
    assert load_extension().exp_f32(torch.tensor([-90.0, -1e30, 0.0])).tolist() == [0.0, 0.0, 1.0]


def test_float32_compositing_matches_float64_reference():
    """The float32 compositor (vector exp, per-lane sums) stays within float32 rounding of the float64 dense one.

    Both composite the same projected Gaussians (a float32 projection), so the comparison is of the compositing alone:
    a float32 projection against a float64 one moves Gaussians across the cut-offs (alpha 1/255, radius, stop).
    """
    from recon.render.binning import isect_tiles_cpp, tile_grid
    from recon.render.composite import RasterizeToPixels
    from recon.render.projection import project_gaussians
    from recon.render.reference import dense_composite

    w, h = 45, 34
    vm, ks = camera(w, h, dtype=torch.float32)
    means, quats, scales, opac, colors = [t.float() for t in scene(150, seed=21)]
    with torch.no_grad():
        proj = project_gaussians(means, quats, scales, opac, vm, ks, w, h)
    tw, th = tile_grid(w, h, 16)
    bins = isect_tiles_cpp(proj.means2d, proj.radii, proj.depths, 16, tw, th)
    g = torch.Generator().manual_seed(2)
    wr, wa = torch.rand(1, h, w, 3, generator=g), torch.rand(1, h, w, 1, generator=g)
    outs = []
    for dt in (torch.float32, torch.float64):
        m2 = proj.means2d.to(dt).requires_grad_()
        con = proj.conics.to(dt).requires_grad_()
        op = opac.to(dt)[None].requires_grad_()
        col = colors.to(dt)[None].requires_grad_()
        if dt == torch.float32:
            r, a = RasterizeToPixels.apply(m2, con.reshape(-1, 3), col.reshape(-1, 3), op.reshape(-1), None, w, h,
                                           16, bins.tile_offsets, bins.flatten_ids, False, "cpp", None)
        else:
            r, a = dense_composite(m2, con, col, op, proj.depths.double(), proj.radii, None, w, h)
        loss = (r * wr.to(dt)).sum() + (a * wa.to(dt)).sum()
        outs.append((r.detach().double(), a.detach().double(), [x.double() for x in torch.autograd.grad(
            loss, [m2, con, op, col])]))
    (r32, a32, g32), (r64, a64, g64) = outs
    assert a64.max() > 0.5
    # measured: about 2e-7 for every output (float32 rounding)
    assert (r32 - r64).abs().max() < 5e-6
    assert (a32 - a64).abs().max() < 5e-6
    for x, y in zip(g32, g64):
        assert y.abs().max() > 1e-3
        assert (x - y).abs().max() < 5e-6 * y.abs().max()


@pytest.mark.parametrize("tile_size", [4, 7, 12, 17])
def test_tile_sizes_not_a_multiple_of_the_vector_width(tile_size):
    w, h = 37, 29
    vm, ks = camera(w, h)
    p = scene(80, seed=tile_size)
    (r1, a1, g1), (r2, a2, g2) = (
        render_and_grads(p, vm, ks, w, h, rasterize, backend="cpu", cpu_impl="cpp", tile_size=tile_size),
        render_and_grads(p, vm, ks, w, h, reference_rasterize),
    )
    torch.testing.assert_close(r1, r2, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(a1, a2, atol=1e-9, rtol=1e-7)
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y, atol=1e-9 * max(1.0, y.abs().max().item()), rtol=1e-6)


def test_long_feature_vectors():
    """More than 16 channels (the backward's colour terms take a second path there)."""
    w, h = 30, 22
    vm, ks = camera(w, h)
    p = scene(60, seed=4, d=19)
    bg = torch.rand(1, 19, dtype=DT)
    (r1, a1, g1), (r2, a2, g2) = (
        render_and_grads(p, vm, ks, w, h, rasterize, backend="cpu", cpu_impl="cpp", backgrounds=bg),
        render_and_grads(p, vm, ks, w, h, reference_rasterize, backgrounds=bg),
    )
    assert r1.shape == (1, h, w, 19)
    torch.testing.assert_close(r1, r2, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(a1, a2, atol=1e-9, rtol=1e-7)
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y, atol=1e-9 * max(1.0, y.abs().max().item()), rtol=1e-6)
    assert g1[4].abs().max() > 1e-3


def test_split_gradient_is_the_means2d_gradient_of_the_other_loss():
    """SplitGradient's means2d gradient equals the means2d gradient of a backward of that loss alone."""
    from recon.render.composite import SplitGradient  # noqa: F401 - the class the info dict hands out

    w, h = 40, 30
    vm, ks = camera(w, h)
    p = scene(90, seed=9)
    g = torch.Generator().manual_seed(3)
    w1 = torch.rand(1, h, w, 3, generator=g, dtype=DT)
    w2 = torch.rand(1, h, w, 3, generator=g, dtype=DT)
    wa = torch.rand(1, h, w, 1, generator=g, dtype=DT)

    ps = [t.clone().requires_grad_() for t in p]
    r, a, info = rasterize(*ps, vm, ks, w, h, backend="cpu", cpu_impl="cpp")
    split = info["split_grad"]
    split.grad_out, split.grad_alpha = w2, wa
    ((r * w1).sum() + (a * 0.3).sum()).backward()
    got = split.means2d_grad

    ps = [t.clone().requires_grad_() for t in p]
    r, a, info = rasterize(*ps, vm, ks, w, h, backend="cpu", cpu_impl="cpp")
    ((r * w2).sum() + (a * wa).sum()).backward()
    want = info["means2d"].grad
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-9)
