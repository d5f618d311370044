"""The multi-view depth loss: sampling convention, robust penalties, weights, shapes and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from recon.losses.multiview import multiview_depth_loss, robust_penalty, sample_bilinear


def _affine_depth(H: int = 12, W: int = 16) -> tuple[torch.Tensor, callable]:
    """Depth map whose value at pixel (u, v) is f(u + 0.5, v + 0.5) for an affine f (exact under bilinear)."""
    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 10.0 + 0.3 * x - 0.2 * y

    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    return f(u + 0.5, v + 0.5), f


def test_bilinear_sampling_uses_pixel_centre_convention() -> None:
    depth, f = _affine_depth()
    g = torch.Generator().manual_seed(0)
    # interior points (between the first and last pixel centres, where bilinear interpolation is exact)
    pix = torch.rand(50, 2, generator=g, dtype=torch.float64) * torch.tensor([14.0, 10.0]) + 0.6
    vals, inside = sample_bilinear(depth[None], pix[None])
    assert inside.all()
    torch.testing.assert_close(vals[0], f(pix[:, 0], pix[:, 1]), atol=1e-9, rtol=0)
    # at the pixel centre (u + 0.5, v + 0.5) the sample is the pixel value itself
    centre = torch.tensor([[[3.5, 4.5]]], dtype=torch.float64)
    assert sample_bilinear(depth[None], centre)[0].item() == pytest.approx(depth[4, 3].item(), abs=1e-12)


def test_loss_is_zero_at_the_target_and_grows_with_a_half_pixel_shift() -> None:
    depth, f = _affine_depth()
    pix = torch.tensor([[2.3, 3.7], [8.1, 5.5], [12.9, 9.2]], dtype=torch.float64)
    target = f(pix[:, 0], pix[:, 1])
    w = torch.ones(3, dtype=torch.float64)
    assert multiview_depth_loss(depth, pix, target, w).item() == pytest.approx(0.0, abs=1e-12)
    shifted = multiview_depth_loss(depth, pix + torch.tensor([0.5, 0.0], dtype=torch.float64), target, w, loss="l1")
    # an x shift of 0.5 px changes depth by 0.15 m: the log-depth residual is log(1 + 0.15 / d)
    expected = torch.log1p(0.15 / target).mean()
    assert shifted.item() == pytest.approx(expected.item(), rel=1e-9)


def test_robust_penalties_match_their_formulas() -> None:
    r = torch.tensor([-0.2, -0.03, 0.0, 0.01, 0.5], dtype=torch.float64)
    s = 0.05
    torch.testing.assert_close(robust_penalty(r, "l1", s), r.abs())
    huber = torch.tensor([0.2 - 0.025, 0.5 * 0.03**2 / s, 0.0, 0.5 * 0.01**2 / s, 0.5 - 0.025], dtype=torch.float64)
    torch.testing.assert_close(robust_penalty(r, "huber", s), huber)
    cauchy = 0.5 * s * torch.log1p((r / s) ** 2)
    torch.testing.assert_close(robust_penalty(r, "cauchy", s), cauchy)
    # a gross outlier costs far less under Cauchy than under L1 (robustness), Huber is linear there
    assert robust_penalty(torch.tensor(2.0), "cauchy", s) < 0.2 * robust_penalty(torch.tensor(2.0), "l1", s)
    with pytest.raises(ValueError):
        robust_penalty(r, "l2", s)  # type: ignore[arg-type]


def test_relative_error_is_scale_invariant_and_weights_average() -> None:
    g = torch.Generator().manual_seed(1)
    depth = 5.0 + 20.0 * torch.rand(20, 30, generator=g)
    pix = torch.rand(40, 2, generator=g) * torch.tensor([30.0, 20.0])
    target = 5.0 + 20.0 * torch.rand(40, generator=g)
    w = torch.rand(40, generator=g)
    a = multiview_depth_loss(depth, pix, target, w, loss="cauchy", scale=0.1)
    b = multiview_depth_loss(depth * 7.0, pix, target * 7.0, w, loss="cauchy", scale=0.1)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    # the weighted mean: a point with zero weight does not count, equal weights give the plain mean
    w0 = w.clone()
    w0[0] = 0.0
    t_bad = target.clone()
    t_bad[0] = 1000.0
    assert multiview_depth_loss(depth, pix, t_bad, w0).item() == pytest.approx(
        multiview_depth_loss(depth, pix, target, w0).item(), rel=1e-6)
    per_point = torch.stack([multiview_depth_loss(depth, pix[i:i + 1], target[i:i + 1], w[i:i + 1], loss="l1")
                             for i in range(40)])
    weighted = (w * per_point).sum() / w.sum()
    assert multiview_depth_loss(depth, pix, target, w, loss="l1").item() == pytest.approx(weighted.item(), rel=1e-5)


def test_gradient_reaches_only_the_four_neighbouring_pixels() -> None:
    depth = torch.full((8, 10), 10.0, requires_grad=True)
    pix = torch.tensor([[4.2, 3.9]])
    loss = multiview_depth_loss(depth, pix, torch.tensor([12.0]), torch.tensor([1.0]), loss="l1")
    loss.backward()
    assert depth.grad is not None
    nz = torch.nonzero(depth.grad)
    # x = 4.2 lies between the centres of columns 3 (3.5) and 4 (4.5); y = 3.9 between rows 3 (3.5) and 4 (4.5)
    assert sorted(map(tuple, nz.tolist())) == [(3, 3), (3, 4), (4, 3), (4, 4)]
    assert (depth.grad[depth.grad != 0] < 0).all()  # rendered too near: the gradient pushes depth up
    assert depth.grad.sum().item() == pytest.approx(-1.0 / 10.0, rel=1e-5)  # d|log d - log t|/dd = -1/d


def test_batches_broadcasting_and_invalid_points() -> None:
    g = torch.Generator().manual_seed(2)
    depth = 5.0 + torch.rand(3, 10, 12, generator=g)
    pix = torch.rand(3, 7, 2, generator=g) * torch.tensor([12.0, 10.0])
    target = 5.0 + torch.rand(3, 7, generator=g)
    w = torch.ones(3, 7)
    batched = multiview_depth_loss(depth, pix, target, w)
    singles = [multiview_depth_loss(depth[b], pix[b], target[b], w[b]) for b in range(3)]
    assert batched.item() == pytest.approx(sum(s.item() for s in singles) / 3, rel=1e-5)
    shared = multiview_depth_loss(depth, pix[0], target[0], w[0])
    assert shared.item() == pytest.approx(
        sum(multiview_depth_loss(depth[b], pix[0], target[0], w[0]).item() for b in range(3)) / 3, rel=1e-5)
    # outside the image, non-positive / non-finite targets: ignored
    bad_pix = torch.tensor([[-3.0, 2.0], [5.0, 50.0], [2.0, 2.0], [3.0, 3.0]])
    bad_t = torch.tensor([100.0, 100.0, 0.0, math.nan])
    d = depth[0].clone().requires_grad_(True)
    out = multiview_depth_loss(d, bad_pix, bad_t, torch.ones(4))
    assert out.item() == 0.0
    out.backward()  # still attached to the graph
    empty = multiview_depth_loss(d, torch.zeros(0, 2), torch.zeros(0), torch.zeros(0))
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError):
        multiview_depth_loss(depth, pix, target[:, :3], w)


def test_gradient_descent_pulls_rendered_depth_to_the_targets() -> None:
    g = torch.Generator().manual_seed(3)
    true = 4.0 + 30.0 * torch.rand(16, 20, generator=g)
    v, u = torch.meshgrid(torch.arange(16), torch.arange(20), indexing="ij")
    pix = torch.stack([u.flatten() + 0.5, v.flatten() + 0.5], 1).float()  # pixel centres: one pixel each
    target = true.flatten()
    logd = torch.full((16, 20), math.log(10.0), requires_grad=True)
    opt = torch.optim.Adam([logd], lr=0.1)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = multiview_depth_loss(logd.exp(), pix, target, torch.ones_like(target), loss="huber", scale=0.05)
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first
    assert ((logd.exp() - true).abs() / true).median().item() < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_same_value_on_cuda() -> None:
    g = torch.Generator().manual_seed(4)
    depth = 5.0 + torch.rand(10, 12, generator=g)
    pix = torch.rand(9, 2, generator=g) * torch.tensor([12.0, 10.0])
    target = 5.0 + torch.rand(9, generator=g)
    w = torch.rand(9, generator=g)
    cpu = multiview_depth_loss(depth, pix, target, w)
    gpu = multiview_depth_loss(depth.cuda(), pix.cuda(), target.cuda(), w.cuda())
    assert gpu.device.type == "cuda"
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-5)


def test_behind_scale_softens_only_the_pull_on_depth_rendered_behind_its_target() -> None:
    g = torch.Generator().manual_seed(3)
    depth = (10.0 + 5.0 * torch.rand(12, 16, generator=g, dtype=torch.float64)).requires_grad_(True)
    pix = torch.tensor([[3.5, 4.5], [10.5, 7.5]], dtype=torch.float64)  # pixel centres: samples are pixel values
    here = torch.stack([depth[4, 3], depth[7, 10]]).detach()
    # point 0: target 20% nearer than rendered (rendered behind it, r > 0); point 1: target 20% farther (r < 0)
    target = here * torch.tensor([0.8, 1.2], dtype=torch.float64)
    full = multiview_depth_loss(depth, pix, target, loss="l1")
    soft = multiview_depth_loss(depth, pix, target, loss="l1", behind_scale=0.25)
    r = torch.log(here / target)
    assert full.item() == pytest.approx(r.abs().mean().item(), rel=1e-9)
    assert soft.item() == pytest.approx((0.25 * r[0].abs() + r[1].abs()).item() / 2, rel=1e-9)
    (grad,) = torch.autograd.grad(soft, depth)
    (grad_full,) = torch.autograd.grad(multiview_depth_loss(depth, pix, target, loss="l1"), depth)
    assert grad[4, 3].item() == pytest.approx(0.25 * grad_full[4, 3].item(), rel=1e-9)
    assert grad[7, 10].item() == pytest.approx(grad_full[7, 10].item(), rel=1e-9)
    assert grad[4, 3] > 0 > grad[7, 10]  # still pulls the behind point forward, only more gently
    with pytest.raises(ValueError, match="behind_scale"):
        multiview_depth_loss(depth, pix, target, behind_scale=-1.0)


def test_count_normalisation_makes_weights_absolute_confidences() -> None:
    g = torch.Generator().manual_seed(4)
    depth = 5.0 + 20.0 * torch.rand(20, 30, generator=g)
    pix = torch.rand(40, 2, generator=g) * torch.tensor([30.0, 20.0])
    target = 5.0 + 20.0 * torch.rand(40, generator=g)
    w = 0.5 + torch.rand(40, generator=g)
    by_weights = multiview_depth_loss(depth, pix, target, w)
    by_count = multiview_depth_loss(depth, pix, target, w, normalise="count")
    # the weighted mean ignores a global factor on the weights; the per-point sum scales with it
    assert multiview_depth_loss(depth, pix, target, 0.1 * w).item() == pytest.approx(by_weights.item(), rel=1e-5)
    assert multiview_depth_loss(depth, pix, target, 0.1 * w, normalise="count").item() == pytest.approx(
        0.1 * by_count.item(), rel=1e-5)
    # with unit weights both are the plain mean; points outside the image do not count in N
    ones = torch.ones(40)
    assert multiview_depth_loss(depth, pix, target, ones, normalise="count").item() == pytest.approx(
        multiview_depth_loss(depth, pix, target, ones).item(), rel=1e-6)
    far_out = torch.cat([pix, torch.tensor([[100.0, 100.0]])])
    assert multiview_depth_loss(depth, far_out, torch.cat([target, torch.tensor([1.0])]),
                                torch.cat([w, torch.tensor([1.0])]), normalise="count").item() == pytest.approx(
        by_count.item(), rel=1e-6)
    with pytest.raises(ValueError, match="normalise"):
        multiview_depth_loss(depth, pix, target, w, normalise="sum")  # type: ignore[arg-type]


def test_trainer_rescales_weights_to_unit_mean_over_the_scene() -> None:
    from recon.train.supervision_mv import unit_mean_weights

    pix = torch.zeros(3, 2)
    targets = {"a": (pix, torch.ones(3), torch.tensor([0.2, 0.2, 0.2])),
               "b": (pix[:1], torch.ones(1), torch.tensor([1.4])),
               "empty": (pix[:0], torch.ones(0), torch.ones(0))}
    out = unit_mean_weights(targets)
    all_w = torch.cat([w for _, _, w in out.values()])
    assert all_w.mean().item() == pytest.approx(1.0, rel=1e-6)
    # one factor for every view: the unreliable view keeps its lower weights, relative to the reliable one
    torch.testing.assert_close(out["a"][2], torch.full((3,), 0.2 / 0.5))
    torch.testing.assert_close(out["b"][2], torch.tensor([1.4 / 0.5]))
    assert unit_mean_weights({"none": targets["empty"]})["none"][2].numel() == 0


def test_trainer_term_uses_the_configured_robust_penalty_and_scale() -> None:
    """``--loss.mv-robust`` and ``--loss.mv-scale`` reach the loss: a target 50 % off pulls far less under Cauchy."""
    from types import SimpleNamespace

    from recon.train.supervision_mv import MultiViewSupervisionTerm

    depth = torch.full((8, 8), 10.0, requires_grad=True)
    pix = torch.tensor([[3.5, 3.5]])
    target = torch.tensor([15.0])
    view = SimpleNamespace(frame=SimpleNamespace(id="f"))
    pulls = {}
    for robust in ("huber", "cauchy"):
        term = object.__new__(MultiViewSupervisionTerm)
        term.weight, term.start, term.behind_scale, term.normalise = 1.0, 0, 1.0, "count"
        term.robust, term.scale = robust, 0.05
        term.iters, term.fade_from = 10, 1.0
        term.targets = {"f": (pix, target, torch.ones(1))}
        loss = term(5, view, SimpleNamespace(depth=depth))["mv"]
        expected = multiview_depth_loss(depth, pix, target, torch.ones(1), loss=robust, scale=0.05,
                                        normalise="count")
        torch.testing.assert_close(loss, expected)
        (grad,) = torch.autograd.grad(loss, depth)
        pulls[robust] = grad.abs().sum().item()
    r = math.log(1.5) / 0.05  # the residual in units of the scale
    assert pulls["cauchy"] == pytest.approx(pulls["huber"] * r / (1 + r * r), rel=1e-4)


def test_trainer_term_fades_out_with_depth_fade_from() -> None:
    """``--loss.depth-fade-from 0.5``: full weight to half of the iterations, half at 3/4, none at the end."""
    from types import SimpleNamespace

    from recon.train.supervision_mv import MultiViewSupervisionTerm

    depth = torch.full((8, 8), 10.0, requires_grad=True)
    view = SimpleNamespace(frame=SimpleNamespace(id="f"))
    term = object.__new__(MultiViewSupervisionTerm)
    term.weight, term.start, term.behind_scale, term.normalise = 2.0, 0, 1.0, "count"
    term.robust, term.scale = "huber", 0.05
    term.iters, term.fade_from = 101, 0.5
    term.targets = {"f": (torch.tensor([[3.5, 3.5]]), torch.tensor([12.0]), torch.ones(1))}
    full = term(10, view, SimpleNamespace(depth=depth))["mv"].item()
    assert term(50, view, SimpleNamespace(depth=depth))["mv"].item() == pytest.approx(full)
    assert term(75, view, SimpleNamespace(depth=depth))["mv"].item() == pytest.approx(0.5 * full, rel=0.02)
    assert term(100, view, SimpleNamespace(depth=depth)) == {}
