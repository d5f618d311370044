"""The photometric loss: the hand-written SSIM (torch path and C kernel) against autograd through convolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recon.losses import photometric, ssim_cpu
from recon.losses.photometric import (
    _taps,
    gaussian_blur,
    gaussian_blur_adjoint,
    photometric_loss,
    ssim_loss,
    ssim_map,
)


def reference_ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """3DGS's SSIM written with conv2d and reflect padding; autograd gives its gradient."""
    c = a.shape[1]
    x = torch.arange(window, dtype=a.dtype) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    kx, ky = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.pad(t, (window // 2,) * 4, mode="reflect")
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    s_aa, s_bb, s_ab = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))


@pytest.fixture(params=["torch", "c"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "c":
        if not ssim_cpu.available():
            pytest.skip("no C compiler for the SSIM kernel on this machine")
    else:
        monkeypatch.setenv("RECON_DISABLE_C_SSIM", "1")
    return request.param


def _images(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=dtype)
    b = (0.6 * a + 0.4 * torch.rand(shape, generator=g, dtype=dtype)).clamp(0, 1)  # correlated, like a rendering
    return a, b


def test_blur_adjoint_is_the_transpose() -> None:
    taps = _taps(11, 1.5)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 3, 17, 23, generator=g, dtype=torch.float64), torch.randn(2, 3, 17, 23, generator=g,
                                                                                     dtype=torch.float64)
    lhs = (gaussian_blur(x, taps) * y).sum()
    rhs = (x * gaussian_blur_adjoint(y, taps)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 3, 23, 31), (2, 1, 12, 7), (1, 3, 40, 64)])
def test_ssim_map_and_gradients_match_autograd(path: str, shape: tuple[int, ...]) -> None:
    """Both inputs requiring gradients, an arbitrary upstream gradient; float32 (the C kernel's type)."""
    a, b = _images(shape, torch.float32)
    up = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    a1, b1 = a.clone().requires_grad_(), b.clone().requires_grad_()
    ref = reference_ssim_map(a1, b1)
    ga_ref, gb_ref = torch.autograd.grad((ref * up).sum(), (a1, b1))
    a2, b2 = a.clone().requires_grad_(), b.clone().requires_grad_()
    got = ssim_map(a2, b2)
    ga, gb = torch.autograd.grad((got * up).sum(), (a2, b2))
    assert torch.allclose(got, ref, atol=2e-5)
    scale = ga_ref.abs().max()
    assert torch.allclose(ga, ga_ref, atol=2e-5 * scale, rtol=1e-3)
    assert torch.allclose(gb, gb_ref, atol=2e-5 * scale, rtol=1e-3)
    # only the rendering requires a gradient (the training case): the same gradient
    a3 = a.clone().requires_grad_()
    (ga3,) = torch.autograd.grad((ssim_map(a3, b) * up).sum(), (a3,))
    assert torch.allclose(ga3, ga, atol=1e-6)


def test_gradcheck_float64() -> None:
    a, b = _images((1, 2, 13, 15), torch.float64, seed=3)
    a.requires_grad_()
    b.requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: ssim_map(x, y), (a, b))


def test_gradient_finite_where_images_are_dark_and_anticorrelated(path: str) -> None:
    """A1 = 2 m_a m_b + C1 and A2 = 2 cov + C2 reach 0 here (an unclamped rendering goes negative): no NaN."""
    a = torch.zeros(1, 1, 16, 16)
    a[..., ::2, :] = -0.05
    b = torch.zeros(1, 1, 16, 16)
    b[..., 1::2, :] = 0.05
    a.requires_grad_()
    loss = ssim_loss(a, b)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(a.grad).all()


def test_photometric_loss_value_and_mask(path: str) -> None:
    a, b = _images((1, 3, 24, 30), torch.float32, seed=4)
    want = 0.8 * (a - b).abs().mean() + 0.2 * (1 - reference_ssim_map(a, b).mean())
    assert torch.allclose(photometric_loss(a, b, 0.2), want, atol=1e-6)
    mask = torch.zeros(1, 1, 24, 30)
    mask[..., :12, :] = 1
    ssim_ref = reference_ssim_map(a, b)[..., :12, :].mean()
    want_m = 0.8 * (a - b)[..., :12, :].abs().mean() + 0.2 * (1 - ssim_ref)
    assert torch.allclose(photometric_loss(a, b, 0.2, mask), want_m, atol=1e-6)
    assert torch.allclose(photometric_loss(a, b, 0.0), (a - b).abs().mean(), atol=1e-7)


def test_non_contiguous_input_as_the_trainer_passes_it(path: str) -> None:
    """The trainer hands (H, W, 3) images permuted to (1, 3, H, W)."""
    a, b = _images((20, 26, 3), torch.float32, seed=5)
    pa, pb = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    assert torch.allclose(ssim_map(pa, pb), reference_ssim_map(pa.contiguous(), pb.contiguous()), atol=2e-5)


def test_c_kernel_and_torch_path_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    if not ssim_cpu.available():
        pytest.skip("no C compiler for the SSIM kernel on this machine")
    a, b = _images((1, 3, 33, 47), torch.float32, seed=6)
    outs = []
    for disable in ("", "1"):
        monkeypatch.setenv("RECON_DISABLE_C_SSIM", disable)
        x = a.clone().requires_grad_()
        s = photometric.ssim_map(x, b)
        (g,) = torch.autograd.grad(s.sum(), (x,))
        outs.append((s, g))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-6)
    assert torch.allclose(outs[0][1], outs[1][1], atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_ssim_loss_gradient_matches_autograd(path: str, masked: bool) -> None:
    """The loss form (on the C path: value and gradient from one kernel call, no map kept), with and without a
    mask weighting the pixels."""
    a, b = _images((1, 3, 28, 36), torch.float32, seed=7)
    mask = None
    if masked:
        mask = (torch.rand(1, 1, 28, 36, generator=torch.Generator().manual_seed(8)) > 0.3).float()
    x = a.clone().requires_grad_()
    ref_map = reference_ssim_map(x, b)
    ref = 1 - (ref_map.mean() if mask is None else (ref_map * mask).sum() / mask.expand_as(ref_map).sum())
    (g_ref,) = torch.autograd.grad(ref, (x,))
    y = a.clone().requires_grad_()
    got = ssim_loss(y, b, mask)
    (g,) = torch.autograd.grad(3.0 * got, (y,))  # an upstream factor reaches the gradient
    assert torch.allclose(got, ref, atol=1e-6)
    assert torch.allclose(g, 3.0 * g_ref, atol=1e-3 * g_ref.abs().max(), rtol=1e-3)


@pytest.mark.parametrize("masked", [False, True])
def test_photometric_loss_gradient_matches_autograd(path: str, masked: bool) -> None:
    """L1 and SSIM together (the C path streams both through one pass), pixels where a == b included."""
    a, b = _images((2, 3, 21, 40), torch.float32, seed=9)
    a[0, 0, :3] = b[0, 0, :3]  # |a - b| has no slope at 0: autograd's abs takes 0 there, so must the kernel
    mask = (torch.rand(2, 1, 21, 40, generator=torch.Generator().manual_seed(10)) > 0.5).float() if masked else None

    def reference(x: torch.Tensor) -> torch.Tensor:
        l1, s = (x - b).abs(), reference_ssim_map(x, b)
        if mask is None:
            return 0.8 * l1.mean() + 0.2 * (1 - s.mean())
        m = mask.expand_as(s)
        return 0.8 * (l1 * m).sum() / m.sum() + 0.2 * (1 - (s * m).sum() / m.sum())

    x = a.clone().requires_grad_()
    want = reference(x)
    (g_want,) = torch.autograd.grad(want, (x,))
    y = a.clone().requires_grad_()
    got = photometric_loss(y, b, 0.2, mask)
    (g,) = torch.autograd.grad(got, (y,))
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(g, g_want, atol=1e-3 * g_want.abs().max(), rtol=1e-3)


@pytest.mark.parametrize("masked", [False, True])
def test_photometric_kernel_split_over_threads_is_exact(masked: bool) -> None:
    """The C kernel splits the planes over torch's threads: gradients bit for bit the one-thread call's, the value
    to the last float (each plane's sums are kept apart and added in plane order)."""
    if not ssim_cpu.available():
        pytest.skip("no C compiler for the SSIM kernel on this machine")
    a, b = _images((2, 3, 23, 31), torch.float32, seed=11)
    mask = (torch.rand(2, 1, 23, 31, generator=torch.Generator().manual_seed(12)) > 0.5).float() if masked else None
    before = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            x = a.clone().requires_grad_()
            loss = photometric_loss(x, b, 0.2, mask)
            (g,) = torch.autograd.grad(loss, (x,))
            outs.append((loss.detach(), g))
    finally:
        torch.set_num_threads(before)
    for loss, g in outs[1:]:
        assert torch.equal(g, outs[0][1])
        assert torch.equal(loss, outs[0][0])
