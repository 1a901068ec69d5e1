// conv1d_silu.cu - causal depthwise conv1d + SiLU, continuing from each chunk's conv state.
//   out[t][c] = silu(b[c] + sum_{k<K} w[c][k] * x_ext[j + k][c]),   j = t - chunk start,
// x_ext = the chunk's conv state [C][K-1] (oldest first) followed by the chunk's inputs x.
// Then the state keeps the chunk's last K-1 inputs (old state entries shift in when the
// chunk is shorter than K-1).
// Grid (conv): (ceil(C/128), n_seg), 128 threads: a thread runs one channel over one
//   segment's tokens with a sliding window of K inputs in registers; reads coalesced in c.
// Grid (state): (ceil(C/128), n_chunks), 128 threads; runs after the conv in stream order
//   so no conv thread still reads the old state.
#include "cuda_dtype.cuh"

#define MS_CONV_KMAX 8

template <typename T>
__global__ void conv_kernel(T *out, int ldo, const T *x, int ldx, ms_cu_batch bt, size_t state_off,
                            const float *w, const float *b, int C, int K)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x, s = blockIdx.y;
    if (c >= C) return;
    const int ci = bt.seg_chunk[s], t0 = bt.seg_start[s], n = bt.seg_n[s];
    const int cs = bt.chunk_start[ci], S = K - 1;
    const float *st = bt.state[ci] + state_off + (size_t)c * S;
    float win[MS_CONV_KMAX], wc[MS_CONV_KMAX];
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX; k++) {
        wc[k] = k < K ? w[(size_t)c * K + k] : 0.f;
        win[k] = 0.f;
    }
    /* window slots 0..S-1 hold x_ext[j0 + k] for the segment's first token j0 */
    const int j0 = t0 - cs;
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++) {
        if (k < S) {
            int q = j0 + k - S; /* index into the chunk's inputs; < 0: in the state */
            win[k] = q >= 0 ? ms_ld(x + (size_t)(cs + q) * ldx + c) : st[q + S];
        }
    }
    const float bc = b ? b[c] : 0.f;
    for (int i = 0; i < n; i++) {
        const int t = t0 + i;
        const float in = ms_ld(x + (size_t)t * ldx + c);
        float acc = bc;
#pragma unroll
        for (int k = 0; k < MS_CONV_KMAX - 1; k++)
            if (k < S) acc += wc[k] * win[k];
        /* wc[S] * in, with S a runtime value: select it by unrolled compare */
#pragma unroll
        for (int k = 0; k < MS_CONV_KMAX; k++)
            if (k == S) acc += wc[k] * in;
#pragma unroll
        for (int k = 0; k < MS_CONV_KMAX - 2; k++)
            if (k + 1 < S) win[k] = win[k + 1];
#pragma unroll
        for (int k = 0; k < MS_CONV_KMAX - 1; k++)
            if (k == S - 1) win[k] = in;
        ms_st(out + (size_t)t * ldo + c, ms_silu_f(acc));
    }
}

template <typename T>
__global__ void conv_state_kernel(const T *x, int ldx, ms_cu_batch bt, size_t state_off, int C, int K)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x, ci = blockIdx.y;
    if (c >= C) return;
    const int cs = bt.chunk_start[ci], n = bt.chunk_len[ci], S = K - 1;
    float *st = bt.state[ci] + state_off + (size_t)c * S;
    float v[MS_CONV_KMAX];
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++) {
        if (k < S) {
            int e = n + k; /* x_ext index of the new state's slot k */
            v[k] = e >= S ? ms_ld(x + (size_t)(cs + e - S) * ldx + c) : st[e];
        }
    }
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++)
        if (k < S) st[k] = v[k];
}

extern "C" cudaError_t ms_cu_conv1d_silu(void *out, int ldo, const void *x, int ldx,
                                         ms_cu_dtype dt, const ms_cu_batch *bt, size_t state_off,
                                         const float *w, const float *b, int C, int K,
                                         cudaStream_t stream)
{
    if (K < 1 || K > MS_CONV_KMAX) return cudaErrorInvalidValue; /* window in registers */
    if (bt->n_seg <= 0) return cudaSuccess;
    dim3 g1((C + 127) / 128, bt->n_seg), g2((C + 127) / 128, bt->n_chunks);
    MS_DISPATCH(dt, X, {
        conv_kernel<X><<<g1, 128, 0, stream>>>((X *)out, ldo, (const X *)x, ldx, *bt, state_off,
                                                w, b, C, K);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
        if (K > 1)
            conv_state_kernel<X><<<g2, 128, 0, stream>>>((const X *)x, ldx, *bt, state_off, C, K);
    });
    return cudaGetLastError();
}
