// decode_m1.cu - the Mamba-1 mixer step for chunks of one token (decode), around cuBLAS's
// in_proj, x_proj and out_proj, reading and writing each stream's conv and SSM state in
// place. Token t of chunk i is t = chunk_start[i]; xz = in_proj output [T][ldp] (x | z).
//
// ms_cu_decode_conv (Mamba-1 and Mamba-2): conv + SiLU + conv-state shift in one kernel,
//   per channel c (state st [C][K-1], oldest first):
//     xc[t][c] = silu(b[c] + sum_{k<K-1} w[c][k] st[c][k] + w[c][K-1] x[t][c]),
//     st[c] = (st[c][1..K-2], x[t][c]).
//   Grid (ceil(C / 128), n_chunks), 128 threads, one channel per thread (ms_conv_step;
//   each thread reads and rewrites only its own channel's state, so the shift is in place).
// ms_cu_decode_m1_scan: dt_proj + softplus + the scan's state update + D skip + SiLU(z)
//   gate, per channel c and state n, from the stream's xdbl row (dt_in | B | C, x_proj's
//   output) staged in shared memory:
//     d       = softplus(sum_r Wdt[c][r] dt_in[r] + bias[c])  (the sum rounded to the
//               activation type, as the chunk path stores dt_proj's output)
//     h[c][n] = exp(d A[c][n]) h[c][n] + d B[n] x[c]          (SSM state [E][N], float32)
//     y[c]    = (sum_n h[c][n] C[n] + D[c] x[c]) * silu(z[c])
//   Grid (ceil(E * LPC / 128), n_chunks), 128 threads: LPC lanes per channel (16 for N <= 16,
//   else 32), lane l holding states n = l + j LPC, so a warp's state loads and stores are
//   contiguous (coalesced) and the dt_proj dot is split over the lanes; y's sum over n and
//   the dot are shuffle reductions within the LPC lanes. Where N % 4 == 0 and the rows are
//   16-byte aligned (the usual case), decode_m1_scan4_kernel instead: 4 states per float4,
//   N / 4 lanes per channel (4 for N = 16), loads issued before the barrier.
// With dt_raw given (many streams), decode_m1_scan_wide_kernel: one thread per channel,
//   N <= 16 states, d from dt_proj's output (see the kernel).
// Same arithmetic as conv1d_silu.cu + selective_scan.cu's scan for one token (up to the
// order of the dt_proj sum), so the result equals the chunk path within float32 rounding.
#include "decode_m1.cuh"

/* One thread per channel (ms_conv_step on its own state row, in place). */
template <typename T>
__global__ void __launch_bounds__(128) decode_conv_kernel(
    T *xc, int ldo, const T *x, int ldx, ms_cu_batch bt, size_t conv_off, const float *w,
    const float *b, int C, int K)
{
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const int c = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y;
    if (c >= C) return;
    const int t = bt.chunk_start[i];
    float *st = bt.state[i] + conv_off + (size_t)c * (K - 1);
    const float in = ms_ld(x + (size_t)t * ldx + c);
    ms_st(xc + (size_t)t * ldo + c, ms_conv_step(st, w + (size_t)c * K, b ? b[c] : 0.f, in, K));
}

template <typename T, int LPC, int NPER>
__global__ void __launch_bounds__(128) decode_m1_scan_kernel(
    T *y, const T *xc, const T *xdbl, const T *xz, int ldp, ms_cu_batch bt, size_t ssm_off,
    const T *Wdt, const float *dt_bias, const float *A, const float *Dv, int E, int N, int R)
{
    extern __shared__ float sr[]; /* [R + 2N]: dt_in | B | C */
    const int gid = blockIdx.x * blockDim.x + threadIdx.x;
    const int c = gid / LPC, lane = gid % LPC;
    float wd[DT_PRE]; /* a weight: read before the wait */
    decode_dt_pre<T, LPC>(Wdt, c < E ? c : 0, lane, R, wd);
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const int i = blockIdx.y, t = bt.chunk_start[i], NR = R + 2 * N;
    for (int k = threadIdx.x; k < NR; k += blockDim.x) sr[k] = ms_ld(xdbl + (size_t)t * NR + k);
    __syncthreads();
    if (c >= E) return; /* whole LPC-lane groups exit together */
    const unsigned gmask = lane_mask<LPC>();
    const float d = decode_dt<T, LPC>(Wdt, dt_bias ? dt_bias[c] : 0.f, sr, c, lane, R, gmask, wd);
    const float xv = ms_ld(xc + (size_t)t * E + c);
    const float *Bs = sr + R, *Cs = sr + R + N;
    float *h = bt.state[i] + ssm_off + (size_t)c * N;
    const float *Ac = A + (size_t)c * N;
    float acc = 0.f;
#pragma unroll
    for (int j = 0; j < NPER; j++) {
        const int n = lane + j * LPC;
        if (n < N) {
            const float dA = exp2f(d * (Ac[n] * 1.4426950408889634f));
            const float hn = dA * h[n] + d * Bs[n] * xv;
            h[n] = hn;
            acc += hn * Cs[n];
        }
    }
#pragma unroll
    for (int o = LPC / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(gmask, acc, o, LPC);
    if (lane == 0) {
        float yv = acc + Dv[c] * xv;
        yv *= ms_silu_f(ms_ld(xz + (size_t)t * ldp + E + c));
        ms_st(y + (size_t)t * E + c, yv);
    }
}

/* The same with 4 states per float4: LPC lanes per channel, lane l holding the float4s
 * l + v LPC (v < NV) of the channel's state and A rows (needs N % 4 == 0 and 16-byte
 * aligned rows). The state, A, x and z loads are issued before the shared-memory barrier,
 * so their latency overlaps the xdbl staging. */
template <typename T, int LPC, int NV>
__global__ void __launch_bounds__(128) decode_m1_scan4_kernel(
    T *y, const T *xc, const T *xdbl, const T *xz, int ldp, ms_cu_batch bt, size_t ssm_off,
    const T *Wdt, const float *dt_bias, const float *A, const float *Dv, int E, int N, int R)
{
    extern __shared__ float sr[]; /* [R + 2N]: dt_in | B | C */
    const int i = blockIdx.y, t = bt.chunk_start[i], NR = R + 2 * N, N4 = N / 4;
    const int gid = blockIdx.x * blockDim.x + threadIdx.x;
    const int c = gid / LPC, lane = gid % LPC;
    const bool live = c < E;
    float4 h[NV], a4[NV];
    float xv = 0.f, zv = 0.f;
    float4 *hp = reinterpret_cast<float4 *>(bt.state[i] + ssm_off + (size_t)(live ? c : 0) * N);
    const float4 *ap = reinterpret_cast<const float4 *>(A + (size_t)(live ? c : 0) * N);
#pragma unroll
    for (int v = 0; v < NV; v++) /* A and dt_proj are weights: read before the wait */
        if (live && lane + v * LPC < N4) a4[v] = ap[lane + v * LPC];
    float wd[DT_PRE];
    decode_dt_pre<T, LPC>(Wdt, live ? c : 0, lane, R, wd);
    if (live) /* the state too (cuda_dtype.cuh): one stream 0.297-0.299 -> 0.294-0.297 ms
                 * per step with gemv.cu's conv prefetch, 16 streams unchanged (0.38) */
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const int n4 = lane + v * LPC;
            if (n4 < N4) h[v] = hp[n4];
        }
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    if (live) {
        xv = ms_ld(xc + (size_t)t * E + c);
        zv = ms_ld(xz + (size_t)t * ldp + E + c);
    }
    for (int k = threadIdx.x; k < NR; k += blockDim.x) sr[k] = ms_ld(xdbl + (size_t)t * NR + k);
    __syncthreads();
    if (!live) return; /* whole LPC-lane groups exit together */
    const unsigned gmask = lane_mask<LPC>();
    const float d = decode_dt<T, LPC>(Wdt, dt_bias ? dt_bias[c] : 0.f, sr, c, lane, R, gmask, wd);
    const float *Bs = sr + R, *Cs = sr + R + N;
    float acc = 0.f;
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int n4 = lane + v * LPC;
        if (n4 < N4) {
            acc += ssm_step4(h[v], a4[v], d, d * xv, Bs + 4 * n4, Cs + 4 * n4);
            hp[n4] = h[v];
        }
    }
#pragma unroll
    for (int o = LPC / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(gmask, acc, o, LPC);
    if (lane == 0) {
        float yv = acc + Dv[c] * xv;
        yv *= ms_silu_f(zv);
        ms_st(y + (size_t)t * E + c, yv);
    }
}

/* Many streams (decode calls of 64 or more: the backend's DEC_WIDE_MIN): one thread per channel,
 * its N = 4 NV <= 16 states in registers, d from dt_proj's output computed beforehand (dt_raw
 * [T][E], cuBLAS). At batch 1024 the per-lane form above is bound by instruction issue (ncu, H200:
 * 78% of issue slots, 1.3 TB/s): per state it spends ~37 instructions on the split dt_proj dot,
 * its shuffles, the per-lane softplus and y's reduction; here ~10. The block's state rows (128
 * channels x N floats, contiguous) move between memory and shared memory as whole 16-byte words
 * per thread (rows padded to N + 4 floats, so a warp's reads of its channels' rows hit distinct
 * banks). One stream per block: 4 streams per block, sharing A, held 122 registers and ran 79 us
 * per layer at batch 1024 against 58 us (DRAM 49% against 67%). Grid (ceil(E / 128), n_chunks). */
template <typename T, int NV>
__global__ void __launch_bounds__(128) decode_m1_scan_wide_kernel(
    T *y, const T *xc, const T *xdbl, const T *xz, int ldp, ms_cu_batch bt, size_t ssm_off,
    const T *dtr, const float *dt_bias, const float *A, const float *Dv, int E, int R)
{
    constexpr int N = 4 * NV, RW = N + 4; /* row stride in shared memory, floats */
    __shared__ __align__(16) float sh[128 * RW]; /* [channel][state] */
    __shared__ __align__(16) float sbc[2 * N];   /* B | C */
    const int c0 = blockIdx.x * 128, c = c0 + threadIdx.x, i = blockIdx.y;
    const bool live = c < E;
    const int nw = (min(128, E - c0) * N) / 4; /* the block's state words */
    float4 a4[NV]; /* weights: read before the wait */
    const float4 *ap = reinterpret_cast<const float4 *>(A + (size_t)(live ? c : 0) * N);
#pragma unroll
    for (int v = 0; v < NV; v++) a4[v] = ap[v];
    const float bias = live && dt_bias ? dt_bias[c] : 0.f, Dc = live ? Dv[c] : 0.f;
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const size_t t = (size_t)bt.chunk_start[i];
    if (threadIdx.x < 2 * N) sbc[threadIdx.x] = ms_ld(xdbl + t * (R + 2 * N) + R + threadIdx.x);
    /* word k of the block's rows: channel k / NV, states 4 (k % NV) .. + 3 */
    float *st = bt.state[i] + ssm_off + (size_t)c0 * N;
    float4 w[NV];
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int k = threadIdx.x + v * 128;
        if (k < nw) w[v] = reinterpret_cast<const float4 *>(st)[k];
    }
    float dv = 0.f, xv = 0.f, zv = 0.f;
    if (live) {
        dv = ms_ld(dtr + t * E + c);
        xv = ms_ld(xc + t * E + c);
        zv = ms_ld(xz + t * ldp + E + c);
    }
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int k = threadIdx.x + v * 128;
        if (k < nw) *reinterpret_cast<float4 *>(&sh[(k / NV) * RW + 4 * (k % NV)]) = w[v];
    }
    __syncthreads();
    if (live) {
        const float d = ms_softplus_f(dv + bias), dx = d * xv;
        const float *Bs = sbc, *Cs = sbc + N;
        float4 *row = reinterpret_cast<float4 *>(&sh[threadIdx.x * RW]);
        float acc = 0.f;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            float4 q = row[v];
            acc += ssm_step4(q, a4[v], d, dx, Bs + 4 * v, Cs + 4 * v);
            row[v] = q;
        }
        ms_st(y + t * E + c, (acc + Dc * xv) * ms_silu_f(zv));
    }
    __syncthreads();
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int k = threadIdx.x + v * 128;
        if (k < nw)
            reinterpret_cast<float4 *>(st)[k] =
                *reinterpret_cast<const float4 *>(&sh[(k / NV) * RW + 4 * (k % NV)]);
    }
}

extern "C" cudaError_t ms_cu_decode_conv(void *xc, int ldo, const void *x, int ldx,
                                         ms_cu_dtype dt, const ms_cu_batch *bt, size_t conv_off,
                                         const float *w, const float *b, int C, int K,
                                         cudaStream_t stream)
{
    if (K < 1 || K > MS_CONV_KMAX) return cudaErrorInvalidValue; /* window in registers */
    if (bt->n_chunks <= 0) return cudaSuccess;
    dim3 grid((C + 127) / 128, bt->n_chunks);
    MS_DISPATCH(dt, X, return ms_launch(decode_conv_kernel<X>, grid, 128, 0, stream, (X *)xc, ldo,
                                        (const X *)x, ldx, *bt, conv_off, w, b, C, K));
    return cudaSuccess;
}

/* Launches one of the scan kernels (both take the same arguments), LPC lanes per channel:
 * blocks of 128 threads over the channels, one grid row per stream. */
template <typename X, typename Kernel>
static cudaError_t launch_scan(Kernel kernel, int lpc, const ms_cu_decode_m1_args *a,
                               const ms_cu_batch *bt, cudaStream_t stream)
{
    dim3 grid((unsigned)(((size_t)a->E * lpc + 127) / 128), bt->n_chunks);
    return ms_launch(kernel, grid, 128, sizeof(float) * (a->R + 2 * a->N), stream, (X *)a->y,
                     (const X *)a->xc, (const X *)a->xdbl, (const X *)a->xz, a->ldp, *bt,
                     a->ssm_off, (const X *)a->dt_proj_w, a->dt_bias, a->A, a->D, a->E, a->N,
                     a->R);
}

extern "C" int ms_cu_decode_m1_wide_ok(int N, size_t ssm_off)
{
    return N % 4 == 0 && N >= 4 && N <= 16 && ssm_off % 4 == 0; /* float4 state rows */
}

extern "C" cudaError_t ms_cu_decode_m1_scan(const ms_cu_decode_m1_args *a, ms_cu_dtype dt,
                                            const ms_cu_batch *bt, cudaStream_t stream)
{
    const int N = a->N;
    if (N < 1 || N > 256 || a->R < 1 || sizeof(float) * (a->R + 2 * N) > 48 * 1024)
        return cudaErrorInvalidValue;
    if (bt->n_chunks <= 0) return cudaSuccess;
    if (a->dt_raw) { /* the wide form */
        if (!ms_cu_decode_m1_wide_ok(N, a->ssm_off)) return cudaErrorInvalidValue;
        dim3 grid((unsigned)((a->E + 127) / 128), bt->n_chunks);
#define WIDE(NV)                                                                                \
    return ms_launch(decode_m1_scan_wide_kernel<X, NV>, grid, 128, 0, stream, (X *)a->y,      \
                     (const X *)a->xc, (const X *)a->xdbl, (const X *)a->xz, a->ldp, *bt,     \
                     a->ssm_off, (const X *)a->dt_raw, a->dt_bias, a->A, a->D, a->E, a->R)
        MS_DISPATCH(dt, X, {
            if (N == 4) WIDE(1);
            if (N == 8) WIDE(2);
            if (N == 12) WIDE(3);
            WIDE(4);
        });
#undef WIDE
    }
    /* float4 path: rows of N floats 16-byte aligned (state blocks and A are cudaMalloc'd) */
    const bool vec = N % 4 == 0 && a->ssm_off % 4 == 0;
#define SCAN(K, LPC, V) return launch_scan<X>(K<X, LPC, V>, LPC, a, bt, stream)
    MS_DISPATCH(dt, X, {
        if (vec) {
            if (N <= 16) SCAN(decode_m1_scan4_kernel, 4, 1);
            if (N <= 32) SCAN(decode_m1_scan4_kernel, 8, 1);
            if (N <= 64) SCAN(decode_m1_scan4_kernel, 16, 1);
            if (N <= 128) SCAN(decode_m1_scan4_kernel, 32, 1);
            SCAN(decode_m1_scan4_kernel, 32, 2);
        }
        if (N <= 16) SCAN(decode_m1_scan_kernel, 16, 1);
        if (N <= 32) SCAN(decode_m1_scan_kernel, 32, 1);
        if (N <= 64) SCAN(decode_m1_scan_kernel, 32, 2);
        if (N <= 128) SCAN(decode_m1_scan_kernel, 32, 4);
        SCAN(decode_m1_scan_kernel, 32, 8);
    });
#undef SCAN
    return cudaSuccess;
}
