// ssd_scan.cu - Mamba-2's scan in the SSD chunked form (the elementwise stages; the four
// batched matrix products between them run through cuBLAS in cuda_backend.c).
//
// Each chunk of the batch is cut into segments ("SSD chunks") of at most L tokens
// (ms_cu_batch; L = the segment length). For segment q (tokens t0 .. t0+n-1 of chunk i),
// head h of group g, with d_t = clamp(softplus(dt_raw[t][h] + dt_bias[h])) and
// cum_t = sum_{r <= t} d_r A[h] (inclusive, within the segment):
//   y_t = sum_{s <= t} (C_t . B_s) exp(cum_t - cum_s) d_s x_s       intra-segment (matmuls)
//       + exp(cum_t) C_t . h_in                                     from the start state
//       + D[h] x_t
//   h_out = exp(cum_{n-1}) h_in + sum_s exp(cum_{n-1} - cum_s) d_s x_s B_s^T
// which is the recurrence h_t = exp(d_t A) h_{t-1} + d_t x_t B_t^T, y_t = C_t h_t + D x_t
// regrouped (Dao & Gu 2024). h_in of a chunk's first segment is the stream's state
// [H][P][N] (float32); the last segment's h_out is written back there.
//
// A call whose chunks all start from zeros (ms_cu_batch.fresh) and are one segment each
// (reads, clips) has h_in = 0 everywhere: product 6 then writes S straight into the
// streams' states (ms_cu_ssd_ptrs_direct), and stages 7 and 8 do not run (ys = 0; the
// fused output kernel takes ys = NULL). Otherwise stage 7 reads no state for a fresh chunk.
//
// Stages (q < Q segments; rows s, t < L; buffers padded to L rows per segment, rows past
// a segment's n are written as zeros or ignored). In bf16 / fp16, stages 3, 4 and 9 run as
// one kernel instead (ssd_out.cu), after 1, 5-8 and 2:
//   1 ssd_prep     dt[q][h][t] = d_t, cum[q][h][t]            Grid (Q, ceil(H / 8)), a
//                                                              warp per head
//   2 GEMM         cb[q][g][t][s] = C_t . B_s                  (float32 out)
//   3 ssd_mask     m[q][h][t][s] = s <= t < n ? cb * exp(cum_t - cum_s) * d_s : 0
//                                                              Grid (Q * H), 256 threads
//   4 GEMM         yi[q][t][hP + p] = sum_s m[t][s] x[s][hP + p]
//   5 ssd_xs       xs[q][s][c] = s < n ? x_s d_s exp(cum_{n-1} - cum_s) : 0
//                                                              Grid (L, Q), 256 threads
//   6 GEMM         S[q][h][p][n] = sum_s xs[s][hP + p] B_s[n]  (float32 out; per (q, g),
//                                                              the group's heads at once)
//   7 ssd_pass     per chunk, over its segments in order: hin[q] = h; h = exp(cum_{n-1}) h
//                  + S[q]; the stream state gets the last h. Grid (ceil(E N / 256 V),
//                  chunks), V = 4 elements a thread for calls of 4 or more chunks, else 2
//                  (one stream: all E N / 2 threads resident at once, 1 wave)
//   8 GEMM         ys[q][t][hP + p] = sum_n hin[q][h][p][n] C_t[n]   (per (q, g))
//   9 ssd_combine  y[t0 + t][c] = yi + exp(cum_t) ys + D[h] x   Grid (L, Q), 256 threads
// Stages 3, 5 and 9 give a thread V adjacent elements: V = 8 (the vector forms, for L, P
// and E multiples of 8 and rows 16-byte aligned: the usual shapes) with 16-byte loads and
// stores, the 8 channels of one head sharing one exp; else V = 1. The vector forms of 5 and
// 9 run E / 8 threads per row (whole warps, at most 256); the mask kernel walks rows (t)
// and column groups (s) without an integer division per element.
// On the H200 these stages ran at 3-5x their memory floor (ncu, 32 K tokens: mask 282 us,
// decayed x 188, combine 214 per layer). Stage 7 loads the next segments' S and decay
// ahead of its sequential chain, like the Mamba-1 combine pass.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_dtype.cuh"

/* Stage 1: a warp per (segment, head), PREP_HEADS heads a block (the heads of a token sit
 * side by side in dt_raw's row, so the block's warps share its sectors through L1; a block
 * of one warp per head had made 8,192 blocks of a read call for the bundled model) */
#define PREP_HEADS 8
template <typename T>
__global__ void ssd_prep_kernel(ms_cu_ssd_args a, ms_cu_batch bt)
{
    const int q = blockIdx.x, h = blockIdx.y * PREP_HEADS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31, L = a.L;
    if (h >= a.H) return;
    const int t0 = bt.seg_start[q], n = bt.seg_n[q];
    const int per = (L + 31) / 32, i0 = lane * per;
    const T *raw = (const T *)a.dt_raw;
    float *dt = a.dt + ((size_t)q * a.H + h) * L, *cum = a.cum + ((size_t)q * a.H + h) * L;
    const float Ah = a.A[h], bias = a.dt_bias[h];
    float run = 0.f;
    for (int i = i0; i < i0 + per && i < L; i++) {
        float d = 0.f;
        if (i < n) {
            d = ms_softplus_f(ms_ld(raw + (size_t)(t0 + i) * a.lddt + h) + bias);
            d = fminf(fmaxf(d, a.dt_min), a.dt_max);
        }
        dt[i] = d;
        run += d * Ah;
    }
    /* exclusive scan of the lanes' sums */
    float incl = run;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const float v = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += v;
    }
    float acc = incl - run;
    for (int i = i0; i < i0 + per && i < L; i++) {
        acc += dt[i] * Ah;
        cum[i] = acc;
    }
}

/* Stage 3's common start: segment-head qh's cum and dt into shared sh[0, L), sh[L, 2L). */
__device__ __forceinline__ void ssd_stage_cum_dt(const ms_cu_ssd_args &a, int qh, float *sh)
{
    const float *cum = a.cum + (size_t)qh * a.L, *dt = a.dt + (size_t)qh * a.L;
    for (int i = threadIdx.x; i < a.L; i += blockDim.x) {
        sh[i] = cum[i];
        sh[a.L + i] = dt[i];
    }
    __syncthreads();
}

/* Stage 7: a thread carries V elements of the state through its chunk's segments. V = 4
 * for calls of many chunks, whose chunks are mostly one segment: one round trip (the
 * chunk's segment range, then S and cum) serves four elements (H200, reference Mamba-2, 512
 * reads of 160 tokens: 1.28 ms per layer with one element a thread, 0.45 with four). V = 2
 * for calls of 1-3 chunks: one long stream's E N / 2 threads are then resident at once
 * (one wave; 143 -> 84 us per layer at 32,768 tokens, where one element a thread at 114
 * registers had run in 2.9 waves). Registers capped for 4 and 3 blocks per SM: V = 4 at
 * 100 registers ran 2 blocks per SM and took 715 us for those reads. */
template <typename T, int V>
__global__ void __launch_bounds__(256, V == 4 ? 4 : 3) ssd_pass_kernel(ms_cu_ssd_args a,
                                                                       ms_cu_batch bt)
{
    /* segments whose loads go out before their dependent chain: CB V values a thread */
    constexpr int CB = 16 / V;
    const int HPN = a.E * a.N, PN = a.P * a.N, ci = blockIdx.y, L = a.L;
    const int i0 = blockIdx.x * blockDim.x * V + threadIdx.x;
    const int q0 = bt.chunk_seg[ci], q1 = bt.chunk_seg[ci + 1];
    const size_t cstep = (size_t)a.H * L; /* cum's stride between segments */
    float *st = bt.state[ci] + a.state_off;
    const bool fresh = ms_fresh(bt, ci); /* starts from zeros: the state is only written */
    /* A segment's decay is exp(cum_{n-1}). Stage 1 leaves cum's rows past n equal to
     * cum_{n-1} (d = 0 there; equal up to the rounding of its lane sums), so row L - 1
     * serves and no seg_n load sits in front of the cum load. Pointers advance by a group
     * of segments per trip: no 64-bit index products per element. */
    float hv[V];
    bool ok[V];
    const float *pc[V];
#pragma unroll
    for (int v = 0; v < V; v++) {
        const int i = i0 + v * blockDim.x;
        ok[v] = i < HPN;
        hv[v] = ok[v] && !fresh ? st[i] : 0.f;
        pc[v] = a.cum + (size_t)q0 * cstep + (size_t)(min(i, HPN - 1) / PN) * L + L - 1;
    }
    const float *pS = a.S + (size_t)q0 * HPN + i0;
    T *ph = (T *)a.hin + (size_t)q0 * HPN + i0;
    for (int qb = q0; qb < q1; qb += CB) {
        const int nk = min(CB, q1 - qb);
        float Sv[CB][V], cl[CB][V];
#pragma unroll
        for (int k = 0; k < CB; k++)
#pragma unroll
            for (int v = 0; v < V; v++)
                if (k < nk && ok[v]) {
                    Sv[k][v] = pS[(size_t)k * HPN + v * blockDim.x];
                    cl[k][v] = pc[v][k * cstep];
                }
#pragma unroll
        for (int k = 0; k < CB; k++)
#pragma unroll
            for (int v = 0; v < V; v++)
                if (k < nk && ok[v]) {
                    ms_st(ph + (size_t)k * HPN + v * blockDim.x, hv[v]);
                    hv[v] = ms_exp_nonpos(cl[k][v]) * hv[v] + Sv[k][v]; /* cum <= 0 */
                }
        pS += (size_t)CB * HPN;
        ph += (size_t)CB * HPN;
#pragma unroll
        for (int v = 0; v < V; v++) pc[v] += CB * cstep;
    }
#pragma unroll
    for (int v = 0; v < V; v++)
        if (ok[v]) st[i0 + v * blockDim.x] = hv[v];
}

/* Stage 3: a thread writes m[t][s0 .. s0+V-1], V = 8 (vector form, L % 8 == 0: 16-byte
 * accesses) or 1; rows t and column groups without an integer division per element. */
template <typename T, int V>
__global__ void ssd_mask_kernel(ms_cu_ssd_args a, ms_cu_batch bt)
{
    extern __shared__ float sh[]; /* cum [L], dt [L] */
    const int qh = blockIdx.x, q = qh / a.H, h = qh % a.H, L = a.L;
    const int g = h / a.heads_per_group, n = bt.seg_n[q];
    ssd_stage_cum_dt(a, qh, sh);
    const float *cb = a.cb + ((size_t)q * a.G + g) * L * L;
    T *m = (T *)a.m + (size_t)qh * L * L;
    const int gpr = L / V; /* column groups per row */
    for (int k = threadIdx.x; k < L * gpr; k += blockDim.x) {
        const int t = k / gpr, s0 = (k - t * gpr) * V;
        float v[V];
#pragma unroll
        for (int j = 0; j < V; j++) v[j] = 0.f;
        if (t < n && s0 <= t) {
            float c[V];
            ms_ldv<V>(cb + (size_t)t * L + s0, c);
            const float ct = sh[t];
#pragma unroll
            for (int j = 0; j < V; j++)
                if (s0 + j <= t) v[j] = ms_ssd_mask(c[j], ct, sh, sh + L, s0 + j);
        }
        ms_stv<V>(m + (size_t)t * L + s0, v);
    }
}

/* Stage 5: a thread writes xs[s][c0 .. c0+V-1], V = 8 (vector form, P % 8 == 0: one
 * head, 16-byte accesses) or 1. */
template <typename T, int V>
__global__ void ssd_xs_kernel(ms_cu_ssd_args a, ms_cu_batch bt)
{
    const int s = blockIdx.x, q = blockIdx.y, L = a.L;
    const int t0 = bt.seg_start[q], n = bt.seg_n[q];
    const T *x = (const T *)a.x + (size_t)(t0 + s) * a.ldx;
    T *xs = (T *)a.xs + ((size_t)q * L + s) * a.E;
    for (int c0 = threadIdx.x * V; c0 < a.E; c0 += blockDim.x * V) {
        float v[V];
#pragma unroll
        for (int j = 0; j < V; j++) v[j] = 0.f;
        if (s < n) {
            const size_t qh = (size_t)q * a.H + c0 / a.P;
            const float *cum = a.cum + qh * L;
            const float f = a.dt[qh * L + s] * ms_exp_nonpos(cum[n - 1] - cum[s]);
            ms_ldv<V>(x + c0, v);
#pragma unroll
            for (int j = 0; j < V; j++) v[j] *= f;
        }
        ms_stv<V>(xs + c0, v);
    }
}

/* Stage 9: a thread writes y[t][c0 .. c0+V-1], V = 8 (vector form, one head) or 1. */
template <typename T, int V>
__global__ void ssd_combine_kernel(ms_cu_ssd_args a, ms_cu_batch bt)
{
    const int t = blockIdx.x, q = blockIdx.y, L = a.L;
    const int t0 = bt.seg_start[q], n = bt.seg_n[q];
    if (t >= n) return;
    const T *x = (const T *)a.x + (size_t)(t0 + t) * a.ldx;
    const T *yi = (const T *)a.yi + ((size_t)q * L + t) * a.ldyi;
    const T *ys = (const T *)a.ys + ((size_t)q * L + t) * a.E;
    T *y = (T *)a.y + (size_t)(t0 + t) * a.ldy;
    for (int c0 = threadIdx.x * V; c0 < a.E; c0 += blockDim.x * V) {
        const int h = c0 / a.P;
        const float e = ms_exp_nonpos(a.cum[((size_t)q * a.H + h) * L + t]), Dh = a.D[h];
        float vi[V], vs[V], vx[V];
        ms_ldv<V>(yi + c0, vi);
        ms_ldv<V>(ys + c0, vs);
        ms_ldv<V>(x + c0, vx);
#pragma unroll
        for (int j = 0; j < V; j++) vi[j] += e * vs[j] + Dh * vx[j];
        ms_stv<V>(y + c0, vi);
    }
}

/* The vector forms apply: 8-element groups inside one head, 16-byte aligned rows. */
static bool ssd_vec_ok(const ms_cu_ssd_args *a, size_t esz)
{
    static int off = -1; /* MS_CUDA_SSD_VEC=0: the scalar forms (comparison) */
    if (off < 0) {
        const char *e = getenv("MS_CUDA_SSD_VEC");
        off = e && e[0] == '0';
    }
    const size_t al = 16;
    return !off && a->L % 8 == 0 && a->P % 8 == 0 && a->E % 8 == 0 &&
           (uintptr_t)a->x % al == 0 && ((size_t)a->ldx * esz) % al == 0 &&
           (uintptr_t)a->y % al == 0 && ((size_t)a->ldy * esz) % al == 0 &&
           (uintptr_t)a->xs % al == 0 && (uintptr_t)a->yi % al == 0 &&
           ((size_t)a->ldyi * esz) % al == 0 &&
           (uintptr_t)a->ys % al == 0 && (uintptr_t)a->m % al == 0 && (uintptr_t)a->cb % al == 0;
}

/* Threads for rows of E channels, 8 per thread: whole warps, at most 256. */
static int vec_threads(int E)
{
    const int t = (E / 8 + 31) / 32 * 32;
    return t < 256 ? t : 256;
}

/* Pointer tables of the four batched products (see ms_cu_ssd_ptrs in cuda_ops.h).
 * Grid (Q, max(H, G)), 1 thread. */
template <typename T>
__global__ void ssd_ptrs_kernel(ms_cu_ssd_args a, ms_cu_batch bt, void **p)
{
    const int q = blockIdx.x, j = blockIdx.y, L = a.L, Q = bt.n_seg, N = a.N, E = a.E;
    const T *xrow = (const T *)a.x + (size_t)bt.seg_start[q] * a.ldx;
    const T *Brow = (const T *)a.B + (size_t)bt.seg_start[q] * a.ldbc;
    const T *Crow = (const T *)a.C + (size_t)bt.seg_start[q] * a.ldbc;
    const size_t QH = (size_t)Q * a.H, QG = (size_t)Q * a.G;
    if (j < a.G) {
        const size_t b = (size_t)q * a.G + j, EG = (size_t)E / a.G;
        /* GEMM 2: cb = B^T C per (q, g) */
        p[0 * QG + b] = (void *)(Brow + (size_t)j * N);
        p[1 * QG + b] = (void *)(Crow + (size_t)j * N);
        p[2 * QG + b] = (void *)(a.cb + b * L * L);
        /* GEMM 6: S = B xs^T, the group's heads at once (S rows [q][c][n], c in the group) */
        void **p3 = p + 3 * QG + 3 * QH, **p4 = p3 + 3 * QG;
        p3[0 * QG + b] = (void *)(Brow + (size_t)j * N);
        p3[1 * QG + b] = (void *)((T *)a.xs + (size_t)q * L * E + j * EG);
        p3[2 * QG + b] = (void *)(a.S + ((size_t)q * E + j * EG) * N);
        /* GEMM 8: ys = hin^T C, the same way */
        p4[0 * QG + b] = (void *)((T *)a.hin + ((size_t)q * E + j * EG) * N);
        p4[1 * QG + b] = (void *)(Crow + (size_t)j * N);
        p4[2 * QG + b] = (void *)((T *)a.ys + (size_t)q * L * E + j * EG);
    }
    if (j < a.H) {
        const size_t b = (size_t)q * a.H + j;
        void **p2 = p + 3 * QG;
        /* GEMM 4: yi = x m */
        p2[0 * QH + b] = (void *)(xrow + (size_t)j * a.P);
        p2[1 * QH + b] = (void *)((T *)a.m + b * L * L);
        p2[2 * QH + b] = (void *)((T *)a.yi + (size_t)q * L * a.ldyi + (size_t)j * a.P);
    }
}

/* Stage 6's output table pointed into the streams' states at the layer's state_off (see
 * ms_cu_ssd_ptrs_direct). Grid (Q), G threads. */
__global__ void ssd_ptrs_direct_kernel(ms_cu_ssd_args a, ms_cu_batch bt, void **pS)
{
    const int q = blockIdx.x, j = threadIdx.x;
    if (j >= a.G) return;
    const size_t EG = (size_t)a.E / a.G;
    pS[(size_t)q * a.G + j] = bt.state[bt.seg_chunk[q]] + a.state_off + j * EG * a.N;
}

static cudaError_t ssd_check(const ms_cu_ssd_args *a, const ms_cu_batch *bt)
{
    /* prep keeps L / 32 tokens per lane; mask stages cum and dt of a segment in shared memory */
    if (a->L < 1 || a->L > 1024 || a->P < 1 || a->H < 1 || a->G < 1 || a->H % a->G ||
        (size_t)a->E * a->N > INT32_MAX / 2 || /* stage 7's int indices */
        a->heads_per_group != a->H / a->G || a->E != a->H * a->P || a->N < 1 || a->ldyi < a->E)
        return cudaErrorInvalidValue;
    if (bt->n_chunks > 65535 || bt->n_seg > 65535) return cudaErrorInvalidValue; /* grid y */
    return cudaSuccess;
}

extern "C" cudaError_t ms_cu_ssd_ptrs(const ms_cu_ssd_args *a, ms_cu_dtype dt,
                                      const ms_cu_batch *bt, void **ptrs, cudaStream_t stream)
{
    cudaError_t e = ssd_check(a, bt);
    if (e != cudaSuccess || bt->n_seg <= 0) return e;
    dim3 grid(bt->n_seg, a->H > a->G ? a->H : a->G);
    MS_DISPATCH(dt, X, ssd_ptrs_kernel<X><<<grid, 1, 0, stream>>>(*a, *bt, ptrs));
    return cudaGetLastError();
}

extern "C" cudaError_t ms_cu_ssd_ptrs_direct(const ms_cu_ssd_args *a, const ms_cu_batch *bt,
                                             void **ptrs, cudaStream_t stream)
{
    cudaError_t e = ssd_check(a, bt);
    if (e != cudaSuccess || bt->n_seg <= 0) return e;
    if (bt->multi || bt->n_seg != bt->n_chunks || a->G > 1024) return cudaErrorInvalidValue;
    const size_t QG = (size_t)bt->n_seg * a->G, QH = (size_t)bt->n_seg * a->H;
    ssd_ptrs_direct_kernel<<<bt->n_seg, a->G, 0, stream>>>(*a, *bt, ptrs + 5 * QG + 3 * QH);
    return cudaGetLastError();
}

extern "C" cudaError_t ms_cu_ssd_stage(int stage, const ms_cu_ssd_args *a, ms_cu_dtype dt,
                                       const ms_cu_batch *bt, cudaStream_t stream)
{
    cudaError_t e = ssd_check(a, bt);
    if (e != cudaSuccess || bt->n_seg <= 0) return e;
    const int Q = bt->n_seg, L = a->L;
    MS_DISPATCH(dt, X, {
        const bool vec = ssd_vec_ok(a, sizeof(X));
        switch (stage) {
        case 1:
            ssd_prep_kernel<X><<<dim3(Q, (a->H + PREP_HEADS - 1) / PREP_HEADS),
                                 32 * (a->H < PREP_HEADS ? a->H : PREP_HEADS), 0, stream>>>(*a, *bt);
            break;
        case 3:
            if (vec)
                ssd_mask_kernel<X, 8><<<Q * a->H, 256, 2 * L * sizeof(float), stream>>>(*a, *bt);
            else
                ssd_mask_kernel<X, 1><<<Q * a->H, 256, 2 * L * sizeof(float), stream>>>(*a, *bt);
            break;
        case 5:
            if (vec)
                ssd_xs_kernel<X, 8><<<dim3(L, Q), vec_threads(a->E), 0, stream>>>(*a, *bt);
            else
                ssd_xs_kernel<X, 1><<<dim3(L, Q), 256, 0, stream>>>(*a, *bt);
            break;
        case 7: {
            const size_t epc = bt->n_chunks >= 4 ? 4 * 256 : 2 * 256; /* elements per block */
            dim3 g((unsigned)(((size_t)a->E * a->N + epc - 1) / epc), bt->n_chunks);
            if (epc > 512) ssd_pass_kernel<X, 4><<<g, 256, 0, stream>>>(*a, *bt);
            else ssd_pass_kernel<X, 2><<<g, 256, 0, stream>>>(*a, *bt);
            break;
        }
        case 9:
            if (vec)
                ssd_combine_kernel<X, 8><<<dim3(L, Q), vec_threads(a->E), 0, stream>>>(*a, *bt);
            else
                ssd_combine_kernel<X, 1><<<dim3(L, Q), 256, 0, stream>>>(*a, *bt);
            break;
        default:
            return cudaErrorInvalidValue;
        }
    });
    return cudaGetLastError();
}
