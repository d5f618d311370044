"""Differentiable, occlusion-aware, spatially varying defocus convolution (layered in inverse depth).

Given a sharp (pinhole) image and its metric depth, :func:`defocus` renders what a thin lens with aperture
diameter ``A`` focused at ``d_f`` would see. The signed circle of confusion ``c = fx * A * (1/d - 1/d_f)`` (pixels,
positive in front of the focus) is linear in inverse depth, so the image is cut into *soft layers* on a regular grid
of CoC values (step ``layer_step_px``, the grid always contains the focus plane ``c = 0``): each pixel gives a tent
weight to its two nearest layers. Every layer's premultiplied colour and coverage (alpha) are blurred with the
aperture kernel of that layer's radius (FFT convolution with the analytic, band-limited disk spectrum, so even
sub-pixel blurs are right; never a rounded radius), then composited front to back:

* the coverage occluding layer ``l`` is the sum of the blurred alphas of the layers in front of it, skipping its
  immediate neighbour (a surface that falls between two layers must not occlude itself); transmittance
  ``T_l = clamp(1 - coverage, 0, 1)``;
* output = ``sum_l T_l C_l / sum_l T_l A_l``: normalising by the composited alpha fills what the pinhole image cannot
  see (background hidden behind a sharp foreground, image borders) from the visible neighbourhood of the same layer.

Silhouette pixels of an anti-aliased image mix two surfaces while the depth map gives them one depth;
:func:`mixed_pixels` estimates each such pixel's share of the surface across the edge, and that share goes to the
other surface's layers (``split_mixed``). A hidden-content fill is scaled by the coverage of the whole surface that
owns a layer (a surface's tent weights span two neighbouring layers).

So a sharp foreground never bleeds over a blurred background and a blurred foreground spreads semi-transparently
over a sharp background, as in layered depth-of-field renderers. Gradients reach the image, the depth (through the
soft layer weights), the aperture and the focus distance. Images are ``[B, C, H, W]``; depth ``[B, 1, H, W]`` metres,
> 0; ``fx``, ``aperture_m``, ``focus_m`` are floats or tensors of shape ``[B]``. Device-agnostic.

:func:`gather_defocus` is the naive baseline: every output pixel averages the image with the kernel of its own
CoC, with no notion of occlusion (it halos sharp foregrounds over blurred backgrounds).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch

from recon.optics.kernels import ApertureKernel, kernel_half_size, kernel_weights, parse_kernel
from recon.optics.thin_lens import coc_px

OCCLUSION_GAP_STEPS = 2
"""Layers at least this many grid steps apart occlude each other. A pixel's tent weights span two neighbouring
layers, so two surfaces whose CoCs differ by less than one step can still put weight on layers two steps apart;
the gap decides how large a CoC difference must be before one surface hides the other."""

_SPECTRUM_CACHE: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_CACHE_SIZE = 64


def _good_fft_size(n: int) -> int:
    """Smallest m >= n whose prime factors are 2, 3 and 5 (fast FFT sizes)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _kernel_spectrum(radii: torch.Tensor, half: int, size: tuple[int, int], kernel: ApertureKernel) -> torch.Tensor:
    """rfft2 ``[L, Nh, Nw//2+1]`` of the kernels of radii ``radii`` (pixels), centred at the origin.

    Disk and Gaussian kernels use their analytic spectra (the band-limited disk ``2 J1(r w) / (r w)`` and
    ``exp(-(r/2)^2 w^2 / 2)``): exact down to sub-pixel radii and smooth in the radius. Polygons are sampled in
    space (anti-aliased edge, :func:`recon.optics.kernels.kernel_weights`) and transformed.
    """
    key = (tuple(round(float(r), 6) for r in radii.tolist()), half, size, kernel, radii.device, radii.dtype)
    hit = _SPECTRUM_CACHE.get(key)
    if hit is not None:
        _SPECTRUM_CACHE.move_to_end(key)
        return hit
    nh, nw = size
    if kernel.shape in ("disk", "gaussian"):
        wy = 2.0 * math.pi * torch.fft.fftfreq(nh, device=radii.device, dtype=radii.dtype)
        wx = 2.0 * math.pi * torch.fft.rfftfreq(nw, device=radii.device, dtype=radii.dtype)
        rho = torch.sqrt(wy[:, None] ** 2 + wx[None, :] ** 2)
        x = radii.reshape(-1, 1, 1) * rho
        if kernel.shape == "disk":
            spec = torch.where(x > 1e-6, 2.0 * torch.special.bessel_j1(x) / x.clamp_min(1e-6), torch.ones_like(x))
        else:
            spec = torch.exp(-(x * x) / 8.0)  # sigma = r / 2
    else:
        k = kernel_weights(radii, half, kernel)
        grid = torch.zeros((len(radii), nh, nw), device=radii.device, dtype=radii.dtype)
        grid[:, : 2 * half + 1, : 2 * half + 1] = k
        grid = torch.roll(grid, shifts=(-half, -half), dims=(-2, -1))
        spec = torch.fft.rfft2(grid)
        if kernel.point_symmetric:
            spec = spec.real.contiguous()
    _SPECTRUM_CACHE[key] = spec
    if len(_SPECTRUM_CACHE) > _CACHE_SIZE:
        _SPECTRUM_CACHE.popitem(last=False)
    return spec


def blur_layers(x: torch.Tensor, radii: torch.Tensor, kernel: str | ApertureKernel = "disk") -> torch.Tensor:
    """Blur each layer of ``x [B, L, C, H, W]`` with the kernel of radius ``radii[l]`` (pixels), zero padding.

    Linear convolution via FFT: the grid is zero-padded at its end by at least the kernel half size, so the
    circular wrap only ever reads zeros. Differentiable w.r.t. ``x``.
    """
    k = parse_kernel(kernel)
    h, w = x.shape[-2:]
    radii = radii.detach().to(device=x.device, dtype=x.dtype)
    half = kernel_half_size(float(radii.abs().max()) if radii.numel() else 0.0)
    nh, nw = _good_fft_size(h + half), _good_fft_size(w + half)
    spec = _kernel_spectrum(radii.abs(), half, (nh, nw), k)
    out = torch.fft.irfft2(torch.fft.rfft2(x, s=(nh, nw)) * spec[None, :, None], s=(nh, nw))
    return out[..., :h, :w]


def _per_batch(v: Any, ref: torch.Tensor) -> torch.Tensor:
    """A scalar or ``[B]`` value as a ``[B or 1, 1, 1, 1]`` tensor on ``ref``'s device and dtype."""
    t = torch.as_tensor(v, device=ref.device, dtype=ref.dtype)
    return t.reshape(-1, 1, 1, 1) if t.ndim else t.reshape(1, 1, 1, 1)


def signed_coc(depth: torch.Tensor, fx: Any, aperture_m: Any, focus_m: Any, focal_length_m: Any = None
               ) -> torch.Tensor:
    """Signed CoC diameter ``[B, 1, H, W]`` in pixels (positive in front of the focus) of a depth map in metres."""
    f = None if focal_length_m is None else _per_batch(focal_length_m, depth)
    return coc_px(depth, _per_batch(fx, depth), _per_batch(aperture_m, depth), _per_batch(focus_m, depth), f)


def layer_step(coc: torch.Tensor, layer_step_px: float = 1.0, max_layers: int = 64) -> float:
    """CoC spacing of the layers (pixels): ``layer_step_px``, widened so that at most ``max_layers`` are needed."""
    c = coc.detach()
    span = max(float(c.max()), 0.0) - min(float(c.min()), 0.0)
    step = float(layer_step_px)
    if span / step + 3 > max_layers:
        step = span / max(max_layers - 3, 1)
    return step


def layer_grid(coc: torch.Tensor, step: float) -> torch.Tensor:
    """Grid indices (descending: near first) of the layers that some pixel gives a weight to; CoC = index * step."""
    fl = torch.floor(coc.detach() / step).flatten()
    lo = float(fl.min())
    hit = torch.bincount((fl - lo).long(), minlength=1) > 0
    hit = torch.cat([hit, hit.new_zeros(1)]) | torch.cat([hit.new_zeros(1), hit])  # floor and floor + 1
    idx = torch.nonzero(hit).flatten().to(coc.dtype) + lo
    return idx.flip(0)


def layer_weights(coc: torch.Tensor, grid: torch.Tensor, step: float) -> torch.Tensor:
    """Tent weights ``[B, L, 1, H, W]`` of each pixel to its two nearest layers (sum to 1, piecewise linear)."""
    u = coc.unsqueeze(1) / step  # [B, 1, 1, H, W]
    return (1.0 - (u - grid.reshape(1, -1, 1, 1, 1)).abs()).clamp_min(0.0)


def _prefix(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``out[:, l] = sum_{j < counts[l]} x[:, j]`` along dim 1 (exclusive prefix sums picked per layer)."""
    cs = torch.cat([torch.zeros_like(x[:, :1]), torch.cumsum(x, dim=1)], dim=1)
    return cs.index_select(1, counts)


def mixed_pixels(image: torch.Tensor, coc: torch.Tensor, min_jump_px: float, contrast: float = 0.05
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels that straddle a depth edge: the fraction ``beta [B, 1, H, W]`` of each pixel's colour that belongs
    to the surface across the edge, and that surface's CoC ``[B, 1, H, W]`` (pixels).

    An anti-aliased image mixes the colours of both surfaces in a silhouette pixel, while a depth map (one sample
    at the pixel centre) gives it one depth, so a defocus that moves the whole pixel with that depth spreads the
    foreground's share as if it were background (or the reverse). For each pixel, the 8-neighbour whose CoC differs
    most from its own marks the other surface (``o``, CoC jump at least ``min_jump_px``); the neighbour opposite it,
    when on the pixel's own side of the edge, gives the pure colour ``s`` of its own surface; ``beta`` is the
    position of the pixel's colour ``c`` on the segment from ``s`` to ``o`` (least squares, clamped to [0, 1]),
    faded out where the two colours are too close to tell apart (``|o - s| < contrast``).
    """
    B, C, H, W = image.shape
    pc = torch.nn.functional.pad(coc, (1, 1, 1, 1), mode="replicate")
    pi = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="replicate")
    nc = torch.stack([pc[:, :, dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)], 1)  # [B,9,1,H,W]
    ni = torch.stack([pi[:, :, dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)], 1)  # [B,9,C,H,W]
    jump = (nc - coc.unsqueeze(1)).abs()
    k = jump.detach().argmax(1, keepdim=True)  # [B,1,1,H,W] index of the other surface's neighbour
    opp = 8 - k  # the neighbour on the opposite side of the centre (index 4)
    c_other = nc.gather(1, k).squeeze(1)
    c_same = nc.gather(1, opp).squeeze(1)
    o = ni.gather(1, k.expand(-1, -1, C, -1, -1)).squeeze(1)
    s = ni.gather(1, opp.expand(-1, -1, C, -1, -1)).squeeze(1)
    d = o - s
    dd = (d * d).sum(1, keepdim=True)
    beta = (((image - s) * d).sum(1, keepdim=True) / dd.clamp_min(1e-12)).clamp(0.0, 1.0)
    edge = ((c_other - coc).abs() >= min_jump_px) & ((c_same - coc).abs() < 0.5 * min_jump_px)
    beta = torch.where(edge, beta * dd / (dd + contrast * contrast), torch.zeros_like(beta))
    return beta, c_other


def defocus_coc(image: torch.Tensor, coc: torch.Tensor, kernel: str | ApertureKernel = "disk", *,
                layer_step_px: float = 1.0, max_layers: int = 64, occlusion: bool = True, fill_hidden: bool = True,
                split_mixed: bool = True, return_alpha: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Layered defocus of ``image [B, C, H, W]`` given a signed CoC diameter map ``coc [B, 1, H, W]`` (pixels).

    See the module docstring. With ``fill_hidden`` the rays of a blurred layer that miss it near its silhouette
    see the content *behind* it (the layers farther than its neighbour, blurred with its kernel) instead of being
    renormalised away; this costs a second set of FFTs. ``return_alpha`` also returns the composited coverage.
    """
    step = layer_step(coc, layer_step_px, max_layers)
    grid = layer_grid(coc, step)  # [L] descending grid indices: near first
    w = layer_weights(coc, grid, step)  # [B, L, 1, H, W]
    if split_mixed:
        beta, c_other = mixed_pixels(image, coc, step)
        beta = beta.unsqueeze(1)
        w = (1.0 - beta) * w + beta * layer_weights(c_other, grid, step)
    radii = grid * (step / 2.0)
    stack = torch.cat([w * image.unsqueeze(1), w], dim=2)  # premultiplied colour + alpha
    blurred = blur_layers(stack, radii, kernel)
    col, alpha = blurred[:, :, :-1], blurred[:, :, -1:]
    trans = torch.ones_like(alpha)
    if occlusion:
        # layers at least two grid steps nearer occlude (a surface between two layers must not occlude itself)
        n_front = (grid[None, :] >= grid[:, None] + OCCLUSION_GAP_STEPS - 0.5).sum(1)
        trans = (1.0 - _prefix(alpha, n_front)).clamp(0.0, 1.0)
    num, den = (col * trans).sum(1), (alpha * trans).sum(1)
    if fill_hidden and len(grid) > 2:
        # content behind layer l (at least two steps farther), seen through l's kernel
        n_upto = (grid[None, :] >= grid[:, None] - OCCLUSION_GAP_STEPS + 0.5).sum(1)
        behind = stack.sum(1, keepdim=True) - _prefix(stack, n_upto)
        bk = blur_layers(behind, radii, kernel)
        own = w * trans  # how much each layer owns the pixel
        fill_c = (own * bk[:, :, :-1]).sum(1)
        fill_a = (own * bk[:, :, -1:]).sum(1)
        # coverage of the surface that owns layer l: a surface's tent weights span neighbouring layers, so its
        # coverage is the sum over the layers it cannot occlude (closer than the occlusion gap)
        same = ((grid[:, None] - grid[None, :]).abs() < OCCLUSION_GAP_STEPS - 0.5).to(alpha.dtype)
        surface = torch.einsum("lj,bjchw->blchw", same, alpha)
        missing = (own * (1.0 - surface).clamp_min(0.0)).sum(1)
        avail = (fill_a / missing.clamp_min(1e-6)).clamp(0.0, 1.0)
        deficit = (1.0 - den).clamp_min(0.0)
        gain = deficit * avail / fill_a.clamp_min(1e-6)
        num, den = num + gain * fill_c, den + gain * fill_a
    out = num / den.clamp_min(1e-6)
    # a defocus averages input colours: clip the slight over/undershoot of band-limited kernels at sharp layer edges
    lo = image.detach().amin(dim=(-2, -1), keepdim=True)
    hi = image.detach().amax(dim=(-2, -1), keepdim=True)
    out = torch.maximum(torch.minimum(out, hi), lo)
    return (out, den) if return_alpha else out


def soft_clamp_coc(coc: torch.Tensor, max_coc_px: float | None) -> torch.Tensor:
    """``max * tanh(coc / max)``: a CoC that saturates smoothly at +-``max_coc_px`` pixels (None: unchanged).

    Used when a virtual lens is calibrated on one depth band: pixels far outside it would need huge kernels, and a
    hard clamp would cut their gradient; tanh keeps a (small) one so a wrong depth is still pulled back.
    """
    if max_coc_px is None:
        return coc
    m = float(max_coc_px)
    return m * torch.tanh(coc / m)


def defocus(image: torch.Tensor, depth: torch.Tensor, fx: Any, aperture_m: Any, focus_m: Any,
            kernel: str | ApertureKernel = "disk", *, focal_length_m: Any = None, layer_step_px: float = 1.0,
            max_layers: int = 64, occlusion: bool = True, fill_hidden: bool = True,
            max_coc_px: float | None = None, split_mixed: bool = True) -> torch.Tensor:
    """Thin-lens defocus of ``image [B, C, H, W]`` with metric ``depth [B, 1, H, W]`` (> 0).

    ``fx`` pixels, ``aperture_m`` and ``focus_m`` metres (floats or ``[B]`` tensors); ``focal_length_m`` switches to
    the exact thin-lens CoC. ``kernel``: ``disk`` (default), ``gaussian``, a polygon name or an ApertureKernel.
    ``max_coc_px`` saturates the CoC smoothly (:func:`soft_clamp_coc`); None is the physical lens.
    """
    coc = soft_clamp_coc(signed_coc(depth, fx, aperture_m, focus_m, focal_length_m), max_coc_px)
    out = defocus_coc(image, coc, kernel, layer_step_px=layer_step_px, max_layers=max_layers, occlusion=occlusion,
                      fill_hidden=fill_hidden, split_mixed=split_mixed)
    assert isinstance(out, torch.Tensor)
    return out


def gather_defocus(image: torch.Tensor, depth: torch.Tensor, fx: Any, aperture_m: Any, focus_m: Any,
                   kernel: str | ApertureKernel = "disk", *, focal_length_m: Any = None,
                   layer_step_px: float = 1.0, max_layers: int = 64) -> torch.Tensor:
    """Naive baseline: each pixel averages the image with the kernel of its *own* CoC (no occlusion handling).

    Implemented exactly: the whole image is blurred with every layer's kernel (normalised at the borders) and each
    pixel interpolates between the two layers nearest to its own CoC.
    """
    coc = signed_coc(depth, fx, aperture_m, focus_m, focal_length_m)
    step = layer_step(coc, layer_step_px, max_layers)
    grid = layer_grid(coc, step)
    w = layer_weights(coc, grid, step)
    ones = torch.ones_like(image[:, :1])
    src = torch.cat([image, ones], dim=1).unsqueeze(1).expand(-1, len(grid), -1, -1, -1)
    blurred = blur_layers(src, grid * (step / 2.0), kernel)
    blurred = blurred[:, :, :-1] / blurred[:, :, -1:].clamp_min(1e-6)
    return (w * blurred).sum(1)
