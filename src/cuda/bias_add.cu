// bias_add.cu - x[t][i] += bias[i] for i < n, rows of stride ldx (activation dtype).
// Grid: (T), block 256 threads striding over n.
#include "cuda_dtype.cuh"

template <typename T>
__global__ void bias_add_kernel(T *x, int ldx, const float *bias, int n)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    T *r = x + (size_t)blockIdx.x * ldx;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ms_st(r + i, ms_ld(r + i) + bias[i]);
}

extern "C" cudaError_t ms_cu_bias_add(void *x, ms_cu_dtype dt, int ldx, const float *bias, int T,
                                      int n, cudaStream_t stream)
{
    if (T <= 0) return cudaSuccess;
    MS_DISPATCH(dt, E,
                return ms_launch(bias_add_kernel<E>, T, 256, 0, stream, (E *)x, ldx, bias, n));
    return cudaSuccess;
}
