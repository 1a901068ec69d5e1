// embed.cu - embedding gather: resid[t][:] = emb[tokens[t]][:] (float32).
// Grid: (T), block 256 threads striding over D; or, for rows of whole 16-byte words (D % 4
// == 0, aligned: the usual case), a warp per token and 8 tokens a block, float4 copies (a
// block per token of the bundled model's 256 floats had been 81,920 blocks of 4-byte
// stores per call of 512 reads).
#include <stdint.h>

#include "cuda_dtype.cuh"

__global__ void embed_vec_kernel(float4 *resid, const float4 *emb, const int32_t *tokens, int D4,
                                 int T)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const int t = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (t >= T) return;
    const float4 *src = emb + (size_t)tokens[t] * D4;
    float4 *dst = resid + (size_t)t * D4;
    for (int i = lane; i < D4; i += 32) dst[i] = src[i];
}

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
    if (D % 4 == 0 && (uintptr_t)resid % 16 == 0 && (uintptr_t)emb % 16 == 0)
        return ms_launch(embed_vec_kernel, (T + 7) / 8, 256, 0, stream, (float4 *)resid,
                         (const float4 *)emb, tokens, D / 4, T);
    return ms_launch(embed_kernel, T, 256, 0, stream, resid, emb, tokens, D);
}
