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

/* xs[0:n] = src[0:n] as float, through L2 (n * sizeof(T) % 16 == 0, src 16-byte aligned) */
template <typename T> __device__ void stage_l2(float *xs, const T *src, int n)
{
    constexpr int EPU = 16 / sizeof(T);
    const uint4 *s = reinterpret_cast<const uint4 *>(src);
    for (int q = threadIdx.x; q < n / EPU; q += blockDim.x) unit_float<T>(__ldcg(s + q), xs + q * EPU);
}

/* xs = norm(x) rounded to T (gemv.cu's stage_norm, add_norm.cu's arithmetic): rms, or
 * LayerNorm with b; x through L2. red: 32 floats. */
template <typename T>
__device__ void stage_norm_l2(float *xs, const float *x, const float *w, const float *b, int D,
                              float eps, int rms, float *red)
{
    stage_l2<float>(xs, x, D);
    __syncthreads();
    float s = 0.f;
    if (!rms)
        for (int k = threadIdx.x; k < D; k += blockDim.x) s += xs[k];
    const float mean = rms ? 0.f : ms_block_sum(s, red) / D;
    float ss = 0.f;
    for (int k = threadIdx.x; k < D; k += blockDim.x) ss += (xs[k] - mean) * (xs[k] - mean);
    const float inv = rsqrtf(ms_block_sum(ss, red) / D + eps);
    for (int k = threadIdx.x; k < D; k += blockDim.x)
        xs[k] = ms_round<T>((xs[k] - mean) * inv * w[k] + (b ? b[k] : 0.f));
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
    for (int j = gw; j < n_rows; j += NW, i++) {
        const unsigned char *src = reinterpret_cast<const unsigned char *>(W + (size_t)j * K);
        for (int q = lane; q < units; q += 32) cp_async16(dst + i * rb + q * 16, src + q * 16);
    }
    cp_async_commit();
}

/* Product phase k in order: 3 l + 0 in_proj, + 1 x_proj, + 2 out_proj of layer l; 3 L the
 * head (when there is one). */
template <typename T>
__device__ void fetch_phase(const ms_cu_step_m1 &p, int k, unsigned char *dst, int gw, int NW,
                            int lane)
{
    const int l = k / 3, kind = k % 3;
    if (l < p.n_layer) {
        const ms_cu_step_layer &w = p.layers[l];
        if (kind == 0) fetch_rows(dst, (const T *)w.in_w, 2 * p.E, p.D, gw, NW, lane);
        else if (kind == 1) fetch_rows(dst, (const T *)w.x_w, p.R + 2 * p.N, p.E, gw, NW, lane);
        else fetch_rows(dst, (const T *)w.out_w, p.D, p.E, gw, NW, lane);
    } else if (l == p.n_layer && kind == 0 && p.n_out > 0) {
        fetch_rows(dst, (const T *)p.head, p.n_out, p.D, gw, NW, lane);
    } else {
        cp_async_commit();
    }
}

/* dot(row, xs[0:K]) over the warp (row in shared memory, K * sizeof(T) % 16 == 0); every
 * lane gets the sum. For 16-bit T a lane takes 8 values at k = 8 lane + 256 i, as gemv.cu. */
template <typename T>
__device__ __forceinline__ float row_dot(const unsigned char *row, const float *xs, int K, int lane)
{
    constexpr int EPU = 16 / sizeof(T);
    const int units = K * (int)sizeof(T) / 16;
    const uint4 *r = reinterpret_cast<const uint4 *>(row);
    float acc = 0.f;
    for (int q = lane; q < units; q += 32) {
        float w[EPU];
        unit_float<T>(r[q], w);
#pragma unroll
        for (int v = 0; v < EPU; v++) acc += w[v] * xs[q * EPU + v];
    }
    return ms_warp_sum(acc);
}

/* All G blocks reach barrier number n (counting from 1) before any passes it: each
 * block's thread 0 releases the block's writes with one increment, then waits (acquire)
 * for n G. */
__device__ __forceinline__ void grid_sync(unsigned *bar, unsigned n)
{
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned target = n * gridDim.x;
        __threadfence();
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(bar) : "memory");
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
        } while (v < target);
    }
    __syncthreads();
}

template <typename T, int LPC>
__global__ void __launch_bounds__(STEP_THREADS, 1) step_m1_kernel(ms_cu_step_m1 p, int rb)
{
    extern __shared__ __align__(16) unsigned char sm[];
    const int D = p.D, E = p.E, N = p.N, R = p.R, K = p.K, NR = R + 2 * N, L = p.n_layer;
    float *xs = reinterpret_cast<float *>(sm);  /* [p.xs_n]: a staged input row */
    float *xd = xs + p.xs_n;                    /* [p.xd_n]: xdbl as float */
    float *red = xd + p.xd_n;                   /* [32]: block sums */
    unsigned char *wb = reinterpret_cast<unsigned char *>(red + 32); /* [2][STEP_WARPS][rb] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, G = gridDim.x;
    const int NW = G * STEP_WARPS, gw = warp * G + blockIdx.x;
    unsigned char *wbuf[2] = {wb + (size_t)warp * rb, wb + (size_t)(STEP_WARPS + warp) * rb};
    T *xc = (T *)p.xc, *z = (T *)p.z, *xdbl = (T *)p.xdbl, *y = (T *)p.y;
    float *st0 = p.state[0];
    const float *emb = p.emb + (size_t)p.tokens[0] * D;
    const size_t conv_n = (size_t)E * (K - 1), lstride = conv_n + (size_t)E * N;
    /* P3's channel: c = block + s G */
    const int s = threadIdx.x / LPC, li = threadIdx.x % LPC, c = blockIdx.x + s * G;
    const bool live = c < E && li < N / 4;
    const bool chan = c < E; /* whole LPC groups: the dt dot's shuffles */
    unsigned nbar = 0;
    int k = 0; /* product phase */
    fetch_phase<T>(p, 0, wbuf[0], gw, NW, lane);
    for (int l = 0; l < L; l++) {
        const ms_cu_step_layer &w = p.layers[l];
        float *cst = st0 + l * lstride, *sst = cst + conv_n;
        const float *rin = l ? p.resid : emb;

        /* P1: norm, in_proj, conv step */
        fetch_phase<T>(p, k + 1, wbuf[(k + 1) & 1], gw, NW, lane);
        if (lane == 0)
            for (int j = gw; j < E; j += NW) {
                ms_prefetch_l1(cst + (size_t)j * (K - 1));
                ms_prefetch_l1(w.conv_w + (size_t)j * K);
            }
        stage_norm_l2<T>(xs, rin, w.norm_w, w.norm_b, D, p.eps, p.rms, red);
        cp_async_wait_group<1>();
        __syncwarp();
        {
            const unsigned char *wr = wbuf[k & 1];
            int i = 0;
            for (int j = gw; j < 2 * E; j += NW, i++) {
                float acc = row_dot<T>(wr + (size_t)i * D * sizeof(T), xs, D, lane);
                if (lane == 0) {
                    if (w.in_b) acc = ms_round<T>(acc) + w.in_b[j];
                    const float v = ms_round<T>(acc);
                    if (j < E)
                        ms_st(xc + j, ms_conv_step(cst + (size_t)j * (K - 1), w.conv_w + (size_t)j * K,
                                                   w.conv_b ? w.conv_b[j] : 0.f, v, K));
                    else
                        ms_st(z + (j - E), v);
                }
            }
        }
        k++;
        grid_sync(p.bar, ++nbar);

        /* P2: x_proj; meanwhile P3's per-channel loads (x and z were written before the
         * barrier just passed) */
        fetch_phase<T>(p, k + 1, wbuf[(k + 1) & 1], gw, NW, lane);
        float4 h4 = make_float4(0.f, 0.f, 0.f, 0.f), a4 = h4;
        float xv = 0.f, zv = 0.f, wd[DT_PRE];
        float4 *hp = reinterpret_cast<float4 *>(sst + (size_t)(chan ? c : 0) * N) + li;
        if (live) {
            a4 = reinterpret_cast<const float4 *>(w.A + (size_t)c * N)[li];
            h4 = *hp;
        }
        if (chan) {
            xv = ld_l2(xc + c);
            zv = ld_l2(z + c);
        }
        decode_dt_pre<T, LPC>((const T *)w.dt_w, chan ? c : 0, li, R, wd);
        if (blockIdx.x < NR) { /* the blocks with x_proj rows (gw < NR: warp 0's) */
            stage_l2<T>(xs, xc, E);
            __syncthreads();
        }
        cp_async_wait_group<1>();
        __syncwarp();
        {
            const unsigned char *wr = wbuf[k & 1];
            int i = 0;
            for (int r = gw; r < NR; r += NW, i++) {
                const float acc = row_dot<T>(wr + (size_t)i * E * sizeof(T), xs, E, lane);
                if (lane == 0) ms_st(xdbl + r, acc);
            }
        }
        k++;
        grid_sync(p.bar, ++nbar);

        /* P3: dt_proj, scan, gate */
        if (blockIdx.x < E) {
            for (int q = threadIdx.x; q < NR; q += blockDim.x) xd[q] = ld_l2(xdbl + q);
            __syncthreads();
        }
        if (chan) {
            const unsigned gmask = lane_mask<LPC>();
            const float d = decode_dt<T, LPC>((const T *)w.dt_w, w.dt_b, xd, c, li, R, gmask, wd);
            float acc = 0.f;
            if (live) {
                acc = ssm_step4(h4, a4, d, d * xv, xd + R + 4 * li, xd + R + N + 4 * li);
                *hp = h4;
            }
#pragma unroll
            for (int o = LPC / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(gmask, acc, o, LPC);
            if (li == 0) ms_st(y + c, (acc + w.Dv[c] * xv) * ms_silu_f(zv));
        }
        grid_sync(p.bar, ++nbar);

        /* P4: out_proj + residual */
        fetch_phase<T>(p, k + 1, wbuf[(k + 1) & 1], gw, NW, lane);
        if (blockIdx.x < D) {
            stage_l2<T>(xs, y, E);
            __syncthreads();
        }
        cp_async_wait_group<1>();
        __syncwarp();
        {
            const unsigned char *wr = wbuf[k & 1];
            int i = 0;
            for (int j = gw; j < D; j += NW, i++) {
                float acc = row_dot<T>(wr + (size_t)i * E * sizeof(T), xs, E, lane);
                if (lane == 0) {
                    acc += ld_l2(rin + j);
                    if (w.out_b) acc += w.out_b[j];
                    p.resid[j] = acc;
                }
            }
        }
        k++;
        grid_sync(p.bar, ++nbar);
    }
    /* the final norm and the head (its rows were fetched during the last P4) */
    if (p.n_out > 0 && blockIdx.x < p.n_out) {
        stage_norm_l2<T>(xs, p.resid, p.norm_f_w, p.norm_f_b, D, p.eps, p.rms, red);
        cp_async_wait_group<0>();
        __syncwarp();
        int i = 0;
        for (int j = gw; j < p.n_out; j += NW, i++) {
            float acc = row_dot<T>(wbuf[k & 1] + (size_t)i * D * sizeof(T), xs, D, lane);
            if (lane == 0) p.logits[j] = p.head_b ? acc + p.head_b[j] : acc;
        }
    }
    cp_async_wait_group<0>();
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
    g->smem = sizeof(float) * ((size_t)p->xs_n + p->xd_n + 32) + 2 * STEP_WARPS * (size_t)g->rb;
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
