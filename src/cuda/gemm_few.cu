// gemm_few.cu - the products of calls of 2-32 tokens (decode of a few streams), and of up
// to 64 for W of at most 256 rows (x_proj, the head), 16-bit weights and activations on the
// tensor cores:
//   out[t][j] = sum_k W[j][k] x[t][k] (+ beta out[t][j]),   t < T <= 32 (64), j < n_out,
// W [n_out][n_in] row-major (a weight), x [T][ldx], out [T][ldo] float32 or the activation
// type, float32 accumulation (mma.sync m16n8k16: the tokens are mma's M, W's rows its N).
// Why not cuBLAS: its small-N kernels take 4-6 us per product of a decode step (ncu, H200)
// for 0.2-5 MB of weights, and they cannot start early under PDL. This kernel reads its
// weights before the PDL wait (cuda_dtype.cuh), while the kernel before it runs.
// Measured on an H200 (reference 768 x 24 models, bf16, graphs; ms per decode step, cuBLAS
// / this kernel alone, MS_CUDA_GEMM_FEW=0 / on, one run): Mamba-1 batch 2 0.599-0.606 /
// 0.387-0.388, 16 0.625-0.632 / 0.445, 32 0.700-0.705 / 0.618-0.619; Mamba-2 batch 2 0.482
// / 0.363-0.365, 16 0.634 / 0.548-0.549, 32 0.790 / 0.796-0.799. The conv step fused and
// the epilogue below then took Mamba-1 batch 32 to 0.53 and Mamba-2 to 0.72.
// Past 32 tokens every block reads all of x, T n_in values, for its 8 rows of W, and x's
// traffic outgrows W's: Mamba-1 batch 64 0.774 -> 0.952 in the first form (tokens cut over
// blocks instead, re-reading W: 0.93); with the final epilogue Mamba-1 batch 48 0.722 ->
// 0.672 and 64 0.772 -> 0.777, but Mamba-2 batch 48 0.958 -> 1.03 and 64 1.12 -> 1.24.
// A W of few rows has few blocks, so x's traffic stays small: 33-64 tokens come here when
// n_out <= MS_CU_FEW_WIDE_ROWS (cuBLAS took 5.7 us for Mamba-1's x_proj at 64, 16 blocks).
// H200, ms per decode step, MS_CUDA_GEMM_FEW=0 / on, two runs: Mamba-1 batch 33 0.720-0.726
// / 0.631-0.637, 48 0.783-0.784 / 0.690-0.691, 64 0.797-0.798 / 0.763-0.767 (there dt_proj
// is a cuBLAS product too: its n_in of 48 is not a multiple of 32); Mamba-2 (the head
// only) 1.13 / 1.12 at 64.
//
// Fragments straight from global memory, no shared-memory staging: lane (g, q) = (lane / 4,
// lane % 4) loads 16 bytes, elements k0 + 8q .. k0 + 8q + 7, of W row j0 + g and of x rows
// g and g + 8 of each 16-token tile, and feeds them to two mma k16 steps. That puts mma's
// k index through a permutation (its slots 2q, 2q+1, 2q+8, 2q+9 of step 0 are elements 8q
// .. 8q+3, of step 1 elements 8q+4 .. 8q+7), the same for both operands, so the sum over k
// is unchanged; each 16-byte load is whole 32-byte sectors.
//
// Block: 8 rows of W (one n-tile), 8 warps each over an eighth of n_in and all MT 16-token
// tiles (registers acc[MT][4]); grid ceil(n_out / 8). The eighths go through shared memory
// and each output is summed (in a fixed order: deterministic), stored and, for decode's
// in_proj, run through the conv step by a thread of its own. Tried and lost:
// - one warp storing every output, with the conv step fused: Mamba-1 batch 32 0.619 ->
//   0.671 ms per step (a thread per output, the state prefetched to L1: 0.614 -> 0.528);
// - blocks of 32 or 16 rows over halves or quarters of n_in (x read less often, fewer
//   blocks in flight): Mamba-1 batch 16 0.807 / 0.556 against 0.440 for eighths;
// - the layer's norm staged by each block for 2-16 streams, in place of the norm kernel:
//   each of in_proj's 384-419 blocks redid the norm of all T rows, and batch 16 went from
//   0.382 to 0.476 ms (Mamba-1), 0.517 to 0.683 (Mamba-2).
// Needs n_in % 32 == 0, W, x 16-byte aligned, ldx % 8 == 0 (ms_cu_gemm_few_ok).
#include <stdint.h>

#include "cuda_dtype.cuh"

/* 16-byte weight loads per lane before the PDL wait: a warp's whole eighth for n_in up to
 * FEW_PRE x 32 x 8 = 1536 (longer rows read the rest after) */
#define FEW_PRE 6

/* a weight's 16 bytes, through the read-only path */
__device__ __forceinline__ uint4 ld16(const void *p)
{
    return __ldg(reinterpret_cast<const uint4 *>(p));
}

/* Two k16 steps on the 32 columns at k0 (permuted as above) for every token tile:
 * w = W row j0 + g's 16 bytes at k0 + 8q; xr[m][h] = x row 16 m + g + 8 h. */
template <typename T, int MT>
__device__ __forceinline__ void few_step(float (*acc)[4], const uint4 &w, const T *const (*xr)[2],
                                         int k)
{
#pragma unroll
    for (int m = 0; m < MT; m++) {
        /* plain loads: x was written by the kernel before, which may still have been
         * running when this one started (PDL); only weights take the read-only path */
        const uint4 lo = *reinterpret_cast<const uint4 *>(xr[m][0] + k);
        const uint4 hi = *reinterpret_cast<const uint4 *>(xr[m][1] + k);
        const uint32_t a0[4] = {lo.x, hi.x, lo.y, hi.y}, a1[4] = {lo.z, hi.z, lo.w, hi.w};
        mma16816(acc[m], a0, w.x, w.y, T());
        mma16816(acc[m], a1, w.z, w.w, T());
    }
}

/* Accumulator c of token tile m in lane (g, q) holds token 16 m + g + 8 (c / 2) of W row
 * jt + 2 q + c % 2; the epilogue gives output e = (m 4 + c) 32 + lane to thread e. */
__device__ __forceinline__ void few_out(int e, int jt, int &t, int &j)
{
    const int mc = e >> 5, lane = e & 31, c = mc & 3;
    t = (mc >> 2) * 16 + (lane >> 2) + 8 * (c >> 1);
    j = jt + 2 * (lane & 3) + (c & 1);
}

/* Output e (token t, row j): the eight parts' sums in a fixed order (deterministic),
 * + beta out, stored; returns the value as stored before rounding to O */
template <int MT, typename O>
__device__ __forceinline__ float few_store(O *out, int ldo, const float *red, int e, int t, int j,
                                           float beta)
{
    float v = 0.f;
    for (int p = 0; p < 8; p++) v += red[p * MT * 128 + e];
    O *o = out + (size_t)t * ldo + j;
    if (beta != 0.f) v += beta * ms_ld(o);
    ms_st(o, v);
    return v;
}

template <typename T, typename O, int MT>
__global__ void __launch_bounds__(256) gemm_few_kernel(O *out, int ldo, const T *x, int ldx,
                                                       const T *__restrict__ W, int n_in,
                                                       int n_out, int nt_tok, float beta,
                                                       ms_cu_gemv_fuse f, float *const *state)
{
    /* every part's sums: [part][MT 4 values][lane] */
    __shared__ float red[8 * MT * 4 * 32];
    const int part = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int jt = blockIdx.x * 8, steps = n_in / 32;
    const int s0 = steps * part / 8, s1 = steps * (part + 1) / 8;
    const T *w = W + (size_t)min(jt + g, n_out - 1) * n_in + q * 8;
    uint4 wp[FEW_PRE];
#pragma unroll
    for (int i = 0; i < FEW_PRE; i++)
        if (s0 + i < s1) wp[i] = ld16(w + (s0 + i) * 32);
    /* this thread's output (epilogue) and, for a fused conv step, its channel's state and
     * weights brought to L1 (the state may be read before the wait: cuda_dtype.cuh) */
    int te, je;
    few_out(threadIdx.x, jt, te, je);
    const int ch = je - f.conv_lo, conv = threadIdx.x < MT * 128 && te < nt_tok && je < n_out &&
                                          ch >= 0 && ch < f.conv_n;
    if (conv) ms_fused_conv_prefetch(f, state[te], ch);
    ms_pdl_begin(); /* PDL: see cuda_dtype.cuh */
    const T *xr[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int h = 0; h < 2; h++) /* rows past the call's tokens read its last (unused) */
            xr[m][h] = x + (size_t)min(m * 16 + g + 8 * h, nt_tok - 1) * ldx + q * 8;
    float acc[MT][4];
#pragma unroll
    for (int m = 0; m < MT; m++) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.f;
#pragma unroll
    for (int i = 0; i < FEW_PRE; i++)
        if (s0 + i < s1) few_step<T, MT>(acc, wp[i], xr, (s0 + i) * 32);
    for (int s = s0 + FEW_PRE; s < s1; s += FEW_PRE) { /* parts longer than the prefetch */
#pragma unroll
        for (int i = 0; i < FEW_PRE; i++)
            if (s + i < s1) wp[i] = ld16(w + (s + i) * 32);
#pragma unroll
        for (int i = 0; i < FEW_PRE; i++)
            if (s + i < s1) few_step<T, MT>(acc, wp[i], xr, (s + i) * 32);
    }
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int c = 0; c < 4; c++) red[(part * MT * 4 + m * 4 + c) * 32 + lane] = acc[m][c];
    __syncthreads();
    if (MT > 2) { /* 33-64 tokens (no conv step): MT x 128 outputs, two a thread */
#pragma unroll
        for (int e = threadIdx.x; e < MT * 128; e += 256) {
            int t2, j2;
            few_out(e, jt, t2, j2);
            if (t2 < nt_tok && j2 < n_out) few_store<MT>(out, ldo, red, e, t2, j2, beta);
        }
        return;
    }
    if (threadIdx.x >= MT * 128 || te >= nt_tok || je >= n_out) return;
    const float v = few_store<MT>(out, ldo, red, threadIdx.x, te, je, beta);
    if (conv) /* decode: token te is stream te's one token */
        ms_fused_conv_step(f, state[te], ch, ms_round<O>(v), (T *)f.xc + (size_t)te * f.conv_n);
}

extern "C" int ms_cu_gemm_few_ok(const void *W, const void *x, int ldx, int T, int n_in,
                                 int n_out, ms_cu_dtype dt)
{
    const int t_max = n_out <= MS_CU_FEW_WIDE_ROWS ? MS_CU_FEW_WIDE_T : MS_CU_FEW_MAX_T;
    return (dt == MS_CU_BF16 || dt == MS_CU_F16) && T >= 2 && T <= t_max && n_in > 0 &&
           n_in % 32 == 0 && ldx % 8 == 0 && (uintptr_t)W % 16 == 0 && (uintptr_t)x % 16 == 0;
}

extern "C" cudaError_t ms_cu_gemm_few(void *out, int out_f32, int ldo, const void *x, int ldx,
                                      const void *W, ms_cu_dtype dt, int T, int n_in, int n_out,
                                      float beta, const ms_cu_gemv_fuse *conv,
                                      cudaStream_t stream)
{
    if (n_out <= 0) return cudaSuccess;
    if (!ms_cu_gemm_few_ok(W, x, ldx, T, n_in, n_out, dt)) return cudaErrorInvalidValue;
    /* of a fusion, only the conv step: one token per stream, the output in dtype */
    ms_cu_gemv_fuse f = {0};
    float *const *state = NULL;
    if (conv && conv->conv_n) {
        if (conv->resid || conv->gz || conv->bias || !conv->bt || conv->bt->n_chunks != T ||
            T > MS_CU_FEW_MAX_T ||
            out_f32 || conv->conv_k < 1 || conv->conv_k > MS_CONV_KMAX)
            return cudaErrorInvalidValue;
        f = *conv; /* the kernel takes it by value; of bt only the state pointers */
        state = conv->bt->state;
    }
    const int mt = (T + 15) / 16;
    const dim3 grid((n_out + 7) / 8);
#define FEW(X, O, M)                                                                       \
    if (mt == M)                                                                           \
        return ms_launch(gemm_few_kernel<X, O, M>, grid, 256, 0, stream, (O *)out, ldo,     \
                         (const X *)x, ldx, (const X *)W, n_in, n_out, T, beta, f, state);
#define FEW_ALL(X, O) FEW(X, O, 1) FEW(X, O, 2) FEW(X, O, 3) FEW(X, O, 4)
    if (dt == MS_CU_BF16) {
        if (out_f32) { FEW_ALL(__nv_bfloat16, float) }
        else { FEW_ALL(__nv_bfloat16, __nv_bfloat16) }
    } else {
        if (out_f32) { FEW_ALL(__half, float) }
        else { FEW_ALL(__half, __half) }
    }
#undef FEW_ALL
#undef FEW
    return cudaErrorInvalidValue;
}
