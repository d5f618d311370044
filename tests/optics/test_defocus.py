"""The layered defocus convolution against exact lens-sampled renders, occlusion behaviour, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support.street import finite_aperture_views

from recon.optics import aperture_for_max_blur, defocus, gather_defocus
from recon.optics.planes import edge_band, make_plane_scene, psnr, render_pinhole, render_thin_lens

# (focus distance m, largest CoC diameter px over the scene's depth range 2.5..60 m)
CASES = [(2.5, 12.0), (6.0, 8.0), (15.0, 8.0), (60.0, 12.0)]


pytestmark = pytest.mark.usefixtures("single_thread")


def to_t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None] if img.ndim == 3 else torch.from_numpy(img)[None, None]


def to_np(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).detach().numpy()


@pytest.fixture(scope="module")
def planes():
    scene = make_plane_scene(128, 96, seed=0)
    img, depth = render_pinhole(scene)
    truth = {}
    for focus, max_blur in CASES:
        a = aperture_for_max_blur(scene.fx, 2.5, 60.0, focus, max_blur)
        truth[(focus, max_blur)] = (a, render_thin_lens(scene, a, focus, samples=160))
    return scene, img, depth, truth


@pytest.mark.parametrize("case", CASES)
def test_matches_lens_sampling_and_beats_gather_near_edges(planes, case) -> None:
    scene, img, depth, truth = planes
    a, gt = truth[case]
    focus, max_blur = case
    out = to_np(defocus(to_t(img), to_t(depth), scene.fx, a, focus))
    naive = to_np(gather_defocus(to_t(img), to_t(depth), scene.fx, a, focus))
    band = edge_band(depth, int(max_blur / 2) + 2)
    p_all, p_band, p_naive_band = psnr(out, gt), psnr(out[band], gt[band]), psnr(naive[band], gt[band])
    print(f"focus {focus} m, max blur {max_blur} px: PSNR {p_all:.2f} dB (pinhole {psnr(img, gt):.2f}); "
          f"edge band {p_band:.2f} dB vs gather {p_naive_band:.2f} dB")
    assert p_all >= 32.0
    assert p_all > psnr(img, gt) + 3.0  # the blur actually does something
    assert p_band > p_naive_band + 0.5


def test_no_halo_of_sharp_foreground_and_soft_edge_of_blurred_one() -> None:
    img = torch.zeros(1, 3, 48, 48)
    img[..., 16:32, 16:32] = 1.0
    depth = torch.full((1, 1, 48, 48), 50.0)
    depth[..., 16:32, 16:32] = 2.0
    fx, a = 200.0, aperture_for_max_blur(200.0, 2.0, 50.0, 2.0, 12.0)
    # focus on the white foreground: the black background is blurred but must stay black next to the square
    out = defocus(img, depth, fx, a, 2.0)
    naive = gather_defocus(img, depth, fx, a, 2.0)
    ring = (slice(None), slice(None), slice(12, 36), slice(13, 15))  # 2-3 px left of the square
    assert out[ring].max() < 0.02
    assert naive[ring].mean() > 0.1  # the naive gather halos
    assert out[..., 18:30, 18:30].min() > 0.99  # the sharp square stays sharp
    # focus on the background: the blurred square spreads over the sharp background, semi-transparently
    out2 = defocus(img, depth, fx, aperture_for_max_blur(fx, 2.0, 50.0, 50.0, 12.0), 50.0)
    assert 0.1 < out2[..., 24, 14].mean() < 0.9
    assert out2[..., 24, 4].max() < 0.01


def test_in_focus_is_identity_and_kernels_run() -> None:
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 3, 20, 24, generator=g)
    depth = torch.full((2, 1, 20, 24), 7.0)
    assert torch.allclose(defocus(img, depth, 100.0, 0.02, 7.0), img, atol=1e-5)
    for k in ("gaussian", "hexagon", "pentagon"):
        out = defocus(img, 1.0 + 9.0 * torch.rand(2, 1, 20, 24, generator=g), torch.tensor([100.0, 120.0]),
                      torch.tensor([0.05, 0.02]), torch.tensor([3.0, 6.0]), k)
        assert out.shape == img.shape and torch.isfinite(out).all()
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 + 1e-5


@pytest.mark.parametrize("fill", [False, True])
def test_gradcheck_depth_and_image(fill: bool) -> None:
    g = torch.Generator().manual_seed(2)
    img = torch.rand(1, 3, 12, 12, dtype=torch.float64, generator=g).requires_grad_()
    depth = (2.0 + 6.0 * torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=g)).requires_grad_()

    def f(i: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return defocus(i, d, 100.0, 0.05, 4.0, fill_hidden=fill)

    # fast mode checks random projections of the Jacobian (the full one costs ~1000 forward passes)
    assert torch.autograd.gradcheck(f, (img, depth), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)
    # and the full Jacobian w.r.t. depth on a 6x6 crop
    d_small = depth[..., :6, :6].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda d: f(img[..., :6, :6].detach(), d), (d_small,), eps=1e-6, atol=1e-5,
                                    rtol=1e-3)
    out = f(img, depth)
    (gd,) = torch.autograd.grad(out.square().sum(), depth)
    assert gd.abs().sum() > 0


def test_gradient_reaches_lens_parameters() -> None:
    g = torch.Generator().manual_seed(3)
    img = torch.rand(1, 3, 16, 16, generator=g)
    depth = 2.0 + 10.0 * torch.rand(1, 1, 16, 16, generator=g)
    a = torch.tensor([0.05], requires_grad=True)
    f = torch.tensor([5.0], requires_grad=True)
    defocus(img, depth, 100.0, a, f).square().sum().backward()
    assert a.grad is not None and f.grad is not None and a.grad.abs() > 0 and f.grad.abs() > 0


def test_street_finite_aperture_images(small_street) -> None:
    for entry, frame, img, depth in finite_aperture_views(small_street):  # unknown depth (sky): very far
        cam = frame.camera
        a = cam.focal_length_mm / 1000.0 / entry.f_number
        out = to_np(defocus(to_t(img), to_t(depth), cam.fx, a, entry.focus_distance_m))
        gt = entry.load_image()
        print(f"street {entry.frame_id} f/{entry.f_number} focus {entry.focus_distance_m} m: "
              f"PSNR {psnr(out, gt):.2f} dB (pinhole {psnr(img, gt):.2f})")
        assert psnr(out, gt) >= 32.0


def test_blurred_foreground_edge_shows_the_background_behind_it() -> None:
    # a bright foreground (CoC 6.5 px: its tent weights span two layers) over a dark in-focus background: at the
    # foreground's first pixel (0.5 px inside its edge) the lens sees the background through the rest of the
    # disk, about 40 % of it (disk radius 3.25 px cut 0.5 px from its centre)
    from recon.optics import defocus_coc

    img = torch.zeros(1, 3, 40, 60)
    img[..., 30:] = 1.0
    coc = torch.zeros(1, 1, 40, 60)
    coc[..., 30:] = 6.5
    out = defocus_coc(img, coc)
    r, d = 3.25, 0.5
    behind = (math.acos(d / r) - d / r * math.sqrt(1 - (d / r) ** 2)) / math.pi
    assert float(out[0, 0, 20, 30]) == pytest.approx(1.0 - behind, abs=0.04)


def test_mixed_pixels_split_between_the_two_surfaces() -> None:
    from recon.optics.defocus import mixed_pixels

    img = torch.zeros(1, 3, 8, 10)
    img[..., 6:] = 1.0
    img[..., 5] = 0.25  # an anti-aliased silhouette pixel: a quarter foreground, depth sampled on the background
    coc = torch.zeros(1, 1, 8, 10)
    coc[..., 6:] = 4.0
    beta, other = mixed_pixels(img, coc, 1.0)
    assert float(beta[0, 0, 4, 5]) == pytest.approx(0.25, abs=0.02)
    assert float(other[0, 0, 4, 5]) == pytest.approx(4.0)
    assert float(beta[0, 0, 4, 2]) == 0.0  # far from the edge
    assert float(beta[0, 0, 4, 7]) == 0.0  # inside the foreground: pure colour
