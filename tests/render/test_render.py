"""recon.render CPU rasterizer against the dense brute-force reference and gsplat's pure-torch pieces."""

from __future__ import annotations

import pytest
import torch
from support.gaussians import random_gaussians

from recon.errors import ReconError
from recon.render import rasterize
from recon.render.cpp_ext import extension_available
from recon.render.cpu_backend import reference_rasterize

IMPLS = ["torch", pytest.param("cpp", marks=pytest.mark.skipif(not extension_available(), reason="no C++ ext"))]
DT = torch.float64


def scene(n: int = 60, seed: int = 0, dtype=DT, depth: float = 5.0, spread: float = 1.2, sh: int | None = None):
    return tuple(random_gaussians(n, seed, dtype, depth, spread, sh=sh))


def camera(w: int, h: int, f: float = 40.0, n_cam: int = 1, dtype=DT):
    vms, ks = [], []
    for c in range(n_cam):
        vm = torch.eye(4, dtype=dtype)
        ang = 0.08 * c
        vm[0, 0], vm[0, 2], vm[2, 0], vm[2, 2] = torch.cos(torch.tensor(ang)), torch.sin(torch.tensor(ang)), -torch.sin(
            torch.tensor(ang)), torch.cos(torch.tensor(ang))
        vm[0, 3] = 0.2 * c
        vms.append(vm)
        ks.append(torch.tensor([[f, 0, w / 2 + 0.3 * c], [0, f * 1.05, h / 2], [0, 0, 1]], dtype=dtype))
    return torch.stack(vms), torch.stack(ks)


def run_both(params, vm, ks, w, h, impl, loss_w=None, **kw):
    """Render with the tiled rasterizer and the dense reference; return outputs and gradients of one scalar loss."""
    res = []
    for which in ("tiled", "ref"):
        ps = [p.detach().clone().requires_grad_() for p in params]
        fn = rasterize if which == "tiled" else reference_rasterize
        extra = {"cpu_impl": impl, "backend": "cpu"} if which == "tiled" else {}
        r, a, info = fn(*ps, vm, ks, w, h, **kw, **extra)
        g = torch.Generator().manual_seed(1)
        wts = torch.rand(r.shape, generator=g, dtype=r.dtype)
        loss = (r * wts).sum() + 0.7 * (a * torch.rand(a.shape, generator=g, dtype=a.dtype)).sum()
        grads = torch.autograd.grad(loss, ps, allow_unused=True)
        res.append((r.detach(), a.detach(), grads, info))
    return res


def assert_match(res, atol=1e-9):
    (r1, a1, g1, _), (r2, a2, g2, _) = res
    assert r1.shape == r2.shape and a1.shape == a2.shape
    torch.testing.assert_close(r1, r2, atol=atol, rtol=1e-7)
    torch.testing.assert_close(a1, a2, atol=atol, rtol=1e-7)
    for x, y in zip(g1, g2):
        if y is None:
            assert x is None or x.abs().max() == 0
            continue
        torch.testing.assert_close(x, y, atol=atol * max(1.0, y.abs().max().item()), rtol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", ["RGB", "D", "ED", "RGB+D", "RGB+ED"])
def test_values_and_grads_match_dense_reference(impl, mode):
    w, h = 37, 29  # not a multiple of the tile size: partial tiles on both edges
    vm, ks = camera(w, h)
    res = run_both(scene(80), vm, ks, w, h, impl, render_mode=mode)
    assert_match(res)
    assert res[0][1].max() > 0.5  # the scene is actually visible
    if mode == "RGB":
        # every input gets a non-trivial gradient, so the comparison above is not vacuous
        for g in res[1][2]:
            assert g.abs().max() > 1e-3


@pytest.mark.parametrize("impl", IMPLS)
def test_sh_backgrounds_antialiased_multicamera(impl):
    w, h = 33, 20
    vm, ks = camera(w, h, n_cam=3)
    bg = torch.rand(3, 3, dtype=DT)
    for deg in (0, 1, 3):
        res = run_both(scene(50, seed=deg, sh=deg), vm, ks, w, h, impl, sh_degree=deg, backgrounds=bg,
                       rasterize_mode="antialiased")
        assert_match(res)
    # per-camera colours [C, N, D]
    p = list(scene(40))
    p[4] = torch.rand(3, 40, 3, dtype=DT)
    assert_match(run_both(p, vm, ks, w, h, impl, backgrounds=bg, render_mode="RGB+ED"))


@pytest.mark.parametrize("impl", IMPLS)
def test_float32_close_to_float64_reference(impl):
    w, h = 48, 32
    vm, ks = camera(w, h)
    p64 = scene(120, seed=3)
    r64, a64, _ = reference_rasterize(*p64, vm, ks, w, h)
    p32 = [t.float() for t in p64]
    r32, a32, _ = rasterize(*p32, vm.float(), ks.float(), w, h, backend="cpu", cpu_impl=impl)
    assert r32.dtype == torch.float32
    assert (r32.double() - r64).abs().max() < 2e-3
    assert (a32.double() - a64).abs().max() < 2e-3


@pytest.mark.parametrize("impl", IMPLS)
def test_edge_cases(impl):
    vm, ks = camera(17, 5)
    # no Gaussians
    empty = [t[:0] for t in scene(4)]
    r, a, info = rasterize(*empty, vm, ks, 17, 5, backend="cpu", cpu_impl=impl, backgrounds=torch.ones(1, 3, dtype=DT))
    assert r.shape == (1, 5, 17, 3) and torch.all(r == 1) and torch.all(a == 0)
    assert info["means2d"].shape == (1, 0, 2)
    # all behind the camera
    p = list(scene(20))
    p[0] = p[0] * torch.tensor([1, 1, -1], dtype=DT)
    res = run_both(p, vm, ks, 17, 5, impl)
    assert res[0][1].abs().max() == 0 and (res[0][3]["radii"] == 0).all()
    for g in res[0][2]:
        assert torch.isfinite(g).all()
    # one huge Gaussian covering the image (and then some), 1x1 and 17x5 images
    big = [torch.tensor([[0.1, -0.05, 3.0]], dtype=DT), torch.tensor([[1.0, 0.2, 0.1, 0.0]], dtype=DT),
           torch.tensor([[4.0, 3.0, 2.0]], dtype=DT), torch.tensor([0.8], dtype=DT),
           torch.tensor([[0.2, 0.5, 0.9]], dtype=DT)]
    for w, h in ((17, 5), (1, 1)):
        vm1, ks1 = camera(w, h, f=30.0)
        res = run_both(big, vm1, ks1, w, h, impl)
        assert_match(res)
        assert res[0][1].min() > 0.5
        res = run_both(scene(30, seed=5), vm1, ks1, w, h, impl, render_mode="RGB+D")
        assert_match(res)


@pytest.mark.parametrize("impl", IMPLS)
def test_gaussians_straddling_tile_borders(impl):
    w, h = 40, 40
    vm, ks = camera(w, h, f=40.0)
    # centres exactly on tile borders (x, y = 16, 32 px) and on image borders
    pix = torch.tensor([[16.0, 16.0], [32.0, 16.0], [16.0, 32.0], [0.0, 20.0], [40.0, 40.0], [15.9, 16.1]], dtype=DT)
    z = torch.tensor([4.0, 5.0, 6.0, 4.5, 5.5, 6.5], dtype=DT)
    means = torch.stack([(pix[:, 0] - w / 2) * z / 40.0, (pix[:, 1] - h / 2) * z / 42.0, z], -1)
    n = len(z)
    p = [means, torch.tensor([[1.0, 0, 0, 0]] * n, dtype=DT), torch.full((n, 3), 0.08, dtype=DT),
         torch.full((n,), 0.9, dtype=DT), torch.rand(n, 3, dtype=DT)]
    res = run_both(p, vm, ks, w, h, impl)
    assert_match(res)
    assert (res[0][3]["tiles_per_gauss"] >= 2).sum() >= 3  # really spanning several tiles


@pytest.mark.parametrize("impl", IMPLS)
def test_dense_occluded_scene_early_stop(impl):
    """Many opaque layers: exercises the transmittance < 1e-4 stop and long per-tile lists."""
    w, h = 32, 24
    vm, ks = camera(w, h, f=30.0)
    m, q, s, o, c = scene(400, seed=7, spread=0.6)
    o = torch.full_like(o, 0.98)
    res = run_both([m, q, s * 2, o, c], vm, ks, w, h, impl)
    assert_match(res, atol=1e-8)
    assert (res[0][1] > 0.99).double().mean() > 0.3  # many pixels reach the stop


def test_cpp_and_torch_paths_agree_float32():
    if not extension_available():
        pytest.skip("no C++ ext")
    w, h = 64, 48
    vm, ks = camera(w, h, f=50.0, dtype=torch.float32)
    p = [t.float() for t in scene(300, seed=11)]
    outs = []
    for impl in ("torch", "cpp"):
        ps = [t.clone().requires_grad_() for t in p]
        r, a, info = rasterize(*ps, vm, ks, w, h, backend="cpu", cpu_impl=impl, absgrad=True)
        (r.sum() + a.sum()).backward()
        outs.append((r.detach(), [t.grad for t in ps], info["means2d"].grad, info["means2d"].absgrad, info))
    (r1, g1, m1, ab1, i1), (r2, g2, m2, ab2, i2) = outs
    assert torch.equal(i1["radii"], i2["radii"])
    assert torch.equal(i1["flatten_ids"], i2["flatten_ids"]) and torch.equal(i1["isect_offsets"], i2["isect_offsets"])
    assert torch.equal(i1["isect_ids"], i2["isect_ids"])
    torch.testing.assert_close(r1, r2, atol=1e-5, rtol=1e-4)
    for x, y in zip(g1 + [m1, ab1], g2 + [m2, ab2]):
        torch.testing.assert_close(x, y, atol=1e-4 * max(1.0, y.abs().max().item()), rtol=1e-3)
    assert (ab1 >= m1.abs() - 1e-5).all() and ab1.abs().max() > 0


def test_projection_and_sh_match_gsplat_torch_impl():
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

    from recon.render.projection import project_gaussians
    from recon.render.sh import eval_sh

    w, h = 50, 40
    vm, ks = camera(w, h, n_cam=2)
    m, q, s, o, _ = scene(100, seed=2)
    covars, _ = _quat_scale_to_covar_preci(q, s, compute_preci=False)
    radii_g, m2_g, d_g, con_g, comp_g = _fully_fused_projection(m, covars, vm, ks, w, h, calc_compensations=True)
    ours = project_gaussians(m, q, s, None, vm, ks, w, h, calc_compensations=True)
    vis = (radii_g > 0).all(-1)
    assert vis.sum() > 50
    torch.testing.assert_close(ours.means2d[vis], m2_g[vis])
    torch.testing.assert_close(ours.conics[vis], con_g[vis])
    torch.testing.assert_close(ours.depths, d_g)
    torch.testing.assert_close(ours.compensations[vis], comp_g[vis])
    # gsplat's torch impl uses 3.33 sigma and the same cull: identical radii when no opacity is given
    assert torch.equal(ours.radii, radii_g.to(torch.int32))
    dirs = torch.randn(30, 3, dtype=DT)
    for deg in range(5):
        coeffs = torch.randn(30, (deg + 1) ** 2 + 2, 3, dtype=DT)
        torch.testing.assert_close(eval_sh(deg, dirs, coeffs), _spherical_harmonics(deg, dirs, coeffs))


def test_cpp_projection_matches_torch_projection():
    if not extension_available():
        pytest.skip("no C++ ext")
    from recon.render.projection import project_gaussians, project_gaussians_cpp

    w, h = 50, 40
    vm, ks = camera(w, h, n_cam=2)
    m, q, s, o, _ = scene(200, seed=4)
    m[:5, 0] += 30.0  # far outside the frustum: exercises the x clamp of the Jacobian
    outs = []
    for fn in (project_gaussians, project_gaussians_cpp):
        ps = [t.clone().requires_grad_() for t in (m, q, s)]
        pr = fn(ps[0], ps[1], ps[2], o, vm, ks, w, h, calc_compensations=True)
        g = torch.Generator().manual_seed(0)
        vis = (pr.radii > 0).all(-1)
        loss = sum((t * torch.rand(t.shape, generator=g, dtype=DT))[vis].sum()
                   for t in (pr.means2d, pr.conics, pr.depths, pr.compensations))
        outs.append((pr, torch.autograd.grad(loss, ps)))
    (p1, g1), (p2, g2) = outs
    assert torch.equal(p1.radii, p2.radii)
    for a, b in ((p1.means2d, p2.means2d), (p1.conics, p2.conics), (p1.depths, p2.depths),
                 (p1.compensations, p2.compensations)):
        torch.testing.assert_close(a, b)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-7)


def test_info_dict_and_errors():
    w, h = 20, 12
    vm, ks = camera(w, h, dtype=torch.float32)
    p = [t.float().requires_grad_() for t in scene(30)]
    r, a, info = rasterize(*p, vm, ks, w, h)
    assert r.shape == (1, h, w, 3) and a.shape == (1, h, w, 1)
    for key in ("means2d", "radii", "depths", "conics", "opacities", "width", "height", "n_cameras", "tile_size"):
        assert key in info
    assert info["gaussian_ids"] is None and info["radii"].dtype == torch.int32 and info["radii"].shape == (1, 30, 2)
    r.sum().backward()
    assert info["means2d"].grad is not None and info["means2d"].grad.shape == (1, 30, 2)
    with pytest.raises(ReconError, match="quats"):
        rasterize(p[0], p[1][:3], *p[2:], vm, ks, w, h)
    with pytest.raises(ReconError, match="render_mode"):
        rasterize(*p, vm, ks, w, h, render_mode="X")
    with pytest.raises(ReconError, match="packed"):
        rasterize(*p, vm, ks, w, h, packed=True)
    with pytest.raises(ReconError, match="CUDA"):
        rasterize(*p, vm, ks, w, h, backend="gsplat")
