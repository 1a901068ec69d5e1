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
// The first GEMV_PRE 16-byte loads of each lane's weights are issued before the PDL wait.
// Needs n_in % 8 == 0, W 16-byte aligned, n_in <= 12288 (48 KB of shared memory); else
// the caller keeps cuBLAS.
#include <stdint.h>
#include <string.h>

#include "cuda_dtype.cuh"

/* 16-byte weight loads per lane issued before the PDL wait (cuda_dtype.cuh): whole rows of
 * up to 1536 16-bit weights, so under PDL a decode step's products read their weights
 * while the kernel before them runs; longer rows read the rest after. */
#define GEMV_PRE 6

template <typename T, typename O>
__global__ void __launch_bounds__(256) gemv_kernel(O *out, const T *x, const T *__restrict__ W,
                                                   int n_in, int n_out, float beta)
{
    extern __shared__ float xs[]; /* [n_in] */
    const int lane = threadIdx.x & 31, j = blockIdx.x * 8 + (threadIdx.x >> 5);
    const T *w = W + (size_t)(j < n_out ? j : n_out - 1) * n_in;
    float wv[GEMV_PRE][8];
#pragma unroll
    for (int i = 0; i < GEMV_PRE; i++)
        if (lane * 8 + i * 256 < n_in) ms_ld8(w + lane * 8 + i * 256, wv[i]);
    ms_pdl_wait();
    ms_pdl_trigger();
    for (int k = threadIdx.x; k < n_in; k += blockDim.x) xs[k] = ms_ld(x + k);
    __syncthreads();
    if (j >= n_out) return;
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < GEMV_PRE; i++) {
        const int k0 = lane * 8 + i * 256;
        if (k0 < n_in)
#pragma unroll
            for (int v = 0; v < 8; v++) acc += wv[i][v] * xs[k0 + v];
    }
    for (int k0 = lane * 8 + GEMV_PRE * 256; k0 < n_in; k0 += 256) {
        float wr[8];
        ms_ld8(w + k0, wr);
#pragma unroll
        for (int v = 0; v < 8; v++) acc += wr[v] * xs[k0 + v];
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) {
        if (beta != 0.f) acc += beta * ms_ld(out + j);
        ms_st(out + j, acc);
    }
}

extern "C" int ms_cu_gemv_ok(const void *W, int T, int n_in, size_t esz)
{
    return T == 1 && n_in % 8 == 0 && n_in <= 12288 && (uintptr_t)W % 16 == 0 &&
           ((size_t)n_in * esz) % 16 == 0;
}

extern "C" cudaError_t ms_cu_gemv(void *out, int out_f32, const void *x, const void *W,
                                  ms_cu_dtype dt, int n_in, int n_out, float beta,
                                  cudaStream_t stream)
{
    if (n_out <= 0) return cudaSuccess;
    dim3 grid((n_out + 7) / 8);
    const size_t sh = sizeof(float) * (size_t)n_in;
    MS_DISPATCH(dt, X, {
        if (out_f32)
            return ms_launch(gemv_kernel<X, float>, grid, 256, sh, stream, (float *)out,
                             (const X *)x, (const X *)W, n_in, n_out, beta);
        return ms_launch(gemv_kernel<X, X>, grid, 256, sh, stream, (X *)out, (const X *)x,
                         (const X *)W, n_in, n_out, beta);
    });
    return cudaSuccess;
}
