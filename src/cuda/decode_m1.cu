// decode_m1.cu - Mamba-1 mixer step for chunks of one token (decode): everything between
// in_proj and out_proj in two kernels, reading and writing each stream's conv and SSM state
// in place. Token t of chunk i (t = chunk_start[i]); xz = in_proj output [T][2E] (x | z).
//
// Kernel 1 (conv + x_proj), grid (ceil(NR / rows_per_block), ceil(n_chunks / SB)), 256 threads:
//   xc[c]   = silu(b[c] + sum_{k<K-1} w[c][k] st[c][k] + w[c][K-1] x[t][c])  (st: conv state
//             [E][K-1], oldest first, not yet shifted), rounded to the activation type as the
//             chunk path rounds it, kept in shared memory [SB][E] for the block's SB streams;
//   xdbl[r] = sum_c Wx[r][c] xc[c] for the block's rows r (warp per row, float32 sums);
//   blocks of column 0 also write xc [T][E] (the scan's x).
// Kernel 2 (dt_proj + scan + gate), grid (ceil(E / 128), n_chunks), 128 threads, one
//   channel c per thread, the stream's xdbl row (dt_in | B | C) in shared memory:
//   d       = softplus(sum_r Wdt[c][r] dt_in[r] + bias[c])
//   h[c][n] = exp(d A[c][n]) h[c][n] + d B[n] x[c]          (SSM state [E][N], float32)
//   y[c]    = (sum_n h[c][n] C[n] + D[c] x[c]) * silu(z[c])
//   then the conv state of c shifts by one and takes x[t][c] (kernel 1 has finished reading it).
// Same arithmetic and order as conv1d_silu.cu + the GEMMs + selective_scan.cu's scan_kernel
// (up to the order of the GEMV sums), so the result equals the chunk path within float32
// rounding.
#include "cuda_dtype.cuh"

#define DEC_SB 8          /* streams per block in kernel 1 */
#define DEC_KMAX 8

template <typename T>
__global__ void __launch_bounds__(256) m1_decode_conv_xproj(
    T *xc, T *xdbl, const T *xz, int ldp, ms_cu_batch bt, size_t conv_off, const float *cw,
    const float *cb, const T *Wx, int E, int K, int NR, int rows_per_block, int sb)
{
    extern __shared__ float sx[]; /* [sb][E] */
    const int i0 = blockIdx.y * sb, S = K - 1;
    for (int s = 0; s < sb; s++) {
        const int i = i0 + s;
        float *row = sx + (size_t)s * E;
        if (i >= bt.n_chunks) {
            for (int c = threadIdx.x; c < E; c += blockDim.x) row[c] = 0.f;
            continue;
        }
        const int t = bt.chunk_start[i];
        const float *st = bt.state[i] + conv_off;
        for (int c = threadIdx.x; c < E; c += blockDim.x) {
            const float *w = cw + (size_t)c * K;
            float acc = cb ? cb[c] : 0.f;
            for (int k = 0; k < S; k++) acc += w[k] * st[(size_t)c * S + k];
            acc += w[S] * ms_ld(xz + (size_t)t * ldp + c);
            T v;
            ms_st(&v, ms_silu_f(acc));
            row[c] = ms_ld(&v);
            if (blockIdx.x == 0) xc[(size_t)t * E + c] = v;
        }
    }
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    const int r0 = blockIdx.x * rows_per_block;
    const int r1 = min(NR, r0 + rows_per_block);
    for (int r = r0 + warp; r < r1; r += nw) {
        const T *w = Wx + (size_t)r * E;
        float acc[DEC_SB];
#pragma unroll
        for (int s = 0; s < DEC_SB; s++) acc[s] = 0.f;
        for (int c = lane; c < E; c += 32) {
            const float wv = ms_ld(w + c);
#pragma unroll
            for (int s = 0; s < DEC_SB; s++)
                if (s < sb) acc[s] += wv * sx[(size_t)s * E + c];
        }
#pragma unroll
        for (int s = 0; s < DEC_SB; s++) {
            if (s >= sb) break;
            float v = acc[s];
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            const int i = i0 + s;
            if (lane == 0 && i < bt.n_chunks)
                ms_st(xdbl + (size_t)bt.chunk_start[i] * NR + r, v);
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(128) m1_decode_scan(
    T *y, const T *xc, const T *xdbl, const T *xz, int ldp, ms_cu_batch bt, size_t conv_off,
    size_t ssm_off, const T *Wdt, const float *dt_bias, const float *A, const float *Dv, int E,
    int N, int R, int K)
{
    extern __shared__ float sr[]; /* [R + 2N]: dt_in | B | C */
    const int i = blockIdx.y, t = bt.chunk_start[i], NR = R + 2 * N;
    for (int k = threadIdx.x; k < NR; k += blockDim.x) sr[k] = ms_ld(xdbl + (size_t)t * NR + k);
    __syncthreads();
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= E) return;
    const T *wd = Wdt + (size_t)c * R;
    float d = 0.f;
    for (int r = 0; r < R; r++) d += ms_ld(wd + r) * sr[r];
    {
        T dv; /* the chunk path keeps dt_proj's output in the activation type */
        ms_st(&dv, d);
        d = ms_ld(&dv);
    }
    if (dt_bias) d += dt_bias[c];
    d = ms_softplus_f(d);
    const float xv = ms_ld(xc + (size_t)t * E + c);
    const float *Bs = sr + R, *Cs = sr + R + N;
    float *h = bt.state[i] + ssm_off + (size_t)c * N;
    const float *Ac = A + (size_t)c * N;
    float acc = 0.f;
    for (int n = 0; n < N; n++) {
        const float dA = exp2f(d * (Ac[n] * 1.4426950408889634f));
        const float hn = dA * h[n] + d * Bs[n] * xv;
        h[n] = hn;
        acc += hn * Cs[n];
    }
    float yv = acc + Dv[c] * xv;
    yv *= ms_silu_f(ms_ld(xz + (size_t)t * ldp + E + c));
    ms_st(y + (size_t)t * E + c, yv);
    /* conv state: shift by one, append this token's input */
    const int S = K - 1;
    if (S > 0) {
        float *st = bt.state[i] + conv_off + (size_t)c * S;
        for (int k = 0; k + 1 < S; k++) st[k] = st[k + 1];
        st[S - 1] = ms_ld(xz + (size_t)t * ldp + c);
    }
}

extern "C" cudaError_t ms_cu_decode_m1(const ms_cu_decode_m1_args *a, ms_cu_dtype dt,
                                       const ms_cu_batch *bt, cudaStream_t stream)
{
    const int E = a->E, N = a->N, R = a->R, K = a->K, NR = R + 2 * N, B = bt->n_chunks;
    if (K < 1 || K > DEC_KMAX || E < 1 || N < 1 || R < 1) return cudaErrorInvalidValue;
    if (B <= 0) return cudaSuccess;
    /* streams per block: the shared conv outputs [sb][E] within the default 48 KB */
    int sb = (int)(12288 / E);
    if (sb > DEC_SB) sb = DEC_SB;
    if (sb < 1) return cudaErrorInvalidValue; /* E > 12288: not supported here */
    if (sb > B) sb = B;
    const int n_sg = (B + sb - 1) / sb;
    /* few stream groups: split the rows over blocks to fill the GPU; many: one block per
     * group computes every row (the conv is then computed once per stream) */
    int rpb = NR;
    if (n_sg < 64) {
        rpb = 8;
        while (rpb < NR && (long)n_sg * ((NR + rpb - 1) / rpb) > 256) rpb *= 2;
    }
    dim3 g1((NR + rpb - 1) / rpb, n_sg), g2((E + 127) / 128, B);
    const size_t sh1 = sizeof(float) * (size_t)sb * E, sh2 = sizeof(float) * NR;
    if (sh2 > 48 * 1024) return cudaErrorInvalidValue;
    MS_DISPATCH(dt, X, {
        m1_decode_conv_xproj<X><<<g1, 256, sh1, stream>>>(
            (X *)a->xc, (X *)a->xdbl, (const X *)a->xz, a->ldp, *bt, a->conv_off, a->conv_w,
            a->conv_b, (const X *)a->x_proj_w, E, K, NR, rpb, sb);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
        m1_decode_scan<X><<<g2, 128, sh2, stream>>>(
            (X *)a->y, (const X *)a->xc, (const X *)a->xdbl, (const X *)a->xz, a->ldp, *bt,
            a->conv_off, a->ssm_off, (const X *)a->dt_proj_w, a->dt_bias, a->A, a->D, E, N, R,
            K);
    });
    return cudaGetLastError();
}
