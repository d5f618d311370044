"""The depth-of-field loss: shapes, masking, helpers and that its gradient moves a wrong depth toward the prior."""

from __future__ import annotations

import pytest
import torch

from recon.losses.dof import (
    calibrated_aperture,
    depth_range_from_prior,
    dof_loss,
    far_band_lens,
    focus_distances_from_prior,
)
from recon.optics import coc_px
from recon.optics.defocus import soft_clamp_coc

pytestmark = pytest.mark.usefixtures("single_thread")


def textured_scene(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """A 40x48 random-texture image and a depth map: 4 m on the left, 12 m on the right, 30 m on the top band."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 40, 48, generator=g, dtype=dtype)
    img = torch.nn.functional.avg_pool2d(img, 3, 1, 1)  # texture with a few pixels of correlation
    depth = torch.full((1, 1, 40, 48), 12.0, dtype=dtype)
    depth[..., :, :24] = 4.0
    depth[..., :8, :] = 30.0
    return img, depth


def test_helpers() -> None:
    _, depth = textured_scene()
    depth = depth.clone()
    depth[..., :4, :4] = 0.0  # unknown
    f = focus_distances_from_prior(depth, 3)
    assert f.shape == (1, 3) and torch.all(f[0, 1:] <= f[0, :-1] + 1e-6)  # quantiles of inverse depth: far first
    assert float(f.min()) >= 4.0 and float(f.max()) <= 30.0
    near, far = depth_range_from_prior(depth)
    assert float(near) == pytest.approx(4.0) and float(far) == pytest.approx(30.0)
    a = calibrated_aperture(torch.tensor([100.0]), near, far, f, 6.0)
    for j in range(3):
        c = max(abs(coc_px(4.0, 100.0, float(a[0, j]), float(f[0, j]))),
                abs(coc_px(30.0, 100.0, float(a[0, j]), float(f[0, j]))))
        assert c == pytest.approx(6.0, rel=1e-5)


def test_zero_when_equal_and_masked_where_unknown() -> None:
    img, depth = textured_scene()
    fx = torch.tensor([100.0])
    focus = torch.tensor([[5.0, 20.0]])
    a = calibrated_aperture(fx, 4.0, 30.0, focus, 6.0)
    assert float(dof_loss(img, depth, img, depth, None, fx, focus, a)) < 1e-5
    # where the prior is unknown the (wrong) prediction is not penalised beyond the blur footprint
    wrong = depth.clone()
    wrong[..., 20:, 30:] = 50.0
    prior = depth.clone()
    prior[..., 14:, 24:] = 0.0
    assert float(dof_loss(img, wrong, img, prior, None, fx, focus, a)) < 1e-5 + \
        0.2 * float(dof_loss(img, wrong, img, depth, None, fx, focus, a))
    # confidence weights matter
    conf = torch.ones_like(depth)
    conf[..., 20:, 30:] = 0.0
    assert float(dof_loss(img, wrong, img, depth, conf, fx, focus, a)) < \
        float(dof_loss(img, wrong, img, depth, None, fx, focus, a))


def test_gradient_moves_wrong_depth_toward_prior() -> None:
    img, prior = textured_scene(torch.float64)
    fx = torch.tensor([100.0], dtype=torch.float64)
    focus = focus_distances_from_prior(prior, 2)
    near, far = depth_range_from_prior(prior)
    a = calibrated_aperture(fx, near, far, focus, 8.0)
    pred = (prior * 1.35).requires_grad_()

    def loss_of(d: torch.Tensor) -> torch.Tensor:
        return dof_loss(img, d, img, prior, None, fx, focus, a)

    loss = loss_of(pred)
    (grad,) = torch.autograd.grad(loss, pred)
    assert grad.abs().sum() > 0
    # finite-difference check of the directional derivative along a random direction
    v = torch.randn(pred.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    eps = 1e-5
    with torch.no_grad():
        fd = (loss_of(pred + eps * v) - loss_of(pred - eps * v)) / (2 * eps)
    assert float(fd) == pytest.approx(float((grad * v).sum()), rel=2e-3, abs=1e-9)
    # gradient descent on the depth alone decreases the loss and the depth error
    d = pred.detach().clone().requires_grad_()
    opt = torch.optim.Adam([d], lr=0.2)
    err0 = float((d.detach() - prior).abs().mean())
    for _ in range(40):
        opt.zero_grad()
        lo = loss_of(d)
        lo.backward()
        opt.step()
        with torch.no_grad():
            d.clamp_(min=1.0)
    err1 = float((d.detach() - prior).abs().mean())
    print(f"dof loss {float(loss.detach()):.4f} -> {float(loss_of(d.detach())):.4f}; mean |depth error| {err0:.2f} -> "
          f"{err1:.2f} m")
    assert float(loss_of(d.detach())) < 0.5 * float(loss.detach())
    assert err1 < 0.6 * err0


def street_like_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """Random texture; depth 5 m on the left third, a far band 60 m -> 240 m (left to right) on the rest."""
    g = torch.Generator().manual_seed(2)
    img = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 40, 60, generator=g, dtype=torch.float64), 3, 1, 1)
    depth = torch.full((1, 1, 40, 60), 5.0, dtype=torch.float64)
    depth[..., 20:] = torch.linspace(60.0, 240.0, 40, dtype=torch.float64)
    return img, depth


def test_soft_clamp_saturates_but_keeps_a_gradient() -> None:
    c = torch.tensor([-100.0, -3.0, 0.0, 3.0, 100.0], requires_grad=True)
    out = soft_clamp_coc(c, 12.0)
    v = out.detach()
    assert float(v.abs().max()) <= 12.0 and float(v[2]) == 0.0
    assert float(v[3]) == pytest.approx(3.0, rel=0.03)  # nearly linear well inside the limit
    out.sum().backward()
    assert torch.all(c.grad > 0)
    assert soft_clamp_coc(c, None) is c


def test_far_band_lens_calibration() -> None:
    _, depth = street_like_scene()
    fx = torch.tensor([100.0], dtype=torch.float64)
    focus, aperture, near = far_band_lens(depth, fx, 6.0)
    assert focus.shape == (1, 1) and aperture.shape == (1, 1) and near.shape == (1,)
    assert 60.0 <= float(near) <= 240.0 and float(focus) >= 1.5 * float(near)
    assert abs(coc_px(float(near), 100.0, float(aperture), float(focus))) == pytest.approx(6.0, rel=1e-6)


def test_far_band_lens_gives_far_depth_the_gradient_the_whole_range_lens_does_not() -> None:
    """Far depths 30% too near: the whole-range lens barely sees it, the far-band lens pulls them back."""
    img, prior = street_like_scene()
    fx = torch.tensor([100.0], dtype=torch.float64)
    far = prior > 40
    wrong = torch.where(far, prior * 0.7, prior)
    f_all = focus_distances_from_prior(prior, 1)
    near, farthest = depth_range_from_prior(prior)
    a_all = calibrated_aperture(fx, near, farthest, f_all, 6.0)
    f_far, a_far, band_near = far_band_lens(prior, fx, 6.0)
    mask = (prior >= band_near.reshape(-1, 1, 1, 1)).to(prior.dtype)

    def far_lens_loss(d: torch.Tensor) -> torch.Tensor:
        return dof_loss(img, d, img, prior, None, fx, f_far, a_far, mask=mask, max_coc_px=12.0)

    def whole_range_change(d: torch.Tensor) -> float:
        return float(dof_loss(img, d, img, prior, None, fx, f_all, a_all))

    # how much each lens notices the error: the far-band lens's loss is many times larger
    assert float(far_lens_loss(wrong)) > 5.0 * whole_range_change(wrong)
    d = wrong.clone().requires_grad_()
    opt = torch.optim.Adam([d], lr=2.0)
    in_band = mask.bool()
    err0 = float(((d.detach() - prior).abs() / prior)[in_band].mean())
    for _ in range(40):
        opt.zero_grad()
        far_lens_loss(d).backward()
        opt.step()
        with torch.no_grad():
            d.clamp_(min=1.0)
    err1 = float(((d.detach() - prior).abs() / prior)[in_band].mean())
    print(f"far band AbsRel under the far-band lens: {err0:.3f} -> {err1:.3f}")
    assert err1 < 0.5 * err0


def test_view_lenses_and_rotation() -> None:
    from recon.train.config import LossConfig
    from recon.train.supervision_dof import view_lenses

    _, prior = street_like_scene()
    lenses = view_lenses(prior.float(), 100.0, LossConfig(dof_focus_count=3))
    assert len(lenses) == 4
    assert all(lens.mask is None and lens.max_coc_px is None for lens in lenses[:3])
    far = lenses[3]
    assert far.mask is not None and far.max_coc_px == pytest.approx(12.0)
    assert bool(far.mask[..., :, :20].eq(0).all()) and float(far.mask.mean()) > 0.1  # the 5 m third is not scored
    assert len(view_lenses(prior.float(), 100.0, LossConfig(dof_focus_count=2, dof_far_band=False))) == 2


def test_occlusion_edge_mask_drops_a_band_around_discontinuities_only() -> None:
    from recon.losses.dof import occlusion_edge_mask

    depth = torch.full((1, 1, 20, 30), 50.0)
    depth[..., :, :10] = 5.0  # a near wall beside a far background: an edge between columns 9 and 10
    depth[..., :, 20:] = torch.linspace(50.0, 55.0, 10)  # a slanted surface, no edge
    depth[..., 0, 25] = 0.0  # unknown pixels neither make nor hide an edge
    m = occlusion_edge_mask(depth, 2, ratio=1.3)
    assert m.shape == depth.shape
    cols = m[0, 0].min(0).values
    assert cols[8:12].eq(0).all() and cols[:8].eq(1).all() and cols[12:].eq(1).all()
    assert occlusion_edge_mask(depth, 0).eq(1).all()
    # a ratio above the jump keeps everything
    assert occlusion_edge_mask(depth, 2, ratio=20.0).eq(1).all()
