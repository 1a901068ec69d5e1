/* cuda_dtype.cuh - element load/store helpers shared by the kernels (internal).
 * Activations are float, __nv_bfloat16 or __half; all arithmetic is float32. */
#ifndef MS_CUDA_DTYPE_CUH
#define MS_CUDA_DTYPE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_ops.h"

__device__ __forceinline__ float ms_ld(const float *p) { return *p; }
__device__ __forceinline__ float ms_ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ float ms_ld(const __half *p) { return __half2float(*p); }
__device__ __forceinline__ void ms_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void ms_st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void ms_st(__half *p, float v) { *p = __float2half_rn(v); }

__device__ __forceinline__ float ms_silu_f(float x) { return x / (1.f + expf(-x)); }
__device__ __forceinline__ float ms_softplus_f(float x) { return x > 20.f ? x : log1pf(expf(x)); }

/* Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread
 * gets the total. sh: 32 floats of shared memory. */
__device__ __forceinline__ float ms_block_sum(float v, float *sh)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Instantiate a launch for the runtime dtype: MS_DISPATCH(dt, T, { body using T }). */
#define MS_DISPATCH(dt, T, ...)                                   \
    switch (dt) {                                                 \
    case MS_CU_F32: { typedef float T; __VA_ARGS__; } break;      \
    case MS_CU_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break; \
    case MS_CU_F16: { typedef __half T; __VA_ARGS__; } break;     \
    default: return cudaErrorInvalidValue;                        \
    }

#endif
