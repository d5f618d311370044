"""Photometric losses: L1 and SSIM between a rendered and a ground-truth image. Pure functions of tensors.

Images are (B, 3, H, W) float in [0, 1]; masks (B, 1, H, W) in [0, 1] weight pixels (e.g. to ignore ego-vehicle).

SSIM uses an 11-tap Gaussian window (sigma 1.5 px) with reflect padding, so the map has the image's size. Its five
local statistics are blurred in one batched pass of shifted-slice sums, and its gradient is written out by hand
(:class:`_SSIMMap`): three adjoint blurs instead of autograd's graph through padding and convolutions, several
times faster on the CPU for the same values (to float rounding). On float32 CPU tensors the same maths runs as one C
kernel (:mod:`recon.losses.ssim_cpu`) where a C compiler is available.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from recon.losses import ssim_cpu

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


@functools.lru_cache(maxsize=8)
def _taps(size: int, sigma: float) -> tuple[float, ...]:
    """Normalised 1-D Gaussian window (``size`` taps, ``sigma`` pixels) as Python floats."""
    g = [math.exp(-((i - (size - 1) / 2) ** 2) / (2 * sigma**2)) for i in range(size)]
    s = sum(g)
    return tuple(x / s for x in g)


def _correlate(x: torch.Tensor, taps: tuple[float, ...], dim: int, n: int) -> torch.Tensor:
    """Valid correlation of ``x`` with ``taps`` along ``dim`` (-1 or -2): output length ``n``."""
    out = x.narrow(dim, 0, n) * taps[0]
    for k in range(1, len(taps)):
        out.add_(x.narrow(dim, k, n), alpha=taps[k])
    return out


def gaussian_blur(x: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """Separable blur of (B, C, H, W) ``x`` with the symmetric window ``taps``, reflect padding, same size out."""
    r = len(taps) // 2
    h, w = x.shape[-2:]
    p = F.pad(x, (r, r, r, r), mode="reflect")
    return _correlate(_correlate(p, taps, -1, w), taps, -2, h)


def _blur_adjoint_1d(y: torch.Tensor, taps: tuple[float, ...], dim: int) -> torch.Tensor:
    """Adjoint along ``dim`` of "reflect-pad by r, then correlate with the symmetric ``taps``"."""
    r = len(taps) // 2
    n = y.shape[dim]
    shape = list(y.shape)
    shape[dim] = n + 2 * r
    z = y.new_zeros(shape)
    for k, t in enumerate(taps):  # the correlation's adjoint: scatter each output back over its window
        z.narrow(dim, k, n).add_(y, alpha=t)
    out = z.narrow(dim, r, n).clone()
    # reflect padding copied x[r..1] to the left border and x[n-2..n-1-r] to the right: fold those back
    out.narrow(dim, 1, r).add_(z.narrow(dim, 0, r).flip(dim))
    out.narrow(dim, n - 1 - r, r).add_(z.narrow(dim, n + r, r).flip(dim))
    return out


def gaussian_blur_adjoint(y: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """Adjoint (transpose) of :func:`gaussian_blur`: ``<blur(x), y> == <x, blur_adjoint(y)>``."""
    return _blur_adjoint_1d(_blur_adjoint_1d(y, taps, -2), taps, -1)


class _SSIMMap(torch.autograd.Function):
    """Per-pixel SSIM of ``a`` and ``b`` with a hand-written backward (both inputs may require gradients).

    With m = blur(x), q_xy = blur(x y) the map is S = A1 A2 / (B1 B2), A1 = 2 m_a m_b + C1, A2 = 2 (q_ab - m_a m_b) +
    C2, B1 = m_a^2 + m_b^2 + C1, B2 = q_aa - m_a^2 + q_bb - m_b^2 + C2, so for an upstream gradient G
    dL/da = blur^T(G dS/dm_a) + 2 a blur^T(G dS/dq_aa) + b blur^T(G dS/dq_ab) (and symmetrically for b), with
    dS/dm_a = 2 m_b (A2 - A1) / (B1 B2) + 2 m_a S (1 / B2 - 1 / B1), dS/dq_aa = dS/dq_bb = -S / B2 and
    dS/dq_ab = 2 A1 / (B1 B2): nothing is divided by A1 or A2, which vanish where the images are dark or
    anti-correlated (B1 >= C1 and B2 >= C2 do not).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:  # noqa: ANN001
        need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.taps = taps
        ctx.c_kernel = ssim_cpu.usable(a, b)
        if ctx.c_kernel:
            a, b = a.contiguous(), b.contiguous()
            s, d_ma, d_mb, d_q, d_ab = ssim_cpu.forward(a, b, taps, SSIM_C1, SSIM_C2, need_a, need_b)
            if need_a or need_b:
                ctx.save_for_backward(a, b, d_q, d_ab, d_ma, d_mb)
            return s
        c = a.shape[1]
        stats = gaussian_blur(torch.cat([a, b, a * a, b * b, a * b], dim=1), taps)
        m_a, m_b, q_aa, q_bb, q_ab = stats.split(c, dim=1)
        mab = m_a * m_b
        ma2, mb2 = m_a * m_a, m_b * m_b
        a1 = 2 * mab + SSIM_C1
        a2 = 2 * (q_ab - mab) + SSIM_C2
        b1 = ma2 + mb2 + SSIM_C1
        b2 = (q_aa - ma2) + (q_bb - mb2) + SSIM_C2
        s = (a1 * a2) / (b1 * b2)
        if need_a or need_b:
            ib1, ib2 = 1 / b1, 1 / b2
            d_q = -s * ib2
            d_ab = 2 * a1 * ib1 * ib2
            u, w = 2 * (a2 - a1) * ib1 * ib2, 2 * s * (ib2 - ib1)
            d_ma = m_b * u + m_a * w if need_a else None
            d_mb = m_a * u + m_b * w if need_b else None
            ctx.save_for_backward(a, b, d_q, d_ab, d_ma, d_mb)
        return s

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        a, b, d_q, d_ab, d_ma, d_mb = ctx.saved_tensors
        if ctx.c_kernel:
            ga, gb = ssim_cpu.backward(a, b, grad, ctx.taps, d_ma, d_mb, d_q, d_ab)
            return ga, gb, None
        parts = [grad * d_q, grad * d_ab] + [grad * d for d in (d_ma, d_mb) if d is not None]
        adj = gaussian_blur_adjoint(torch.cat(parts, dim=1), ctx.taps).split(a.shape[1], dim=1)
        x_q, x_ab, rest = adj[0], adj[1], list(adj[2:])
        ga = gb = None
        if d_ma is not None:
            ga = rest.pop(0) + 2 * a * x_q + b * x_ab
        if d_mb is not None:
            gb = rest.pop(0) + 2 * b * x_q + a * x_ab
        return ga, gb, None


class _Photometric(torch.autograd.Function):
    """``l1_weight * sum(w |a - b|) + ssim_weight * (1 - sum(w SSIM(a, b)))`` through the C kernel (float32 CPU):
    value and gradient for ``a`` from one streaming pass, nothing per pixel kept for backward (``b`` and the pixel
    weights ``w``, uniform when None, carry no gradient)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor | None, l1_weight: float,  # noqa: ANN001
                ssim_weight: float, taps: tuple[float, ...]) -> torch.Tensor:
        l1, ssim, ga = ssim_cpu.photometric(a.contiguous(), b.contiguous(), taps, SSIM_C1, SSIM_C2, weights,
                                            l1_weight, -ssim_weight, ctx.needs_input_grad[0])
        ctx.save_for_backward(ga)
        return a.new_tensor(l1_weight * l1 + ssim_weight * (1.0 - ssim))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        (ga,) = ctx.saved_tensors
        return grad * ga, None, None, None, None, None


def _fused_weights(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None) -> tuple[bool, torch.Tensor | None]:
    """Whether the C kernel takes this loss, and its pixel weights (``mask`` normalised, None when uniform)."""
    if (gt.requires_grad or (mask is not None and mask.requires_grad) or pred.dim() != 4
            or not ssim_cpu.usable(pred, gt)):
        return False, None
    if mask is None:
        return True, None
    m = mask.to(pred.dtype).expand_as(pred)
    return True, (m / m.sum().clamp_min(1e-6)).contiguous()


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H, W) with a separable Gaussian window and reflect padding (same size output)."""
    return _SSIMMap.apply(a, b, _taps(window, float(sigma)))


def _wmean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    m = mask.expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1e-6)


def l1_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return _wmean((pred - gt).abs(), mask)


def ssim_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 - mean SSIM (weighted by ``mask`` when given)."""
    fused, weights = _fused_weights(pred, gt, mask)
    if fused:
        return _Photometric.apply(pred, gt, weights, 0.0, 1.0, _taps(11, 1.5))
    return 1.0 - _wmean(ssim_map(pred, gt), mask)


def photometric_loss(pred: torch.Tensor, gt: torch.Tensor, ssim_lambda: float = 0.2,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """The 3DGS image loss: (1 - lambda) * L1 + lambda * (1 - SSIM)."""
    if ssim_lambda > 0:
        fused, weights = _fused_weights(pred, gt, mask)
        if fused:
            return _Photometric.apply(pred, gt, weights, 1.0 - ssim_lambda, ssim_lambda, _taps(11, 1.5))
    loss = (1.0 - ssim_lambda) * l1_loss(pred, gt, mask)
    if ssim_lambda > 0:
        loss = loss + ssim_lambda * ssim_loss(pred, gt, mask)
    return loss
