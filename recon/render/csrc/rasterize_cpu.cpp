// CPU compositing kernels for recon.render (gsplat 1.5.3 rules), OpenMP over tiles.
//
// Forward: per tile, gather the tile's depth-sorted Gaussians into contiguous buffers, then per pixel walk the list
// front to back: sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with dx = mean - (pixel + 0.5); skip sigma < 0 or
// alpha < 1/255 (alpha = min(0.999, opacity exp(-sigma))); stop (exclusively) when T would drop to <= 1e-4.
// Backward: per pixel, recompute the forward contributions (bounded by the saved count) and walk them back to front
// with the exact suffix sums; gradients go to per-thread buffers that are summed at the end (no atomics).
#include <torch/extension.h>

#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr double kAlphaThreshold = 1.0 / 255.0;
constexpr double kTEps = 1e-4;
constexpr double kMaxAlpha = 0.999;

template <typename T>
struct TileData {
    std::vector<T> x, y, ca, cb, cc, op, thr, col;
    std::vector<int32_t> gid;
    void gather(const T* means2d, const T* conics, const T* colors, const T* opac, const int32_t* ids,
                int64_t start, int64_t count, int64_t d) {
        x.resize(count); y.resize(count); ca.resize(count); cb.resize(count); cc.resize(count);
        op.resize(count); thr.resize(count); col.resize(count * d); gid.resize(count);
        for (int64_t k = 0; k < count; ++k) {
            const int32_t g = ids[start + k];
            gid[k] = g;
            x[k] = means2d[2 * g]; y[k] = means2d[2 * g + 1];
            ca[k] = conics[3 * g]; cb[k] = conics[3 * g + 1]; cc[k] = conics[3 * g + 2];
            op[k] = opac[g];
            // sigma above log(255 * opacity) means alpha < 1/255; the margin keeps the exact test authoritative.
            thr[k] = op[k] > 0 ? static_cast<T>(std::log(static_cast<double>(op[k]) * 255.0) + 1e-3)
                               : static_cast<T>(-1.0);
            for (int64_t c = 0; c < d; ++c) col[k * d + c] = colors[g * d + c];
        }
    }
};

inline int num_threads() { return std::max(1, at::get_num_threads()); }

template <typename T>
void fwd_impl(const T* means2d, const T* conics, const T* colors, const T* opac, const T* bg, int64_t d,
              int64_t n_img, int64_t width, int64_t height, int64_t ts, int64_t tw, int64_t th,
              const int32_t* offsets, const int32_t* ids, int64_t n_isects, T* out, T* t_final, int32_t* n_contrib) {
    const int64_t n_tiles = n_img * tw * th;
#pragma omp parallel num_threads(num_threads())
    {
        TileData<T> td;
        std::vector<T> acc(d);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_tiles; ++t) {
            const int64_t img = t / (tw * th);
            const int64_t tl = t % (tw * th);
            const int64_t ty = tl / tw, tx = tl % tw;
            const int64_t start = offsets[t];
            const int64_t end = (t + 1 < n_tiles) ? offsets[t + 1] : n_isects;
            const int64_t count = end - start;
            td.gather(means2d, conics, colors, opac, ids, start, count, d);
            const T* bgi = bg ? bg + img * d : nullptr;
            for (int64_t py = ty * ts; py < std::min(height, (ty + 1) * ts); ++py) {
                for (int64_t px = tx * ts; px < std::min(width, (tx + 1) * ts); ++px) {
                    const T fx = static_cast<T>(px) + T(0.5), fy = static_cast<T>(py) + T(0.5);
                    std::fill(acc.begin(), acc.end(), T(0));
                    T trans = 1;
                    int32_t last = 0;
                    for (int64_t k = 0; k < count; ++k) {
                        const T dx = td.x[k] - fx, dy = td.y[k] - fy;
                        const T sigma = T(0.5) * (td.ca[k] * dx * dx + td.cc[k] * dy * dy) + td.cb[k] * dx * dy;
                        if (sigma < 0 || sigma > td.thr[k]) continue;
                        const T alpha = std::min(T(kMaxAlpha), td.op[k] * std::exp(-sigma));
                        if (alpha < T(kAlphaThreshold)) continue;
                        const T next = trans * (T(1) - alpha);
                        if (next <= T(kTEps)) break;
                        const T w = alpha * trans;
                        const T* c = &td.col[k * d];
                        for (int64_t j = 0; j < d; ++j) acc[j] += c[j] * w;
                        trans = next;
                        last = static_cast<int32_t>(k + 1);
                    }
                    const int64_t pix = (img * height + py) * width + px;
                    for (int64_t j = 0; j < d; ++j) out[pix * d + j] = acc[j] + (bgi ? trans * bgi[j] : T(0));
                    t_final[pix] = trans;
                    n_contrib[pix] = last;
                }
            }
        }
    }
}

template <typename T>
void bwd_impl(const T* means2d, const T* conics, const T* colors, const T* opac, const T* bg, int64_t d,
              int64_t n_img, int64_t width, int64_t height, int64_t ts, int64_t tw, int64_t th,
              const int32_t* offsets, const int32_t* ids, int64_t n_isects, const int32_t* n_contrib,
              const T* g_out, const T* g_alpha, bool absgrad, int64_t n_flat, T* buf) {
    // buf: [threads, n_flat, stride] with per-Gaussian (mx, my, ca, cb, cc, opacity, |mx|, |my|, colour[d])
    const int64_t stride = 8 + d;
    const int64_t n_tiles = n_img * tw * th;
#pragma omp parallel num_threads(num_threads())
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        T* mybuf = buf + static_cast<int64_t>(tid) * n_flat * stride;
        TileData<T> td;
        std::vector<T> loc;  // per tile-list-entry accumulators [count, stride]
        std::vector<int32_t> ks;
        std::vector<T> al, tb, vs;
        std::vector<char> unclamped;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_tiles; ++t) {
            const int64_t img = t / (tw * th);
            const int64_t tl = t % (tw * th);
            const int64_t ty = tl / tw, tx = tl % tw;
            const int64_t start = offsets[t];
            const int64_t end = (t + 1 < n_tiles) ? offsets[t + 1] : n_isects;
            const int64_t count = end - start;
            if (count == 0) continue;
            td.gather(means2d, conics, colors, opac, ids, start, count, d);
            loc.assign(count * stride, T(0));
            ks.resize(count); al.resize(count); tb.resize(count); vs.resize(count); unclamped.resize(count);
            const T* bgi = bg ? bg + img * d : nullptr;
            for (int64_t py = ty * ts; py < std::min(height, (ty + 1) * ts); ++py) {
                for (int64_t px = tx * ts; px < std::min(width, (tx + 1) * ts); ++px) {
                    const int64_t pix = (img * height + py) * width + px;
                    const int64_t lim = n_contrib[pix];
                    if (lim == 0) continue;
                    const T fx = static_cast<T>(px) + T(0.5), fy = static_cast<T>(py) + T(0.5);
                    // recompute the forward walk, remembering each contribution
                    int64_t n = 0;
                    T trans = 1;
                    for (int64_t k = 0; k < lim; ++k) {
                        const T dx = td.x[k] - fx, dy = td.y[k] - fy;
                        const T sigma = T(0.5) * (td.ca[k] * dx * dx + td.cc[k] * dy * dy) + td.cb[k] * dx * dy;
                        if (sigma < 0 || sigma > td.thr[k]) continue;
                        const T vis = std::exp(-sigma);
                        const T raw = td.op[k] * vis;
                        const T alpha = std::min(T(kMaxAlpha), raw);
                        if (alpha < T(kAlphaThreshold)) continue;
                        ks[n] = static_cast<int32_t>(k); al[n] = alpha; tb[n] = trans; vs[n] = vis;
                        unclamped[n] = raw <= T(kMaxAlpha);
                        ++n;
                        trans = trans * (T(1) - alpha);
                    }
                    const T* go = g_out + pix * d;
                    const T ga = g_alpha[pix];
                    T behind = 0;  // grad . (colour seen behind the current Gaussian)
                    if (bgi) for (int64_t j = 0; j < d; ++j) behind += bgi[j] * go[j];
                    behind *= trans;
                    const T alpha_term = ga * trans;
                    for (int64_t i = n - 1; i >= 0; --i) {
                        const int64_t k = ks[i];
                        const T a = al[i], tbi = tb[i];
                        const T* c = &td.col[k * d];
                        T* lk = &loc[k * stride];
                        T cg = 0;
                        for (int64_t j = 0; j < d; ++j) {
                            cg += c[j] * go[j];
                            lk[8 + j] += a * tbi * go[j];
                        }
                        const T inv = T(1) / (T(1) - a);
                        const T v_a = tbi * cg - behind * inv + alpha_term * inv;
                        behind += a * tbi * cg;
                        if (!unclamped[i]) continue;
                        const T vis = vs[i];
                        lk[5] += v_a * vis;
                        const T v_sig = -v_a * td.op[k] * vis;
                        const T dx = td.x[k] - fx, dy = td.y[k] - fy;
                        lk[2] += v_sig * T(0.5) * dx * dx;
                        lk[3] += v_sig * dx * dy;
                        lk[4] += v_sig * T(0.5) * dy * dy;
                        const T vmx = v_sig * (td.ca[k] * dx + td.cb[k] * dy);
                        const T vmy = v_sig * (td.cb[k] * dx + td.cc[k] * dy);
                        lk[0] += vmx;
                        lk[1] += vmy;
                        if (absgrad) {
                            lk[6] += std::abs(vmx);
                            lk[7] += std::abs(vmy);
                        }
                    }
                }
            }
            for (int64_t k = 0; k < count; ++k) {
                T* dst = mybuf + static_cast<int64_t>(td.gid[k]) * stride;
                const T* src = &loc[k * stride];
                for (int64_t j = 0; j < stride; ++j) dst[j] += src[j];
            }
        }
    }
}

void check_inputs(const torch::Tensor& means2d, const torch::Tensor& conics, const torch::Tensor& colors,
                  const torch::Tensor& opac, const torch::Tensor& offsets, const torch::Tensor& ids) {
    TORCH_CHECK(means2d.device().is_cpu(), "recon CPU rasterizer needs CPU tensors");
    TORCH_CHECK(means2d.is_contiguous() && conics.is_contiguous() && colors.is_contiguous() && opac.is_contiguous(),
                "inputs must be contiguous");
    TORCH_CHECK(offsets.scalar_type() == torch::kInt32 && ids.scalar_type() == torch::kInt32, "int32 ids expected");
    TORCH_CHECK(conics.scalar_type() == means2d.scalar_type() && colors.scalar_type() == means2d.scalar_type() &&
                opac.scalar_type() == means2d.scalar_type(), "all float inputs must share one dtype");
}

}  // namespace

std::vector<torch::Tensor> rasterize_fwd(torch::Tensor means2d, torch::Tensor conics, torch::Tensor colors,
                                         torch::Tensor opac, c10::optional<torch::Tensor> bg, int64_t width,
                                         int64_t height, int64_t ts, torch::Tensor offsets, torch::Tensor ids) {
    check_inputs(means2d, conics, colors, opac, offsets, ids);
    const int64_t n_img = offsets.size(0), th = offsets.size(1), tw = offsets.size(2);
    const int64_t d = colors.size(1);
    auto fopt = colors.options();
    auto out = torch::zeros({n_img, height, width, d}, fopt);
    auto t_final = torch::ones({n_img, height, width}, fopt);
    auto n_contrib = torch::zeros({n_img, height, width}, fopt.dtype(torch::kInt32));
    AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "recon_rasterize_fwd", [&] {
        fwd_impl<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(),
                           opac.data_ptr<scalar_t>(), bg.has_value() ? bg->data_ptr<scalar_t>() : nullptr, d, n_img,
                           width, height, ts, tw, th, offsets.data_ptr<int32_t>(), ids.data_ptr<int32_t>(),
                           ids.numel(), out.data_ptr<scalar_t>(), t_final.data_ptr<scalar_t>(),
                           n_contrib.data_ptr<int32_t>());
    });
    return {out, t_final, n_contrib};
}

std::vector<torch::Tensor> rasterize_bwd(torch::Tensor means2d, torch::Tensor conics, torch::Tensor colors,
                                         torch::Tensor opac, c10::optional<torch::Tensor> bg, int64_t width,
                                         int64_t height, int64_t ts, torch::Tensor offsets, torch::Tensor ids,
                                         torch::Tensor t_final, torch::Tensor n_contrib, torch::Tensor g_out,
                                         torch::Tensor g_alpha, bool absgrad) {
    check_inputs(means2d, conics, colors, opac, offsets, ids);
    TORCH_CHECK(g_out.is_contiguous() && g_alpha.is_contiguous() && n_contrib.is_contiguous(), "grads contiguous");
    (void)t_final;
    const int64_t n_img = offsets.size(0), th = offsets.size(1), tw = offsets.size(2);
    const int64_t d = colors.size(1);
    const int64_t n_flat = colors.size(0);
    const int64_t stride = 8 + d;
    const int nt = num_threads();
    auto buf = torch::zeros({nt, n_flat, stride}, colors.options());
    AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "recon_rasterize_bwd", [&] {
        bwd_impl<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(),
                           opac.data_ptr<scalar_t>(), bg.has_value() ? bg->data_ptr<scalar_t>() : nullptr, d, n_img,
                           width, height, ts, tw, th, offsets.data_ptr<int32_t>(), ids.data_ptr<int32_t>(),
                           ids.numel(), n_contrib.data_ptr<int32_t>(), g_out.to(colors.scalar_type()).data_ptr<scalar_t>(),
                           g_alpha.to(colors.scalar_type()).data_ptr<scalar_t>(), absgrad, n_flat,
                           buf.data_ptr<scalar_t>());
    });
    auto tot = nt > 1 ? buf.sum(0) : buf[0];
    auto v_means = tot.slice(1, 0, 2).contiguous();
    auto v_conics = tot.slice(1, 2, 5).contiguous();
    auto v_opac = tot.select(1, 5).contiguous();
    auto v_abs = tot.slice(1, 6, 8).contiguous();
    auto v_colors = tot.slice(1, 8, 8 + d).contiguous();
    return {v_means, v_conics, v_colors, v_opac, v_abs};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("rasterize_fwd", &rasterize_fwd, "recon CPU tile rasterizer forward");
    m.def("rasterize_bwd", &rasterize_bwd, "recon CPU tile rasterizer backward");
}
