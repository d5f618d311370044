"""gsplat's densification strategies driven by the CPU rasterizer's info dict (no CUDA anywhere)."""

from __future__ import annotations

import math

import torch
from gsplat.strategy import DefaultStrategy

from recon.render import rasterize
from recon.train.strategy import TorchMCMCStrategy, compute_relocation


def make_params(n: int = 200, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 0.7, 0.5]) + torch.tensor([0.0, 0.0, 5.0])
    params = torch.nn.ParameterDict({
        "means": torch.nn.Parameter(means),
        "scales": torch.nn.Parameter(torch.log(torch.rand(n, 3, generator=g) * 0.1 + 0.02)),
        "quats": torch.nn.Parameter(torch.randn(n, 4, generator=g)),
        "opacities": torch.nn.Parameter(torch.logit(torch.rand(n, generator=g) * 0.8 + 0.1)),
        "colors": torch.nn.Parameter(torch.rand(n, 3, generator=g)),
    })
    opts = {k: torch.optim.Adam([{"params": p, "lr": 1e-3, "name": k}]) for k, p in params.items()}
    return params, opts


def render(params, w=40, h=30):
    vm = torch.eye(4)[None]
    ks = torch.tensor([[35.0, 0, w / 2], [0, 35.0, h / 2], [0, 0, 1]])[None]
    return rasterize(params["means"], params["quats"], torch.exp(params["scales"]),
                     torch.sigmoid(params["opacities"]), params["colors"], vm, ks, w, h)


def test_default_strategy_refines_on_cpu():
    params, opts = make_params()
    strategy = DefaultStrategy(refine_start_iter=1, refine_every=2, grow_grad2d=1e-6, reset_every=1000,
                               refine_scale2d_stop_iter=10)
    strategy.check_sanity(params, opts)
    state = strategy.initialize_state(scene_scale=1.0)
    target = torch.rand(1, 30, 40, 3)
    n0 = len(params["means"])
    for step in range(5):
        img, _, info = render(params)
        strategy.step_pre_backward(params, opts, state, step, info)
        ((img - target) ** 2).mean().backward()
        assert info["means2d"].grad is not None and info["means2d"].grad.abs().sum() > 0
        for o in opts.values():
            o.step()
            o.zero_grad(set_to_none=True)
        strategy.step_post_backward(params, opts, state, step, info, packed=False)
    n1 = len(params["means"])
    assert n1 != n0  # Gaussians were duplicated/split (and maybe pruned)
    for k, p in params.items():
        assert len(p) == n1 and torch.isfinite(p).all(), k
        assert opts[k].param_groups[0]["params"][0] is p
    img, _, _ = render(params)
    assert torch.isfinite(img).all()


def test_torch_relocation_matches_formula():
    n_max = 51
    binoms = torch.tensor([[math.comb(n, k) if k <= n else 0 for k in range(n_max)] for n in range(n_max)],
                          dtype=torch.float64)
    op = torch.tensor([0.3, 0.9, 0.5], dtype=torch.float64)
    sc = torch.ones(3, 3, dtype=torch.float64)
    ratios = torch.tensor([1, 2, 4])
    new_op, new_sc = compute_relocation(op, sc, ratios, binoms)
    # n = 1: unchanged
    assert abs(new_op[0] - 0.3) < 1e-12 and torch.allclose(new_sc[0], sc[0])
    # combining n copies of the new opacity gives the old one back
    torch.testing.assert_close(1 - (1 - new_op) ** ratios.double(), op)
    # scale from the explicit double sum of the paper's equation 9
    for j in (1, 2):
        n, o1 = int(ratios[j]), new_op[j].item()
        denom = sum(math.comb(i - 1, k) * (-1) ** k / math.sqrt(k + 1) * o1 ** (k + 1)
                    for i in range(1, n + 1) for k in range(i))
        assert abs(new_sc[j, 0].item() - op[j].item() / denom) < 1e-10


def test_mcmc_strategy_runs_on_cpu():
    params, opts = make_params(100)
    with torch.no_grad():
        params["opacities"][:10] = -10.0  # dead Gaussians to relocate
    strategy = TorchMCMCStrategy(cap_max=120, refine_start_iter=0, refine_every=1, min_opacity=0.005)
    state = strategy.initialize_state()
    means_before = params["means"].detach().clone()
    for step in range(1, 3):
        img, _, info = render(params)
        img.mean().backward()
        for o in opts.values():
            o.step()
            o.zero_grad(set_to_none=True)
        strategy.step_post_backward(params, opts, state, step, info, lr=1e-3)
    assert len(params["means"]) == 110  # +5% per refine step: 100 -> 105 -> 110
    assert (torch.sigmoid(params["opacities"][:10]) > 0.005).all()  # dead ones relocated
    assert not torch.equal(params["means"][:100].detach(), means_before)  # noise injected
    for p in params.values():
        assert torch.isfinite(p).all()
