// CPU kernels for recon.render (gsplat 1.5.3 rules): compositing, EWA projection and tile binning, OpenMP over tiles.
//
// Forward: per tile, gather the tile's depth-sorted Gaussians into contiguous buffers and walk them front to back:
// sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with dx = mean - (pixel + 0.5); skip sigma < 0 or alpha < 1/255
// (alpha = min(0.999, opacity exp(-sigma))); stop (exclusively) when T would drop to <= 1e-4. The list is consumed
// in chunks while any pixel of the tile still transmits light; per pixel row, each Gaussian updates the pixels of
// its alpha >= 1/255 span, W at a time in short vectors (the same operations, in the same order per pixel, as a
// scalar walk). The forward saves per pixel the length of the list prefix holding its contributors.
// Backward: per row, recompute the forward contributions (within the saved prefix) and walk them back to front with
// the exact suffix sums; gradients go to per-lane accumulators per tile, then per-thread buffers summed at the end
// (no atomics). Tiles are dealt to threads statically so each buffer sums the same tiles in the same order every
// run: training is reproducible.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr double kAlphaThreshold = 1.0 / 255.0;
constexpr double kTEps = 1e-4;
constexpr double kMaxAlpha = 0.999;

constexpr int64_t kPad = 8;  // a multiple of every vector width (in lanes) used below

template <typename T>
struct TileData {
    std::vector<T> x, y, ca, cb, cc, op, thr, col;
    std::vector<int32_t> gid;
    void gather(const T* means2d, const T* conics, const T* colors, const T* opac, const int32_t* ids,
                int64_t start, int64_t count, int64_t d) {
        // the per-Gaussian arrays hold whole groups of kPad (RowList reads them a vector at a time); the padding
        // entries have thr < 0, so nothing uses them
        const int64_t cp = (count + kPad - 1) / kPad * kPad;
        x.resize(cp); y.resize(cp); ca.resize(cp); cb.resize(cp); cc.resize(cp);
        op.resize(cp); thr.resize(cp); col.resize(count * d); gid.resize(count);
        for (int64_t k = count; k < cp; ++k) {
            x[k] = y[k] = ca[k] = cb[k] = cc[k] = op[k] = T(0);
            thr[k] = T(-1);
        }
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

// ---------------------------------------------------------------------------------------------------------------
// Short vectors (GCC/Clang vector extensions) over W neighbouring pixels of a tile row: 16 bytes by default (SSE2
// on x86-64, NEON on arm64; no -march needed), 32 bytes when built with -mavx2 (recon/render/cpp_ext.py does so
// only on a CPU with AVX2, into its own module). Lane arithmetic is plain IEEE +, -, *, / without contraction
// (the AVX2 build also passes -ffp-contract=off), so a lane computes exactly what the scalar expression would,
// whatever the width. The backward sums its per-lane gradient terms in accumulators of the 16-byte width (A, WA
// lanes), folding each W-lane term in 16-byte pieces, low to high: the additions happen in the order of the 16-byte
// build, so both builds give the same gradients bit for bit.
template <typename T>
struct Simd;
#ifdef __AVX2__
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
template <>
struct Simd<float> {
    typedef float V __attribute__((vector_size(kVecBytes)));
    typedef int32_t M __attribute__((vector_size(kVecBytes)));  // lane masks: all ones or zero
    typedef float A __attribute__((vector_size(16)));            // gradient accumulators
    static constexpr int W = kVecBytes / 4;
    static constexpr int WA = 4;
};
template <>
struct Simd<double> {
    typedef double V __attribute__((vector_size(kVecBytes)));
    typedef int64_t M __attribute__((vector_size(kVecBytes)));
    typedef double A __attribute__((vector_size(16)));
    static constexpr int W = kVecBytes / 8;
    static constexpr int WA = 2;
};

template <typename V>
inline V vload(const void* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <typename V>
inline void vstore(void* p, V v) { std::memcpy(p, &v, sizeof(V)); }
template <typename M>
inline bool any_lane(M m) {
#if defined(__AVX2__)
    if constexpr (sizeof(M) == 32) {
        __m256i v;
        std::memcpy(&v, &m, sizeof(v));
        return !_mm256_testz_si256(v, v);
    }
#endif
#ifdef __SSE2__
    if constexpr (sizeof(M) == 16) {
        __m128i v;
        std::memcpy(&v, &m, sizeof(v));
        return _mm_movemask_epi8(v) != 0;
    }
#endif
    uint64_t h[sizeof(M) / 8];
    std::memcpy(h, &m, sizeof(h));
    uint64_t o = 0;
    for (uint64_t x : h) o |= x;
    return o != 0;
}
// acc += v, v's lanes taken 16 bytes at a time from the low end (one addition when V is as wide as A)
template <typename A, typename V>
inline void fold_add(A& acc, V v) {
    for (size_t h = 0; h < sizeof(V); h += sizeof(A)) {
        A part;
        std::memcpy(&part, reinterpret_cast<const char*>(&v) + h, sizeof(A));
        acc += part;
    }
}

// exp of float lanes: Cephes' expf (round-to-nearest range reduction by ln 2 in two parts, degree-5 polynomial),
// within 1 ulp of exp on [-87, 0] (checked over every float there; equal to glibc's expf for 99% of them), and 0
// below -87 (true value < 2e-38). Double lanes use std::exp.
inline Simd<float>::V vexp(Simd<float>::V x) {
    typedef Simd<float>::V V;
    typedef Simd<float>::M M;
    const M tiny = x < -87.0f;
    x = x < -87.0f ? V{} - 87.0f : x;
    x = x > 88.0f ? V{} + 88.0f : x;
    const V shift = V{} + 12582912.0f;  // 1.5 * 2^23: adding and removing it rounds to an integer
    const V n = (x * 1.44269504088896341f + shift) - shift;
    V r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    V p = V{} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const M e = (__builtin_convertvector(n, M) + 127) << 23;
    V s;
    std::memcpy(&s, &e, sizeof(V));
    const V y = p * s;
    return tiny ? V{} : y;
}
inline Simd<double>::V vexp(Simd<double>::V x) {
    Simd<double>::V y;
    for (int l = 0; l < Simd<double>::W; ++l) y[l] = std::exp(x[l]);
    return y;
}

// Apply a native-register operation f to a GCC vector of the same size (memcpy: no aliasing assumptions).
template <typename N, typename V, typename F>
inline V via_native(V x, F f) {
    N v;
    std::memcpy(&v, &x, sizeof(V));
    v = f(v);
    std::memcpy(&x, &v, sizeof(V));
    return x;
}

// sqrt of every lane (IEEE, correctly rounded, as std::sqrt)
template <typename V>
inline V vsqrt(V x) {
    typedef typename std::remove_reference<decltype(x[0])>::type E;
#if defined(__AVX2__)
    if constexpr (sizeof(V) == 32 && std::is_same<E, float>::value)
        return via_native<__m256>(x, [](__m256 v) { return _mm256_sqrt_ps(v); });
    if constexpr (sizeof(V) == 32 && std::is_same<E, double>::value)
        return via_native<__m256d>(x, [](__m256d v) { return _mm256_sqrt_pd(v); });
#endif
#ifdef __SSE2__
    if constexpr (sizeof(V) == 16 && std::is_same<E, float>::value)
        return via_native<__m128>(x, [](__m128 v) { return _mm_sqrt_ps(v); });
    if constexpr (sizeof(V) == 16 && std::is_same<E, double>::value)
        return via_native<__m128d>(x, [](__m128d v) { return _mm_sqrt_pd(v); });
#endif
    for (size_t l = 0; l < sizeof(V) / sizeof(E); ++l) x[l] = std::sqrt(x[l]);
    return x;
}

// For one pixel row of a tile: the Gaussians (in depth order) whose alpha >= 1/255 ellipse crosses the row, with
// the span of pixels [p0, p1] (columns within the tile) it may cover. Outside the span sigma > log(255 opacity) +
// 1e-3 analytically, so the exact per-pixel test would reject those pixels anyway; this only saves work. The span
// is rounded outwards, so it holds every pixel centre of the analytic interval.
template <typename T>
struct RowList {
    std::vector<int32_t> k, p0, p1;  // entries [0, n)
    int64_t n = 0;
    // The Gaussians [0, count) of td, W at a time: the scalar bound's arithmetic on each lane (so the spans are
    // those a scalar loop would give), then the kept lanes appended in order.
    void build(const TileData<T>& td, int64_t count, T fy, T x0f, int64_t nw) {
        typedef typename Simd<T>::V V;
        typedef typename Simd<T>::M M;
        typedef typename std::remove_reference<decltype(M{}[0])>::type MI;
        constexpr int W = Simd<T>::W;
        static_assert(kPad % W == 0, "TileData pads to whole vectors");
        if (static_cast<int64_t>(k.size()) < count + W) {
            k.resize(count + W); p0.resize(count + W); p1.resize(count + W);
        }
        n = 0;
        const T x_max = x0f + static_cast<T>(nw - 1);
        const T last = static_cast<T>(nw - 1);
        const V inf = V{} + std::numeric_limits<T>::infinity();
        M iota;
        for (int l = 0; l < W; ++l) iota[l] = static_cast<MI>(l);
        int32_t* pk = k.data();
        int32_t* pa = p0.data();
        int32_t* pb = p1.data();
        for (int64_t i = 0; i < count; i += W) {
            const V thr = vload<V>(&td.thr[i]);
            const V x = vload<V>(&td.x[i]);
            const V A = T(0.5) * vload<V>(&td.ca[i]);
            const V dy = vload<V>(&td.y[i]) - fy;
            const V B = vload<V>(&td.cb[i]) * dy;
            const V C = T(0.5) * vload<V>(&td.cc[i]) * dy * dy - thr;
            const V disc = B * B - 4 * A * C;
            const V sq = vsqrt(disc);
            const V r1 = (-B - sq) / (2 * A), r2 = (-B + sq) / (2 * A);  // dx = mean - px in [r1, r2]
            const V marg = T(1e-3) + T(1e-5) * (x < T(0) ? -x : x);
            // degenerate conic (A <= 0): no cheap bound, keep the whole row
            const M pos = A > T(0);
            const V l = pos ? x - r2 - marg : -inf;
            const V h = pos ? x - r1 + marg : inf;
            M keep = ~(thr < T(0)) & ~(pos & (disc < T(0))) & ~(h < x0f) & ~(l > x_max) &
                     ((iota + static_cast<MI>(i)) < static_cast<MI>(count));
            if (!any_lane(keep)) continue;
            // a = max(0, floor(l - x0f)), b = min(nw - 1, ceil(h - x0f)); NaN bounds keep the whole row. Clamped
            // first (to [0, nw] and [-1, nw - 1], where floor and ceil commute with the clamp), so the integer
            // conversion cannot overflow.
            const V lo = l - x0f, hi = h - x0f;
            V lc = lo > T(0) ? lo : V{};
            lc = lc < static_cast<T>(nw) ? lc : V{} + static_cast<T>(nw);
            V hc = hi < last ? hi : V{} + last;
            hc = hc > T(-1) ? hc : V{} - T(1);
            const M a = __builtin_convertvector(lc, M);  // truncation = floor for lc >= 0
            M b = __builtin_convertvector(hc, M);
            b -= __builtin_convertvector(b, V) < hc;     // ceil: one more where truncation went down
            keep &= a <= b;
            for (int j = 0; j < W; ++j) {  // branch-free append of the kept lanes
                pk[n] = static_cast<int32_t>(i + j);
                pa[n] = static_cast<int32_t>(a[j]);
                pb[n] = static_cast<int32_t>(b[j]);
                n += keep[j] != 0;
            }
        }
    }
};

// The per-pixel maths of one Gaussian on W pixels of a row (pixel centres fx, row centre fy): which lanes it
// contributes to (``ok``: inside its span, sigma in [0, thr], alpha >= 1/255), and alpha, exp(-sigma), and whether
// alpha was below the 0.999 clamp. Lanes that are not ``ok`` hold meaningless values.
template <typename T>
struct Hit {
    typename Simd<T>::V alpha, vis;
    typename Simd<T>::M ok, unclamped;
};

template <typename T>
inline Hit<T> hit(const TileData<T>& td, int64_t k, T fy, typename Simd<T>::V fx, typename Simd<T>::M in) {
    typedef typename Simd<T>::V V;
    const V dx = td.x[k] - fx;
    const T dy = td.y[k] - fy;
    const T ccdy2 = td.cc[k] * dy * dy;
    const V sigma = T(0.5) * (td.ca[k] * dx * dx + ccdy2) + td.cb[k] * dx * dy;
    Hit<T> h;
    h.ok = in & ~((sigma < T(0)) | (sigma > td.thr[k]));
    if (!any_lane(h.ok)) return h;
    h.vis = vexp(-sigma);
    const V raw = td.op[k] * h.vis;
    h.alpha = raw < T(kMaxAlpha) ? raw : V{} + T(kMaxAlpha);  // std::min(0.999, raw)
    h.ok &= ~(h.alpha < T(kAlphaThreshold));
    h.unclamped = raw <= T(kMaxAlpha);
    return h;
}

// Forward. Each tile's list is consumed in chunks of kChunk Gaussians (front to back) while any of its pixels still
// transmits light: on dense views the pixels stop after a small prefix of a long list, so the rest of the list is
// never gathered nor intersected with the rows. Within a row, Gaussians are the outer loop and groups of W pixels
// of each one's span the inner loop; every pixel still sees the same Gaussians in the same order, with the same
// arithmetic, as a front-to-back walk of the whole list.
constexpr int64_t kChunk = 64;

template <typename T>
void fwd_impl(const T* means2d, const T* conics, const T* colors, const T* opac, const T* bg, int64_t d,
              int64_t n_img, int64_t width, int64_t height, int64_t ts, int64_t tw, int64_t th,
              const int32_t* offsets, const int32_t* ids, int64_t n_isects, T* out, T* t_final, T* alphas,
              int32_t* n_contrib) {
    typedef typename Simd<T>::V V;
    typedef typename Simd<T>::M M;
    typedef typename std::remove_reference<decltype(M{}[0])>::type MI;
    constexpr int W = Simd<T>::W;
    const int64_t n_tiles = n_img * tw * th;
    const int64_t rw = (ts + W - 1) / W * W;  // row stride of the per-pixel state, whole groups
#pragma omp parallel num_threads(num_threads())
    {
        TileData<T> td;
        RowList<T> rows;
        // per-pixel state of the current tile, rows of rw lanes (colour planar: [row][channel][lane])
        std::vector<T> trans_px(ts * rw), acc_px(ts * rw * d);
        std::vector<MI> last_px(ts * rw), alive_px(ts * rw);
        std::vector<int64_t> row_alive(ts);
        std::vector<M> lane_v(rw / W);  // column indices of each lane group
        for (int64_t gi = 0; gi < rw / W; ++gi)
            for (int l = 0; l < W; ++l) lane_v[gi][l] = static_cast<MI>(gi * W + l);
        std::vector<V> fx_v(rw / W);  // pixel-centre x of each lane group (per tile)
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_tiles; ++t) {
            const int64_t img = t / (tw * th);
            const int64_t tl = t % (tw * th);
            const int64_t ty = tl / tw, tx = tl % tw;
            const int64_t start = offsets[t];
            const int64_t end = (t + 1 < n_tiles) ? offsets[t + 1] : n_isects;
            const int64_t count = end - start;
            const int64_t x0 = tx * ts, y0 = ty * ts;
            const int64_t nw = std::min(width, x0 + ts) - x0, nh = std::min(height, y0 + ts) - y0;
            const T x0f = static_cast<T>(x0) + T(0.5);
            for (int64_t gi = 0; gi < rw / W; ++gi)
                for (int l = 0; l < W; ++l) fx_v[gi][l] = x0f + static_cast<T>(gi * W + l);
            std::fill(trans_px.begin(), trans_px.end(), T(1));
            std::fill(acc_px.begin(), acc_px.end(), T(0));
            std::fill(last_px.begin(), last_px.end(), MI(0));
            for (int64_t ry = 0; ry < nh; ++ry)
                for (int64_t rx = 0; rx < rw; ++rx) alive_px[ry * rw + rx] = rx < nw ? MI(-1) : MI(0);
            std::fill(row_alive.begin(), row_alive.begin() + nh, nw);
            int64_t alive = nw * nh;
            for (int64_t c0 = 0; c0 < count && alive > 0; c0 += kChunk) {
                const int64_t cn = std::min(kChunk, count - c0);
                td.gather(means2d, conics, colors, opac, ids, start + c0, cn, d);
                for (int64_t ry = 0; ry < nh; ++ry) {
                    if (row_alive[ry] == 0) continue;
                    const T fy = static_cast<T>(y0 + ry) + T(0.5);
                    rows.build(td, cn, fy, x0f, nw);
                    const int64_t nr = rows.n;
                    T* trans_row = &trans_px[ry * rw];
                    T* acc_row = &acc_px[ry * rw * d];
                    MI* last_row = &last_px[ry * rw];
                    MI* alive_row = &alive_px[ry * rw];
                    for (int64_t r = 0; r < nr && row_alive[ry] > 0; ++r) {
                        const int64_t k = rows.k[r];
                        const T* c = &td.col[k * d];
                        const MI idx = static_cast<MI>(c0 + k + 1);
                        const int32_t p0 = rows.p0[r], p1 = rows.p1[r];
                        for (int64_t o = p0 / W * W; o <= p1; o += W) {
                            const M lane = lane_v[o / W];
                            const M in = vload<M>(alive_row + o) & (lane >= p0) & (lane <= p1);
                            if (!any_lane(in)) continue;
                            const Hit<T> h = hit(td, k, fy, fx_v[o / W], in);
                            if (!any_lane(h.ok)) continue;
                            const V trans = vload<V>(trans_row + o);
                            const V next = trans * (T(1) - h.alpha);
                            const M stop = h.ok & (next <= T(kTEps));
                            const M upd = h.ok & ~stop;
                            const V w = h.alpha * trans;
                            for (int64_t j = 0; j < d; ++j) {
                                const V acc = vload<V>(acc_row + j * rw + o);
                                vstore(acc_row + j * rw + o, upd ? acc + c[j] * w : acc);
                            }
                            vstore(trans_row + o, upd ? next : trans);
                            const M last = vload<M>(last_row + o);
                            vstore(last_row + o, upd ? M{} + idx : last);
                            if (any_lane(stop)) {
                                vstore(alive_row + o, vload<M>(alive_row + o) & ~stop);
                                int64_t n_stop = 0;
                                for (int l = 0; l < W; ++l) n_stop += stop[l] != 0;
                                alive -= n_stop;
                                row_alive[ry] -= n_stop;
                            }
                        }
                    }
                }
            }
            const T* bgi = bg ? bg + img * d : nullptr;
            for (int64_t ry = 0; ry < nh; ++ry) {
                for (int64_t rx = 0; rx < nw; ++rx) {
                    const int64_t p = ry * rw + rx;
                    const int64_t pix = (img * height + y0 + ry) * width + x0 + rx;
                    const T trans = trans_px[p];
                    for (int64_t j = 0; j < d; ++j)
                        out[pix * d + j] = acc_px[ry * rw * d + j * rw + rx] + (bgi ? trans * bgi[j] : T(0));
                    t_final[pix] = trans;
                    alphas[pix] = T(1) - trans;
                    n_contrib[pix] = static_cast<int32_t>(last_px[p]);
                }
            }
        }
    }
}

// Backward. n_contrib holds, per pixel, the length of the tile-list prefix that holds its contributors (from the
// forward), so each tile gathers and intersects only the prefix its pixels reached. Per row, the forward walk is
// recomputed Gaussian by Gaussian on groups of W pixels (as in the forward), keeping each contribution, then the
// row is walked back to front, Gaussian by Gaussian. Each pixel meets its contributions in the same order as a
// per-pixel walk would; each Gaussian's terms are summed per lane over the tile, then across the lanes (a fixed
// order, so the result is the same every run).
template <typename T>
void bwd_impl(const T* means2d, const T* conics, const T* colors, const T* opac, const T* bg, int64_t d,
              int64_t n_img, int64_t width, int64_t height, int64_t ts, int64_t tw, int64_t th,
              const int32_t* offsets, const int32_t* ids, int64_t n_isects, const int32_t* n_contrib,
              const T* g_out, const T* g_alpha, bool absgrad, const T* g_out2, const T* g_alpha2, int64_t n_flat,
              T* buf, int* team) {
    // buf: [threads, n_flat, stride] with per-Gaussian (mx, my, ca, cb, cc, opacity, |mx|, |my|, mx2, my2,
    // colour[d]); (mx2, my2) is the means2d gradient of the second output gradient (g_out2, g_alpha2) when given:
    // the same walk with another loss's gradient, for the means only (a densification statistic of a subset of
    // the loss terms without a second backward pass)
    typedef typename Simd<T>::V V;
    typedef typename Simd<T>::M M;
    typedef typename std::remove_reference<decltype(M{}[0])>::type MI;
    constexpr int W = Simd<T>::W;
    typedef typename Simd<T>::A AV;
    const int64_t stride = 10 + d;
    const int64_t n_tiles = n_img * tw * th;
    const int64_t rw = (ts + W - 1) / W * W;
#pragma omp parallel num_threads(num_threads())
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        T* mybuf = buf + static_cast<int64_t>(tid) * n_flat * stride;
        std::fill(mybuf, mybuf + n_flat * stride, T(0));  // each thread clears (and first touches) its own buffer
#ifdef _OPENMP
        if (tid == 0) *team = omp_get_num_threads();
#endif
        TileData<T> td;
        RowList<T> rows;
        // per tile-list-entry accumulators [count, stride], one lane per pixel column of a lane group; the lanes are
        // summed when the tile is done
        std::vector<AV> loc;
        // the row's contributions, [row-list entry][lane] (only the groups of each entry's span are written)
        std::vector<T> al, tb, vs;
        std::vector<MI> okm, unm;
        std::vector<MI> lim(rw);
        std::vector<T> trans_row(rw), behind(rw), behind2(rw), atm(rw), atm2(rw), go(d * rw), go2(d * rw);
        std::vector<M> lane_v(rw / W);
        for (int64_t gi = 0; gi < rw / W; ++gi)
            for (int l = 0; l < W; ++l) lane_v[gi][l] = static_cast<MI>(gi * W + l);
        std::vector<V> fx_v(rw / W);
#pragma omp for schedule(static, 1)
        for (int64_t t = 0; t < n_tiles; ++t) {
            const int64_t img = t / (tw * th);
            const int64_t tl = t % (tw * th);
            const int64_t ty = tl / tw, tx = tl % tw;
            const int64_t start = offsets[t];
            const int64_t end = (t + 1 < n_tiles) ? offsets[t + 1] : n_isects;
            if (end == start) continue;
            const int64_t x0 = tx * ts, y0 = ty * ts;
            const int64_t nw = std::min(width, x0 + ts) - x0, nh = std::min(height, y0 + ts) - y0;
            const T x0f = static_cast<T>(x0) + T(0.5);
            int64_t count = 0;  // the prefix of the list any pixel of the tile reached
            for (int64_t ry = 0; ry < nh; ++ry)
                for (int64_t rx = 0; rx < nw; ++rx)
                    count = std::max<int64_t>(count, n_contrib[(img * height + y0 + ry) * width + x0 + rx]);
            if (count == 0) continue;
            for (int64_t gi = 0; gi < rw / W; ++gi)
                for (int l = 0; l < W; ++l) fx_v[gi][l] = x0f + static_cast<T>(gi * W + l);
            td.gather(means2d, conics, colors, opac, ids, start, count, d);
            loc.assign(count * stride, AV{});
            const T* bgi = bg ? bg + img * d : nullptr;
            for (int64_t ry = 0; ry < nh; ++ry) {
                const int64_t py = y0 + ry;
                const int64_t pix0 = (img * height + py) * width + x0;
                int64_t row_count = 0;
                for (int64_t rx = 0; rx < rw; ++rx) {
                    lim[rx] = rx < nw ? static_cast<MI>(n_contrib[pix0 + rx]) : MI(0);
                    row_count = std::max<int64_t>(row_count, lim[rx]);
                }
                if (row_count == 0) continue;
                const T fy = static_cast<T>(py) + T(0.5);
                rows.build(td, row_count, fy, x0f, nw);
                const int64_t nr = rows.n;
                if (static_cast<int64_t>(al.size()) < nr * rw) {
                    al.resize(nr * rw); tb.resize(nr * rw); vs.resize(nr * rw); okm.resize(nr * rw);
                    unm.resize(nr * rw);
                }
                std::fill(trans_row.begin(), trans_row.end(), T(1));
                // recompute the forward walk, keeping each contribution
                for (int64_t r = 0; r < nr; ++r) {
                    const int64_t k = rows.k[r];
                    const int32_t p0 = rows.p0[r], p1 = rows.p1[r];
                    for (int64_t o = p0 / W * W; o <= p1; o += W) {
                        const M lane = lane_v[o / W];
                        const M in = (lane >= p0) & (lane <= p1) & (static_cast<MI>(k) < vload<M>(&lim[o]));
                        Hit<T> h = hit(td, k, fy, fx_v[o / W], in);
                        if (!any_lane(h.ok)) {
                            vstore(&okm[r * rw + o], M{});
                            continue;
                        }
                        const V trans = vload<V>(&trans_row[o]);
                        vstore(&al[r * rw + o], h.alpha);
                        vstore(&tb[r * rw + o], trans);
                        vstore(&vs[r * rw + o], h.vis);
                        vstore(&okm[r * rw + o], h.ok);
                        vstore(&unm[r * rw + o], h.unclamped);
                        vstore(&trans_row[o], h.ok ? trans * (T(1) - h.alpha) : trans);
                    }
                }
                // per-pixel state of the back-to-front walk
                for (int64_t rx = 0; rx < rw; ++rx) {
                    const bool px_ok = rx < nw;
                    const int64_t pix = pix0 + rx;
                    const T trans = trans_row[rx];
                    T bh = 0, bh2 = 0;
                    for (int64_t j = 0; j < d; ++j) {
                        go[j * rw + rx] = px_ok ? g_out[pix * d + j] : T(0);
                        if (bgi) bh += bgi[j] * go[j * rw + rx];
                        if (g_out2) {
                            go2[j * rw + rx] = px_ok ? g_out2[pix * d + j] : T(0);
                            if (bgi) bh2 += bgi[j] * go2[j * rw + rx];
                        }
                    }
                    behind[rx] = bh * trans;  // grad . (colour seen behind the current Gaussian)
                    behind2[rx] = bh2 * trans;
                    atm[rx] = px_ok ? g_alpha[pix] * trans : T(0);
                    atm2[rx] = (px_ok && g_alpha2) ? g_alpha2[pix] * trans : T(0);
                }
                for (int64_t r = nr - 1; r >= 0; --r) {
                    const int64_t k = rows.k[r];
                    const T* c = &td.col[k * d];
                    AV* lk = &loc[k * stride];
                    const T gx = td.x[k], dy = td.y[k] - fy;
                    const T ca = td.ca[k], cb = td.cb[k], cc = td.cc[k], op = td.op[k];
                    const int32_t p0 = rows.p0[r], p1 = rows.p1[r];
                    for (int64_t o = p0 / W * W; o <= p1; o += W) {
                        const M ok = vload<M>(&okm[r * rw + o]);
                        if (!any_lane(ok)) continue;
                        const V a = vload<V>(&al[r * rw + o]), tbi = vload<V>(&tb[r * rw + o]);
                        const M unc = ok & vload<M>(&unm[r * rw + o]);
                        V cg = V{};
                        V gcol[16];  // colour gradient terms (d <= 16 here; longer features go lane by lane below)
                        const V atb = a * tbi;
                        for (int64_t j = 0; j < d; ++j) {
                            const V goj = vload<V>(&go[j * rw + o]);
                            cg += c[j] * goj;
                            if (j < 16) gcol[j] = atb * goj;
                        }
                        const V inv = T(1) / (T(1) - a);
                        const V bh = vload<V>(&behind[o]);
                        const V v_a = tbi * cg - bh * inv + vload<V>(&atm[o]) * inv;
                        vstore(&behind[o], ok ? bh + atb * cg : bh);
                        V v_a2 = V{};
                        if (g_out2) {
                            V cg2 = V{};
                            for (int64_t j = 0; j < d; ++j) cg2 += c[j] * vload<V>(&go2[j * rw + o]);
                            const V bh2 = vload<V>(&behind2[o]);
                            v_a2 = tbi * cg2 - bh2 * inv + vload<V>(&atm2[o]) * inv;
                            vstore(&behind2[o], ok ? bh2 + atb * cg2 : bh2);
                        }
                        const V vis = vload<V>(&vs[r * rw + o]);
                        const V dx = gx - fx_v[o / W];
                        const V v_op = v_a * vis;
                        const V v_sig = -v_a * op * vis;
                        const V g_ca = v_sig * T(0.5) * dx * dx;
                        const V g_cb = v_sig * dx * dy;
                        const V g_cc = v_sig * T(0.5) * dy * dy;
                        const V vmx = v_sig * (ca * dx + cb * dy);
                        const V vmy = v_sig * (cb * dx + cc * dy);
                        V vmx2 = V{}, vmy2 = V{};
                        if (g_out2) {
                            const V v_sig2 = -v_a2 * op * vis;
                            vmx2 = v_sig2 * (ca * dx + cb * dy);
                            vmy2 = v_sig2 * (cb * dx + cc * dy);
                        }
                        for (int64_t j = 0; j < d; ++j)
                            fold_add(lk[10 + j], ok ? (j < 16 ? gcol[j] : atb * vload<V>(&go[j * rw + o])) : V{});
                        fold_add(lk[5], unc ? v_op : V{});
                        fold_add(lk[2], unc ? g_ca : V{});
                        fold_add(lk[3], unc ? g_cb : V{});
                        fold_add(lk[4], unc ? g_cc : V{});
                        fold_add(lk[0], unc ? vmx : V{});
                        fold_add(lk[1], unc ? vmy : V{});
                        if (absgrad) {
                            fold_add(lk[6], unc ? (vmx < T(0) ? -vmx : vmx) : V{});
                            fold_add(lk[7], unc ? (vmy < T(0) ? -vmy : vmy) : V{});
                        }
                        if (g_out2) {
                            fold_add(lk[8], unc ? vmx2 : V{});
                            fold_add(lk[9], unc ? vmy2 : V{});
                        }
                    }
                }
            }
            for (int64_t k = 0; k < count; ++k) {
                T* dst = mybuf + static_cast<int64_t>(td.gid[k]) * stride;
                const AV* src = &loc[k * stride];
                for (int64_t j = 0; j < stride; ++j) {
                    T sum = src[j][0];
                    for (int l = 1; l < Simd<T>::WA; ++l) sum += src[j][l];
                    dst[j] += sum;
                }
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
    // every pixel is written by the kernel (the tiles cover the image)
    auto out = torch::empty({n_img, height, width, d}, fopt);
    auto t_final = torch::empty({n_img, height, width}, fopt);
    auto alphas = torch::empty({n_img, height, width, 1}, fopt);
    auto n_contrib = torch::empty({n_img, height, width}, fopt.dtype(torch::kInt32));
    AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "recon_rasterize_fwd", [&] {
        fwd_impl<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(),
                           opac.data_ptr<scalar_t>(), bg.has_value() ? bg->data_ptr<scalar_t>() : nullptr, d, n_img,
                           width, height, ts, tw, th, offsets.data_ptr<int32_t>(), ids.data_ptr<int32_t>(),
                           ids.numel(), out.data_ptr<scalar_t>(), t_final.data_ptr<scalar_t>(),
                           alphas.data_ptr<scalar_t>(), n_contrib.data_ptr<int32_t>());
    });
    return {out, t_final, alphas, n_contrib};
}

std::vector<torch::Tensor> rasterize_bwd(torch::Tensor means2d, torch::Tensor conics, torch::Tensor colors,
                                         torch::Tensor opac, c10::optional<torch::Tensor> bg, int64_t width,
                                         int64_t height, int64_t ts, torch::Tensor offsets, torch::Tensor ids,
                                         torch::Tensor t_final, torch::Tensor n_contrib, torch::Tensor g_out,
                                         torch::Tensor g_alpha, bool absgrad, c10::optional<torch::Tensor> g_out2,
                                         c10::optional<torch::Tensor> g_alpha2) {
    check_inputs(means2d, conics, colors, opac, offsets, ids);
    TORCH_CHECK(g_out.is_contiguous() && g_alpha.is_contiguous() && n_contrib.is_contiguous(), "grads contiguous");
    TORCH_CHECK(g_out2.has_value() == g_alpha2.has_value(), "g_out2 and g_alpha2 come together");
    (void)t_final;
    const int64_t n_img = offsets.size(0), th = offsets.size(1), tw = offsets.size(2);
    const int64_t d = colors.size(1);
    const int64_t n_flat = colors.size(0);
    const int64_t stride = 10 + d;
    torch::Tensor go2, ga2;
    if (g_out2.has_value()) {
        go2 = g_out2->to(colors.scalar_type()).contiguous();
        ga2 = g_alpha2->to(colors.scalar_type()).contiguous();
        TORCH_CHECK(go2.numel() == g_out.numel() && ga2.numel() == g_alpha.numel(), "second grads: shapes");
    }
    const int nt = num_threads();
    auto buf = torch::empty({nt, n_flat, stride}, colors.options());  // per-thread accumulators, cleared by each
    int team = 1;
    auto fo = colors.options();
    auto v_means = torch::empty({n_flat, 2}, fo), v_conics = torch::empty({n_flat, 3}, fo);
    auto v_colors = torch::empty({n_flat, d}, fo), v_opac = torch::empty({n_flat}, fo);
    auto v_abs = torch::empty({n_flat, 2}, fo), v_means2 = torch::empty({n_flat, 2}, fo);
    AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "recon_rasterize_bwd", [&] {
        using T = scalar_t;
        bwd_impl<T>(means2d.data_ptr<T>(), conics.data_ptr<T>(), colors.data_ptr<T>(), opac.data_ptr<T>(),
                    bg.has_value() ? bg->data_ptr<T>() : nullptr, d, n_img, width, height, ts, tw, th,
                    offsets.data_ptr<int32_t>(), ids.data_ptr<int32_t>(), ids.numel(), n_contrib.data_ptr<int32_t>(),
                    g_out.to(colors.scalar_type()).data_ptr<T>(), g_alpha.to(colors.scalar_type()).data_ptr<T>(),
                    absgrad, go2.defined() ? go2.data_ptr<T>() : nullptr, ga2.defined() ? ga2.data_ptr<T>() : nullptr,
                    n_flat, buf.data_ptr<T>(), &team);
        // sum the threads' buffers (in thread order) straight into the output tensors
        const T* pb = buf.data_ptr<T>();
        T *om = v_means.data_ptr<T>(), *oc = v_conics.data_ptr<T>(), *ocol = v_colors.data_ptr<T>();
        T *oo = v_opac.data_ptr<T>(), *oa = v_abs.data_ptr<T>(), *om2 = v_means2.data_ptr<T>();
        at::parallel_for(0, n_flat, 4096, [&](int64_t b, int64_t e) {
            std::vector<T> s(stride);
            for (int64_t g = b; g < e; ++g) {
                for (int64_t j = 0; j < stride; ++j) s[j] = pb[g * stride + j];
                for (int th_i = 1; th_i < team; ++th_i) {
                    const T* src = pb + (static_cast<int64_t>(th_i) * n_flat + g) * stride;
                    for (int64_t j = 0; j < stride; ++j) s[j] += src[j];
                }
                om[2 * g] = s[0]; om[2 * g + 1] = s[1];
                oc[3 * g] = s[2]; oc[3 * g + 1] = s[3]; oc[3 * g + 2] = s[4];
                oo[g] = s[5];
                oa[2 * g] = s[6]; oa[2 * g + 1] = s[7];
                om2[2 * g] = s[8]; om2[2 * g + 1] = s[9];
                for (int64_t j = 0; j < d; ++j) ocol[g * d + j] = s[10 + j];
            }
        });
    });
    return {v_means, v_conics, v_colors, v_opac, v_abs, v_means2};
}


// ---------------------------------------------------------------------------------------------------------------
// Projection (pinhole EWA, gsplat 1.5.3 rules) fused per (camera, Gaussian), with its hand-written backward.
namespace {

template <typename T>
inline void quat_to_rot(const T* q, T* R, T* qn) {
    const T n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    const T inv = T(1) / std::max(n, T(1e-12));
    const T w = q[0] * inv, x = q[1] * inv, y = q[2] * inv, z = q[3] * inv;
    qn[0] = w; qn[1] = x; qn[2] = y; qn[3] = z;
    R[0] = 1 - 2 * (y * y + z * z); R[1] = 2 * (x * y - w * z); R[2] = 2 * (x * z + w * y);
    R[3] = 2 * (x * y + w * z); R[4] = 1 - 2 * (x * x + z * z); R[5] = 2 * (y * z - w * x);
    R[6] = 2 * (x * z - w * y); R[7] = 2 * (y * z + w * x); R[8] = 1 - 2 * (x * x + y * y);
}

// Everything the backward needs about one (camera, Gaussian) pair.
template <typename T>
struct ProjState {
    T R[9], qn[4], M[9], Sw[9], Sc[9], mc[3], J[6], a0, b0, c0, det, det_orig, comp;
    bool depth_ok, det_ok, clamp_x, clamp_y;
};

template <typename T>
inline void project_one(const T* mean, const T* quat, const T* scale, const T* vm, const T* K, int64_t width,
                        int64_t height, double eps2d, double near_plane, double far_plane, ProjState<T>& st, T* m2d) {
    const T* Rc = vm;  // row-major 4x4
    for (int i = 0; i < 3; ++i)
        st.mc[i] = Rc[4 * i] * mean[0] + Rc[4 * i + 1] * mean[1] + Rc[4 * i + 2] * mean[2] + Rc[4 * i + 3];
    const T z = st.mc[2];
    st.depth_ok = !(z < T(near_plane) || z > T(far_plane));
    quat_to_rot(quat, st.R, st.qn);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) st.M[3 * i + j] = st.R[3 * i + j] * scale[j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            st.Sw[3 * i + j] = st.M[3 * i] * st.M[3 * j] + st.M[3 * i + 1] * st.M[3 * j + 1] +
                               st.M[3 * i + 2] * st.M[3 * j + 2];
    T tmp[9];  // Rc * Sw
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            tmp[3 * i + j] = Rc[4 * i] * st.Sw[j] + Rc[4 * i + 1] * st.Sw[3 + j] + Rc[4 * i + 2] * st.Sw[6 + j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            st.Sc[3 * i + j] = tmp[3 * i] * Rc[4 * j] + tmp[3 * i + 1] * Rc[4 * j + 1] + tmp[3 * i + 2] * Rc[4 * j + 2];
    const T fx = K[0], fy = K[4], cx = K[2], cy = K[5];
    const T zs = st.depth_ok ? z : T(1);
    const T rz = T(1) / zs;
    const T tan_fovx = T(0.5) * width / fx, tan_fovy = T(0.5) * height / fy;
    const T lxp = (width - cx) / fx + T(0.3) * tan_fovx, lxn = cx / fx + T(0.3) * tan_fovx;
    const T lyp = (height - cy) / fy + T(0.3) * tan_fovy, lyn = cy / fy + T(0.3) * tan_fovy;
    const T ux = st.mc[0] * rz, uy = st.mc[1] * rz;
    st.clamp_x = !(ux <= lxp && ux >= -lxn);
    st.clamp_y = !(uy <= lyp && uy >= -lyn);
    const T tx = zs * std::min(lxp, std::max(-lxn, ux));
    const T ty = zs * std::min(lyp, std::max(-lyn, uy));
    st.J[0] = fx * rz; st.J[1] = 0; st.J[2] = -fx * tx * rz * rz;
    st.J[3] = 0; st.J[4] = fy * rz; st.J[5] = -fy * ty * rz * rz;
    T JS[6];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            JS[3 * i + j] = st.J[3 * i] * st.Sc[j] + st.J[3 * i + 1] * st.Sc[3 + j] + st.J[3 * i + 2] * st.Sc[6 + j];
    st.a0 = JS[0] * st.J[0] + JS[1] * st.J[1] + JS[2] * st.J[2];
    st.b0 = JS[0] * st.J[3] + JS[1] * st.J[4] + JS[2] * st.J[5];
    st.c0 = JS[3] * st.J[3] + JS[4] * st.J[4] + JS[5] * st.J[5];
    st.det_orig = st.a0 * st.c0 - st.b0 * st.b0;
    const T a = st.a0 + T(eps2d), c = st.c0 + T(eps2d);
    st.det = a * c - st.b0 * st.b0;
    st.det_ok = st.det > 0;
    const T dets = st.det_ok ? st.det : T(1);
    st.comp = std::sqrt(std::max(T(0), st.det_orig / dets));
    m2d[0] = fx * st.mc[0] * rz + cx;
    m2d[1] = fy * st.mc[1] * rz + cy;
}

}  // namespace

std::vector<torch::Tensor> project_fwd(torch::Tensor means, torch::Tensor quats, torch::Tensor scales,
                                       torch::Tensor opac, torch::Tensor viewmats, torch::Tensor Ks, int64_t width,
                                       int64_t height, double eps2d, double near_plane, double far_plane,
                                       double radius_clip, bool calc_comp) {
    const int64_t n = means.size(0), nc = viewmats.size(0);
    auto fo = means.options();
    // every entry is written by the kernel
    auto radii = torch::empty({nc, n, 2}, fo.dtype(torch::kInt32));
    auto means2d = torch::empty({nc, n, 2}, fo);
    auto depths = torch::empty({nc, n}, fo);
    auto conics = torch::empty({nc, n, 3}, fo);
    auto comps = torch::empty({nc, n}, fo);
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "recon_project_fwd", [&] {
        using T = scalar_t;
        const T *pm = means.data_ptr<T>(), *pq = quats.data_ptr<T>(), *ps = scales.data_ptr<T>();
        const T *po = opac.data_ptr<T>(), *pv = viewmats.data_ptr<T>(), *pk = Ks.data_ptr<T>();
        int32_t* pr = radii.data_ptr<int32_t>();
        T *p2 = means2d.data_ptr<T>(), *pd = depths.data_ptr<T>(), *pc = conics.data_ptr<T>();
        T* pcomp = comps.data_ptr<T>();
        at::parallel_for(0, nc * n, 2048, [&](int64_t b, int64_t e) {
            ProjState<T> st;
            for (int64_t idx = b; idx < e; ++idx) {
                const int64_t ci = idx / n, g = idx % n;
                project_one<T>(pm + 3 * g, pq + 4 * g, ps + 3 * g, pv + 16 * ci, pk + 9 * ci, width, height, eps2d,
                               near_plane, far_plane, st, p2 + 2 * idx);
                pd[idx] = st.mc[2];
                const T dets = st.det_ok ? st.det : T(1);
                const T a = st.a0 + T(eps2d), c = st.c0 + T(eps2d);
                pc[3 * idx] = c / dets; pc[3 * idx + 1] = -st.b0 / dets; pc[3 * idx + 2] = a / dets;
                pcomp[idx] = calc_comp ? st.comp : T(1);
                bool valid = st.depth_ok && st.det_ok;
                float ext = 3.33f;
                const T oc = po[g] * (calc_comp ? st.comp : T(1));
                if (!(oc >= T(kAlphaThreshold))) valid = false;
                const float of = std::max(static_cast<float>(oc), 1.0f / 255.0f);
                ext = std::min(ext, std::sqrt(2.0f * std::log(of / (1.0f / 255.0f))));
                const T rx = std::ceil(static_cast<T>(ext) * std::sqrt(std::max(a, T(0))));
                const T ry = std::ceil(static_cast<T>(ext) * std::sqrt(std::max(c, T(0))));
                if (rx <= T(radius_clip) && ry <= T(radius_clip)) valid = false;
                const T mx = p2[2 * idx], my = p2[2 * idx + 1];
                if (mx + rx <= 0 || mx - rx >= width || my + ry <= 0 || my - ry >= height) valid = false;
                pr[2 * idx] = valid ? static_cast<int32_t>(rx) : 0;
                pr[2 * idx + 1] = valid ? static_cast<int32_t>(ry) : 0;
            }
        });
    });
    return {radii, means2d, depths, conics, comps};
}

std::vector<torch::Tensor> project_bwd(torch::Tensor means, torch::Tensor quats, torch::Tensor scales,
                                       torch::Tensor viewmats, torch::Tensor Ks, int64_t width, int64_t height,
                                       double eps2d, double near_plane, double far_plane, torch::Tensor radii,
                                       c10::optional<torch::Tensor> v_means2d, c10::optional<torch::Tensor> v_depths,
                                       c10::optional<torch::Tensor> v_conics, c10::optional<torch::Tensor> v_comps,
                                       bool calc_comp) {
    // an absent output gradient is zero
    const int64_t n = means.size(0), nc = viewmats.size(0);
    // every entry is written by the kernel
    auto v_means = torch::empty_like(means);
    auto v_quats = torch::empty_like(quats);
    auto v_scales = torch::empty_like(scales);
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "recon_project_bwd", [&] {
        using T = scalar_t;
        const T *pm = means.data_ptr<T>(), *pq = quats.data_ptr<T>(), *ps = scales.data_ptr<T>();
        const T *pv = viewmats.data_ptr<T>(), *pk = Ks.data_ptr<T>();
        const int32_t* pr = radii.data_ptr<int32_t>();
        auto ptr = [](const c10::optional<torch::Tensor>& v) -> const T* {
            return v.has_value() ? v->data_ptr<T>() : nullptr;
        };
        const T *g2 = ptr(v_means2d), *gd = ptr(v_depths), *gc = ptr(v_conics), *gcomp = ptr(v_comps);
        T *om = v_means.data_ptr<T>(), *oq = v_quats.data_ptr<T>(), *os = v_scales.data_ptr<T>();
        // parallel over Gaussians; cameras looped inside so each Gaussian's gradient has one writer
        at::parallel_for(0, n, 1024, [&](int64_t b, int64_t e) {
            ProjState<T> st;
            T m2d[2];
            for (int64_t g = b; g < e; ++g) {
                T vm_w[3] = {0, 0, 0}, vS_w[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
                bool any = false;
                for (int64_t ci = 0; ci < nc; ++ci) {
                    const int64_t idx = ci * n + g;
                    if (pr[2 * idx] <= 0 || pr[2 * idx + 1] <= 0) continue;
                    any = true;
                    const T* Rc = pv + 16 * ci;
                    const T* K = pk + 9 * ci;
                    project_one<T>(pm + 3 * g, pq + 4 * g, ps + 3 * g, Rc, K, width, height, eps2d, near_plane,
                                   far_plane, st, m2d);
                    const T a = st.a0 + T(eps2d), c = st.c0 + T(eps2d), det = st.det;
                    // conic = inv(S_blur): dL/dS = -inv V inv, V symmetric with off-diagonals v1 / 2
                    const T i00 = c / det, i01 = -st.b0 / det, i11 = a / det;
                    const T v0 = gc ? gc[3 * idx] : T(0), v1 = T(0.5) * (gc ? gc[3 * idx + 1] : T(0));
                    const T v2 = gc ? gc[3 * idx + 2] : T(0);
                    // (inv V inv) entries
                    const T t00 = i00 * v0 + i01 * v1, t01 = i00 * v1 + i01 * v2;
                    const T t10 = i01 * v0 + i11 * v1, t11 = i01 * v1 + i11 * v2;
                    T ga = -(t00 * i00 + t01 * i01);
                    T gb = -(t00 * i01 + t01 * i11) - (t10 * i00 + t11 * i01);
                    T gcc = -(t10 * i01 + t11 * i11);
                    if (calc_comp) {
                        const T vc = gcomp ? gcomp[idx] : T(0);
                        const T r = st.det_orig / det;
                        if (r > 0 && st.comp > 0) {
                            const T vr = vc * T(0.5) / st.comp;
                            const T d2 = det * det;
                            ga += vr * (st.c0 * det - st.det_orig * c) / d2;
                            gcc += vr * (st.a0 * det - st.det_orig * a) / d2;
                            gb += vr * (-2 * st.b0 * det + 2 * st.b0 * st.det_orig) / d2;
                        }
                    }
                    // cov2d = J Sc J^T with G = [[ga, gb/2], [gb/2, gcc]]
                    const T G[4] = {ga, T(0.5) * gb, T(0.5) * gb, gcc};
                    const T* J = st.J;
                    T GJ[6];  // G * J (2x3)
                    for (int i = 0; i < 2; ++i)
                        for (int j = 0; j < 3; ++j) GJ[3 * i + j] = G[2 * i] * J[j] + G[2 * i + 1] * J[3 + j];
                    T vSc[9];  // J^T G J
                    for (int i = 0; i < 3; ++i)
                        for (int j = 0; j < 3; ++j) vSc[3 * i + j] = J[i] * GJ[j] + J[3 + i] * GJ[3 + j];
                    T vJ[6];  // 2 G J Sc
                    for (int i = 0; i < 2; ++i)
                        for (int j = 0; j < 3; ++j)
                            vJ[3 * i + j] = 2 * (GJ[3 * i] * st.Sc[j] + GJ[3 * i + 1] * st.Sc[3 + j] +
                                                 GJ[3 * i + 2] * st.Sc[6 + j]);
                    const T fx = K[0], fy = K[4];
                    const T x = st.mc[0], y = st.mc[1], z = st.mc[2];
                    const T rz = T(1) / z, rz2 = rz * rz, rz3 = rz2 * rz;
                    T vmc[3];
                    const T vx2 = g2 ? g2[2 * idx] : T(0), vy2 = g2 ? g2[2 * idx + 1] : T(0);
                    vmc[0] = fx * rz * vx2;
                    vmc[1] = fy * rz * vy2;
                    vmc[2] = -(fx * x * vx2 + fy * y * vy2) * rz2 + (gd ? gd[idx] : T(0));
                    vmc[2] += -fx * rz2 * vJ[0] - fy * rz2 * vJ[4];
                    const T tx = -J[2] / (fx * rz2), ty = -J[5] / (fy * rz2);
                    if (!st.clamp_x) {
                        vmc[0] += -fx * rz2 * vJ[2];
                        vmc[2] += 2 * fx * tx * rz3 * vJ[2];
                    } else {
                        vmc[2] += fx * tx * rz3 * vJ[2];
                    }
                    if (!st.clamp_y) {
                        vmc[1] += -fy * rz2 * vJ[5];
                        vmc[2] += 2 * fy * ty * rz3 * vJ[5];
                    } else {
                        vmc[2] += fy * ty * rz3 * vJ[5];
                    }
                    // back to world: v_m = Rc^T v_mc, v_Sw = Rc^T vSc Rc
                    for (int i = 0; i < 3; ++i)
                        vm_w[i] += Rc[i] * vmc[0] + Rc[4 + i] * vmc[1] + Rc[8 + i] * vmc[2];
                    T tmp[9];  // vSc * Rc
                    for (int i = 0; i < 3; ++i)
                        for (int j = 0; j < 3; ++j)
                            tmp[3 * i + j] = vSc[3 * i] * Rc[j] + vSc[3 * i + 1] * Rc[4 + j] + vSc[3 * i + 2] * Rc[8 + j];
                    for (int i = 0; i < 3; ++i)
                        for (int j = 0; j < 3; ++j)
                            vS_w[3 * i + j] += Rc[i] * tmp[j] + Rc[4 + i] * tmp[3 + j] + Rc[8 + i] * tmp[6 + j];
                }
                if (!any) {
                    for (int i = 0; i < 3; ++i) om[3 * g + i] = os[3 * g + i] = T(0);
                    for (int i = 0; i < 4; ++i) oq[4 * g + i] = T(0);
                    continue;
                }
                for (int i = 0; i < 3; ++i) om[3 * g + i] = vm_w[i];
                // Sw = M M^T -> vM = (vS + vS^T) M ; M = R diag(s)
                T vM[9];
                for (int i = 0; i < 3; ++i)
                    for (int j = 0; j < 3; ++j) {
                        T acc = 0;
                        for (int k = 0; k < 3; ++k) acc += (vS_w[3 * i + k] + vS_w[3 * k + i]) * st.M[3 * k + j];
                        vM[3 * i + j] = acc;
                    }
                const T* sc = ps + 3 * g;
                T vR[9];
                for (int j = 0; j < 3; ++j) {
                    T acc = 0;
                    for (int i = 0; i < 3; ++i) {
                        vR[3 * i + j] = vM[3 * i + j] * sc[j];
                        acc += vM[3 * i + j] * st.R[3 * i + j];
                    }
                    os[3 * g + j] = acc;
                }
                const T w = st.qn[0], qx = st.qn[1], qy = st.qn[2], qz = st.qn[3];
                T vq[4];
                vq[0] = 2 * (qx * (vR[7] - vR[5]) + qy * (vR[2] - vR[6]) + qz * (vR[3] - vR[1]));
                vq[1] = 2 * (-2 * qx * (vR[4] + vR[8]) + qy * (vR[1] + vR[3]) + qz * (vR[2] + vR[6]) + w * (vR[7] - vR[5]));
                vq[2] = 2 * (-2 * qy * (vR[0] + vR[8]) + qx * (vR[1] + vR[3]) + qz * (vR[5] + vR[7]) + w * (vR[2] - vR[6]));
                vq[3] = 2 * (-2 * qz * (vR[0] + vR[4]) + qx * (vR[2] + vR[6]) + qy * (vR[5] + vR[7]) + w * (vR[3] - vR[1]));
                const T* q = pq + 4 * g;
                const T qnorm = std::max(std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]), T(1e-12));
                const T dot = vq[0] * st.qn[0] + vq[1] * st.qn[1] + vq[2] * st.qn[2] + vq[3] * st.qn[3];
                for (int i = 0; i < 4; ++i) oq[4 * g + i] = (vq[i] - st.qn[i] * dot) / qnorm;
            }
        });
    });
    return {v_means, v_quats, v_scales};
}

// ---------------------------------------------------------------------------------------------------------------
// Tile binning. The visible (camera, Gaussian) pairs are put in (depth bits, flat index) order once, by a stable
// radix sort on the float32 depth bits, then dealt into their (image, tile) lists in that order, so every tile's
// list comes out sorted by (depth bits, flat index) without a per-tile sort. Counting and dealing run in parallel
// over bands of tile rows (each band owns its tiles, so there are no shared writes).
std::vector<torch::Tensor> isect_tiles_cpu(torch::Tensor means2d, torch::Tensor radii, torch::Tensor depths,
                                           int64_t ts, int64_t tw, int64_t th) {
    const int64_t n_img = depths.size(0), n = depths.size(1), nf = n_img * n;
    auto m = means2d.to(torch::kFloat32).contiguous();
    auto dep = depths.to(torch::kFloat32).contiguous();
    const float* pm = m.data_ptr<float>();
    const int32_t* pr = radii.data_ptr<int32_t>();
    const uint32_t* pdep = reinterpret_cast<const uint32_t*>(dep.data_ptr<float>());
    const int64_t n_tiles = tw * th;
    auto tpg = torch::empty({n_img, n}, torch::dtype(torch::kInt32));
    int32_t* ptpg = tpg.data_ptr<int32_t>();
    std::vector<int32_t> box(4 * nf);
    at::parallel_for(0, nf, 4096, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            ptpg[i] = 0;
            if (pr[2 * i] <= 0 || pr[2 * i + 1] <= 0) continue;
            const float tx = pm[2 * i] / ts, ty = pm[2 * i + 1] / ts;
            const float rx = pr[2 * i] / static_cast<float>(ts), ry = pr[2 * i + 1] / static_cast<float>(ts);
            auto cl = [](float v, int64_t hi) { return static_cast<int32_t>(std::min<float>(std::max(0.f, v), hi)); };
            const int32_t x0 = cl(std::floor(tx - rx), tw), x1 = cl(std::ceil(tx + rx), tw);
            const int32_t y0 = cl(std::floor(ty - ry), th), y1 = cl(std::ceil(ty + ry), th);
            box[4 * i] = x0; box[4 * i + 1] = x1; box[4 * i + 2] = y0; box[4 * i + 3] = y1;
            ptpg[i] = std::max(0, x1 - x0) * std::max(0, y1 - y0);
        }
    });
    // the pairs with at least one tile, in increasing flat index: (image, box) and a sort key (depth bits << 32 |
    // position), stably radix-sorted on the depth bits (8 bits a pass; a pass where every key has the same digit is
    // skipped), so the keys end in (depth bits, flat index) order
    struct Item {
        int32_t i, img, x0, x1, y0, y1;
    };
    std::vector<Item> items;
    std::vector<uint64_t> keys;
    items.reserve(nf);
    keys.reserve(nf);
    for (int64_t img = 0; img < n_img; ++img) {
        for (int64_t i = img * n; i < (img + 1) * n; ++i) {
            if (ptpg[i] == 0) continue;
            keys.push_back((static_cast<uint64_t>(pdep[i]) << 32) | static_cast<uint64_t>(items.size()));
            items.push_back({static_cast<int32_t>(i), static_cast<int32_t>(img), box[4 * i], box[4 * i + 1],
                             box[4 * i + 2], box[4 * i + 3]});
        }
    }
    const int64_t nv = static_cast<int64_t>(items.size());
    {
        std::vector<uint64_t> tmp(nv);
        for (int shift = 32; shift < 64; shift += 8) {
            int64_t hist[257] = {0};
            for (int64_t j = 0; j < nv; ++j) ++hist[((keys[j] >> shift) & 255u) + 1];
            if (std::any_of(hist + 1, hist + 257, [nv](int64_t c) { return c == nv; })) continue;
            for (int b = 0; b < 256; ++b) hist[b + 1] += hist[b];
            for (int64_t j = 0; j < nv; ++j) tmp[hist[(keys[j] >> shift) & 255u]++] = keys[j];
            keys.swap(tmp);
        }
    }
    // band = a range of (image, tile row) pairs; each visits the pairs (in the given order) and keeps its rows
    const int64_t n_rows = n_img * th;
    auto for_bands = [&](const std::vector<Item>& list, auto&& visit) {
        at::parallel_for(0, n_rows, 1, [&](int64_t rb, int64_t re) {
            for (int64_t j = 0; j < nv; ++j) {
                const Item& it = list[j];
                const int64_t y0 = std::max<int64_t>(it.y0, rb - it.img * th);
                const int64_t y1 = std::min<int64_t>(it.y1, re - it.img * th);
                for (int64_t y = y0; y < y1; ++y)
                    for (int64_t x = it.x0; x < it.x1; ++x) visit(j, it.img * n_tiles + y * tw + x);
            }
        });
    };
    std::vector<int64_t> tile_count(n_img * n_tiles + 1, 0);
    for_bands(items, [&](int64_t, int64_t t) { ++tile_count[t + 1]; });
    for (int64_t t = 0; t < n_img * n_tiles; ++t) tile_count[t + 1] += tile_count[t];
    const int64_t total = tile_count[n_img * n_tiles];
    auto offsets = torch::empty({n_img, th, tw}, torch::dtype(torch::kInt32));
    int32_t* po = offsets.data_ptr<int32_t>();
    for (int64_t t = 0; t < n_img * n_tiles; ++t) po[t] = static_cast<int32_t>(tile_count[t]);
    auto flatten_ids = torch::empty({total}, torch::dtype(torch::kInt32));
    auto isect_ids = torch::empty({total}, torch::dtype(torch::kInt64));
    int32_t* pf = flatten_ids.data_ptr<int32_t>();
    int64_t* pi = isect_ids.data_ptr<int64_t>();
    int tile_bits = 0;
    while ((int64_t(1) << tile_bits) <= n_tiles) ++tile_bits;
    std::vector<Item> sorted(nv);  // items in depth order (one gather, then sequential passes)
    for (int64_t j = 0; j < nv; ++j) sorted[j] = items[keys[j] & 0xFFFFFFFFull];
    std::vector<int64_t> fill(tile_count.begin(), tile_count.end() - 1);
    for_bands(sorted, [&](int64_t j, int64_t t) {
        const int64_t q = fill[t]++;
        const Item& it = sorted[j];
        pf[q] = it.i;
        pi[q] = (static_cast<int64_t>(it.img) << (32 + tile_bits)) | ((t - it.img * n_tiles) << 32) |
                static_cast<int64_t>(keys[j] >> 32);
    });
    return {tpg, isect_ids, flatten_ids, offsets};
}

// The compositor's float32 exp on a tensor (for tests of its accuracy).
torch::Tensor exp_f32(torch::Tensor x) {
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 && x.is_contiguous(), "exp_f32: contiguous float32 tensor");
    auto y = torch::empty_like(x);
    const float* px = x.data_ptr<float>();
    float* py = y.data_ptr<float>();
    const int64_t n = x.numel();
    constexpr int W = Simd<float>::W;
    for (int64_t i = 0; i < n; i += W) {
        Simd<float>::V v{};
        for (int64_t l = 0; l < W && i + l < n; ++l) v[l] = px[i + l];
        const Simd<float>::V e = vexp(v);
        for (int64_t l = 0; l < W && i + l < n; ++l) py[i + l] = e[l];
    }
    return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("exp_f32", &exp_f32, "the float32 exp of the compositing kernels");
    m.def("rasterize_fwd", &rasterize_fwd, "recon CPU tile rasterizer forward");
    m.def("rasterize_bwd", &rasterize_bwd, "recon CPU tile rasterizer backward");
    m.def("project_fwd", &project_fwd, "recon CPU EWA projection forward");
    m.def("project_bwd", &project_bwd, "recon CPU EWA projection backward");
    m.def("isect_tiles", &isect_tiles_cpu, "recon CPU tile binning");
}
