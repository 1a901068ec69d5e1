// rms3.cu - FalconMamba's weightless RMSNorms on x_proj's output, in place per token t:
//   x[t][0:R], x[t][R:R+N], x[t][R+N:R+2N] each /= sqrt(mean(seg^2) + eps).
// Grid: (T, 3): blockIdx.y picks the segment; block 128 threads.
#include "cuda_dtype.cuh"

template <typename T>
__global__ void rms3_kernel(T *x, int ldx, int R, int N, float eps)
{
    __shared__ float sh[32];
    const int seg = blockIdx.y;
    const int off = seg == 0 ? 0 : seg == 1 ? R : R + N, n = seg == 0 ? R : N;
    T *r = x + (size_t)blockIdx.x * ldx + off;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = ms_ld(r + i);
        ss += v * v;
    }
    const float inv = rsqrtf(ms_block_sum(ss, sh) / n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) ms_st(r + i, ms_ld(r + i) * inv);
}

extern "C" cudaError_t ms_cu_rms3(void *x, ms_cu_dtype dt, int ldx, int R, int N, float eps, int T,
                                  cudaStream_t stream)
{
    if (T <= 0) return cudaSuccess;
    dim3 grid(T, 3);
    MS_DISPATCH(dt, E, rms3_kernel<E><<<grid, 128, 0, stream>>>((E *)x, ldx, R, N, eps));
    return cudaGetLastError();
}
