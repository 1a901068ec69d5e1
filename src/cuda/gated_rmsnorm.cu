// gated_rmsnorm.cu - Mamba-2's gated RMSNorm, per token t and group g of gs = E/G channels:
//   v = y[t][i] * silu(z[t][i]);  y[t][i] = v / sqrt(mean_{i in g}(v^2) + eps) * w[i].
// Grid: (T, G), block 256 threads striding over the group.
#include "cuda_dtype.cuh"

template <typename T>
__global__ void gated_rmsnorm_kernel(T *y, int ldy, const T *z, int ldz, const float *w, float eps,
                                     int gs)
{
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

extern "C" cudaError_t ms_cu_gated_rmsnorm(void *y, int ldy, const void *z, int ldz,
                                           ms_cu_dtype dt, const float *w, float eps, int T, int E,
                                           int G, cudaStream_t stream)
{
    if (T <= 0) return cudaSuccess;
    if (G < 1 || E % G) return cudaErrorInvalidValue;
    dim3 grid(T, G);
    MS_DISPATCH(dt, X, gated_rmsnorm_kernel<X><<<grid, 256, 0, stream>>>(
        (X *)y, ldy, (const X *)z, ldz, w, eps, E / G));
    return cudaGetLastError();
}
