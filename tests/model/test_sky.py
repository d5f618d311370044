"""The sky model's per-camera sampling grid cache gives what the uncached lookup gives, and notices changes."""

from __future__ import annotations

import math

import pytest
import torch

from recon.model import sky as sky_mod
from recon.model.sky import SkyModel, ray_directions


def _camera(yaw: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    c, s = math.cos(yaw), math.sin(yaw)
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]) @ torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # OpenCV camera looking along world +y, z up
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 1.5])
    K = torch.tensor([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])
    return torch.linalg.inv(c2w), K


def _model(seed: int = 0) -> SkyModel:
    m = SkyModel(height=8, up=(0.0, 0.0, 1.0))
    with torch.no_grad():
        m.texture.copy_(torch.randn(m.texture.shape, generator=torch.Generator().manual_seed(seed)))
    return m


def _uncached(m: SkyModel, viewmat: torch.Tensor, K: torch.Tensor, w: int, h: int) -> torch.Tensor:
    return m(ray_directions(torch.linalg.inv(viewmat), K, w, h))


def test_cached_view_equals_uncached_and_gradients_match() -> None:
    m = _model()
    viewmat, K = _camera()
    want = _uncached(m, viewmat, K, 32, 24)
    (g_want,) = torch.autograd.grad(want.sum(), (m.texture,))
    for _ in range(2):  # first call fills the cache, second reads it
        got = m.for_view(viewmat, K, 32, 24)
        (g_got,) = torch.autograd.grad(got.sum(), (m.texture,))
        assert torch.equal(got, want) and torch.equal(g_got, g_want)
    assert len(m._grids) == 1


def test_cache_notices_in_place_changes_and_new_tensors() -> None:
    m = _model()
    viewmat, K = _camera()
    m.for_view(viewmat, K, 32, 24)
    with torch.no_grad():
        viewmat.copy_(_camera(1.1)[0])  # same tensor object, new pose
    assert torch.equal(m.for_view(viewmat, K, 32, 24), _uncached(m, viewmat, K, 32, 24))
    other, K2 = _camera(-0.7)
    assert torch.equal(m.for_view(other, K2, 32, 24), _uncached(m, other, K2, 32, 24))
    assert torch.equal(m.for_view(other, K2, 16, 12), _uncached(m, other, K2, 16, 12))  # another size
    m.load_state_dict({"texture": m.texture.detach(), "up": torch.tensor([0.0, 1.0, 0.0])})  # new pole
    assert torch.equal(m.for_view(other, K2, 32, 24), _uncached(m, other, K2, 32, 24))


def test_pose_with_gradient_is_not_cached_and_gets_its_gradient() -> None:
    m = _model()
    viewmat, K = _camera()
    viewmat.requires_grad_()
    out = m.for_view(viewmat, K, 32, 24)
    (g,) = torch.autograd.grad(out.sum(), (viewmat,))
    assert g.abs().sum() > 0 and not m._grids


def test_budget_caps_the_cache(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(sky_mod, "GRID_CACHE_BYTES", 32 * 24 * 8 + 1)  # one 32x24 grid
    m = _model()
    cams = [_camera(y) for y in (0.1, 0.5)]
    for vm, K in cams:
        assert torch.equal(m.for_view(vm, K, 32, 24), _uncached(m, vm, K, 32, 24))
    assert len(m._grids) == 1 and m._grid_bytes <= sky_mod.GRID_CACHE_BYTES
    del cams[0]  # the cached camera is gone: its entry makes room for another
    vm, K = _camera(0.9)
    assert torch.equal(m.for_view(vm, K, 32, 24), _uncached(m, vm, K, 32, 24))
    assert len(m._grids) == 1


def _torch_composite(m: SkyModel, rgb: torch.Tensor, alpha: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor,
                     w: int, h: int) -> torch.Tensor:
    return rgb + (1.0 - alpha)[..., None] * _uncached(m, viewmat, K, w, h)


@pytest.mark.parametrize("yaw", [0.3, 2.9])  # 2.9: the view straddles the texture's azimuth seam
def test_composite_matches_torch_values_and_gradients(yaw: float) -> None:
    from recon.model import sky_cpu

    if not sky_cpu.usable(torch.zeros(1)):
        pytest.skip("no C compiler for the sky kernel on this machine")
    m = _model(1)
    viewmat, K = _camera(yaw)
    g = torch.Generator().manual_seed(4)
    rgb0, alpha0 = torch.rand(24, 32, 3, generator=g), torch.rand(24, 32, generator=g)
    alpha0[:4] = 0.0  # pure sky rows
    up = torch.randn(24, 32, 3, generator=g)
    outs = []
    for fn in (_torch_composite, lambda *a: a[0].composite(*a[1:])):
        rgb, alpha = rgb0.clone().requires_grad_(), alpha0.clone().requires_grad_()
        out = fn(m, rgb, alpha, viewmat, K, 32, 24)
        grads = torch.autograd.grad((out * up).sum(), (rgb, alpha, m.texture))
        outs.append((out.detach(), grads))
    (o1, g1), (o2, g2) = outs
    assert torch.allclose(o1, o2, atol=1e-6)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-5 * max(1.0, b.abs().max().item()))
    assert g2[2].abs().sum() > 0


def test_composite_without_gradients_and_with_the_kernel_disabled(monkeypatch) -> None:  # noqa: ANN001
    m = _model(2)
    viewmat, K = _camera(0.8)
    rgb, alpha = torch.rand(24, 32, 3), torch.rand(24, 32)
    want = _torch_composite(m, rgb, alpha, viewmat, K, 32, 24).detach()
    with torch.no_grad():
        assert torch.allclose(m.composite(rgb, alpha, viewmat, K, 32, 24), want, atol=1e-6)
    monkeypatch.setenv("RECON_DISABLE_C_SKY", "1")
    assert torch.allclose(m.composite(rgb, alpha, viewmat, K, 32, 24).detach(), want, atol=1e-6)


def test_composite_kernel_split_over_threads_is_exact() -> None:
    """The C forward splits the pixels over torch's threads: the same image for any split."""
    from recon.model import sky_cpu

    if not sky_cpu.usable(torch.zeros(1)):
        pytest.skip("no C compiler for the sky kernel on this machine")
    m = _model(2)
    viewmat, K = _camera(0.7)
    g = torch.Generator().manual_seed(5)
    rgb, alpha = torch.rand(24, 32, 3, generator=g), torch.rand(24, 32, generator=g)
    before = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            outs.append(m.composite(rgb, alpha, viewmat, K, 32, 24).detach())
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(o, outs[0]) for o in outs[1:])
