// convert.cu - dst[i] = (dtype) src[i], float32 to the activation dtype (weight upload).
// Grid: ceil(n / 256) blocks (capped; grid-stride loop), 256 threads.
#include "cuda_dtype.cuh"

template <typename T>
__global__ void convert_kernel(T *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        ms_st(dst + i, src[i]);
}

extern "C" cudaError_t ms_cu_convert(void *dst, ms_cu_dtype dt, const float *src, size_t n,
                                     cudaStream_t stream)
{
    if (!n) return cudaSuccess;
    size_t blocks = (n + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    MS_DISPATCH(dt, X, convert_kernel<X><<<(unsigned)blocks, 256, 0, stream>>>((X *)dst, src, n));
    return cudaGetLastError();
}
