"""SSIM map and its gradient as one C kernel for float32 CPU tensors (loaded with ctypes, built on first use).

Same maths as the torch path of :class:`recon.losses.photometric._SSIMMap` (11-tap Gaussian window, reflect padding,
the hand-written gradient), but each image row is blurred while it is in cache, and the five local statistics, the
map and its derivatives come out of one pass: several times faster than a chain of torch operations on small images.

The C source below is built on first use by :mod:`recon.losses.c_build` (the system C compiler, well under a
second). When it cannot be built or ``RECON_DISABLE_C_SSIM`` is set, :func:`available` is False and the torch path is
used.
"""

from __future__ import annotations

import ctypes
import os

import torch

from recon.losses.c_build import MULTIVERSION, cpu_float32, load_library, ptr

SOURCE = r"""
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
""" + MULTIVERSION + r"""

static inline int refl(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

/* Horizontal pass of row y of one plane into out (5 x W): the five statistics, as hpass does for every row. */
HELPER void hrow(const float *a, const float *b, int y, int W, const float *g, int r, float *out, float *buf) {
    const int Wp = W + 2 * r;
    const float *ra = a + (size_t)y * W, *rb = b + (size_t)y * W;
    float *pa = buf, *pb = buf + Wp, *paa = buf + 2 * Wp, *pbb = buf + 3 * Wp, *pab = buf + 4 * Wp;
    for (int x = 0; x < Wp; x++) {
        const int s = refl(x - r, W);
        const float va = ra[s], vb = rb[s];
        pa[x] = va; pb[x] = vb; paa[x] = va * va; pbb[x] = vb * vb; pab[x] = va * vb;
    }
    for (int q = 0; q < 5; q++) {
        const float *p = buf + (size_t)q * Wp;
        float *o = out + (size_t)q * W;
        const float g0 = g[0];
        for (int x = 0; x < W; x++) o[x] = g0 * p[x];
        for (int k = 1; k <= 2 * r; k++) {
            const float gk = g[k];
            const float *pk = p + k;
            for (int x = 0; x < W; x++) o[x] += gk * pk[x];
        }
    }
}

/* Horizontal pass of one plane: out[q][y][x] = sum_k g[k] f_q(refl(x + k - r)) for the five statistics
   f = (a, b, a a, b b, a b), k = 0 .. 2r; out is 5 planes of H x W. */
HELPER void hpass(const float *a, const float *b, int H, int W, const float *g, int r, float *out, float *buf) {
    const size_t HW = (size_t)H * W;
    float *row = buf + 5 * (size_t)(W + 2 * r);
    for (int y = 0; y < H; y++) {
        hrow(a, b, y, W, g, r, row, buf);
        for (int q = 0; q < 5; q++) memcpy(out + q * HW + (size_t)y * W, row + (size_t)q * W, sizeof(float) * W);
    }
}

/* SSIM of one row from its blurred statistics (separate functions: restrict lets the compiler vectorise). */
HELPER void ssim_row(int W, float c1, float c2, const float *restrict ma, const float *restrict mb,
                     const float *restrict qaa, const float *restrict qbb, const float *restrict qab,
                     float *restrict s) {
    for (int x = 0; x < W; x++) {
        const float mab = ma[x] * mb[x], ma2 = ma[x] * ma[x], mb2 = mb[x] * mb[x];
        const float a1 = 2 * mab + c1, a2 = 2 * (qab[x] - mab) + c2;
        const float b1 = ma2 + mb2 + c1, b2 = (qaa[x] - ma2) + (qbb[x] - mb2) + c2;
        s[x] = (a1 * a2) / (b1 * b2);
    }
}

/* ... and its derivatives: dS/dq = -S / b2, dS/dq_ab = 2 a1 / (b1 b2), dS/dm_a = m_b u + m_a w with
   u = 2 (a2 - a1) / (b1 b2), w = 2 S (1 / b2 - 1 / b1). One division a pixel; none by a1 or a2, which may be 0. */
HELPER void ssim_row_grad(int W, float c1, float c2, const float *restrict ma, const float *restrict mb,
                          const float *restrict qaa, const float *restrict qbb, const float *restrict qab,
                          float *restrict s, float *restrict dq, float *restrict dab, float *restrict u,
                          float *restrict w) {
    for (int x = 0; x < W; x++) {
        const float mab = ma[x] * mb[x], ma2 = ma[x] * ma[x], mb2 = mb[x] * mb[x];
        const float a1 = 2 * mab + c1, a2 = 2 * (qab[x] - mab) + c2;
        const float b1 = ma2 + mb2 + c1, b2 = (qaa[x] - ma2) + (qbb[x] - mb2) + c2;
        const float dn = 1 / (b1 * b2), ib1 = b2 * dn, ib2 = b1 * dn;
        const float sv = a1 * a2 * dn;
        s[x] = sv;
        dq[x] = -sv * ib2;
        dab[x] = 2 * a1 * dn;
        u[x] = 2 * (a2 - a1) * dn;
        w[x] = 2 * sv * (ib2 - ib1);
    }
}

HELPER void mix_row(int W, const float *restrict p, const float *restrict q, const float *restrict u,
                    const float *restrict w, float *restrict out) {
    for (int x = 0; x < W; x++) out[x] = p[x] * u[x] + q[x] * w[x];
}

/* planes images (H x W, row-major) of a and b -> SSIM map s; the derivative maps (dS/dm_a, dS/dm_b,
   dS/dq_aa = dS/dq_bb, dS/dq_ab) are written where their pointers are not NULL. Returns 0, or 1 when out of memory. */
CLONES int ssim_forward(const float *a, const float *b, long planes, int H, int W, const float *g, int ntaps,
                 float c1, float c2, float *s, float *d_ma, float *d_mb, float *d_q, float *d_ab) {
    const int r = ntaps / 2;
    const size_t HW = (size_t)H * W;
    float *h = (float *)malloc(sizeof(float) * (5 * HW + 5 * (size_t)(W + 2 * r) + 7 * (size_t)W));
    if (!h) return 1;
    float *buf = h + 5 * HW, *v = buf + 5 * (size_t)(W + 2 * r);
    for (long pl = 0; pl < planes; pl++) {
        const size_t off = (size_t)pl * HW;
        hpass(a + off, b + off, H, W, g, r, h, buf);
        for (int y = 0; y < H; y++) {
            for (int q = 0; q < 5; q++) {  /* vertical pass of row y, same order of sums as the torch path */
                float *o = v + (size_t)q * W;
                const float *src = h + q * HW;
                const float *row = src + (size_t)refl(y - r, H) * W;
                for (int x = 0; x < W; x++) o[x] = g[0] * row[x];
                for (int k = 1; k <= 2 * r; k++) {
                    const float gk = g[k];
                    row = src + (size_t)refl(y + k - r, H) * W;
                    for (int x = 0; x < W; x++) o[x] += gk * row[x];
                }
            }
            const size_t o = off + (size_t)y * W;
            float *ur = v + 5 * (size_t)W, *wr = v + 6 * (size_t)W;
            if (!d_q) {
                ssim_row(W, c1, c2, v, v + W, v + 2 * W, v + 3 * W, v + 4 * W, s + o);
                continue;
            }
            ssim_row_grad(W, c1, c2, v, v + W, v + 2 * W, v + 3 * W, v + 4 * W, s + o, d_q + o, d_ab + o, ur, wr);
            if (d_ma) mix_row(W, v + W, v, ur, wr, d_ma + o);
            if (d_mb) mix_row(W, v, v + W, ur, wr, d_mb + o);
        }
    }
    free(h);
    return 0;
}

/* Adjoint of "reflect-pad, correlate with g" along rows then columns, applied to n maps of one plane
   (p: n x H x W) -> out (n x H x W). */
HELPER void blur_adjoint(const float *p, int n, int H, int W, const float *g, int r, float *t, float *zp, float *out) {
    const size_t HW = (size_t)H * W;
    const int Wp = W + 2 * r;
    memset(t, 0, sizeof(float) * n * HW);
    for (int m = 0; m < n; m++) {  /* vertical: scatter each row over the rows it was gathered from */
        const float *pm = p + m * HW;
        float *tm = t + m * HW;
        for (int y = 0; y < H; y++) {
            const float *src = pm + (size_t)y * W;
            for (int k = 0; k <= 2 * r; k++) {
                const float gk = g[k];
                float *dst = tm + (size_t)refl(y + k - r, H) * W;
                for (int x = 0; x < W; x++) dst[x] += gk * src[x];
            }
        }
    }
    for (int m = 0; m < n; m++) {  /* horizontal: scatter into the padded row, then fold the padding back */
        for (int y = 0; y < H; y++) {
            const float *src = t + m * HW + (size_t)y * W;
            float *dst = out + m * HW + (size_t)y * W;
            memset(zp, 0, sizeof(float) * Wp);
            for (int k = 0; k <= 2 * r; k++) {
                const float gk = g[k];
                float *zk = zp + k;
                for (int x = 0; x < W; x++) zk[x] += gk * src[x];
            }
            for (int x = 0; x < W; x++) dst[x] = zp[x + r];
            for (int x = 0; x < r; x++) dst[r - x] += zp[x];
            for (int x = W + r; x < Wp; x++) dst[2 * (W - 1) - (x - r)] += zp[x];
        }
    }
}

/* Gradients of sum(G * S) for a (ga) and b (gb, either may be NULL; its derivative map then too). */
CLONES int ssim_backward(const float *a, const float *b, const float *G, long planes, int H, int W, const float *g,
                  int ntaps, const float *d_ma, const float *d_mb, const float *d_q, const float *d_ab, float *ga,
                  float *gb) {
    const int r = ntaps / 2;
    const size_t HW = (size_t)H * W;
    const int n = 2 + (ga != NULL) + (gb != NULL);
    float *work = (float *)malloc(sizeof(float) * (3 * (size_t)n * HW + (size_t)(W + 2 * r)));
    if (!work) return 1;
    float *p = work, *t = work + n * HW, *adj = work + 2 * n * HW, *zp = work + 3 * n * HW;
    for (long pl = 0; pl < planes; pl++) {
        const size_t off = (size_t)pl * HW;
        for (size_t i = 0; i < HW; i++) {
            const float gi = G[off + i];
            int m = 2;
            p[i] = gi * d_q[off + i];
            p[HW + i] = gi * d_ab[off + i];
            if (ga) p[m++ * HW + i] = gi * d_ma[off + i];
            if (gb) p[m * HW + i] = gi * d_mb[off + i];
        }
        blur_adjoint(p, n, H, W, g, r, t, zp, adj);
        const float *xq = adj, *xab = adj + HW;
        int m = 2;
        if (ga) {
            const float *xm = adj + m++ * HW;
            for (size_t i = 0; i < HW; i++) ga[off + i] = xm[i] + 2 * a[off + i] * xq[i] + b[off + i] * xab[i];
        }
        if (gb) {
            const float *xm = adj + m * HW;
            for (size_t i = 0; i < HW; i++) gb[off + i] = xm[i] + 2 * b[off + i] * xq[i] + a[off + i] * xab[i];
        }
    }
    free(work);
    return 0;
}

HELPER void axpy_row(int W, float s, const float *restrict x, float *restrict y) {
    for (int i = 0; i < W; i++) y[i] += s * x[i];
}

/* Row j of the gradient, once every output row that gathered from input row j has been scattered into its
   vertical-adjoint row t (3 x W: the q, q_ab and m_a parts): horizontal adjoint, then
   ga = k_ssim (x_m + 2 a x_q + b x_ab) + k_l1 G sign(a - b). */
HELPER void finish_row(const float *a, const float *b, const float *G, float uniform, float k_l1, float k_ssim,
                       int j, int W, const float *g, int r, float *t, float *zp, float *adj, float *ga) {
    const int Wp = W + 2 * r;
    for (int m = 0; m < 3; m++) {
        float *src = t + (size_t)m * W, *dst = adj + (size_t)m * W;
        memset(zp, 0, sizeof(float) * Wp);
        for (int k = 0; k <= 2 * r; k++) axpy_row(W, g[k], src, zp + k);
        for (int x = 0; x < W; x++) dst[x] = zp[x + r];
        for (int x = 0; x < r; x++) dst[r - x] += zp[x];
        for (int x = W + r; x < Wp; x++) dst[2 * (W - 1) - (x - r)] += zp[x];
        memset(src, 0, sizeof(float) * W);  /* the slot is reused by row j + 2r + 1 */
    }
    const size_t o = (size_t)j * W;
    const float *ar = a + o, *br = b + o, *xq = adj, *xab = adj + W, *xm = adj + 2 * W;
    float *gr = ga + o;
    for (int x = 0; x < W; x++) {
        const float d = ar[x] - br[x];
        const float sg = (float)((d > 0) - (d < 0));
        const float gx = G ? G[o + x] : uniform;
        gr[x] = k_ssim * (xm[x] + 2 * ar[x] * xq[x] + br[x] * xab[x]) + k_l1 * gx * sg;
    }
}

/* One plane of photometric_weighted: its L1 and SSIM sums, and its gradient rows when gp is not NULL. ``work``
   holds the plane's working rows (photometric_work_floats of them). An entry point of its own (not inlined), so
   the threads of an OpenMP region run its AVX2 version too: the region's outlined body has no clones. */
CLONES void photometric_plane(const float *ap, const float *bp, int H, int W, const float *g, int r, float c1,
                             float c2, const float *Gp, float uniform, float k_l1, float k_ssim, float *gp,
                             float *work, double *l1_out, double *ssim_out) {
    const int R = 2 * r + 1;
    const size_t RW = (size_t)R * W;
    float *hr = work, *tr = hr + 5 * RW, *v = tr + 3 * RW, *sr = v + 5 * (size_t)W, *qr = sr + W, *abr = qr + W;
    float *ur = abr + W, *wr = ur + W, *dm = wr + W, *pr = dm + W, *adj = pr + 3 * (size_t)W;
    float *buf = adj + 3 * (size_t)W, *zp = buf + 5 * (size_t)(W + 2 * r);
    double acc_s = 0, acc_l1 = 0;
    memset(tr, 0, sizeof(float) * 3 * RW);
    int next = 0;  /* next row whose horizontal statistics are computed */
    for (int y = 0; y < H; y++) {
        const int need = y + r < H ? y + r : H - 1;
        for (; next <= need; next++) hrow(ap, bp, next, W, g, r, hr + (size_t)(next % R) * 5 * W, buf);
        for (int q = 0; q < 5; q++) {  /* vertical pass of row y, same order of sums as the torch path */
            float *o = v + (size_t)q * W;
            const float *row = hr + (size_t)(refl(y - r, H) % R) * 5 * W + (size_t)q * W;
            for (int x = 0; x < W; x++) o[x] = g[0] * row[x];
            for (int k = 1; k <= 2 * r; k++)
                axpy_row(W, g[k], hr + (size_t)(refl(y + k - r, H) % R) * 5 * W + (size_t)q * W, o);
        }
        const size_t o = (size_t)y * W;
        const float *Gr = Gp ? Gp + o : NULL;
        double rl1 = 0, rs = 0;
        for (int x = 0; x < W; x++) {
            const float d = ap[o + x] - bp[o + x];
            const float ad = d < 0 ? -d : d;
            rl1 += Gr ? (double)Gr[x] * ad : ad;
        }
        if (!gp) {
            ssim_row(W, c1, c2, v, v + W, v + 2 * W, v + 3 * W, v + 4 * W, sr);
        } else {
            ssim_row_grad(W, c1, c2, v, v + W, v + 2 * W, v + 3 * W, v + 4 * W, sr, qr, abr, ur, wr);
            mix_row(W, v + W, v, ur, wr, dm);  /* dS/dm_a */
            float *pq = pr, *pab = pr + W, *pma = pr + 2 * W;
            for (int x = 0; x < W; x++) {
                const float gx = Gr ? Gr[x] : uniform;
                pq[x] = gx * qr[x];
                pab[x] = gx * abr[x];
                pma[x] = gx * dm[x];
            }
            for (int k = 0; k <= 2 * r; k++) {  /* vertical adjoint: scatter row y where it was gathered from */
                float *dst = tr + (size_t)(refl(y + k - r, H) % R) * 3 * W;
                for (int m = 0; m < 3; m++) axpy_row(W, g[k], pr + (size_t)m * W, dst + (size_t)m * W);
            }
            if (y - r >= 0)
                finish_row(ap, bp, Gp, uniform, k_l1, k_ssim, y - r, W, g, r,
                           tr + (size_t)((y - r) % R) * 3 * W, zp, adj, gp);
        }
        if (Gr) for (int x = 0; x < W; x++) rs += (double)Gr[x] * sr[x];
        else { for (int x = 0; x < W; x++) rs += sr[x]; rs *= uniform; rl1 *= uniform; }
        acc_s += rs;
        acc_l1 += rl1;
    }
    if (gp)
        for (int j = H - r > 0 ? H - r : 0; j < H; j++)
            finish_row(ap, bp, Gp, uniform, k_l1, k_ssim, j, W, g, r, tr + (size_t)(j % R) * 3 * W, zp, adj,
                       gp);
    *l1_out = acc_l1;
    *ssim_out = acc_s;
}

static size_t photometric_work_floats(int W, int r) {
    const size_t RW = (size_t)(2 * r + 1) * W;
    return 5 * RW + 3 * RW + 20 * (size_t)W + 6 * (size_t)(W + 2 * r);
}

/* The photometric loss form over planes images (H x W) of a (rendered) and b (target):
   l1 = sum(G |a - b|), ssim = sum(G S) with G per pixel (or the scalar `uniform` where G is NULL) and, where ga is
   not NULL, ga = k_l1 dl1/da + k_ssim dssim/da. Rows stream through ring buffers of 2r + 1 rows (horizontal
   statistics, vertical adjoint), so the working set stays in cache whatever the image size. */
CLONES int photometric_weighted(const float *a, const float *b, long planes, int H, int W, const float *g,
                                int ntaps, float c1, float c2, const float *G, float uniform, float k_l1,
                                float k_ssim, double *l1_total, double *ssim_total, float *ga, int nthreads) {
    const int r = ntaps / 2;
    const size_t per_thread = photometric_work_floats(W, r);
    /* planes are independent: with OpenMP they are split over nthreads, each thread with its own working rows;
       each plane's sums are kept apart and added in plane order, so the result does not depend on the split */
    int nt = nthreads > 1 ? nthreads : 1;
    if (nt > planes) nt = planes > 0 ? (int)planes : 1;
#ifndef _OPENMP
    nt = 1;
#endif
    float *work = (float *)malloc(sizeof(float) * per_thread * (size_t)nt);
    double *part = (double *)calloc(2 * (size_t)(planes > 0 ? planes : 1), sizeof(double));
    if (!work || !part) { free(work); free(part); return 1; }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (long pl = 0; pl < planes; pl++) {
#ifdef _OPENMP
        float *mine = work + per_thread * (size_t)omp_get_thread_num();
#else
        float *mine = work;
#endif
        const size_t off = (size_t)pl * H * W;
        photometric_plane(a + off, b + off, H, W, g, r, c1, c2, G ? G + off : NULL, uniform, k_l1, k_ssim,
                          ga ? ga + off : NULL, mine, part + 2 * pl, part + 2 * pl + 1);
    }
    double l1 = 0, ss = 0;
    for (long pl = 0; pl < planes; pl++) { l1 += part[2 * pl]; ss += part[2 * pl + 1]; }
    *l1_total = l1;
    *ssim_total = ss;
    free(work);
    free(part);
    return 0;
}
"""

def _declare(dll: ctypes.CDLL) -> None:
    fp, i64, i32, f32 = ctypes.c_void_p, ctypes.c_long, ctypes.c_int, ctypes.c_float
    dptr = ctypes.POINTER(ctypes.c_double)
    dll.ssim_forward.argtypes = [fp, fp, i64, i32, i32, fp, i32, f32, f32, fp, fp, fp, fp, fp]
    dll.ssim_backward.argtypes = [fp, fp, fp, i64, i32, i32, fp, i32, fp, fp, fp, fp, fp, fp]
    dll.photometric_weighted.argtypes = [fp, fp, i64, i32, i32, fp, i32, f32, f32, fp, f32, f32, f32, dptr, dptr, fp,
                                         i32]
    for f in (dll.ssim_forward, dll.ssim_backward, dll.photometric_weighted):
        f.restype = ctypes.c_int


def _lib() -> ctypes.CDLL | None:
    return load_library("recon_ssim", SOURCE, _declare)


def available() -> bool:
    """True when the kernel is (or can be) loaded and not disabled by ``RECON_DISABLE_C_SSIM``."""
    return not os.environ.get("RECON_DISABLE_C_SSIM") and _lib() is not None


def usable(*tensors: torch.Tensor) -> bool:
    """The kernel handles float32 CPU tensors (made contiguous), when it is available."""
    return cpu_float32(*tensors) and available()


_ptr = ptr


def _taps_array(taps: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(taps, dtype=torch.float32)


def forward(a: torch.Tensor, b: torch.Tensor, taps: tuple[float, ...], c1: float, c2: float, need_a: bool,
            need_b: bool) -> tuple[torch.Tensor, ...]:
    """SSIM map of contiguous float32 (…, H, W) ``a`` and ``b`` and the derivative maps (d_ma, d_mb, d_q, d_ab;
    None where not needed)."""
    lib = _lib()
    assert lib is not None
    h, w = a.shape[-2:]
    planes = a.numel() // (h * w)
    s = torch.empty_like(a)
    need = need_a or need_b
    d_q = torch.empty_like(a) if need else None
    d_ab = torch.empty_like(a) if need else None
    d_ma = torch.empty_like(a) if need_a else None
    d_mb = torch.empty_like(a) if need_b else None
    g = _taps_array(taps)
    rc = lib.ssim_forward(a.data_ptr(), b.data_ptr(), planes, h, w, g.data_ptr(), len(taps), c1, c2, s.data_ptr(),
                          _ptr(d_ma), _ptr(d_mb), _ptr(d_q), _ptr(d_ab))
    if rc != 0:
        raise MemoryError("SSIM kernel: out of memory")
    return s, d_ma, d_mb, d_q, d_ab


def backward(a: torch.Tensor, b: torch.Tensor, grad: torch.Tensor, taps: tuple[float, ...],
             d_ma: torch.Tensor | None, d_mb: torch.Tensor | None, d_q: torch.Tensor, d_ab: torch.Tensor
             ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``sum(grad * S)`` for ``a`` (when ``d_ma`` is given) and ``b`` (when ``d_mb`` is)."""
    lib = _lib()
    assert lib is not None
    h, w = a.shape[-2:]
    planes = a.numel() // (h * w)
    grad = grad.to(torch.float32).expand_as(a).contiguous()
    ga = torch.empty_like(a) if d_ma is not None else None
    gb = torch.empty_like(a) if d_mb is not None else None
    g = _taps_array(taps)
    rc = lib.ssim_backward(a.data_ptr(), b.data_ptr(), grad.data_ptr(), planes, h, w, g.data_ptr(), len(taps),
                           _ptr(d_ma), _ptr(d_mb), d_q.data_ptr(), d_ab.data_ptr(), _ptr(ga), _ptr(gb))
    if rc != 0:
        raise MemoryError("SSIM kernel: out of memory")
    return ga, gb


def photometric(a: torch.Tensor, b: torch.Tensor, taps: tuple[float, ...], c1: float, c2: float,
                weights: torch.Tensor | None, k_l1: float, k_ssim: float, need_grad: bool
                ) -> tuple[float, float, torch.Tensor | None]:
    """``sum(w |a - b|)``, ``sum(w SSIM(a, b))`` (``weights`` w contiguous like ``a``, or None for a uniform
    ``1 / a.numel()``) and, when ``need_grad``, ``k_l1`` times the first's gradient for ``a`` plus ``k_ssim`` times
    the second's; ``a`` and ``b`` contiguous float32 (…, H, W)."""
    lib = _lib()
    assert lib is not None
    h, w = a.shape[-2:]
    planes = a.numel() // (h * w)
    ga = torch.empty_like(a) if need_grad else None
    l1, ssim = ctypes.c_double(), ctypes.c_double()
    g = _taps_array(taps)
    rc = lib.photometric_weighted(a.data_ptr(), b.data_ptr(), planes, h, w, g.data_ptr(), len(taps), c1, c2,
                                  _ptr(weights), 1.0 / a.numel(), k_l1, k_ssim, ctypes.byref(l1), ctypes.byref(ssim),
                                  _ptr(ga), torch.get_num_threads())
    if rc != 0:
        raise MemoryError("SSIM kernel: out of memory")
    return l1.value, ssim.value, ga
