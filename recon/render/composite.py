"""Front-to-back alpha compositing of binned 2D Gaussians on the CPU (gsplat 1.5.3 rules), with a custom backward.

Rules, as ``RasterizeToPixels3DGSFwd.cu``: pixel centres at (x + 0.5, y + 0.5); ``sigma = 0.5 (a dx^2 + c dy^2) +
b dx dy`` with ``dx = mean - pixel``; ``alpha = min(0.999, opacity * exp(-sigma))``; a Gaussian is skipped when
``sigma < 0`` or ``alpha < 1/255``; a pixel stops (exclusively) at the first Gaussian that would take its
transmittance to ``<= 1e-4``. Output colour ``sum_i c_i alpha_i T_i + T_final * background``, alpha ``1 - T_final``.

Memory stays low because :class:`RasterizeToPixels` saves only its inputs and the final transmittance and recomputes
each tile's contributions in backward (like gsplat's CUDA backward). Two implementations of the same maths:
``"cpp"`` (OpenMP C++ extension, see :mod:`recon.render.cpp_ext`) and ``"torch"`` (vectorised over groups of tiles,
padded to the group's longest list; groups sized by a memory budget).
"""

from __future__ import annotations

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0
T_EPS = 1e-4
MAX_ALPHA = 0.999
# Elements of one [tiles, pixels, depth] working tensor in the torch path (~15 such tensors live in backward).
GROUP_BUDGET = 1 << 20


def _tile_ranges(tile_offsets: Tensor, n_isects: int) -> tuple[Tensor, Tensor]:
    starts = tile_offsets.reshape(-1).long()
    ends = torch.cat([starts[1:], starts.new_tensor([n_isects])])
    return starts, ends - starts


def _groups(counts: Tensor, pix: int) -> list[Tensor]:
    """Non-empty tiles grouped (by ascending list length) so that tiles * pix * max_len <= GROUP_BUDGET."""
    tiles = counts.nonzero().squeeze(1)
    if tiles.numel() == 0:
        return []
    order = torch.argsort(counts[tiles], stable=True)
    tiles = tiles[order]
    lens = counts[tiles].tolist()
    out, begin = [], 0
    for i, k in enumerate(lens):
        if (i - begin + 1) * pix * k > GROUP_BUDGET and i > begin:
            out.append(tiles[begin:i])
            begin = i
    out.append(tiles[begin:])
    return out


class _Group:
    """Gathered data and recomputed compositing quantities for one group of tiles (torch path)."""

    def __init__(self, tiles, starts, counts, flatten_ids, means2d, conics, opacities, width, height, tile_size,
                 tw, th):
        dev = means2d.device
        n_tiles = tw * th
        self.tiles = tiles
        k = int(counts[tiles].max().item())
        ar = torch.arange(k, device=dev)
        self.kmask = ar[None, :] < counts[tiles][:, None]  # [G, K]
        idx = (starts[tiles][:, None] + ar[None, :]).clamp(max=max(flatten_ids.numel() - 1, 0))
        self.gid = torch.where(self.kmask, flatten_ids[idx].long(), torch.zeros_like(idx))  # [G, K]
        img = tiles // n_tiles
        t_local = tiles % n_tiles
        ty, tx = t_local // tw, t_local % tw
        p = torch.arange(tile_size * tile_size, device=dev)
        py = ty[:, None] * tile_size + p[None, :] // tile_size  # [G, P]
        px = tx[:, None] * tile_size + p[None, :] % tile_size
        self.inside = (px < width) & (py < height)
        self.pix_flat = (img[:, None] * height + py.clamp(max=height - 1)) * width + px.clamp(max=width - 1)
        self.img = img
        self.dx = means2d[self.gid, 0][:, None, :] - (px.to(means2d.dtype) + 0.5)[:, :, None]  # [G, P, K]
        self.dy = means2d[self.gid, 1][:, None, :] - (py.to(means2d.dtype) + 0.5)[:, :, None]
        con = conics[self.gid]  # [G, K, 3]
        self.ca, self.cb, self.cc = (con[..., i][:, None, :] for i in range(3))
        self.sigma = 0.5 * (self.ca * self.dx**2 + self.cc * self.dy**2) + self.cb * self.dx * self.dy
        self.opac = opacities[self.gid][:, None, :]
        self.vis = torch.exp(-self.sigma)
        self.alpha_raw = self.opac * self.vis
        alpha = self.alpha_raw.clamp(max=MAX_ALPHA)
        valid = self.kmask[:, None, :] & self.inside[:, :, None] & (self.sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
        a = torch.where(valid, alpha, torch.zeros_like(alpha))
        # exclusive stop: keep the prefix whose inclusive transmittance stays above T_EPS
        keep = torch.cumprod(1 - a, dim=-1) > T_EPS
        self.valid = valid & keep
        self.a = torch.where(self.valid, a, torch.zeros_like(a))
        incl = torch.cumprod(1 - self.a, dim=-1)
        self.t_excl = torch.cat([torch.ones_like(incl[..., :1]), incl[..., :-1]], dim=-1)
        self.t_final = incl[..., -1]  # [G, P]
        self.w = self.a * self.t_excl


def _forward_torch(means2d, conics, colors, opacities, backgrounds, width, height, tile_size, tile_offsets,
                   flatten_ids):
    n_img, th, tw = tile_offsets.shape
    d = colors.shape[-1]
    dev, dt = colors.device, colors.dtype
    out = torch.zeros(n_img * height * width, d, device=dev, dtype=dt)
    t_final = torch.ones(n_img * height * width, device=dev, dtype=dt)
    starts, counts = _tile_ranges(tile_offsets, flatten_ids.numel())
    for tiles in _groups(counts, tile_size * tile_size):
        g = _Group(tiles, starts, counts, flatten_ids, means2d, conics, opacities, width, height, tile_size, tw, th)
        col = torch.einsum("gpk,gkd->gpd", g.w, colors[g.gid])
        sel = g.inside
        out[g.pix_flat[sel]] = col[sel]
        t_final[g.pix_flat[sel]] = g.t_final[sel]
    out = out.reshape(n_img, height, width, d)
    t_final = t_final.reshape(n_img, height, width)
    if backgrounds is not None:
        out = out + t_final[..., None] * backgrounds[:, None, None, :]
    return out, t_final


def _backward_torch(means2d, conics, colors, opacities, backgrounds, width, height, tile_size, tile_offsets,
                    flatten_ids, grad_out, grad_alpha, absgrad):
    n_img, th, tw = tile_offsets.shape
    d = colors.shape[-1]
    n_flat = colors.shape[0]
    v_means = torch.zeros(n_flat, 2, dtype=means2d.dtype, device=means2d.device)
    v_abs = torch.zeros_like(v_means) if absgrad else None
    v_conics = torch.zeros_like(conics)
    v_colors = torch.zeros_like(colors)
    v_opac = torch.zeros_like(opacities)
    g_out = grad_out.reshape(-1, d)
    g_alpha = grad_alpha.reshape(-1)
    bg_dot = None
    v_bg_pix = None
    if backgrounds is not None:
        bg_dot = (grad_out * backgrounds[:, None, None, :]).sum(-1).reshape(-1)  # [I*H*W]
    starts, counts = _tile_ranges(tile_offsets, flatten_ids.numel())
    t_final_all = torch.ones(n_img * height * width, dtype=colors.dtype, device=colors.device)
    for tiles in _groups(counts, tile_size * tile_size):
        g = _Group(tiles, starts, counts, flatten_ids, means2d, conics, opacities, width, height, tile_size, tw, th)
        ins = g.inside.to(colors.dtype)
        gc = g_out[g.pix_flat] * ins[..., None]  # [G, P, D]
        ga = g_alpha[g.pix_flat] * ins  # [G, P]
        col = colors[g.gid]  # [G, K, D]
        v_colors.index_add_(0, g.gid.reshape(-1), torch.einsum("gpk,gpd->gkd", g.w, gc).reshape(-1, d))
        cg = torch.einsum("gkd,gpd->gpk", col, gc)  # colour . grad
        contrib = g.w * cg
        # S_k = sum_{j>k} w_j cg_j + T_final * (bg . grad): what the pixel sees behind Gaussian k
        suffix = contrib.flip(-1).cumsum(-1).flip(-1) - contrib
        behind = suffix
        if bg_dot is not None:
            behind = behind + (g.t_final * bg_dot[g.pix_flat] * ins)[..., None]
        one_m = 1 - g.a
        v_a = g.t_excl * cg - behind / one_m + (ga * g.t_final)[..., None] / one_m
        v_a = torch.where(g.valid & (g.alpha_raw <= MAX_ALPHA), v_a, torch.zeros_like(v_a))
        v_o = (v_a * g.vis).sum(1)  # [G, K]
        v_sig = -v_a * g.opac * g.vis
        v_ca = (v_sig * 0.5 * g.dx**2).sum(1)
        v_cb = (v_sig * g.dx * g.dy).sum(1)
        v_cc = (v_sig * 0.5 * g.dy**2).sum(1)
        v_mx = v_sig * (g.ca * g.dx + g.cb * g.dy)
        v_my = v_sig * (g.cb * g.dx + g.cc * g.dy)
        flat = g.gid.reshape(-1)
        v_opac.index_add_(0, flat, v_o.reshape(-1))
        v_conics.index_add_(0, flat, torch.stack([v_ca, v_cb, v_cc], -1).reshape(-1, 3))
        v_means.index_add_(0, flat, torch.stack([v_mx.sum(1), v_my.sum(1)], -1).reshape(-1, 2))
        if v_abs is not None:
            v_abs.index_add_(0, flat, torch.stack([v_mx.abs().sum(1), v_my.abs().sum(1)], -1).reshape(-1, 2))
        sel = g.inside
        t_final_all[g.pix_flat[sel]] = g.t_final[sel]
    # padded slots all point at Gaussian 0 with zero weight, so their contributions above are exact zeros
    if backgrounds is not None:
        v_bg_pix = (grad_out * t_final_all.reshape(n_img, height, width, 1)).sum((1, 2))
    return v_means, v_conics, v_colors, v_opac, v_bg_pix, v_abs


class SplitGradient:
    """Asks the compositor's backward for the ``means2d`` gradient of one part of the loss, in the same pass.

    The trainer grows Gaussians from the screen-space gradient of the image terms only (see
    ``recon.train.trainer.Trainer._backward``). Before ``backward()`` on the whole loss, set ``grad_out`` and
    ``grad_alpha``: that part's gradient with respect to the compositor's outputs (colours [C, H, W, D], alphas
    [C, H, W, 1]; the rasterizer's info dict holds them as ``split_grad_outputs``); the backward then also walks
    each pixel with them for the means alone (a fraction of the cost of a second backward pass) and leaves the
    result in ``means2d_grad`` ([C, N, 2]).

    It holds no reference to the graph (the outputs stay in the info dict): the autograd node keeps this object, so
    a reference back to the node's outputs would make a cycle that only Python's cycle collector frees, and the
    graph of every iteration would pile up in memory until it ran.
    """

    def __init__(self) -> None:
        self.grad_out: Tensor | None = None
        self.grad_alpha: Tensor | None = None
        self.means2d_grad: Tensor | None = None


class RasterizeToPixels(torch.autograd.Function):
    """Differentiable compositing; saves inputs only and recomputes per tile in backward."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, backgrounds, width, height, tile_size, tile_offsets,
                flatten_ids, absgrad, impl, split=None):
        flat_means = means2d.reshape(-1, 2)
        if impl == "cpp":
            from .cpp_ext import load_extension

            ext = load_extension()
            out, t_final, alphas, n_contrib = ext.rasterize_fwd(
                flat_means.contiguous(), conics.contiguous(), colors.contiguous(), opacities.contiguous(),
                backgrounds.contiguous() if backgrounds is not None else None,
                width, height, tile_size, tile_offsets.int().contiguous(), flatten_ids.int().contiguous(),
            )
        else:
            out, t_final = _forward_torch(flat_means, conics, colors, opacities, backgrounds, width, height,
                                          tile_size, tile_offsets, flatten_ids)
            n_contrib = None
            alphas = (1 - t_final)[..., None]
        ctx.save_for_backward(means2d, conics, colors, opacities, backgrounds, tile_offsets, flatten_ids, t_final,
                              n_contrib)
        ctx.cfg = (width, height, tile_size, absgrad, impl)
        ctx.means2d_ref = means2d  # gsplat sets .absgrad on the caller's means2d tensor
        ctx.split = split
        return out, alphas

    @staticmethod
    def backward(ctx, grad_out, grad_alpha):
        means2d, conics, colors, opacities, backgrounds, tile_offsets, flatten_ids, t_final, n_contrib = (
            ctx.saved_tensors
        )
        width, height, tile_size, absgrad, impl = ctx.cfg
        flat_means = means2d.reshape(-1, 2)
        grad_out = grad_out.contiguous()
        grad_alpha = grad_alpha.contiguous()
        split = ctx.split if ctx.split is not None and ctx.split.grad_out is not None else None
        if split is not None:
            g_out2 = split.grad_out.reshape(grad_out.shape).to(grad_out.dtype).contiguous()
            g_alpha2 = split.grad_alpha.reshape(grad_alpha.shape).to(grad_alpha.dtype).contiguous()
        if impl == "cpp":
            from .cpp_ext import load_extension

            ext = load_extension()
            v_means, v_conics, v_colors, v_opac, v_abs, v_means2 = ext.rasterize_bwd(
                flat_means.contiguous(), conics.contiguous(), colors.contiguous(), opacities.contiguous(),
                backgrounds.contiguous() if backgrounds is not None else None,
                width, height, tile_size, tile_offsets.int().contiguous(), flatten_ids.int().contiguous(),
                t_final, n_contrib, grad_out, grad_alpha[..., 0].contiguous(), absgrad,
                g_out2 if split is not None else None,
                g_alpha2[..., 0].contiguous() if split is not None else None,
            )
            v_bg = None
            if backgrounds is not None and ctx.needs_input_grad[4]:
                v_bg = (grad_out * t_final[..., None]).sum((1, 2))
        else:
            v_means, v_conics, v_colors, v_opac, v_bg, v_abs = _backward_torch(
                flat_means, conics, colors, opacities, backgrounds, width, height, tile_size, tile_offsets,
                flatten_ids, grad_out, grad_alpha, absgrad,
            )
            if split is not None:  # the torch path walks again with the other gradient (fallback only)
                v_means2 = _backward_torch(flat_means, conics, colors, opacities, backgrounds, width, height,
                                           tile_size, tile_offsets, flatten_ids, g_out2, g_alpha2, False)[0]
        if split is not None:
            split.means2d_grad = v_means2.reshape(means2d.shape)
        if absgrad and v_abs is not None:
            ctx.means2d_ref.absgrad = v_abs.reshape(means2d.shape)
        return (v_means.reshape(means2d.shape), v_conics, v_colors, v_opac,
                v_bg if backgrounds is not None and ctx.needs_input_grad[4] else None,
                None, None, None, None, None, None, None, None)
