// conv1d_silu.cu - causal depthwise conv1d + SiLU, continuing from each chunk's conv state.
//   out[t][c] = silu(b[c] + sum_{k<K} w[c][k] * x_ext[j + k][c]),   j = t - chunk start,
// x_ext = the chunk's conv state [C][K-1] (oldest first; zeros for a fresh stream,
// ms_cu_batch.fresh, whose state is then not read) followed by the chunk's inputs x.
// Then the state keeps the chunk's last K-1 inputs (old state entries shift in when the
// chunk is shorter than K-1).
// Grid (conv): (ceil(C/128), n_seg), 128 threads: a thread runs one channel over one
//   segment's tokens with a sliding window of K inputs in registers; reads coalesced in c.
// Grid (state): (ceil(C/128), n_chunks), 128 threads; runs after the conv in stream order
//   so no conv thread still reads the old state; not at all where the call's streams all
//   end (ms_cu_batch.drop_states).
// Vector form (C % 8 == 0, K <= 4, x/out rows 16-byte aligned; the usual case): the
//   scalar form above waits on one 2-byte load per token and thread (~4x its memory floor
//   on an H100). Here a thread runs 8 adjacent channels with one 16-byte load (staged
//   through shared memory by cp.async, a slice's rows at once) and store per token (two
//   for float32), over 8 time slices of a segment: grid (ceil(C/128), n_seg),
//   128 threads = 16 channel groups x 8 time slices; slice q of a segment of n tokens takes
//   tokens [q len, (q+1) len), len = ceil(n / 8), staged CONV_TT / 2 rows at a time (8
//   in float32); each slice reads the K-1 inputs before its first token from x (or the
//   state). Same state kernel afterwards.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    const bool fresh = ms_fresh(bt, ci);
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
            win[k] = q >= 0 ? ms_ld(x + (size_t)(cs + q) * ldx + c) : fresh ? 0.f : st[q + S];
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
    const bool fresh = ms_fresh(bt, ci);
    float v[MS_CONV_KMAX];
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++) {
        if (k < S) {
            int e = n + k; /* x_ext index of the new state's slot k */
            v[k] = e >= S ? ms_ld(x + (size_t)(cs + e - S) * ldx + c) : fresh ? 0.f : st[e];
        }
    }
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++)
        if (k < S) st[k] = v[k];
}

#define CONV_TT 16

template <typename T, int K>
__global__ void __launch_bounds__(128) conv_vec_kernel(T *__restrict__ out, int ldo,
                                                       const T *__restrict__ x, int ldx,
                                                       ms_cu_batch bt, size_t state_off,
                                                       const float *__restrict__ w,
                                                       const float *__restrict__ b, int C)
{
    constexpr int S = K - 1;
    /* a slice's CONV_TT input rows, each thread's own 8 channels (16 bytes a 16-bit row),
     * copied to shared memory all at once (cp.async, no registers), then read back by the
     * same thread. ncu, H200, one layer, 512 reads of 160 tokens / one stream of 32,768:
     * with 4 rows in flight a thread (loads to registers, unrolled by 4) DRAM was 32% busy at
     * 4 blocks per SM, 323 / 95 us (Mamba-1) and 399 / 125 us (Mamba-2); staged, 179 / 63
     * and 213 / 81 */
    constexpr int H = sizeof(T) / 2;   /* 16-byte pieces per row of 8 elements */
    constexpr int R = CONV_TT / H;     /* rows staged at once: 32 KB a block */
    __shared__ uint4 rows[R][128 * H];
    const int cg = threadIdx.x & 15, slice = threadIdx.x >> 4;
    const int c0 = (blockIdx.x * 16 + cg) * 8, s = blockIdx.y;
    if (c0 >= C) return;
    const int ci = bt.seg_chunk[s], t0 = bt.seg_start[s], n = bt.seg_n[s];
    const int cs = bt.chunk_start[ci];
    const float *st = bt.state[ci] + state_off;
    const bool fresh = ms_fresh(bt, ci);
    float wc[K][8], bc[8];
#pragma unroll
    for (int v = 0; v < 8; v++) {
#pragma unroll
        for (int k = 0; k < K; k++) wc[k][v] = w[(size_t)(c0 + v) * K + k];
        bc[v] = b ? b[c0 + v] : 0.f;
    }
    /* slice q takes the segment's tokens [q len, (q + 1) len), len = ceil(n / 8): as even
     * as the 8 slices can be for any n (16-token tiles dealt round-robin had left a read's
     * 160 tokens at 2 tiles for slices 0-1 and 1 for the rest) */
    const int len = (n + 7) / 8;
    const int i0 = slice * len;
    if (i0 >= n) return;
    /* win[k] = x_ext[j - S + k] for the slice's first token j (chunk-relative) */
    float win[S > 0 ? S : 1][8];
    const int j = t0 - cs + i0;
#pragma unroll
    for (int k = 0; k < S; k++) {
        const int q = j - S + k; /* < 0: in the conv state [C][S] */
        if (q >= 0) {
            ms_ld8(x + (size_t)(cs + q) * ldx + c0, win[k]);
        } else {
#pragma unroll
            for (int v = 0; v < 8; v++)
                win[k][v] = fresh ? 0.f : st[(size_t)(c0 + v) * S + q + S];
        }
    }
    const int i1 = min(n, i0 + len);
    for (int b0 = i0; b0 < i1; b0 += R) {
        const int b1 = min(i1, b0 + R);
        for (int r = 0; r < b1 - b0; r++)
#pragma unroll
            for (int hp = 0; hp < H; hp++)
                cp_async16(&rows[r][threadIdx.x * H + hp],
                           x + (size_t)(t0 + b0 + r) * ldx + c0 + hp * (8 / H));
        cp_async_wait_all();
#pragma unroll 4
        for (int i = b0; i < b1; i++) {
            const size_t t = (size_t)(t0 + i);
            float in[8], o[8];
            ms_ld8(reinterpret_cast<const T *>(&rows[i - b0][threadIdx.x * H]), in);
#pragma unroll
            for (int v = 0; v < 8; v++) {
                float acc = bc[v];
#pragma unroll
                for (int k = 0; k < S; k++) acc += wc[k][v] * win[k][v];
                acc += wc[S][v] * in[v];
                o[v] = ms_silu_f(acc);
            }
#pragma unroll
            for (int k = 0; k + 1 < S; k++)
#pragma unroll
                for (int v = 0; v < 8; v++) win[k][v] = win[k + 1][v];
            if (S > 0)
#pragma unroll
                for (int v = 0; v < 8; v++) win[S > 0 ? S - 1 : 0][v] = in[v];
            ms_st8(out + t * ldo + c0, o);
        }
    }
}

/* The vector form applies: 8-channel groups whole, rows and bases 16-byte aligned. */
static bool conv_vec_ok(const void *out, int ldo, const void *x, int ldx, size_t esz, int C, int K)
{
    static int off = -1; /* MS_CUDA_CONV_VEC=0: the scalar form (comparison) */
    if (off < 0) {
        const char *e = getenv("MS_CUDA_CONV_VEC");
        off = e && e[0] == '0';
    }
    return !off && C % 8 == 0 && K >= 2 && K <= 4 && (uintptr_t)out % 16 == 0 &&
           (uintptr_t)x % 16 == 0 && ((size_t)ldo * esz) % 16 == 0 && ((size_t)ldx * esz) % 16 == 0;
}

template <typename T>
static cudaError_t conv_vec_launch(T *out, int ldo, const T *x, int ldx, const ms_cu_batch *bt,
                                   size_t state_off, const float *w, const float *b, int C, int K,
                                   cudaStream_t stream)
{
    dim3 g((C + 127) / 128, bt->n_seg);
    switch (K) {
    case 2: conv_vec_kernel<T, 2><<<g, 128, 0, stream>>>(out, ldo, x, ldx, *bt, state_off, w, b, C); break;
    case 3: conv_vec_kernel<T, 3><<<g, 128, 0, stream>>>(out, ldo, x, ldx, *bt, state_off, w, b, C); break;
    default: conv_vec_kernel<T, 4><<<g, 128, 0, stream>>>(out, ldo, x, ldx, *bt, state_off, w, b, C); break;
    }
    return cudaGetLastError();
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
        cudaError_t e;
        if (conv_vec_ok(out, ldo, x, ldx, sizeof(X), C, K)) {
            e = conv_vec_launch<X>((X *)out, ldo, (const X *)x, ldx, bt, state_off, w, b, C, K,
                                   stream);
        } else {
            conv_kernel<X><<<g1, 128, 0, stream>>>((X *)out, ldo, (const X *)x, ldx, *bt,
                                                    state_off, w, b, C, K);
            e = cudaGetLastError();
        }
        if (e != cudaSuccess) return e;
        if (K > 1 && !bt->drop_states)
            conv_state_kernel<X><<<g2, 128, 0, stream>>>((const X *)x, ldx, *bt, state_off, C, K);
    });
    return cudaGetLastError();
}
