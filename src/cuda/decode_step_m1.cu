// decode_step_m1.cu - a whole Mamba-1 decode step of one stream in one kernel launch:
// embedding, every layer (norm, in_proj + conv step, x_proj, dt_proj + scan + gate,
// out_proj + residual) and the final norm + head, for one-token calls of one stream.
//
// Why: the step by separate kernels (gemv.cu, decode_m1.cu) costs 4 launches per layer, each
// ~3 us of dependency wait, drain and a first L2 round trip under PDL (docs/benchmarks.md,
// rounds 6-8): 0.30 ms per step for the reference 768 x 24 model against a floor of ~0.04
// ms (its 178 MB of bf16 weights at the H200's DRAM bandwidth). Here the grid stays
// resident (one block per SM, a cooperative launch); a layer's phases are separated by
// grid-wide barriers of one atomic counter, and what a phase needs that no other block
// writes (its weight rows, by cp.async into shared memory; the stream's state; small
// weight vectors, into registers) is read while the barrier before it is pending.
//
// Channels: block b < GC owns channels [b S, b S + S) (S = ceil(E / G) rounded up to 4),
// so a channel's conv output, gate and scan stay in its block. Per layer, 3 phases:
//   P1  blocks b < GC: xs = norm(resid) (float, rounded to T as add_norm.cu rounds); the
//       in_proj rows of its channels (x and z rows; warp w takes the block's rows w, w + 15,
//       ...); x rows go through the conv step (ms_conv_step on the stream's conv state);
//       then x_proj's partial sums over its channels, sum_s W_x[r][b S + s] xc[b S + s],
//       r < R + 2N, added into xacc[l][r] (fix_add: 64-bit fixed point, order-free).
//   P2  blocks b < GC: xdbl[r] = round(xacc[l][r]), then per channel c (N / 4 lanes):
//       d = softplus(dt_proj row c . xdbl[0:R] + bias), the SSM state step and the gate, as
//       decode_m1.cu's scan4 kernel (decode_m1.cuh); y[c] to global memory.
//   P3  warp gw = warp G + block of the NW = 15 G compute warps (consecutive rows on
//       different SMs): out_proj rows j = gw + i NW < D, resid[j] += dot(W_out[j], y) (+ bias).
// Then (n_out > 0) the blocks with head rows stage norm_f(resid) and write logits.
// Every value is rounded where the separate kernels store it, so the step equals the
// per-kernel path within float32 rounding (the order of the sums differs; test_cuda_backend's
// fused-decode test checks both against the CPU).
//
// Data one block writes and another reads within the launch (resid, xacc, y) is read
// through L2 only (ld.global.cg): the SMs' L1 caches are not coherent. Each stream state
// row is read and written by one thread. The barrier counter (2 unsigned, zero between
// launches) is reset by the last block to leave.
#include "decode_m1.cuh"

/* 15 warps compute; the 16th only keeps the grid barrier (it arrives and polls), so the
 * loads the others issue while a barrier is pending never delay its detection (with thread
 * 0 polling after its share of them, a barrier took ~1.1 us against ~0.75) */
#define STEP_WARPS 15
#define STEP_CT (STEP_WARPS * 32)     /* compute threads */
#define STEP_THREADS (STEP_CT + 32)
#define STEP_SYNC STEP_CT             /* the barrier thread */

/* 16 bytes of T (8 16-bit values or 4 floats) as floats */
template <typename T> __device__ __forceinline__ void unit_float(const uint4 &u, float *v);
template <> __device__ __forceinline__ void unit_float<float>(const uint4 &u, float *v)
{
    v[0] = __uint_as_float(u.x); v[1] = __uint_as_float(u.y);
    v[2] = __uint_as_float(u.z); v[3] = __uint_as_float(u.w);
}
template <> __device__ __forceinline__ void unit_float<__nv_bfloat16>(const uint4 &u, float *v)
{
    ms_ld8_pairs<__nv_bfloat162>(&u, v);
}
template <> __device__ __forceinline__ void unit_float<__half>(const uint4 &u, float *v)
{
    ms_ld8_pairs<__half2>(&u, v);
}

/* one element written by another block in this launch, through L2 */
__device__ __forceinline__ float ld_l2(const float *p) { return __ldcg(p); }
template <typename T> __device__ __forceinline__ float ld_l2(const T *p)
{
    unsigned short u;
    asm volatile("ld.global.cg.u16 %0, [%1];" : "=h"(u) : "l"(p));
    T v;
    memcpy(&v, &u, 2);
    return ms_ld(&v);
}

/* Staging a row that other blocks wrote (through L2) in two steps, so the round trip
 * overlaps the weight copies issued between them: stage_get loads this thread's first
 * 16-byte unit of src [nbytes] (nbytes % 16 == 0, 16-byte aligned), stage_put stores it
 * into dst and copies the rest (rows over 16 bytes a thread). */
__device__ __forceinline__ uint4 stage_get(const void *src, int nbytes)
{
    return (int)threadIdx.x * 16 < nbytes ? __ldcg(reinterpret_cast<const uint4 *>(src) + threadIdx.x)
                                          : make_uint4(0, 0, 0, 0);
}
__device__ __forceinline__ void stage_put(void *dst, const void *src, int nbytes, uint4 first)
{
    const uint4 *s = reinterpret_cast<const uint4 *>(src);
    uint4 *d = reinterpret_cast<uint4 *>(dst);
    if ((int)threadIdx.x * 16 < nbytes) d[threadIdx.x] = first;
#pragma unroll 1
    for (int q = threadIdx.x + blockDim.x; q * 16 < nbytes; q += blockDim.x) d[q] = __ldcg(s + q);
}

/* xs = norm(xf) rounded to T (gemv.cu's stage_norm, add_norm.cu's arithmetic): rms, or
 * LayerNorm with b; xf (float [D], staged by the caller), w and b in shared memory. red: 32
 * floats. xs stays in T (why: row_dot). */
template <typename T>
__device__ void norm_row(T *xs, const float *xf, const float *w, const float *b, int D, float eps,
                         int rms, float *red)
{
    __syncthreads();
    float s = 0.f;
    if (!rms)
#pragma unroll 1
        for (int k = threadIdx.x; k < D; k += blockDim.x) s += xf[k];
    const float mean = rms ? 0.f : ms_block_sum(s, red) / D;
    float ss = 0.f;
#pragma unroll 1
    for (int k = threadIdx.x; k < D; k += blockDim.x) ss += (xf[k] - mean) * (xf[k] - mean);
    const float inv = rsqrtf(ms_block_sum(ss, red) / D + eps);
#pragma unroll 1
    for (int k = threadIdx.x; k < D; k += blockDim.x)
        ms_st(xs + k, (xf[k] - mean) * inv * w[k] + (b ? b[k] : 0.f));
    __syncthreads();
}

/* Rows rows(i) (i < n) of W [..][K] into dst (row i at i K), one cp.async group per call
 * (committed even when empty, so every lane counts alike). Lanes take 16-byte units of a
 * row four at a time (the issue of these loops had cost ~1,000 cycles a phase when it ran
 * unit by unit). */
template <typename T, typename RowOf>
__device__ __forceinline__ void fetch_rows(unsigned char *dst, const T *W, int n, int K, int lane,
                                           RowOf row)
{
    const int units = K * (int)sizeof(T) / 16;
    const size_t rb = (size_t)K * sizeof(T);
#pragma unroll 1
    for (int i = 0; i < n; i++) {
        const uint4 *src = reinterpret_cast<const uint4 *>(W + (size_t)row(i) * K);
        uint4 *d = reinterpret_cast<uint4 *>(dst + i * rb);
#pragma unroll 4
        for (int q = lane; q < units; q += 32) cp_async16(d + q, src + q);
    }
    cp_async_commit();
}

/* n floats (n % 4 == 0) into shared memory by the whole block, in the calling threads'
 * open cp.async group */
__device__ __forceinline__ void fetch_vec(float *dst, const float *src, int n)
{
#pragma unroll 1
    for (int q = threadIdx.x; q < n / 4; q += STEP_CT) cp_async16(dst + 4 * q, src + 4 * q);
}

/* x_proj's sums over the channel blocks, in a fixed point of 2^-32 in 64-bit integers:
 * integer addition does not depend on the order the blocks' atomics land in, so every run
 * gives the same xdbl (float atomics would not), and the blocks' partial sums need no
 * second pass. The partial sums per block (float32, up to ~1e3 in practice) lose nothing
 * above 2^-32 absolute and would saturate only past 2^31. (A deterministic float form,
 * each block reading every block's partials, took ~1.8 us more per layer: all SMs read
 * the same ~40 KB from L2.) */
#define FIX_SCALE 4294967296.0f
__device__ __forceinline__ void fix_add(long long *acc, float v)
{
    const long long q = __float2ll_rn(v * FIX_SCALE);
    asm volatile("red.relaxed.gpu.global.add.u64 [%0], %1;" ::"l"(acc), "l"(q) : "memory");
}
__device__ __forceinline__ float fix_value(const long long *acc)
{
    const long long q = __ldcg(acc);
    return __ll2float_rn(q) * (1.0f / FIX_SCALE);
}

/* The block's channel range and the rows of its in_proj share: local row q < Sb is x row
 * c0 + q, q >= Sb z row E + c0 + q - Sb. */
struct chans {
    int c0, Sb;
    __device__ __forceinline__ int in_row(int q, int E) const
    {
        return q < Sb ? c0 + q : E + c0 + q - Sb;
    }
};

/* What P1 of layer w needs for the warp's first in_proj row j (lane 0's), loaded into
 * registers while the barrier before P1 is pending: the row's bias and, for an x row
 * (j < E), its conv state, weights and bias. Loaded after the barrier, these were global
 * round trips between the product and the conv step. */
struct conv_pre {
    float st[MS_CONV_KMAX - 1], w[MS_CONV_KMAX], b, ib;
};
__device__ __forceinline__ void conv_load(conv_pre &q, const ms_cu_step_layer &w, const float *cst,
                                          int j, int E, int K)
{
    q.ib = w.in_b && j >= 0 ? w.in_b[j] : 0.f;
    const bool x = j >= 0 && j < E;
    q.b = x && w.conv_b ? w.conv_b[j] : 0.f;
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++) q.st[k] = x && k < K - 1 ? cst[(size_t)j * (K - 1) + k] : 0.f;
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX; k++) q.w[k] = x && k < K ? w.conv_w[(size_t)j * K + k] : 0.f;
}

/* P2's per-channel operands (channel c, lane li of its LPC): the state, A, dt_proj's row
 * (as stored: converted in P2, so no instruction waits on these loads before then), its
 * bias and D. */
template <typename T> struct scan_pre {
    float4 h, a;
    T wd[DT_PRE];
    float dtb, dv;
};
template <typename T, int LPC>
__device__ __forceinline__ void scan_load(scan_pre<T> &q, const ms_cu_step_layer &w,
                                          const float *sst, int c, int li, int N, int R, bool live)
{
    if (!live) return; /* never read */
    q.a = reinterpret_cast<const float4 *>(w.A + (size_t)c * N)[li];
    q.h = reinterpret_cast<const float4 *>(sst + (size_t)c * N)[li];
    q.dtb = w.dt_b ? w.dt_b[c] : 0.f;
    q.dv = w.Dv[c];
    const T *wrow = (const T *)w.dt_w + (size_t)c * R;
#pragma unroll
    for (int i = 0; i < DT_PRE; i++) q.wd[i] = li + i * LPC < R ? wrow[li + i * LPC] : ms_zero<T>();
}

/* dot(row, xs[0:K]) over the warp, both in shared memory (K * sizeof(T) % 16 == 0); every
 * lane gets the sum. A lane takes 16 bytes of each at a time. The row stays in T: every
 * product reads the rounded values only, and 16-byte units of T let a warp read it without
 * bank conflicts (as floats, 8 per lane, the reads were 8-way conflicted: ncu counted 75%
 * excess shared wavefronts, and a row of 1,536 took ~3,000 cycles against ~1,200 now). */
template <typename T>
__device__ __forceinline__ float row_dot(const unsigned char *row, const T *xs, int K, int lane)
{
    constexpr int EPU = 16 / sizeof(T);
    const int units = K * (int)sizeof(T) / 16;
    const uint4 *r = reinterpret_cast<const uint4 *>(row), *x = reinterpret_cast<const uint4 *>(xs);
    float a0 = 0.f, a1 = 0.f; /* two chains of FMAs */
#pragma unroll 3
    for (int q = lane; q < units; q += 32) {
        const uint4 ru = r[q], xu = x[q];
        float w[EPU], v[EPU];
        unit_float<T>(ru, w);
        unit_float<T>(xu, v);
#pragma unroll
        for (int e = 0; e < EPU; e += 2) {
            a0 += w[e] * v[e];
            a1 += w[e + 1] * v[e + 1];
        }
    }
    return ms_warp_sum(a0 + a1);
}

/* row_dot of two rows at once (their loads interleaved): out[0], out[1] */
template <typename T>
__device__ __forceinline__ void row_dot2(const unsigned char *row0, const unsigned char *row1,
                                         const T *xs, int K, int lane, float *out)
{
    constexpr int EPU = 16 / sizeof(T);
    const int units = K * (int)sizeof(T) / 16;
    const uint4 *r0 = reinterpret_cast<const uint4 *>(row0), *r1 = reinterpret_cast<const uint4 *>(row1);
    const uint4 *x = reinterpret_cast<const uint4 *>(xs);
    float a0 = 0.f, a1 = 0.f, b0 = 0.f, b1 = 0.f;
#pragma unroll 3
    for (int q = lane; q < units; q += 32) {
        const uint4 u0 = r0[q], u1 = r1[q], xu = x[q];
        float w0[EPU], w1[EPU], v[EPU];
        unit_float<T>(u0, w0);
        unit_float<T>(u1, w1);
        unit_float<T>(xu, v);
#pragma unroll
        for (int e = 0; e < EPU; e += 2) {
            a0 += w0[e] * v[e];
            a1 += w0[e + 1] * v[e + 1];
            b0 += w1[e] * v[e];
            b1 += w1[e + 1] * v[e + 1];
        }
    }
    float a = a0 + a1, b = b0 + b1;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, o);
        b += __shfl_xor_sync(0xffffffffu, b, o);
    }
    out[0] = a;
    out[1] = b;
}

/* The grid barrier in two halves, so a block issues the next phase's independent loads
 * while it is pending: grid_arrive releases the block's writes (one increment by the
 * barrier thread after the block's barrier; CUTLASS's generic barrier has the same form),
 * grid_wait returns once all G blocks have arrived n times (acquire). Measured on the
 * H200: ~0.9 us from the last block's arrival to the first block's departure. */
__device__ __forceinline__ void grid_arrive(unsigned *bar)
{
    __syncthreads();
    if (threadIdx.x == STEP_SYNC)
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(bar) : "memory");
}
__device__ __forceinline__ void grid_wait(unsigned *bar, unsigned n)
{
    if (threadIdx.x == STEP_SYNC) {
        const unsigned target = n * gridDim.x;
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
        } while (v < target);
    }
    __syncthreads();
}

template <typename T, int LPC>
__global__ void __launch_bounds__(STEP_THREADS, 1) step_m1_kernel(ms_cu_step_m1 p, ms_cu_step_geo g)
{
    extern __shared__ __align__(16) unsigned char sm[];
    const int D = p.D, E = p.E, N = p.N, R = p.R, K = p.K, NR = R + 2 * N, L = p.n_layer;
    const int S = g.S, rb = g.rb;
    /* shared memory (offsets from the host's step_geometry, 16-byte aligned) */
    ms_cu_step_layer *lt = reinterpret_cast<ms_cu_step_layer *>(sm);  /* [L] the layer table */
    T *xs = reinterpret_cast<T *>(sm + g.o_xs);        /* [max(D, E)] a product's input */
    float *xf = reinterpret_cast<float *>(sm + g.o_xf); /* [D] resid, staged */
    float *xd = reinterpret_cast<float *>(sm + g.o_xd); /* [NR] xdbl */
    float *nw = reinterpret_cast<float *>(sm + g.o_nw), *nb = nw + D; /* [D] each: norm w, b */
    float *red = reinterpret_cast<float *>(sm + g.o_red); /* [32]: block sums */
    float *xcl = reinterpret_cast<float *>(sm + g.o_xcl), *zl = xcl + S; /* [S] each */
    T *wxc = reinterpret_cast<T *>(sm + g.o_wxc);       /* [NR][S] x_proj's columns */
    unsigned char *wb = sm + g.o_wb;                    /* [2][STEP_WARPS][rb] weight rows */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, G = gridDim.x;
    const int NW = G * STEP_WARPS, gw = warp * G + blockIdx.x;
#define WBUF(b) (wb + ((size_t)(b) * STEP_WARPS + warp) * rb)
    T *y = (T *)p.y;
    {
        const unsigned long long *src = reinterpret_cast<const unsigned long long *>(p.layers);
        unsigned long long *dst = reinterpret_cast<unsigned long long *>(lt);
        const int words = L * (int)sizeof(ms_cu_step_layer) / 8;
#pragma unroll 1
        for (int q = threadIdx.x; q < words; q += blockDim.x) dst[q] = src[q];
        __syncthreads();
    }
    float *st0 = p.state[0];
    const float *emb = p.emb + (size_t)p.tokens[0] * D;
    const size_t conv_n = (size_t)E * (K - 1), lstride = conv_n + (size_t)E * N;
    const chans ch = {(int)blockIdx.x * S, min(S, max(0, E - (int)blockIdx.x * S))};
    const bool owner = ch.Sb > 0;
    /* P2's channel: c = c0 + s, LPC lanes */
    const int s = threadIdx.x / LPC, li = threadIdx.x % LPC, c = ch.c0 + s;
    const bool chan = s < ch.Sb;
    const bool cw = warp < STEP_WARPS; /* a compute warp */
    /* rows of this warp in each product */
    const int in_n = owner && cw && warp < 2 * ch.Sb ? (2 * ch.Sb - warp + STEP_WARPS - 1) / STEP_WARPS : 0;
    const int out_n = cw && gw < D ? (D - gw + NW - 1) / NW : 0;
    const int head_n = cw && gw < p.n_out ? (p.n_out - gw + NW - 1) / NW : 0;
    /* P1's inputs of layer l: in_proj rows, the norm's weights, x_proj's columns; the conv
     * and scan operands in registers */
    conv_pre cp;
    scan_pre<T> sp;
    auto fetch_in = [&](int l) {
        const ms_cu_step_layer &w = lt[l];
        /* only the blocks that run P1 (and so wait for these copies before the next ones to
         * the same bytes: two copies in flight to one address may land in either order,
         * which racecheck flagged when every block fetched the norm) */
        if (owner) {
            fetch_vec(nw, w.norm_w, D);
            if (w.norm_b) fetch_vec(nb, w.norm_b, D);
            /* x_proj [NR][E]: columns c0 .. c0 + Sb of each row, 8 bytes at a time */
            const int u8 = ch.Sb * (int)sizeof(T) / 8;
#pragma unroll 1
            for (int r = threadIdx.x; r < NR; r += STEP_CT) {
                const uint2 *src = reinterpret_cast<const uint2 *>((const T *)w.x_w + (size_t)r * E + ch.c0);
                uint2 *d = reinterpret_cast<uint2 *>(wxc + (size_t)r * S);
#pragma unroll 4
                for (int u = 0; u < u8; u++) cp_async8(d + u, src + u);
            }
        }
        fetch_rows(WBUF(0), (const T *)w.in_w, in_n, D, lane,
                   [&](int i) { return ch.in_row(warp + i * STEP_WARPS, E); });
    };
    auto load_regs = [&](int l) {
        const ms_cu_step_layer &w = lt[l];
        float *cst = st0 + l * lstride;
        if (lane == 0 && cw) conv_load(cp, w, cst, in_n ? ch.in_row(warp, E) : -1, E, K);
        scan_load<T, LPC>(sp, w, cst + conv_n, c, li, N, R, chan);
    };
    fetch_in(0);
    load_regs(0);
    unsigned nbar = 0;
#pragma unroll 1
    for (int l = 0; l < L; l++) {
        const ms_cu_step_layer &w = lt[l];
        float *cst = st0 + l * lstride, *sst = cst + conv_n;
        const float *rin = l ? p.resid : emb;

        /* P1: norm, in_proj, conv step, x_proj's partial sums */
        if (owner) {
            const uint4 s1 = stage_get(rin, D * 4);
            cp_async_wait_group<0>(); /* block-wide after norm_row's first barrier */
            stage_put(xf, rin, D * 4, s1);
            norm_row<T>(xs, xf, nw, w.norm_b ? nb : NULL, D, p.eps, p.rms, red);
            float acc2[2];
#pragma unroll 1
            for (int i = 0; i < in_n; i++) {
                const int q = warp + i * STEP_WARPS, j = ch.in_row(q, E);
                if (!(i & 1)) { /* two rows at once where the warp has them */
                    const unsigned char *r0 = WBUF(0) + (size_t)i * D * sizeof(T);
                    if (i + 1 < in_n) row_dot2<T>(r0, r0 + (size_t)D * sizeof(T), xs, D, lane, acc2);
                    else acc2[0] = row_dot<T>(r0, xs, D, lane);
                }
                float acc = (i & 1) ? acc2[1] : acc2[0];
                if (lane == 0) {
                    if (w.in_b) acc = ms_round<T>(acc) + (i ? w.in_b[j] : cp.ib);
                    const float v = ms_round<T>(acc);
                    float *st = cst + (size_t)j * (K - 1);
                    if (q < ch.Sb && i == 0) { /* the preloaded row: the state in registers */
                        xcl[q] = ms_round<T>(ms_conv_step(cp.st, cp.w, cp.b, v, K));
#pragma unroll
                        for (int t = 0; t < MS_CONV_KMAX - 1; t++)
                            if (t < K - 1) st[t] = cp.st[t];
                    } else if (q < ch.Sb) {
                        xcl[q] = ms_round<T>(ms_conv_step(st, w.conv_w + (size_t)j * K,
                                                          w.conv_b ? w.conv_b[j] : 0.f, v, K));
                    } else {
                        zl[q - ch.Sb] = v;
                    }
                }
            }
            __syncthreads();
#pragma unroll 1
            for (int r = threadIdx.x; r < NR; r += blockDim.x) {
                float acc = 0.f;
#pragma unroll 4
                for (int t = 0; t < ch.Sb; t++) acc += ms_ld(wxc + (size_t)r * S + t) * xcl[t];
                fix_add(p.xacc + (size_t)l * NR + r, acc);
            }
        }
        grid_arrive(p.bar);
        nbar++;
        /* while the barrier is pending: out_proj's rows, then the next layer's P1 weights
         * (or the head's), two phases before they are read (issued after P3, they put
         * DRAM's latency on P1's path) */
        fetch_rows(WBUF(1), (const T *)w.out_w, out_n, E, lane, [&](int i) { return gw + i * NW; });
        if (l + 1 < L) {
            fetch_in(l + 1);
        } else if (p.n_out > 0) {
            fetch_vec(nw, p.norm_f_w, D);
            if (p.norm_f_b) fetch_vec(nb, p.norm_f_b, D);
            fetch_rows(WBUF(0), (const T *)p.head, head_n, D, lane, [&](int i) { return gw + i * NW; });
        } else {
            cp_async_commit();
        }
        grid_wait(p.bar, nbar);

        /* P2: xdbl from the blocks' sums, then dt_proj, scan, gate */
        if (owner) {
#pragma unroll 1
            for (int r = threadIdx.x; r < NR; r += blockDim.x)
                xd[r] = ms_round<T>(fix_value(p.xacc + (size_t)l * NR + r));
            __syncthreads();
            if (chan) {
                const unsigned gmask = lane_mask<LPC>();
                float wd[DT_PRE];
#pragma unroll
                for (int i = 0; i < DT_PRE; i++) wd[i] = ms_ld(&sp.wd[i]);
                const float d = decode_dt<T, LPC>((const T *)w.dt_w, sp.dtb, xd, c, li, R, gmask, wd);
                const float xv = xcl[s];
                float acc = ssm_step4(sp.h, sp.a, d, d * xv, xd + R + 4 * li, xd + R + N + 4 * li);
                reinterpret_cast<float4 *>(sst + (size_t)c * N)[li] = sp.h;
#pragma unroll
                for (int o = LPC / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(gmask, acc, o, LPC);
                if (li == 0) ms_st(y + c, (acc + sp.dv * xv) * ms_silu_f(zl[s]));
            }
        }
        grid_arrive(p.bar);
        nbar++;
        /* P3's first row: the residual (this thread wrote it) and the bias it adds */
        float r0 = 0.f, ob0 = 0.f;
        if (lane == 0 && out_n) {
            r0 = ld_l2(rin + gw);
            ob0 = w.out_b ? w.out_b[gw] : 0.f;
        }
        grid_wait(p.bar, nbar);
        /* every block has read xdbl: its sums start from zero in the next launch */
        if (blockIdx.x == 0)
#pragma unroll 1
            for (int r = threadIdx.x; r < NR; r += blockDim.x) p.xacc[(size_t)l * NR + r] = 0;

        /* P3: out_proj + residual */
        if (blockIdx.x < D) { /* the blocks with out_proj rows (warp 0's) */
            const uint4 s3 = stage_get(y, E * (int)sizeof(T));
            stage_put(xs, y, E * (int)sizeof(T), s3);
            cp_async_wait_group<1>(); /* out_proj's rows (the next layer's may be in flight) */
            __syncthreads();
#pragma unroll 1
            for (int i = 0; i < out_n; i++) {
                const int j = gw + i * NW;
                float acc = row_dot<T>(WBUF(1) + (size_t)i * E * sizeof(T), xs, E, lane);
                if (lane == 0) {
                    acc += i ? ld_l2(rin + j) : r0;
                    acc += i ? (w.out_b ? w.out_b[j] : 0.f) : ob0;
                    p.resid[j] = acc;
                }
            }
        }
        grid_arrive(p.bar);
        nbar++;
        /* the next layer's conv and scan operands, while the barrier is pending */
        if (l + 1 < L) load_regs(l + 1);
        grid_wait(p.bar, nbar);
    }
    /* the final norm and the head */
    cp_async_wait_group<0>();
    if (p.n_out > 0 && blockIdx.x < p.n_out) {
        stage_put(xf, p.resid, D * 4, stage_get(p.resid, D * 4));
        norm_row<T>(xs, xf, nw, p.norm_f_b ? nb : NULL, D, p.eps, p.rms, red);
#pragma unroll 1
        for (int i = 0; i < head_n; i++) {
            const int j = gw + i * NW;
            const float acc = row_dot<T>(WBUF(0) + (size_t)i * D * sizeof(T), xs, D, lane);
            if (lane == 0) p.logits[j] = p.head_b ? acc + p.head_b[j] : acc;
        }
    }
#undef WBUF
    /* every block has passed every barrier: the last to leave resets the counters */
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(p.bar + 1, 1u) == gridDim.x - 1) {
            p.bar[0] = 0;
            p.bar[1] = 0;
            __threadfence();
        }
    }
}

static int step_lpc(int N) { return N / 4; }
static size_t up16(size_t n) { return (n + 15) / 16 * 16; }

/* The grid and the shared-memory layout for G = n_sm blocks; false where a shape does not
 * fit the kernel's per-block limits. */
static bool step_geometry(const ms_cu_step_m1 *p, size_t esz, int n_sm, ms_cu_step_geo *g)
{
    const int G = n_sm, NW = G * STEP_WARPS, NR = p->R + 2 * p->N, D = p->D, E = p->E;
    const int S = ((E + G - 1) / G + 3) / 4 * 4;
    const size_t xs_n = (size_t)(D > E ? D : E);
    size_t rb = (size_t)((2 * S + STEP_WARPS - 1) / STEP_WARPS) * D;
    const size_t rout = (size_t)((D + NW - 1) / NW) * E, rhead = (size_t)((p->n_out + NW - 1) / NW) * D;
    if (rout > rb) rb = rout;
    if (rhead > rb) rb = rhead;
    g->S = S;
    g->rb = (int)up16(rb * esz);
    size_t o = up16((size_t)p->n_layer * sizeof(ms_cu_step_layer));
    g->o_xs = (int)o;  o += up16(xs_n * esz);
    g->o_xf = (int)o;  o += up16((size_t)D * 4);
    g->o_xd = (int)o;  o += up16((size_t)NR * 4);
    g->o_nw = (int)o;  o += up16((size_t)2 * D * 4);
    g->o_red = (int)o; o += 32 * 4;
    g->o_xcl = (int)o; o += up16((size_t)2 * S * 4);
    g->o_wxc = (int)o; o += up16((size_t)NR * S * esz);
    g->o_wb = (int)o;  o += 2 * STEP_WARPS * (size_t)g->rb;
    g->smem = o;
    /* P2: a block's channels, LPC threads each */
    return (size_t)S * step_lpc(p->N) <= STEP_CT;
}

static bool al16(const void *q) { return (uintptr_t)q % 16 == 0; }

extern "C" size_t ms_cu_step_m1_acc_count(int n_layer, int R, int N)
{
    return (size_t)n_layer * (R + 2 * N);
}

extern "C" int ms_cu_step_m1_ok(const ms_cu_step_m1 *p, const ms_cu_step_layer *host_layers,
                                ms_cu_dtype dt)
{
    const size_t esz = dt == MS_CU_F32 ? 4 : 2;
    const int lpc = step_lpc(p->N);
    /* 16-byte rows of D and E values; E % 4 == 0 also makes every block's share of x_proj's
     * columns whole 8-byte units */
    if (p->N % 4 || lpc < 1 || lpc > 32 || (lpc & (lpc - 1)) || p->R < 1 || p->K < 1 ||
        p->K > MS_CONV_KMAX || p->D % 4 || p->E % 4 || (p->D * esz) % 16 || (p->E * esz) % 16 ||
        ((size_t)p->E * (p->K - 1)) % 4)
        return 0;
    if (!al16(p->emb) || !al16(p->resid) || !al16(p->y) || !p->xacc ||
        (p->n_out > 0 && !al16(p->head)))
        return 0;
    for (int l = 0; l < p->n_layer; l++) {
        const ms_cu_step_layer *w = &host_layers[l];
        if (!al16(w->in_w) || !al16(w->x_w) || !al16(w->out_w) || !al16(w->A) ||
            !al16(w->norm_w) || !al16(w->norm_b))
            return 0;
    }
    int dev = 0, n_sm = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    ms_cu_step_geo g;
    return step_geometry(p, esz, n_sm, &g) && g.smem <= (size_t)optin;
}

template <typename X, int LPC>
static cudaError_t launch_step(const ms_cu_step_m1 *p, cudaStream_t stream)
{
    int dev = 0, n_sm = 0;
    cudaError_t e;
    if ((e = cudaGetDevice(&dev)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess)
        return e;
    ms_cu_step_geo g;
    if (!step_geometry(p, sizeof(X), n_sm, &g)) return cudaErrorInvalidValue;
    auto kernel = step_m1_kernel<X, LPC>;
    /* the shared-memory opt-in and the residency check once per device and size (a decode
     * step outside a graph would otherwise pay them every call) */
    static size_t done_smem[64];
    if (dev >= 64 || done_smem[dev] < g.smem) {
        if ((e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)g.smem)) != cudaSuccess)
            return e;
        int per_sm = 0;
        if ((e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, STEP_THREADS,
                                                               g.smem)) != cudaSuccess)
            return e;
        if (per_sm < 1) return cudaErrorCooperativeLaunchTooLarge;
        if (dev < 64) done_smem[dev] = g.smem;
    }
    /* cooperative: the driver guarantees the grid is resident at once (the barriers) */
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeCooperative;
    at[0].val.cooperative = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(n_sm);
    cfg.blockDim = dim3(STEP_THREADS);
    cfg.dynamicSmemBytes = g.smem;
    cfg.stream = stream;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, kernel, *p, g);
}

extern "C" cudaError_t ms_cu_decode_step_m1(const ms_cu_step_m1 *p, ms_cu_dtype dt, cudaStream_t stream)
{
#define STEP(LPC) return launch_step<X, LPC>(p, stream)
    MS_DISPATCH(dt, X, {
        switch (step_lpc(p->N)) {
        case 1: STEP(1);
        case 2: STEP(2);
        case 4: STEP(4);
        case 8: STEP(8);
        case 16: STEP(16);
        case 32: STEP(32);
        default: return cudaErrorInvalidValue;
        }
    });
#undef STEP
    return cudaSuccess;
}
