// decode_step_m1.cu - a whole Mamba-1 decode step of one stream in one kernel launch:
// embedding, every layer (norm, in_proj + conv step, x_proj, dt_proj + scan + gate,
// out_proj + residual) and the final norm + head, for one-token calls of one stream.
//
// Why: the step by separate kernels (gemv.cu, decode_m1.cu) costs 4 launches per layer, each
// ~3 us of dependency wait, drain and a first L2 round trip under PDL (docs/benchmarks.md,
// rounds 6-8): 0.30 ms per step for the reference 768 x 24 model against a floor of ~0.04
// ms (its 178 MB of bf16 weights at the H200's DRAM bandwidth). Here the grid stays
// resident (one block per SM, a cooperative launch) and the layers' phases are separated by
// grid-wide barriers of one atomic counter, and each warp's weight rows for the next product
// are copied to shared memory (cp.async) while the current phase and its barrier run, so
// weights never sit on the critical path.
//
// Per layer l, 4 phases and 4 barriers (gw = warp * G + block: consecutive rows land on
// different SMs; NW = G * STEP_WARPS warps in all):
//   P1  every block: xs = norm(resid) (staged, float, rounded to T as add_norm.cu rounds);
//       warp gw: in_proj rows j = gw + i NW < 2E, v = round(dot(W_in[j], xs) (+ bias));
//       j < E: xc[j] = conv step of channel j (ms_conv_step on the stream's conv state);
//       j >= E: z[j - E] = v.
//   P2  blocks with x_proj rows stage xc; warp gw: xdbl[r] = dot(W_x[r], xc), r < R + 2N.
//   P3  channel c = block + s G (s = thread / LPC, LPC = N / 4 lanes a channel): d =
//       softplus(dt_proj row c . xdbl[0:R] + bias), the SSM state step and the gate, as
//       decode_m1.cu's scan4 kernel (the same helpers, decode_m1.cuh); y[c].
//   P4  blocks with out_proj rows stage y; warp gw: resid[j] += dot(W_out[j], y) (+ bias).
// Then (n_out > 0) the blocks with head rows stage norm_f(resid) and write logits.
// Each product's sum runs over a row in gemv.cu's order for 16-bit types, every value is
// rounded where the separate kernels store it, so the step equals the per-kernel path
// within float32 rounding (test_cuda_backend's fused-decode test checks both against the CPU).
//
// Data one block writes and another reads within the launch (resid, xc, z, xdbl, y) is
// read through L2 only (ld.global.cg): the SMs' L1 caches are not coherent. Each stream
// state row is read and written by one thread. The barrier counter (2 unsigned, zero
// between launches) is reset by the last block to leave.
#include "decode_m1.cuh"

#define STEP_WARPS 16
#define STEP_THREADS (STEP_WARPS * 32)

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
 * floats. The row stays in T: every product reads the rounded values only, and 16-byte
 * units of T let a warp read it without bank conflicts (as floats, 8 per lane, the reads
 * were 8-way conflicted: ncu counted 75% excess shared wavefronts, and a row of 1,536 took
 * ~3,000 cycles against ~1,200 now). */
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

/* The warp's rows j = gw + i NW < n_rows of W [n_rows][K] into dst (row i at i K), one
 * cp.async group per call (committed even when empty, so every lane counts alike). */
template <typename T>
__device__ void fetch_rows(unsigned char *dst, const T *W, int n_rows, int K, int gw, int NW,
                           int lane)
{
    const int units = K * (int)sizeof(T) / 16;
    const size_t rb = (size_t)K * sizeof(T);
    int i = 0;
#pragma unroll 1
    for (int j = gw; j < n_rows; j += NW, i++) {
        const unsigned char *src = reinterpret_cast<const unsigned char *>(W + (size_t)j * K);
#pragma unroll 1
        for (int q = lane; q < units; q += 32) cp_async16(dst + i * rb + q * 16, src + q * 16);
    }
    cp_async_commit();
}

/* n floats (n % 4 == 0) into shared memory by the whole block, in the calling threads'
 * open cp.async group */
__device__ __forceinline__ void fetch_vec(float *dst, const float *src, int n)
{
#pragma unroll 1
    for (int q = threadIdx.x; q < n / 4; q += blockDim.x) cp_async16(dst + 4 * q, src + 4 * q);
}

/* Product phase k in order: 3 l + 0 in_proj, + 1 x_proj, + 2 out_proj of layer l; 3 L the
 * head (when there is one). With in_proj and the head come their norm's weights (nw, nb:
 * [D] each). lt: the layer table in shared memory. */
template <typename T>
__device__ void fetch_phase(const ms_cu_step_m1 &p, const ms_cu_step_layer *lt, int k,
                            unsigned char *dst, float *nw, float *nb, int gw, int NW, int lane)
{
    const int l = k / 3, kind = k % 3;
    const void *W = NULL;
    const float *vw = NULL, *vb = NULL;
    int rows = 0, K = p.E;
    if (l < p.n_layer) {
        const ms_cu_step_layer &w = lt[l];
        if (kind == 0) W = w.in_w, rows = 2 * p.E, K = p.D, vw = w.norm_w, vb = w.norm_b;
        else if (kind == 1) W = w.x_w, rows = p.R + 2 * p.N;
        else W = w.out_w, rows = p.D;
    } else if (l == p.n_layer && kind == 0 && p.n_out > 0) {
        W = p.head, rows = p.n_out, K = p.D, vw = p.norm_f_w, vb = p.norm_f_b;
    }
    if (vw) fetch_vec(nw, vw, p.D);
    if (vb) fetch_vec(nb, vb, p.D);
    fetch_rows(dst, (const T *)W, rows, K, gw, NW, lane);
}

/* What P1 of layer w needs for the warp's first in_proj row j (lane 0's), loaded into
 * registers before the barrier that opens P1: the row's bias and, for an x row (j < E),
 * its conv state, weights and bias. Loaded after the barrier, these were global round
 * trips between the product and the conv step. */
struct conv_pre {
    float st[MS_CONV_KMAX - 1], w[MS_CONV_KMAX], b, ib;
};
__device__ __forceinline__ void conv_load(conv_pre &q, const ms_cu_step_layer &w, const float *cst,
                                          int j, int E, int K)
{
    q.ib = w.in_b && j < 2 * E ? w.in_b[j] : 0.f;
    const bool x = j < E;
    q.b = x && w.conv_b ? w.conv_b[j] : 0.f;
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++) q.st[k] = x && k < K - 1 ? cst[(size_t)j * (K - 1) + k] : 0.f;
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX; k++) q.w[k] = x && k < K ? w.conv_w[(size_t)j * K + k] : 0.f;
}

/* dot(row, xs[0:K]) over the warp, both in shared memory (K * sizeof(T) % 16 == 0); every
 * lane gets the sum. A lane takes 16 bytes of each at a time (for 16-bit T 8 values at k =
 * 8 lane + 256 i, as gemv.cu). */
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

__device__ __forceinline__ unsigned long long gtimer()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void grid_sync(unsigned *bar, unsigned n, unsigned long long *prof, int mode)
{
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned target = n * gridDim.x;
        if (prof) prof[(size_t)blockIdx.x * 2 * 256 + 2 * (n - 1)] = gtimer();
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(bar) : "memory");
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
        } while (v < target);
        if (prof) prof[(size_t)blockIdx.x * 2 * 256 + 2 * (n - 1) + 1] = gtimer();
    }
    __syncthreads();
}

#define PT(n) do { if (p.prof && threadIdx.x == 0) p.prof[132 * 512 + ((size_t)blockIdx.x * 64 + l) * 16 + (n)] = clock64(); } while (0)
template <typename T, int LPC>
__global__ void __launch_bounds__(STEP_THREADS, 1) step_m1_kernel(ms_cu_step_m1 p, int rb)
{
    extern __shared__ __align__(16) unsigned char sm[];
    const int D = p.D, E = p.E, N = p.N, R = p.R, K = p.K, NR = R + 2 * N, L = p.n_layer;
    /* shared memory: the layer table, staged rows, the norm's weights, weight buffers */
    ms_cu_step_layer *lt = reinterpret_cast<ms_cu_step_layer *>(sm); /* [L] */
    T *xs = reinterpret_cast<T *>(sm + p.lt_bytes); /* [p.xs_n]: a staged input row */
    float *xf = reinterpret_cast<float *>(sm + p.lt_bytes) + p.xs_n; /* [p.xs_n]: resid */
    float *xd = xf + p.xs_n;                    /* [p.xd_n]: xdbl as float */
    float *nw = xd + p.xd_n, *nb = nw + D;      /* [D] each: the next norm's w and b */
    float *red = nb + D;                        /* [32]: block sums */
    unsigned char *wb = reinterpret_cast<unsigned char *>(red + 32); /* [2][STEP_WARPS][rb] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, G = gridDim.x;
    const int NW = G * STEP_WARPS, gw = warp * G + blockIdx.x;
    /* the warp's weight buffer b (0, 1) */
#define WBUF(b) (wb + ((size_t)(b) * STEP_WARPS + warp) * rb)
    T *xc = (T *)p.xc, *z = (T *)p.z, *xdbl = (T *)p.xdbl, *y = (T *)p.y;
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
    /* P3's channel: c = block + s G, LPC = N / 4 lanes */
    const int s = threadIdx.x / LPC, li = threadIdx.x % LPC, c = blockIdx.x + s * G;
    const bool chan = c < E;
    unsigned nbar = 0;
    int k = 0; /* product phase */
    fetch_phase<T>(p, lt, 0, WBUF(0), nw, nb, gw, NW, lane);
    conv_pre cp;
    if (lane == 0) conv_load(cp, lt[0], st0, gw, E, K);
#pragma unroll 1
    for (int l = 0; l < L; l++) {
        const ms_cu_step_layer &w = lt[l];
        float *cst = st0 + l * lstride, *sst = cst + conv_n;
        const float *rin = l ? p.resid : emb;

        /* P1: norm, in_proj, conv step; P3's per-channel weights and state read here, to
         * be used after two barriers */
        PT(0);
        const uint4 s1 = stage_get(rin, D * 4);
        fetch_phase<T>(p, lt, k + 1, WBUF((k + 1) & 1), nw, nb, gw, NW, lane);
        float4 h4 = make_float4(0.f, 0.f, 0.f, 0.f), a4 = h4;
        float dtb = 0.f, dv = 0.f;
        T wdr[DT_PRE]; /* dt_proj's row as stored: converted in P3, so no instruction waits
                        * on these loads before the barriers (decode_dt_pre's floats did:
                        * ~1.9 us of P1) */
        float4 *hp = reinterpret_cast<float4 *>(sst + (size_t)(chan ? c : 0) * N) + li;
        if (chan) {
            a4 = reinterpret_cast<const float4 *>(w.A + (size_t)c * N)[li];
            h4 = *hp;
            dtb = w.dt_b ? w.dt_b[c] : 0.f;
            dv = w.Dv[c];
        }
        {
            const T *wrow = (const T *)w.dt_w + (size_t)(chan ? c : 0) * R;
#pragma unroll
            for (int i = 0; i < DT_PRE; i++)
                wdr[i] = li + i * LPC < R ? wrow[li + i * LPC] : ms_zero<T>();
        }
        PT(1);
        cp_async_wait_group<1>(); /* this phase's rows and norm weights (block-wide after
                                   * norm_row's first barrier) */
        PT(2);
        stage_put(xf, rin, D * 4, s1);
        norm_row<T>(xs, xf, nw, w.norm_b ? nb : NULL, D, p.eps, p.rms, red);
        PT(3);
        {
            const unsigned char *wr = WBUF(k & 1);
            int i = 0;
            #pragma unroll 1
            for (int j = gw; j < 2 * E; j += NW, i++) {
                float acc = row_dot<T>(wr + (size_t)i * D * sizeof(T), xs, D, lane);
                if (lane == 0) {
                    if (w.in_b) acc = ms_round<T>(acc) + (i ? w.in_b[j] : cp.ib);
                    const float v = ms_round<T>(acc);
                    float *st = cst + (size_t)j * (K - 1);
                    if (j < E && i == 0) { /* the preloaded row: the state in registers */
                        ms_st(xc + j, ms_conv_step(cp.st, cp.w, cp.b, v, K));
#pragma unroll
                        for (int q = 0; q < MS_CONV_KMAX - 1; q++)
                            if (q < K - 1) st[q] = cp.st[q];
                    } else if (j < E) {
                        ms_st(xc + j, ms_conv_step(st, w.conv_w + (size_t)j * K,
                                                   w.conv_b ? w.conv_b[j] : 0.f, v, K));
                    } else {
                        ms_st(z + (j - E), v);
                    }
                }
            }
        }
        PT(4);
        k++;
        PT(5);
        grid_sync(p.bar, ++nbar, p.prof, p.mode);

        /* P2: x_proj; meanwhile P3's x and z (written before the barrier just passed) */
        const bool xrows = blockIdx.x < NR; /* the blocks with x_proj rows (warp 0's) */
        const uint4 s2 = xrows ? stage_get(xc, E * (int)sizeof(T)) : make_uint4(0, 0, 0, 0);
        float xv = 0.f, zv = 0.f;
        if (chan) {
            xv = ld_l2(xc + c);
            zv = ld_l2(z + c);
        }
        fetch_phase<T>(p, lt, k + 1, WBUF((k + 1) & 1), nw, nb, gw, NW, lane);
        if (xrows) {
            stage_put(xs, xc, E * (int)sizeof(T), s2);
            __syncthreads();
        }
        cp_async_wait_group<1>();
        __syncwarp();
        {
            const unsigned char *wr = WBUF(k & 1);
            int i = 0;
            #pragma unroll 1
            for (int r = gw; r < NR; r += NW, i++) {
                const float acc = row_dot<T>(wr + (size_t)i * E * sizeof(T), xs, E, lane);
                if (lane == 0) ms_st(xdbl + r, acc);
            }
        }
        k++;
        grid_sync(p.bar, ++nbar, p.prof, p.mode);

        /* P3: dt_proj, scan, gate */
        if (blockIdx.x < E) {
            #pragma unroll 1
            for (int q = threadIdx.x; q < NR; q += blockDim.x) xd[q] = ld_l2(xdbl + q);
            __syncthreads();
        }
        if (chan) {
            const unsigned gmask = lane_mask<LPC>();
            float wd[DT_PRE];
#pragma unroll
            for (int i = 0; i < DT_PRE; i++) wd[i] = ms_ld(&wdr[i]);
            const float d = decode_dt<T, LPC>((const T *)w.dt_w, dtb, xd, c, li, R, gmask, wd);
            float acc = ssm_step4(h4, a4, d, d * xv, xd + R + 4 * li, xd + R + N + 4 * li);
            *hp = h4;
#pragma unroll
            for (int o = LPC / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(gmask, acc, o, LPC);
            if (li == 0) ms_st(y + c, (acc + dv * xv) * ms_silu_f(zv));
        }
        /* P4's first row: the residual and the bias it adds */
        float r0 = 0.f, ob0 = 0.f;
        if (lane == 0 && gw < D) {
            r0 = ld_l2(rin + gw);
            ob0 = w.out_b ? w.out_b[gw] : 0.f;
        }
        grid_sync(p.bar, ++nbar, p.prof, p.mode);

        /* P4: out_proj + residual */
        PT(6);
        const bool orows = blockIdx.x < D;
        const uint4 s4 = orows ? stage_get(y, E * (int)sizeof(T)) : make_uint4(0, 0, 0, 0);
        fetch_phase<T>(p, lt, k + 1, WBUF((k + 1) & 1), nw, nb, gw, NW, lane);
        PT(7);
        if (orows) {
            stage_put(xs, y, E * (int)sizeof(T), s4);
            __syncthreads();
        }
        PT(8);
        cp_async_wait_group<1>();
        __syncwarp();
        PT(9);
        {
            const unsigned char *wr = WBUF(k & 1);
            int i = 0;
            #pragma unroll 1
            for (int j = gw; j < D; j += NW, i++) {
                float acc = row_dot<T>(wr + (size_t)i * E * sizeof(T), xs, E, lane);
                if (lane == 0) {
                    acc += i ? ld_l2(rin + j) : r0;
                    acc += i ? (w.out_b ? w.out_b[j] : 0.f) : ob0;
                    p.resid[j] = acc;
                }
            }
        }
        PT(10);
        k++;
        if (lane == 0 && l + 1 < L) conv_load(cp, lt[l + 1], cst + lstride, gw, E, K);
        grid_sync(p.bar, ++nbar, p.prof, p.mode);
    }
    /* the final norm and the head (its rows and norm_f were fetched during the last P4) */
    cp_async_wait_group<0>();
    if (p.n_out > 0 && blockIdx.x < p.n_out) {
        stage_put(xf, p.resid, D * 4, stage_get(p.resid, D * 4));
        norm_row<T>(xs, xf, nw, p.norm_f_b ? nb : NULL, D, p.eps, p.rms, red);
        int i = 0;
        #pragma unroll 1
        for (int j = gw; j < p.n_out; j += NW, i++) {
            float acc = row_dot<T>(WBUF(k & 1) + (size_t)i * D * sizeof(T), xs, D, lane);
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

/* rows of a product of n rows per warp of the grid */
static int rows_per_warp(int n, int NW) { return (n + NW - 1) / NW; }

struct step_geom {
    int G, rb;
    size_t smem;
};

static int step_lpc(int N) { return N / 4; }

static bool step_geometry(const ms_cu_step_m1 *p, size_t esz, int n_sm, step_geom *g)
{
    const int NW = n_sm * STEP_WARPS;
    size_t rb = 0;
    const size_t cand[4] = {(size_t)rows_per_warp(2 * p->E, NW) * p->D,
                            (size_t)rows_per_warp(p->R + 2 * p->N, NW) * p->E,
                            (size_t)rows_per_warp(p->D, NW) * p->E,
                            (size_t)rows_per_warp(p->n_out, NW) * p->D};
    for (int i = 0; i < 4; i++)
        if (cand[i] * esz > rb) rb = cand[i] * esz;
    g->G = n_sm;
    g->rb = (int)((rb + 15) / 16 * 16);
    g->smem = (size_t)p->lt_bytes + sizeof(float) * (2 * (size_t)p->xs_n + p->xd_n + 2 * p->D + 32) +
              2 * STEP_WARPS * (size_t)g->rb;
    /* P3: a block's channels, LPC threads each */
    const int per_block = (p->E + n_sm - 1) / n_sm;
    return (size_t)per_block * step_lpc(p->N) <= STEP_THREADS;
}

static bool al16(const void *q) { return (uintptr_t)q % 16 == 0; }

extern "C" int ms_cu_step_m1_ok(const ms_cu_step_m1 *p, const ms_cu_step_layer *host_layers,
                                ms_cu_dtype dt)
{
    const size_t esz = dt == MS_CU_F32 ? 4 : 2;
    const int lpc = step_lpc(p->N);
    if (p->N % 4 || lpc < 1 || lpc > 32 || (lpc & (lpc - 1)) || p->R < 1 || p->K < 1 ||
        p->K > MS_CONV_KMAX || p->D % 4 || (p->D * esz) % 16 || (p->E * esz) % 16 ||
        ((size_t)p->E * (p->K - 1)) % 4 ||
        p->xs_n < p->D || p->xs_n < p->E || p->xd_n < p->R + 2 * p->N)
        return 0;
    if (!al16(p->emb) || !al16(p->resid) || !al16(p->xc) || !al16(p->z) || !al16(p->xdbl) ||
        !al16(p->y) || (p->n_out > 0 && !al16(p->head)))
        return 0;
    for (int l = 0; l < p->n_layer; l++) {
        const ms_cu_step_layer *w = &host_layers[l];
        if (!al16(w->in_w) || !al16(w->x_w) || !al16(w->out_w) || !al16(w->A)) return 0;
    }
    int dev = 0, n_sm = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    step_geom g;
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
    step_geom g;
    if (!step_geometry(p, sizeof(X), n_sm, &g)) return cudaErrorInvalidValue;
    auto kernel = step_m1_kernel<X, LPC>;
    if ((e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)g.smem)) != cudaSuccess)
        return e;
    int per_sm = 0;
    if ((e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, STEP_THREADS, g.smem)) !=
        cudaSuccess)
        return e;
    if (per_sm < 1) return cudaErrorCooperativeLaunchTooLarge;
    /* cooperative: the driver guarantees the grid is resident at once (the barriers) */
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeCooperative;
    at[0].val.cooperative = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(g.G);
    cfg.blockDim = dim3(STEP_THREADS);
    cfg.dynamicSmemBytes = g.smem;
    cfg.stream = stream;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, kernel, *p, g.rb);
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
