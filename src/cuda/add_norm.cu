// add_norm.cu - fused residual add + RMSNorm / LayerNorm, per token t:
//   resid[t] += delta_bias                 (optional: the previous out_proj's bias)
//   rms=1: out[t] = resid[t] / sqrt(mean(resid[t]^2) + eps) * w
//   rms=0: out[t] = (resid[t] - mean) / sqrt(var + eps) * w + b
// out in the activation dtype (the next GEMM's input), out_f32 optionally in float32.
// Grid: (T), block 256 threads; row held in registers is not assumed (D any size).
// Rows of up to 512 (16-byte aligned, D % 8 == 0) take the warp-row form below.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_dtype.cuh"

template <typename T>
__global__ void add_norm_kernel(T *out, float *out_f32, float *resid, const float *delta_bias,
                                const float *w, const float *b, float eps, int rms, int D)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    __shared__ float sh[32];
    const int t = blockIdx.x;
    float *r = resid + (size_t)t * D;
    float sum = 0.f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float v = r[i];
        if (delta_bias) { v += delta_bias[i]; r[i] = v; }
        sum += v;
    }
    const float mean = rms ? 0.f : ms_block_sum(sum, sh) / D;
    float ss = 0.f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float d = r[i] - mean;
        ss += d * d;
    }
    const float inv = rsqrtf(ms_block_sum(ss, sh) / D + eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float v = (r[i] - mean) * inv * w[i];
        if (b) v += b[i];
        ms_st(out + (size_t)t * D + i, v);
        if (out_f32) out_f32[(size_t)t * D + i] = v;
    }
}

/* Vector form (D % 8 == 0, D <= 8192, rows and weights 16-byte aligned): a thread keeps 8
 * values of the row in registers through the sums and the write (16-byte accesses; the
 * scalar form reads the row three times, 4 bytes at a time: ~2x its memory floor on an
 * H200). Block: D / 8 threads rounded up to whole warps. */
template <typename T>
__global__ void add_norm_vec_kernel(T *out, float *out_f32, float *resid, const float *delta_bias,
                                    const float *w, const float *b, float eps, int rms, int D)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    __shared__ float sh[32];
    const int t = blockIdx.x, i0 = threadIdx.x * 8;
    const bool live = i0 < D;
    float *r = resid + (size_t)t * D;
    float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}, sum = 0.f;
    if (live) {
        ms_ld8(r + i0, v);
        if (delta_bias) {
            float db[8];
            ms_ld8(delta_bias + i0, db);
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] += db[j];
            ms_st8(r + i0, v);
        }
#pragma unroll
        for (int j = 0; j < 8; j++) sum += v[j];
    }
    const float mean = rms ? 0.f : ms_block_sum(sum, sh) / D;
    float ss = 0.f;
    if (live)
#pragma unroll
        for (int j = 0; j < 8; j++) ss += (v[j] - mean) * (v[j] - mean);
    const float inv = rsqrtf(ms_block_sum(ss, sh) / D + eps);
    if (!live) return;
    float wv[8], bv[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    ms_ld8(w + i0, wv);
    if (b) ms_ld8(b + i0, bv);
#pragma unroll
    for (int j = 0; j < 8; j++) v[j] = (v[j] - mean) * inv * wv[j] + bv[j];
    ms_st8(out + (size_t)t * D + i0, v);
    if (out_f32) ms_st8(out_f32 + (size_t)t * D + i0, v);
}

/* Warp-row form (the vector form's conditions and D <= MS_WARP_ROW_MAX): a warp per token, lane l
 * holding the row's 8-element pieces l, l + 32, ... (R of them), sums by shuffles alone.
 * The vector form runs a block of D / 8 threads per token with two barriers: for the
 * bundled model (D = 256) that is 81,920 blocks of one warp per call of 512 reads, at ~2x
 * its memory floor (ncu, H200; 1805 -> 549 us over a call's 18 norms in this form). Grid:
 * ceil(T / MS_ROWS_PER_BLOCK), a warp per row. */
template <typename T, int R>
__global__ void add_norm_warp_kernel(T *out, float *out_f32, float *resid, const float *delta_bias,
                                     const float *w, const float *b, float eps, int rms, int D,
                                     int T_)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const int lane = threadIdx.x & 31, t = blockIdx.x * MS_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (t >= T_) return;
    float *r = resid + (size_t)t * D;
    float v[R][8], sum = 0.f;
#pragma unroll
    for (int k = 0; k < R; k++) {
        const int i0 = (lane + 32 * k) * 8;
#pragma unroll
        for (int j = 0; j < 8; j++) v[k][j] = 0.f;
        if (i0 < D) {
            ms_ld8(r + i0, v[k]);
            if (delta_bias) {
                float db[8];
                ms_ld8(delta_bias + i0, db);
#pragma unroll
                for (int j = 0; j < 8; j++) v[k][j] += db[j];
                ms_st8(r + i0, v[k]);
            }
#pragma unroll
            for (int j = 0; j < 8; j++) sum += v[k][j];
        }
    }
    const float mean = rms ? 0.f : ms_warp_sum(sum) / D;
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < R; k++)
        if ((lane + 32 * k) * 8 < D)
#pragma unroll
            for (int j = 0; j < 8; j++) ss += (v[k][j] - mean) * (v[k][j] - mean);
    const float inv = rsqrtf(ms_warp_sum(ss) / D + eps);
#pragma unroll
    for (int k = 0; k < R; k++) {
        const int i0 = (lane + 32 * k) * 8;
        if (i0 >= D) break;
        float wv[8], bv[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        ms_ld8(w + i0, wv);
        if (b) ms_ld8(b + i0, bv);
#pragma unroll
        for (int j = 0; j < 8; j++) v[k][j] = (v[k][j] - mean) * inv * wv[j] + bv[j];
        ms_st8(out + (size_t)t * D + i0, v[k]);
        if (out_f32) ms_st8(out_f32 + (size_t)t * D + i0, v[k]);
    }
}

extern "C" cudaError_t ms_cu_add_norm(void *out, ms_cu_dtype dt, float *out_f32, float *resid,
                                      const float *delta_bias, const float *w, const float *b,
                                      float eps, int rms, int T, int D, cudaStream_t stream)
{
    if (T <= 0) return cudaSuccess;
    const uintptr_t al = 16;
    const bool vec = D % 8 == 0 && D <= 8192 && (uintptr_t)out % al == 0 &&
                     (uintptr_t)resid % al == 0 && (uintptr_t)w % al == 0 &&
                     (!out_f32 || (uintptr_t)out_f32 % al == 0) &&
                     (!delta_bias || (uintptr_t)delta_bias % al == 0) && (!b || (uintptr_t)b % al == 0);
    static int warp_env = -1; /* MS_CUDA_NORM_WARP=0: the block forms (comparison) */
    if (warp_env < 0) {
        const char *e = getenv("MS_CUDA_NORM_WARP");
        warp_env = !(e && e[0] == '0');
    }
    const int R = (D + 255) / 256, nb = (T + MS_ROWS_PER_BLOCK - 1) / MS_ROWS_PER_BLOCK;
#define ADD_NORM_WARP(RR)                                                                    \
    if (R == RR)                                                                             \
        return ms_launch(add_norm_warp_kernel<E, RR>, nb, 32 * MS_ROWS_PER_BLOCK, 0, stream,  \
                         (E *)out, out_f32, resid, delta_bias, w, b, eps, rms, D, T);
    MS_DISPATCH(dt, E, {
        if (vec && warp_env && D <= MS_WARP_ROW_MAX) {
            ADD_NORM_WARP(1) ADD_NORM_WARP(2)
        }
        if (vec)
            return ms_launch(add_norm_vec_kernel<E>, T, (D / 8 + 31) / 32 * 32, 0, stream,
                             (E *)out, out_f32, resid, delta_bias, w, b, eps, rms, D);
        return ms_launch(add_norm_kernel<E>, T, 256, 0, stream, (E *)out, out_f32, resid,
                         delta_bias, w, b, eps, rms, D);
    });
    return cudaSuccess;
}
#undef ADD_NORM_WARP
