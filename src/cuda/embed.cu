// embed.cu - embedding gather: resid[t][:] = emb[tokens[t]][:] (float32).
// Grid: (T), block 256 threads striding over D.
#include "cuda_dtype.cuh"

__global__ void embed_kernel(float *resid, const float *emb, const int32_t *tokens, int D)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const int t = blockIdx.x;
    const float *src = emb + (size_t)tokens[t] * D;
    float *dst = resid + (size_t)t * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) dst[i] = src[i];
}

extern "C" cudaError_t ms_cu_embed(float *resid, const float *emb, const int32_t *tokens, int T,
                                   int D, cudaStream_t stream)
{
    if (T <= 0) return cudaSuccess;
    return ms_launch(embed_kernel, T, 256, 0, stream, resid, emb, tokens, D);
}
