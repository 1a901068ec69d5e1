// gather_rows.cu - dst[i][:] = src[rows[i]][:] for i < n (the head's selected vocabulary
// rows for ms_forward_cols). Grid: (n), block 256 threads striding over D.
#include "cuda_dtype.cuh"

template <typename T>
__global__ void gather_rows_kernel(T *dst, const T *src, const int32_t *rows, int D)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const T *s = src + (size_t)rows[blockIdx.x] * D;
    T *d = dst + (size_t)blockIdx.x * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) d[i] = s[i];
}

extern "C" cudaError_t ms_cu_gather_rows(void *dst, const void *src, ms_cu_dtype dt,
                                         const int32_t *rows, int n, int D, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    MS_DISPATCH(dt, X, return ms_launch(gather_rows_kernel<X>, n, 256, 0, stream, (X *)dst,
                                        (const X *)src, rows, D));
    return cudaSuccess;
}
