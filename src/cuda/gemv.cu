// gemv.cu - the products of one-token calls (decode of one stream):
//   out[j] = sum_k W[j][k] x[k] (+ beta out[j]),  j < n_out,
// W [n_out][n_in] row-major in the activation type (a weight), x [n_in] the same type, out
// float32 or the activation type; float32 accumulation. x goes to shared memory as float;
// each warp takes row j, its lanes reading 8 consecutive weights with one 16-byte load,
// then a shuffle sum. Grid ceil(n_out / 8), 256 threads (8 warps, one row each).
// Measured on an H200 (reference 768 x 24 models, bf16, CUDA graphs, two runs): decode
// batch 1 went from 0.59 to 0.52-0.55 ms per token (Mamba-1) and 0.54 to 0.49-0.51
// (Mamba-2) against cuBLAS's small-N kernels (MS_CUDA_GEMV=0 selects those). A form for
// 2-8 tokens (partial sums per token, x rows from shared memory) was slower than cuBLAS at
// 4 tokens (1.1 vs 0.6 ms per step), so only one-token products come here.
// ms_cu_gemv_fused also stages x as a norm (the layer's input RMSNorm / LayerNorm of the
// residual, or Mamba-2's gated norm of y by z), adds a bias, and runs decode_m1.cu's conv
// step on a range of its rows, so one stream's decode step takes 4 launches per Mamba-1
// layer (in_proj, x_proj, scan, out_proj) and 3 per Mamba-2 layer instead of 6. The first
// 16-byte loads of each lane's weights are issued before the PDL wait (cuda_dtype.cuh).
// Measured on an H200 (same models, one run, old and new binaries alternating): batch 1
// 0.485-0.488 -> 0.346 ms per step (Mamba-1), 0.482 -> 0.313-0.318 (Mamba-2). Fusing alone
// gave nothing (0.489 / 0.498): the kernels were latency-bound on staging x with one scalar
// load per element and on two waves of blocks; the 16-byte staging and the smaller
// register footprint (w8 below) made the difference.
// Needs n_in % 8 == 0, W and x 16-byte aligned, n_in <= 12288 (48 KB of shared memory);
// else the caller keeps cuBLAS.
#include <stdint.h>
#include <string.h>

#include "cuda_dtype.cuh"

/* 16-byte weight loads per lane issued before the PDL wait (cuda_dtype.cuh): whole rows of
 * up to 1536 16-bit weights, so under PDL a decode step's products read their weights
 * while the kernel before them runs; longer rows read the rest after. */
#define GEMV_PRE 6
#define GEMV_GMAX 64 /* groups of the gated-norm prologue */

/* 8 weights as loaded (16 bytes of 16-bit values, 32 of float), converted where used: as
 * floats, the prefetch took 48 registers and the kernel 104, two blocks per SM, so
 * in_proj's 384 blocks ran in two waves */
template <typename T> struct w8 {
    uint4 q[sizeof(T) / 2];
};
template <typename T> __device__ __forceinline__ void w8_load(const T *p, w8<T> &r)
{
#pragma unroll
    for (int i = 0; i < (int)(sizeof(T) / 2); i++) r.q[i] = reinterpret_cast<const uint4 *>(p)[i];
}
template <typename T> __device__ __forceinline__ void w8_float(const w8<T> &r, float *v)
{
    ms_ld8(reinterpret_cast<const T *>(r.q), v);
}

/* The prologues stage x into shared memory as float, 8 elements per thread with 16-byte
 * loads, so one round trip to memory brings a row of up to 2048 (a loop of scalar loads
 * strided by the block took one round trip per element the thread stages: ~4 us of a
 * 1536-wide row's 6 us). n % 8 == 0 and 16-byte aligned rows (ms_cu_gemv_ok). nw: the
 * thread's first 8 norm weights, read before the PDL wait. */
#define GEMV_ROW 2048 /* elements staged per pass: 256 threads x 8 */

template <typename T>
__device__ void stage_plain(float *xs, const T *x, int n)
{
    for (int k = threadIdx.x * 8; k < n; k += GEMV_ROW) ms_ld8(x + k, xs + k);
}

/* xs[k] = norm(resid)[k] rounded to T (add_norm.cu's arithmetic) */
template <typename T>
__device__ void stage_norm(float *xs, const ms_cu_gemv_fuse &f, int n, float *sh, const float *nw)
{
    float sum = 0.f;
    for (int k = threadIdx.x * 8; k < n; k += GEMV_ROW) {
        ms_ld8(f.resid + k, xs + k);
#pragma unroll
        for (int v = 0; v < 8; v++) sum += xs[k + v];
    }
    const float mean = f.rms ? 0.f : ms_block_sum(sum, sh) / n;
    float ss = 0.f;
    for (int k = threadIdx.x * 8; k < n; k += GEMV_ROW)
#pragma unroll
        for (int v = 0; v < 8; v++) ss += (xs[k + v] - mean) * (xs[k + v] - mean);
    const float inv = rsqrtf(ms_block_sum(ss, sh) / n + f.eps);
    for (int k = threadIdx.x * 8; k < n; k += GEMV_ROW) {
        float w[8], b[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        if (k < GEMV_ROW) {
#pragma unroll
            for (int v = 0; v < 8; v++) w[v] = nw[v];
        } else {
            ms_ld8(f.norm_w + k, w);
        }
        if (f.norm_b) ms_ld8(f.norm_b + k, b); /* LayerNorm models only */
#pragma unroll
        for (int v = 0; v < 8; v++) xs[k + v] = ms_round<T>((xs[k + v] - mean) * inv * w[v] + b[v]);
    }
}

/* xs[k] = gated RMSNorm of (x, z) rounded to T (gated_rmsnorm.cu's arithmetic); nw: the
 * thread's first 8 gnorm weights */
template <typename T>
__device__ void stage_gated_norm(float *xs, const T *x, const ms_cu_gemv_fuse &f, int n, float *sh,
                                 const float *nw)
{
    __shared__ float ginv[GEMV_GMAX];
    const T *z = (const T *)f.gz;
    for (int k = threadIdx.x * 8; k < n; k += GEMV_ROW) {
        float zv[8];
        ms_ld8(x + k, xs + k);
        ms_ld8(z + k, zv);
#pragma unroll
        for (int v = 0; v < 8; v++) xs[k + v] *= ms_silu_f(zv[v]);
    }
    __syncthreads();
    for (int g0 = 0; g0 < n; g0 += f.gs) {
        float ss = 0.f;
        for (int k = g0 + threadIdx.x; k < g0 + f.gs; k += blockDim.x) ss += xs[k] * xs[k];
        ss = ms_block_sum(ss, sh);
        if (threadIdx.x == 0) ginv[g0 / f.gs] = rsqrtf(ss / f.gs + f.eps);
    }
    __syncthreads();
    for (int k = threadIdx.x * 8; k < n; k += GEMV_ROW) {
        float w[8];
        if (k < GEMV_ROW) {
#pragma unroll
            for (int v = 0; v < 8; v++) w[v] = nw[v];
        } else {
            ms_ld8(f.gnorm_w + k, w);
        }
#pragma unroll
        for (int v = 0; v < 8; v++)
            xs[k + v] = ms_round<T>(xs[k + v] * (ginv[(k + v) / f.gs] * w[v]));
    }
}

/* PRO: how x is staged: 0 as given, 1 norm of f.resid, 2 gated norm of x by f.gz. PRE:
 * 16-byte weight loads per lane before the PDL wait (GEMV_PRE, or 3 for rows of up to 768
 * 16-bit weights: 64 registers, so four blocks fit an SM and a d_model 768 in_proj's 384-419
 * blocks run in one wave). */
template <typename T, typename O, int PRO, int PRE>
__global__ void __launch_bounds__(256, PRE <= 3 ? 4 : 2)
    gemv_kernel(O *out, const T *x, const T *__restrict__ W, int n_in, int n_out, float beta,
                ms_cu_gemv_fuse f, float *const *state)
{
    extern __shared__ float xs[]; /* [n_in] */
    __shared__ float sh[32];
    const int lane = threadIdx.x & 31, j = blockIdx.x * 8 + (threadIdx.x >> 5);
    const T *w = W + (size_t)(j < n_out ? j : n_out - 1) * n_in;
    w8<T> wv[PRE];
#pragma unroll
    for (int i = 0; i < PRE; i++)
        if (lane * 8 + i * 256 < n_in) w8_load(w + lane * 8 + i * 256, wv[i]);
    /* the norm's weights for the thread's first 8 elements, also before the wait */
    float nw[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    const float *nwp = PRO == 1 ? f.norm_w : PRO == 2 ? f.gnorm_w : NULL;
    if (nwp && threadIdx.x * 8 < n_in) ms_ld8(nwp + threadIdx.x * 8, nw);
    /* the conv step's state row and weights to L1 (state before the wait: cuda_dtype.cuh) */
    const int cc = j - f.conv_lo;
    if (lane == 0 && j < n_out && cc >= 0 && cc < f.conv_n) ms_fused_conv_prefetch(f, state[0], cc);
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    if (PRO == 1) stage_norm<T>(xs, f, n_in, sh, nw);
    else if (PRO == 2) stage_gated_norm<T>(xs, x, f, n_in, sh, nw);
    else stage_plain<T>(xs, x, n_in);
    __syncthreads();
    if (j >= n_out) return;
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < PRE; i++) {
        const int k0 = lane * 8 + i * 256;
        if (k0 < n_in) {
            float wf[8];
            w8_float(wv[i], wf);
#pragma unroll
            for (int v = 0; v < 8; v++) acc += wf[v] * xs[k0 + v];
        }
    }
    for (int k0 = lane * 8 + PRE * 256; k0 < n_in; k0 += 256) {
        float wr[8];
        ms_ld8(w + k0, wr);
#pragma unroll
        for (int v = 0; v < 8; v++) acc += wr[v] * xs[k0 + v];
    }
    acc = ms_warp_sum(acc);
    if (lane == 0) {
        if (beta != 0.f) acc += beta * ms_ld(out + j);
        if (f.bias) acc = ms_round<O>(acc) + f.bias[j];
        ms_st(out + j, acc);
        if (cc >= 0 && cc < f.conv_n) ms_fused_conv_step(f, state[0], cc, ms_round<O>(acc), (T *)f.xc);
    }
}

extern "C" int ms_cu_gemv_ok(const void *W, const void *x, int T, int n_in, size_t esz)
{
    return T == 1 && n_in % 8 == 0 && n_in <= 12288 && (uintptr_t)W % 16 == 0 &&
           (uintptr_t)x % 16 == 0 && ((size_t)n_in * esz) % 16 == 0;
}

extern "C" int ms_cu_gemv_fuse_ok(const ms_cu_gemv_fuse *f, int n_in)
{
    const uintptr_t al = 16;
    return (uintptr_t)f->resid % al == 0 && (uintptr_t)f->norm_w % al == 0 &&
           (uintptr_t)f->norm_b % al == 0 && (uintptr_t)f->gz % al == 0 &&
           (uintptr_t)f->gnorm_w % al == 0 &&
           (!f->gz || (f->gs > 0 && n_in % f->gs == 0 && n_in / f->gs <= GEMV_GMAX));
}

extern "C" cudaError_t ms_cu_gemv_fused(void *out, int out_f32, const void *x, const void *W,
                                        ms_cu_dtype dt, int n_in, int n_out, float beta,
                                        const ms_cu_gemv_fuse *fu, cudaStream_t stream)
{
    if (n_out <= 0) return cudaSuccess;
    static const ms_cu_gemv_fuse none = {0};
    const ms_cu_gemv_fuse *u = fu ? fu : &none;
    if (!ms_cu_gemv_fuse_ok(u, n_in) ||
        (u->conv_n && (!u->bt || u->conv_k < 1 || u->conv_k > MS_CONV_KMAX)))
        return cudaErrorInvalidValue;
    /* the kernel takes the fusion by value; of bt (a host struct) only the device array of
     * state pointers */
    const ms_cu_gemv_fuse f = *u;
    float *const *state = u->bt ? u->bt->state : NULL;
    const int pro = u->resid ? 1 : u->gz ? 2 : 0;
    dim3 grid((n_out + 7) / 8);
    const size_t sh = sizeof(float) * (size_t)n_in;
#define GEMV(O, P)                                                                           \
    return pre3 ? ms_launch(gemv_kernel<X, O, P, 3>, grid, 256, sh, stream, (O *)out,      \
                            (const X *)x, (const X *)W, n_in, n_out, beta, f, state)       \
                : ms_launch(gemv_kernel<X, O, P, GEMV_PRE>, grid, 256, sh, stream, (O *)out, \
                            (const X *)x, (const X *)W, n_in, n_out, beta, f, state)
    MS_DISPATCH(dt, X, {
        const int pre3 = n_in <= 3 * 256 && sizeof(X) == 2;
        if (out_f32) {
            if (pro == 1) GEMV(float, 1);
            if (pro == 2) GEMV(float, 2);
            GEMV(float, 0);
        }
        if (pro == 1) GEMV(X, 1);
        if (pro == 2) GEMV(X, 2);
        GEMV(X, 0);
    });
#undef GEMV
    return cudaSuccess;
}

extern "C" cudaError_t ms_cu_gemv(void *out, int out_f32, const void *x, const void *W,
                                  ms_cu_dtype dt, int n_in, int n_out, float beta,
                                  cudaStream_t stream)
{
    return ms_cu_gemv_fused(out, out_f32, x, W, dt, n_in, n_out, beta, NULL, stream);
}
