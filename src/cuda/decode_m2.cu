// decode_m2.cu - Mamba-2's scan for chunks of one token (decode): one block per (stream,
// head), reading and writing the head's float32 state [P][N] once with 16-byte accesses.
// Token t of chunk i is t = chunk_start[i]; arguments as ms_cu_selective_scan's (Mamba-2).
//   d       = clamp(softplus(dt_raw[t][h] + dt_bias[h]), dt_min, dt_max)
//   h[p][n] = exp(d A[h]) h[p][n] + d x[t][hP + p] B[t][g N + n]
//   y[t][hP + p] = sum_n h[p][n] C[t][g N + n] + D[h] x[t][hP + p]
// Block: P * Q threads, Q = N / 16: thread (p, q) holds the float4s q, q + Q, q + 2Q, q + 3Q
// of channel p's state row, so each of a warp's four 16-byte accesses covers whole
// contiguous sectors (with 16 consecutive states per thread each access used half of
// every sector it touched); y's sum over n is a shuffle over the Q lanes of the channel. B
// and C rows go through shared memory once per block. selective_scan.cu's recurrent
// kernel, which this replaces for decode, gave each thread 16 states strided by 8 with
// 4-byte accesses and its own B/C loads: 27 ms per step at batch 1024 on an H200
// (reference Mamba-2), 1.8x mamba_ssm's.
#include <stdint.h>

#include "cuda_dtype.cuh"

template <typename T>
__global__ void decode_m2_scan_kernel(ms_cu_scan_args a, ms_cu_batch bt)
{
    extern __shared__ float sbc[]; /* B [N], C [N] */
    const int h = blockIdx.x, i = blockIdx.y, N = a.N, Q = N / 16;
    const int p = threadIdx.x / Q, q = threadIdx.x % Q, g = h / a.heads_per_group;
    /* thread (p, q) holds the float4s q + v Q (v < 4) of channel p's row. One stream (24
     * blocks) reads it before the wait (cuda_dtype.cuh), under the kernel before: H200,
     * reference Mamba-2, 0.263 -> 0.253 ms per step. Many streams read it after the wait
     * and after issuing B and C's loads, which wait on chunk_start's: read before those,
     * batch 16 took 0.537-0.544 ms, after them 0.512-0.515 (0.525 when read after the wait
     * but before them) */
    float4 *st = reinterpret_cast<float4 *>(bt.state[i] + a.state_off + ((size_t)h * a.P + p) * N);
    float4 s[4];
    const auto load_state = [&] {
#pragma unroll
        for (int v = 0; v < 4; v++) s[v] = st[q + v * Q];
    };
    const bool early = gridDim.y == 1;
    if (early) load_state();
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const size_t t = (size_t)bt.chunk_start[i];
    const T *B = (const T *)a.B + t * a.ldbc + (size_t)g * N;
    const T *C = (const T *)a.C + t * a.ldbc + (size_t)g * N;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        sbc[n] = ms_ld(B + n);
        sbc[N + n] = ms_ld(C + n);
    }
    if (!early) load_state(); /* after B and C's loads, which wait on chunk_start's */
    float d = ms_softplus_f(ms_ld((const T *)a.dt + t * a.lddt + h) + a.dt_bias[h]);
    d = fminf(fmaxf(d, a.dt_min), a.dt_max);
    const float dA = ms_exp_nonpos(d * a.A[h]);
    const float xv = ms_ld((const T *)a.x + t * a.ldx + (size_t)h * a.P + p), dx = d * xv;
    __syncthreads();
    float acc = 0.f;
#pragma unroll
    for (int v = 0; v < 4; v++) {
        float *e = reinterpret_cast<float *>(&s[v]);
        const float *Bs = sbc + 4 * (q + v * Q), *Cs = sbc + N + 4 * (q + v * Q);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            e[k] = dA * e[k] + dx * Bs[k];
            acc += e[k] * Cs[k];
        }
        st[q + v * Q] = s[v];
    }
    /* the Q lanes of a channel are adjacent; a block smaller than a warp masks the rest */
    const unsigned mask = blockDim.x >= 32 ? 0xffffffffu : (1u << blockDim.x) - 1u;
    for (int o = Q / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(mask, acc, o, Q);
    if (q == 0) ms_st((T *)a.y + t * a.ldy + (size_t)h * a.P + p, acc + a.D[h] * xv);
}

extern "C" cudaError_t ms_cu_decode_m2_scan(const ms_cu_scan_args *a, ms_cu_dtype dt,
                                            const ms_cu_batch *bt, cudaStream_t stream)
{
    /* 16 states per thread, Q a power of two <= 16 lanes; float4 state rows */
    const int N = a->N, Q = N / 16, threads = a->P * Q;
    if (!a->mamba2 || N % 16 || (Q & (Q - 1)) || Q > 16 || threads > 1024 || threads < 1 ||
        a->state_off % 4 || bt->n_chunks > 65535)
        return cudaErrorInvalidValue;
    if (bt->n_chunks <= 0) return cudaSuccess;
    dim3 grid(a->E / a->P, bt->n_chunks);
    MS_DISPATCH(dt, X, return ms_launch(decode_m2_scan_kernel<X>, grid, threads,
                                        2 * N * sizeof(float), stream, *a, *bt));
    return cudaSuccess;
}
