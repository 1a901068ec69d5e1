// add_norm.cu - fused residual add + RMSNorm / LayerNorm, per token t:
//   resid[t] += delta_bias                 (optional: the previous out_proj's bias)
//   rms=1: out[t] = resid[t] / sqrt(mean(resid[t]^2) + eps) * w
//   rms=0: out[t] = (resid[t] - mean) / sqrt(var + eps) * w + b
// out in the activation dtype (the next GEMM's input), out_f32 optionally in float32.
// Grid: (T), block 256 threads; row held in registers is not assumed (D any size).
#include "cuda_dtype.cuh"

template <typename T>
__global__ void add_norm_kernel(T *out, float *out_f32, float *resid, const float *delta_bias,
                                const float *w, const float *b, float eps, int rms, int D)
{
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

extern "C" cudaError_t ms_cu_add_norm(void *out, ms_cu_dtype dt, float *out_f32, float *resid,
                                      const float *delta_bias, const float *w, const float *b,
                                      float eps, int rms, int T, int D, cudaStream_t stream)
{
    if (T <= 0) return cudaSuccess;
    MS_DISPATCH(dt, E, add_norm_kernel<E><<<T, 256, 0, stream>>>(
        (E *)out, out_f32, resid, delta_bias, w, b, eps, rms, D));
    return cudaGetLastError();
}
