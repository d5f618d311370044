"""The sky composite ``rgb + (1 - alpha) * sigmoid(bilinear(texture, grid))`` as one C kernel for float32 CPU tensors.

Same maths as :meth:`recon.model.sky.SkyModel.lookup` followed by the composite in
:func:`recon.model.render_frame.render_frame`: ``grid_sample`` with bilinear interpolation, border padding and
``align_corners=False`` (a texel's centre at ``(i + 0.5) / size * 2 - 1``), then a sigmoid. The backward scatters
each pixel's gradient onto its four texels in one loop, where torch's generic ``grid_sample`` backward takes several
times longer for the sky's few thousand texels. Built on first use by :mod:`recon.losses.c_build`; unavailable (and
the torch path used) without a C compiler or with ``RECON_DISABLE_C_SKY`` set.
"""

from __future__ import annotations

import ctypes
import os

import torch

from recon.losses.c_build import MULTIVERSION, cpu_float32, load_library, ptr

SOURCE = r"""
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
""" + MULTIVERSION + r"""
/* grid_sample's source index for a normalised coordinate (align_corners=False), clipped to the border. */
HELPER float unnormalise(float g, int size) {
    float x = ((g + 1.0f) * size - 1.0f) * 0.5f;
    if (x < 0.0f) x = 0.0f;
    if (x > (float)(size - 1)) x = (float)(size - 1);
    return x;
}

/* Corner texel indices and weights of a pixel (a weight is 0 for a corner outside the texture). */
HELPER void corners(const float *grid, long p, int Ht, int Wt, int *idx, float *w) {
    const float x = unnormalise(grid[2 * p], Wt), y = unnormalise(grid[2 * p + 1], Ht);
    const int x0 = (int)floorf(x), y0 = (int)floorf(y);
    const float fx = x - x0, fy = y - y0;
    const int x1 = x0 + 1 < Wt ? x0 + 1 : x0, y1 = y0 + 1 < Ht ? y0 + 1 : y0;
    idx[0] = y0 * Wt + x0; w[0] = (1 - fx) * (1 - fy);
    idx[1] = y0 * Wt + x1; w[1] = x0 + 1 < Wt ? fx * (1 - fy) : 0.0f;
    idx[2] = y1 * Wt + x0; w[2] = y0 + 1 < Ht ? (1 - fx) * fy : 0.0f;
    idx[3] = y1 * Wt + x1; w[3] = (x0 + 1 < Wt && y0 + 1 < Ht) ? fx * fy : 0.0f;
}

/* out = rgb + (1 - alpha) sky, sky = sigmoid(bilinear(tex)) for pixels [p0, p1); rgb, out, sky: P x 3; tex: 3
   planes of Ht x Wt. An entry point of its own, so OpenMP threads run its AVX2 version too. */
CLONES void sky_forward_range(const float *rgb, const float *alpha, const float *tex, int Ht, int Wt,
                              const float *grid, long p0, long p1, float *out, float *sky) {
    const long T = (long)Ht * Wt;
    for (long p = p0; p < p1; p++) {
        int idx[4];
        float w[4];
        corners(grid, p, Ht, Wt, idx, w);
        for (int c = 0; c < 3; c++) {
            const float *tc = tex + c * T;
            const float v = w[0] * tc[idx[0]] + w[1] * tc[idx[1]] + w[2] * tc[idx[2]] + w[3] * tc[idx[3]];
            const float s = 1.0f / (1.0f + expf(-v));
            sky[3 * p + c] = s;
            out[3 * p + c] = rgb[3 * p + c] + (1.0f - alpha[p]) * s;
        }
    }
}

/* The whole image: pixels are independent, split over nthreads where the build has OpenMP (same result for any
   split). */
void sky_forward(const float *rgb, const float *alpha, const float *tex, int Ht, int Wt, const float *grid, long P,
                 float *out, float *sky, int nthreads) {
#ifdef _OPENMP
    const int nt = nthreads > 1 ? nthreads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const long t = omp_get_thread_num(), n = omp_get_num_threads();
        sky_forward_range(rgb, alpha, tex, Ht, Wt, grid, P * t / n, P * (t + 1) / n, out, sky);
    }
#else
    (void)nthreads;
    sky_forward_range(rgb, alpha, tex, Ht, Wt, grid, 0, P, out, sky);
#endif
}

/* Gradients for alpha (P) and the texture (3 x Ht x Wt, accumulated into g_tex, which the caller zeroes) from the
   gradient g (P x 3) of out; the gradient for rgb is g itself. */
CLONES void sky_backward(const float *g, const float *alpha, const float *sky, int Ht, int Wt, const float *grid,
                         long P, float *g_alpha, float *g_tex) {
    const long T = (long)Ht * Wt;
    for (long p = 0; p < P; p++) {
        int idx[4];
        float w[4];
        corners(grid, p, Ht, Wt, idx, w);
        float ga = 0.0f;
        for (int c = 0; c < 3; c++) {
            const float s = sky[3 * p + c], gc = g[3 * p + c];
            ga -= gc * s;
            const float d = gc * (1.0f - alpha[p]) * s * (1.0f - s);
            float *tc = g_tex + c * T;
            for (int k = 0; k < 4; k++) tc[idx[k]] += d * w[k];
        }
        if (g_alpha) g_alpha[p] = ga;
    }
}
"""


def _declare(dll: ctypes.CDLL) -> None:
    fp, i32, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
    dll.sky_forward.argtypes = [fp, fp, fp, i32, i32, fp, i64, fp, fp, i32]
    dll.sky_backward.argtypes = [fp, fp, fp, i32, i32, fp, i64, fp, fp]
    dll.sky_forward.restype = dll.sky_backward.restype = None


def _lib() -> ctypes.CDLL | None:
    return load_library("recon_sky", SOURCE, _declare)


def usable(*tensors: torch.Tensor) -> bool:
    """float32 CPU tensors, the kernel built and not disabled by ``RECON_DISABLE_C_SKY``."""
    return cpu_float32(*tensors) and not os.environ.get("RECON_DISABLE_C_SKY") and _lib() is not None


class SkyComposite(torch.autograd.Function):
    """``rgb + (1 - alpha)[..., None] * sigmoid(grid_sample(texture, grid))``: rgb (H, W, 3), alpha (H, W), texture
    (1, 3, Ht, Wt) logits, grid (1, H W, 1, 2) without gradient (a camera's cached sampling grid)."""

    @staticmethod
    def forward(ctx, rgb: torch.Tensor, alpha: torch.Tensor, texture: torch.Tensor,  # noqa: ANN001
                grid: torch.Tensor) -> torch.Tensor:
        lib = _lib()
        rgb_c, alpha_c, tex_c, grid_c = (t.detach().contiguous() for t in (rgb, alpha, texture, grid))
        ht, wt = tex_c.shape[-2:]
        n = alpha_c.numel()
        out = torch.empty_like(rgb_c)
        sky = torch.empty_like(rgb_c)
        lib.sky_forward(rgb_c.data_ptr(), alpha_c.data_ptr(), tex_c.data_ptr(), ht, wt, grid_c.data_ptr(), n,
                        out.data_ptr(), sky.data_ptr(), torch.get_num_threads())
        ctx.save_for_backward(alpha_c, sky, grid_c)
        ctx.tex_shape = tex_c.shape
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # noqa: ANN001, ANN205
        alpha, sky, grid = ctx.saved_tensors
        g = g.contiguous()
        ht, wt = ctx.tex_shape[-2:]
        need_alpha, need_tex = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        g_alpha = torch.empty_like(alpha) if need_alpha else None
        g_tex = torch.zeros(ctx.tex_shape, dtype=g.dtype) if need_tex else None
        if need_alpha or need_tex:
            scratch = g_tex if g_tex is not None else torch.zeros(ctx.tex_shape, dtype=g.dtype)
            _lib().sky_backward(g.data_ptr(), alpha.data_ptr(), sky.data_ptr(), ht, wt, grid.data_ptr(),
                                alpha.numel(), ptr(g_alpha), scratch.data_ptr())
        return (g if ctx.needs_input_grad[0] else None), g_alpha, g_tex, None
