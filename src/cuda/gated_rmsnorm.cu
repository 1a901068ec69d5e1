// gated_rmsnorm.cu - Mamba-2's gated RMSNorm, per token t and group g of gs = E/G channels:
//   v = y[t][i] * silu(z[t][i]);  y[t][i] = v / sqrt(mean_{i in g}(v^2) + eps) * w[i].
// Grid: (T, G), block 256 threads striding over the group; groups of up to 512 channels
// (16-byte aligned, gs % 8 == 0) take the warp-row form below.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_dtype.cuh"

template <typename T>
__global__ void gated_rmsnorm_kernel(T *y, int ldy, const T *z, int ldz, const float *w, float eps,
                                     int gs)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    __shared__ float sh[32];
    const int t = blockIdx.x, g0 = blockIdx.y * gs;
    T *yr = y + (size_t)t * ldy + g0;
    const T *zr = z + (size_t)t * ldz + g0;
    float ss = 0.f;
    for (int i = threadIdx.x; i < gs; i += blockDim.x) {
        float v = ms_ld(yr + i) * ms_silu_f(ms_ld(zr + i));
        ss += v * v;
    }
    const float inv = rsqrtf(ms_block_sum(ss, sh) / gs + eps);
    for (int i = threadIdx.x; i < gs; i += blockDim.x) {
        float v = ms_ld(yr + i) * ms_silu_f(ms_ld(zr + i));
        ms_st(yr + i, v * inv * w[g0 + i]);
    }
}

/* Vector form (group size % 8 == 0, at most 8192; rows 16-byte aligned): a thread keeps 8
 * channels of y * silu(z) in registers between the sum and the write, with 16-byte loads
 * and stores; the scalar form reads y and z twice, 2 bytes at a time (2.5x its memory
 * floor on an H200). Block: gs / 8 threads rounded up to whole warps. */
template <typename T>
__global__ void gated_rmsnorm_vec_kernel(T *y, int ldy, const T *z, int ldz, const float *w,
                                         float eps, int gs)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    __shared__ float sh[32];
    const int t = blockIdx.x, g0 = blockIdx.y * gs, i0 = threadIdx.x * 8;
    T *yr = y + (size_t)t * ldy + g0;
    const T *zr = z + (size_t)t * ldz + g0;
    float v[8], ss = 0.f;
    if (i0 < gs) {
        float zv[8];
        ms_ld8(yr + i0, v);
        ms_ld8(zr + i0, zv);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            v[j] *= ms_silu_f(zv[j]);
            ss += v[j] * v[j];
        }
    }
    const float inv = rsqrtf(ms_block_sum(ss, sh) / gs + eps);
    if (i0 < gs) {
        float wv[8];
        ms_ld8(w + g0 + i0, wv);
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] *= inv * wv[j];
        ms_st8(yr + i0, v);
    }
}

/* Warp-row form (the vector form's conditions and gs <= MS_WARP_ROW_MAX): a warp per
 * (token, group),
 * lane l holding the group's 8-channel pieces l, l + 32, ... (R of them), the sum by
 * shuffles alone (the vector form: a block of gs / 8 threads per (token, group) with a
 * barrier pair; 2 warps for the bundled model's gs = 512, ~2x its memory floor; ncu, H200:
 * 1607 -> 961 us over a call of 512 reads). Grid:
 * ceil(T G / MS_ROWS_PER_BLOCK), a warp per (token, group). */
template <typename T, int R>
__global__ void gated_rmsnorm_warp_kernel(T *y, int ldy, const T *z, int ldz, const float *w,
                                          float eps, int gs, int G, int n_rows)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const int lane = threadIdx.x & 31, row = blockIdx.x * MS_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= n_rows) return;
    const int t = row / G, g0 = (row - t * G) * gs;
    T *yr = y + (size_t)t * ldy + g0;
    const T *zr = z + (size_t)t * ldz + g0;
    float v[R][8], ss = 0.f;
#pragma unroll
    for (int k = 0; k < R; k++) {
        const int i0 = (lane + 32 * k) * 8;
        if (i0 < gs) {
            float zv[8];
            ms_ld8(yr + i0, v[k]);
            ms_ld8(zr + i0, zv);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                v[k][j] *= ms_silu_f(zv[j]);
                ss += v[k][j] * v[k][j];
            }
        }
    }
    const float inv = rsqrtf(ms_warp_sum(ss) / gs + eps);
#pragma unroll
    for (int k = 0; k < R; k++) {
        const int i0 = (lane + 32 * k) * 8;
        if (i0 >= gs) break;
        float wv[8];
        ms_ld8(w + g0 + i0, wv);
#pragma unroll
        for (int j = 0; j < 8; j++) v[k][j] *= inv * wv[j];
        ms_st8(yr + i0, v[k]);
    }
}

extern "C" cudaError_t ms_cu_gated_rmsnorm(void *y, int ldy, const void *z, int ldz,
                                           ms_cu_dtype dt, const float *w, float eps, int T, int E,
                                           int G, cudaStream_t stream)
{
    if (T <= 0) return cudaSuccess;
    if (G < 1 || E % G) return cudaErrorInvalidValue;
    dim3 grid(T, G);
    const int gs = E / G;
    static int warp_env = -1; /* MS_CUDA_NORM_WARP=0: the block forms (comparison) */
    if (warp_env < 0) {
        const char *e = getenv("MS_CUDA_NORM_WARP");
        warp_env = !(e && e[0] == '0');
    }
    const int R = (gs + 255) / 256, rows = T * G;
    const int nb = (rows + MS_ROWS_PER_BLOCK - 1) / MS_ROWS_PER_BLOCK;
#define GATED_WARP(RR)                                                                       \
    if (R == RR)                                                                             \
        return ms_launch(gated_rmsnorm_warp_kernel<X, RR>, nb, 32 * MS_ROWS_PER_BLOCK, 0,     \
                         stream, (X *)y, ldy, (const X *)z, ldz, w, eps, gs, G, rows);
    MS_DISPATCH(dt, X, {
        const size_t al = 16, es = sizeof(X);
        const bool vec = gs % 8 == 0 && gs <= 8192 && (uintptr_t)y % al == 0 &&
                         (uintptr_t)z % al == 0 && (uintptr_t)w % al == 0 &&
                         ((size_t)ldy * es) % al == 0 && ((size_t)ldz * es) % al == 0 &&
                         ((size_t)gs * 4) % al == 0;
        if (vec && warp_env && gs <= MS_WARP_ROW_MAX) {
            GATED_WARP(1) GATED_WARP(2)
        }
        if (vec)
            return ms_launch(gated_rmsnorm_vec_kernel<X>, grid, (gs / 8 + 31) / 32 * 32, 0, stream,
                             (X *)y, ldy, (const X *)z, ldz, w, eps, gs);
        return ms_launch(gated_rmsnorm_kernel<X>, grid, 256, 0, stream, (X *)y, ldy, (const X *)z,
                         ldz, w, eps, gs);
    });
    return cudaSuccess;
}
#undef GATED_WARP
