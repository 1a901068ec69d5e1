// selective_scan.cu - the SSM scan of Mamba-1 and Mamba-2 (its recurrent form), for a batch
// of chunks each starting from its stream's state and leaving the final one.
//
// Per channel c (E channels; Mamba-2: c = head h * P + p, h = c / P) and state n < N:
//   d    = softplus(dt_raw[t][h] + dt_bias[h])      (Mamba-2: clamped to [dt_min, dt_max])
//   h_cn = exp(d * A) * h_cn + d * B[t][n] * x[t][c]  A = A[c][n] (M1) or A[h] (M2)
//   y[t][c] = (sum_n h_cn * C[t][n] + D[h] * x[t][c]) * (z ? silu(z[t][c]) : 1)
// (Mamba-1: P = 1 so h = c; B and C of Mamba-2 head h are group h / heads_per_group's.)
//
// Time parallelism: chunks are cut into segments (ms_cu_batch). For chunks of one segment
// only the output pass runs, from and to the stream state. Chunks of several segments:
//   pass 1 (local):   each segment scans from h = 0: ws_h[slot] = its local final state,
//                     ws_dtsum[slot][c] = sum of its d (its decay is exp(A * dtsum));
//   pass 2 (combine): per chunk, sequentially over its segments:
//                     start = h; h = exp(A * dtsum) * h + local; ws_h[slot] = start;
//                     the stream state gets the final h;
//   pass 3 (output):  each segment scans again from its start state, writing y.
// Grid (passes 1, 3): (ceil(E * S / 128), n_seg), 128 threads: S lanes (S = ceil(N / 16)
//   rounded up to a power of two: 1 for N = 16, 8 for N = 128) share one channel, each
//   lane holding states n = lane + j * S (j < 16) in registers; y's sum over n is a
//   shuffle reduction within the S lanes.
// Grid (pass 2): (ceil(E * N / 256), n_chunks), 256 threads, one (c, n) per thread.
// exp(d A) is computed as exp2(d * A log2(e)) (one MUFU op; exp2f's error is <= 2 ulp).
// VEC (Mamba-1, N = 16, one lane per channel, 16-byte aligned rows): a token's 16 B and
// 16 C values are read with 16-byte loads instead of one element at a time.
// Mamba-1 with N = 16 takes scan_m1_tiled instead (same passes, same workspace): grid
// (ceil(E / 128), n_seg), 128 threads, one channel per thread, time in tiles of 2 tokens
// whose B/C rows are staged in shared memory and whose dt/x/z are prefetched into
// registers one tile ahead (double-buffered), so the per-token loop waits on no global
// load; softplus(dt + bias), d x, D x and the SiLU(z) gate are computed per tile apart from
// the h recurrence, exp2 is ex2.approx.ftz (decays below 2^-126 flush to 0), y is written
// once. Registers capped for 6 blocks per SM (see M1_TT). MS_CUDA_SCAN_TILED=0 selects the
// per-token kernel (comparison, fallback).
// Where dt, x and z rows are 16-byte aligned (the usual case), Mamba-1 with N = 16 takes
// scan_m1_staged: the same passes, its dt/x/z tiles of 8 tokens copied to shared memory by
// cp.async a tile ahead, one barrier per tile (MS_CUDA_M1_STAGED=0: scan_m1_tiled).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_dtype.cuh"


/* out[0..15] = p[0..15] with 16-byte loads; p 16-byte aligned. */
template <typename T>
__device__ __forceinline__ void ld16(const T *p, float *out)
{
    ms_ld8(p, out);
    ms_ld8(p + 8, out + 8);
}

template <typename T>
__device__ __forceinline__ float scan_dt(const ms_cu_scan_args &a, const T *dt, int t, int hd)
{
    float d = ms_ld(dt + (size_t)t * a.lddt + hd);
    if (a.dt_bias) d += a.dt_bias[hd];
    d = ms_softplus_f(d);
    if (a.mamba2) d = fminf(fmaxf(d, a.dt_min), a.dt_max);
    return d;
}

/* pass 1 (out = 0) and pass 3 (out = 1) */
template <typename T, int S, int NPER, bool VEC>
__global__ void scan_kernel(ms_cu_scan_args a, ms_cu_batch bt, int out)
{
    const int gid = blockIdx.x * blockDim.x + threadIdx.x;
    const int c = gid / S, lane = gid % S, s = blockIdx.y;
    const int slot = bt.seg_slot[s];
    if (!out && slot < 0) return;          /* local pass: multi-segment chunks only */
    if (c >= a.E) return;                  /* whole S-lane groups exit together */
    /* the S lanes of this channel: a warp may hold a group that has exited (E odd) */
    const unsigned gmask = S == 32 ? 0xffffffffu
                                   : ((1u << S) - 1u) << ((threadIdx.x & 31) & ~(S - 1));
    (void)gmask; /* unused when S == 1 */
    const int N = a.N, hd = c / a.P, g = hd / a.heads_per_group;
    const int t0 = bt.seg_start[s], n_tok = bt.seg_n[s];
    const T *x = (const T *)a.x, *dtp = (const T *)a.dt, *B = (const T *)a.B, *C = (const T *)a.C;
    const T *z = (const T *)a.z;
    float *st = slot < 0 ? bt.state[bt.seg_chunk[s]] + a.state_off + (size_t)c * N
                         : a.ws_h + ((size_t)slot * a.E + c) * N;
    const bool zero = slot < 0 && ms_fresh(bt, bt.seg_chunk[s]); /* a fresh stream's start */
    float h[NPER], A[NPER];
#pragma unroll
    for (int j = 0; j < NPER; j++) {
        const int n = lane + j * S;
        h[j] = 0.f;
        A[j] = 0.f;
        if (n < N) {
            A[j] = (a.mamba2 ? a.A[hd] : a.A[(size_t)c * N + n]) * MS_LOG2E;
            if (out && !zero) h[j] = st[n];
        }
    }
    const float Dh = out ? a.D[hd] : 0.f;
    const float Ah = a.mamba2 ? a.A[hd] * MS_LOG2E : 0.f;
    const size_t bc_off = (size_t)g * N;
    float dtsum = 0.f;
    for (int i = 0; i < n_tok; i++) {
        const int t = t0 + i;
        const float d = scan_dt(a, dtp, t, hd);
        const float xv = ms_ld(x + (size_t)t * a.ldx + c);
        const T *Bt = B + (size_t)t * a.ldbc + bc_off, *Ct = C + (size_t)t * a.ldbc + bc_off;
        dtsum += d;
        const float dA_head = a.mamba2 ? exp2f(d * Ah) : 0.f; /* Mamba-2: one decay per head */
        float acc = 0.f;
        float bv[VEC ? NPER : 1], cv[VEC ? NPER : 1];
        if (VEC) {
            ld16(Bt, bv);
            if (out) ld16(Ct, cv);
        }
#pragma unroll
        for (int j = 0; j < NPER; j++) {
            const int n = lane + j * S;
            if (n < N) {
                const float dA = a.mamba2 ? dA_head : exp2f(d * A[j]);
                const float bn = VEC ? bv[VEC ? j : 0] : ms_ld(Bt + n);
                h[j] = a.mamba2 ? dA * h[j] + d * xv * bn : dA * h[j] + d * bn * xv;
                if (out) acc += h[j] * (VEC ? cv[VEC ? j : 0] : ms_ld(Ct + n));
            }
        }
        if (out) {
#pragma unroll
            for (int o = S / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(gmask, acc, o, S);
            if (lane == 0) {
                float yv = acc + Dh * xv;
                if (z) yv *= ms_silu_f(ms_ld(z + (size_t)t * a.ldz + c));
                ms_st((T *)a.y + (size_t)t * a.ldy + c, yv);
            }
        }
    }
    if (out && slot >= 0) return;          /* the combine pass wrote the stream state */
    /* out: single-segment chunk, the stream state; local pass: the segment's local state */
#pragma unroll
    for (int j = 0; j < NPER; j++) {
        const int n = lane + j * S;
        if (n < N) st[n] = h[j];
    }
    if (!out && lane == 0) a.ws_dtsum[(size_t)slot * a.E + c] = dtsum;
}

__global__ void scan_combine_kernel(ms_cu_scan_args a, ms_cu_batch bt)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x, ci = blockIdx.y;
    const int s0 = bt.chunk_seg[ci], s1 = bt.chunk_seg[ci + 1];
    if (s1 - s0 < 2 || i >= a.E * a.N) return;
    const int c = i / a.N, n = i % a.N, hd = c / a.P;
    const float A = a.mamba2 ? a.A[hd] : a.A[(size_t)c * a.N + n];
    float *st = bt.state[ci] + a.state_off + i;
    float h = ms_fresh(bt, ci) ? 0.f : *st;
    /* segments in groups of CB: the group's loads are issued before its dependent chain
     * (one memory latency per group instead of per segment; a chunk of 65,536 tokens has
     * 256 segments) */
    constexpr int CB = 16;
    for (int sb = s0; sb < s1; sb += CB) {
        float local[CB], decay[CB];
        int slot[CB];
#pragma unroll
        for (int k = 0; k < CB; k++) {
            slot[k] = -1;
            if (sb + k < s1) {
                slot[k] = bt.seg_slot[sb + k];
                local[k] = a.ws_h[(size_t)slot[k] * a.E * a.N + i];
                decay[k] = a.ws_dtsum[(size_t)slot[k] * a.E + c];
            }
        }
#pragma unroll
        for (int k = 0; k < CB; k++)
            if (slot[k] >= 0) {
                a.ws_h[(size_t)slot[k] * a.E * a.N + i] = h;
                h = expf(A * decay[k]) * h + local[k];
            }
    }
    *st = h;
}


/* Mamba-1, N = 16, one thread per channel, 128 channels per block: the tiled form.
 * Time is walked in tiles of TT tokens. Each thread issues the loads of tile k+1 before it
 * computes tile k: its channel's dt, x (and z in the output pass) for the TT tokens, and
 * its share (TT * 32 / 128 values) of the tile's B and C rows, coalesced across the block.
 * After tile k is computed, the B/C share goes to the other of two shared buffers and one
 * barrier publishes it, so one memory latency is paid per tile instead of one per token and
 * the recurrence reads only registers and shared rows (broadcast). Same passes and
 * workspace as scan_kernel. */
/* Mamba-1, N = 16, one thread per channel (scan_m1_tiled, scan_m1_staged): the channel's
 * state row (the stream's state for single-segment chunks, else the segment's workspace
 * slot; NULL for dead lanes), its A as log2(e) A, and h (the state in the output pass, 0
 * in the local pass and for a fresh stream, ms_cu_batch.fresh) */
__device__ __forceinline__ float *m1_start(const ms_cu_scan_args &a, const ms_cu_batch &bt,
                                           int s, int slot, int c, bool live, bool out,
                                           float *h, float *A)
{
    float *st = !live ? nullptr
                : slot < 0 ? bt.state[bt.seg_chunk[s]] + a.state_off + (size_t)c * 16
                           : a.ws_h + ((size_t)slot * a.E + c) * 16;
    const bool read = live && out && !(slot < 0 && ms_fresh(bt, bt.seg_chunk[s]));
#pragma unroll
    for (int n = 0; n < 16; n++) {
        A[n] = live ? a.A[(size_t)c * 16 + n] * MS_LOG2E : 0.f;
        h[n] = read ? st[n] : 0.f;
    }
    return st;
}

/* one token: h = 2^(d A) h + dx B from the token's row of 32 floats in shared memory (B
 * 0..15, C 16..31); out: y's sum over the states into acc0 + acc1, one FMA per state (a
 * + b c + d e would add a product and a sum) */
__device__ __forceinline__ void m1_step(bool out, const float *row, float d, float dx,
                                        const float *A, float *h, float &acc0, float &acc1)
{
    const float4 *rowv = reinterpret_cast<const float4 *>(row);
#pragma unroll
    for (int v = 0; v < 4; v++) {
        const float4 b = rowv[v];
        const float bb[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int n = 4 * v + k;
            h[n] = ms_ex2_ftz(d * A[n]) * h[n] + dx * bb[k];
        }
        if (out) {
            const float4 cc = rowv[4 + v];
            acc0 = fmaf(h[4 * v], cc.x, acc0);
            acc1 = fmaf(h[4 * v + 1], cc.y, acc1);
            acc0 = fmaf(h[4 * v + 2], cc.z, acc0);
            acc1 = fmaf(h[4 * v + 3], cc.w, acc1);
        }
    }
}

/* the end of a segment: the stream's state (single-segment chunks in the output pass) or
 * the segment's local state and decay sum (local pass); the combine pass writes the rest */
__device__ __forceinline__ void m1_finish(const ms_cu_scan_args &a, float *st, const float *h,
                                          float dtsum, int slot, int c, bool live, bool out)
{
    if (!live || (out && slot >= 0)) return;
#pragma unroll
    for (int n = 0; n < 16; n++) st[n] = h[n];
    if (!out) a.ws_dtsum[(size_t)slot * a.E + c] = dtsum;
}

template <typename T, int TT>
struct m1_regs {
    /* Raw element bits, converted to float only where used: a conversion right after its
     * load made the warp wait for the load there, undoing the prefetch (ncu: 41% of the
     * output pass's stall samples sat on those conversions). */
    T d[TT], x[TT], z[TT]; /* this channel's raw dt, x, z */
    T bc[(TT * 32 + 127) / 128]; /* this thread's share of the B/C rows */
};

template <typename T, int TT>
__device__ __forceinline__ void m1_issue(const ms_cu_scan_args &a, int t0, int nt, int c,
                                         bool live, bool out, m1_regs<T, TT> &r)
{
    const T *B = (const T *)a.B, *C = (const T *)a.C, *x = (const T *)a.x;
    const T *dtp = (const T *)a.dt, *z = (const T *)a.z;
#pragma unroll
    for (int q = 0; q < (TT * 32 + 127) / 128; q++) {
        const int k = q * 128 + threadIdx.x, row = k >> 5, w = k & 31;
        if (row < nt && (out || w < 16))
            r.bc[q] = (w < 16 ? B : C)[(size_t)(t0 + row) * a.ldbc + (w & 15)];
    }
#pragma unroll
    for (int j = 0; j < TT; j++) {
        r.d[j] = r.x[j] = r.z[j] = ms_zero<T>();
        if (live && j < nt) {
            const size_t t = (size_t)(t0 + j);
            r.d[j] = dtp[t * a.lddt + c];
            r.x[j] = x[t * a.ldx + c];
            if (out && z) r.z[j] = z[t * a.ldz + c];
        }
    }
}

template <typename T, int TT>
__device__ __forceinline__ void m1_commit(const m1_regs<T, TT> &r, int nt, float (*sbc)[32])
{
#pragma unroll
    for (int q = 0; q < (TT * 32 + 127) / 128; q++) {
        const int k = q * 128 + threadIdx.x;
        if ((k >> 5) < nt) sbc[k >> 5][k & 31] = ms_ld(&r.bc[q]);
    }
}


/* The nt tokens of one tile: the recurrence on registers and shared rows only. The
 * per-token terms that do not depend on h (softplus, d x, the gate) are computed for the
 * whole tile first, and the tile's tail tokens (j >= nt) run with d = 0 (h unchanged, no
 * store), so the unrolled loop has no branch and the tokens' work interleaves. */
template <typename T, int TT>
__device__ __forceinline__ void m1_tile(const ms_cu_scan_args &a, bool out, bool gate,
                                        size_t t0, int nt, int c, const float (*sbc)[32],
                                        const m1_regs<T, TT> &r, float bias, float Dh,
                                        const float *A, float *h, float &dtsum)
{
    float d[TT], dx[TT], yo[TT];
#pragma unroll
    for (int j = 0; j < TT; j++) {
        const float xv = ms_ld(&r.x[j]);
        d[j] = j < nt ? ms_softplus_f(ms_ld(&r.d[j]) + bias) : 0.f;
        dx[j] = d[j] * xv;
        yo[j] = Dh * xv;
        dtsum += d[j];
    }
#pragma unroll
    for (int j = 0; j < TT; j++) {
        float acc0 = 0.f, acc1 = 0.f;
        m1_step(out, sbc[j], d[j], dx[j], A, h, acc0, acc1);
        if (out && j < nt) {
            float yv = acc0 + acc1 + yo[j];
            if (gate) yv *= ms_silu_f(ms_ld(&r.z[j]));
            ms_st((T *)a.y + (t0 + j) * a.ldy + c, yv);
        }
    }
}

template <typename T, int TT, int MINB, bool OUT>
__global__ void __launch_bounds__(128, MINB) scan_m1_tiled(ms_cu_scan_args a, ms_cu_batch bt)
{
    constexpr bool out = OUT; /* the pass, at compile time: no per-token branch on it */
    __shared__ __align__(16) float sbc[2][TT][32]; /* [buffer][token][B 0..15, C 16..31] */
    const int c = blockIdx.x * blockDim.x + threadIdx.x, s = blockIdx.y;
    const int slot = bt.seg_slot[s];
    if (!out && slot < 0) return;          /* uniform over the block */
    const bool live = c < a.E;             /* dead lanes still stage B/C */
    const int t0 = bt.seg_start[s], n_tok = bt.seg_n[s];
    float h[16], A[16];
    float *st = m1_start(a, bt, s, slot, c, live, out, h, A);
    const float Dh = live && out ? a.D[c] : 0.f;
    const float bias = live && a.dt_bias ? a.dt_bias[c] : 0.f;
    const bool gate = out && a.z != nullptr;
    m1_regs<T, TT> r0, r1; /* two register tiles: which is which is fixed at compile time */
    float dtsum = 0.f;
    m1_issue<T, TT>(a, t0, min(TT, n_tok), c, live, out, r0);
    m1_commit<T, TT>(r0, min(TT, n_tok), sbc[0]);
    __syncthreads();
    /* two tiles per trip; before tile k is computed, tile k+1's loads are in flight */
    for (int i0 = 0; i0 < n_tok; i0 += 2 * TT) {
        const int i1 = i0 + TT, i2 = i0 + 2 * TT;
        const int n0 = min(TT, n_tok - i0), n1 = min(TT, n_tok - i1), n2 = min(TT, n_tok - i2);
        if (i1 < n_tok) m1_issue<T, TT>(a, t0 + i1, n1, c, live, out, r1);
        if (live)
            m1_tile<T, TT>(a, out, gate, (size_t)(t0 + i0), n0, c, sbc[0], r0, bias, Dh, A, h,
                           dtsum);
        if (i1 >= n_tok) break;
        m1_commit<T, TT>(r1, n1, sbc[1]); /* buffer 1's last reader passed the last barrier */
        __syncthreads();
        if (i2 < n_tok) m1_issue<T, TT>(a, t0 + i2, n2, c, live, out, r0);
        if (live)
            m1_tile<T, TT>(a, out, gate, (size_t)(t0 + i1), n1, c, sbc[1], r1, bias, Dh, A, h,
                           dtsum);
        if (i2 >= n_tok) break;
        m1_commit<T, TT>(r0, n2, sbc[0]); /* buffer 0's readers (tile i0) passed the barrier */
        __syncthreads();
    }
    m1_finish(a, st, h, dtsum, slot, c, live, out);
}

/* Tile and occupancy (H100, cuda_bench's Mamba-1, ncu): the kernel is bound by latency
 * that only resident warps hide, so the tile is short and the registers are capped for 6
 * blocks (24 warps) per SM. Local / output pass per layer at 32,768 tokens: tile 16 (248
 * registers, 2 blocks) 1.85 / 2.16 ms, tile 8 (4 blocks) 0.80 / 1.00, tile 4 (4 blocks)
 * 0.72 / 0.87, tile 4 (6 blocks) 0.65 / 0.83, tile 2 (6 blocks, 80 registers, no spill)
 * 0.63 / 0.78; the per-token kernel 1.28 / 1.83. */
#define M1_TT 2
#define M1_MINB 6
/* Mamba-1's passes with one kernel pair (local, output): grid (E / 128, n_seg) */
typedef void (*scan_m1_fn)(ms_cu_scan_args, ms_cu_batch);
static cudaError_t scan_m1_passes(scan_m1_fn local, scan_m1_fn out, const ms_cu_scan_args *a,
                                  const ms_cu_batch *bt, cudaStream_t stream)
{
    dim3 grid((unsigned)((a->E + 127) / 128), bt->n_seg);
    cudaError_t e;
    if (bt->multi) {
        local<<<grid, 128, 0, stream>>>(*a, *bt);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
        dim3 g2((unsigned)(((size_t)a->E * a->N + 255) / 256), bt->n_chunks);
        scan_combine_kernel<<<g2, 256, 0, stream>>>(*a, *bt);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
    out<<<grid, 128, 0, stream>>>(*a, *bt);
    return cudaGetLastError();
}

template <typename T, int TT, int MINB>
static cudaError_t scan_m1_launch_tt(const ms_cu_scan_args *a, const ms_cu_batch *bt,
                                     cudaStream_t stream)
{
    return scan_m1_passes(scan_m1_tiled<T, TT, MINB, false>, scan_m1_tiled<T, TT, MINB, true>, a,
                          bt, stream);
}

/* Mamba-1, N = 16, the staged form (taken where dt, x and z rows are 16-byte aligned): one
 * thread per channel, 128 channels per block, as scan_m1_tiled, but time in tiles of TT
 * tokens whose dt, x (and z) rows are copied to shared memory by cp.async a tile ahead
 * (two stages: no registers held, no address arithmetic per token; a tile is ~8 x 150
 * instructions a warp, far longer than a load's latency), and whose B/C rows are loaded
 * one tile ahead into registers, converted to float and published by the tile's one
 * barrier. ncu had scan_m1_tiled bound by instruction issue: 201
 * instructions a token and channel, ~45 of them its per-token loads' addressing and
 * predicates and ~10 the barrier of its 2-token tiles, against 80 for the recurrence. */
template <typename T, int TT, int MINB, bool OUT>
__global__ void __launch_bounds__(128, MINB) scan_m1_staged(ms_cu_scan_args a, ms_cu_batch bt)
{
    constexpr int NA = OUT ? 3 : 2;                 /* rows staged per token: dt, x (, z) */
    constexpr int EPC = 16 / (int)sizeof(T);        /* elements per 16-byte chunk */
    constexpr int QPA = TT * 128 / EPC / 128;       /* a thread's chunks per row set per tile */
    constexpr int W = OUT ? 32 : 16;                /* B (and C) values per token */
    constexpr int NB = TT * W / 128;                /* a thread's B/C values per tile */
    static_assert(TT * 128 % (EPC * 128) == 0 && TT * W % 128 == 0, "tile shape");
    __shared__ __align__(16) T sx[2][NA][TT][128];   /* [stage][dt, x, z][token][channel] */
    __shared__ __align__(16) float sbc[2][TT][32];   /* [buffer][token][B 0..15, C 16..31] */
    const int tid = threadIdx.x, c0 = blockIdx.x * 128, c = c0 + tid, s = blockIdx.y;
    const int slot = bt.seg_slot[s];
    if (!OUT && slot < 0) return;                   /* uniform over the block */
    const bool live = c < a.E;
    const int t0 = bt.seg_start[s], n_tok = bt.seg_n[s], ntile = (n_tok + TT - 1) / TT;
    const bool gate = OUT && a.z != nullptr;

    /* copies: chunk u * 128 + tid of each row set (token r, 16-byte column cc) */
    const char *src[NA][QPA];
    int row[QPA], col[QPA];
    bool cok[QPA];
#pragma unroll
    for (int u = 0; u < QPA; u++) {
        const int k = u * 128 + tid;
        row[u] = k / (128 / EPC);
        col[u] = (k % (128 / EPC)) * EPC;
        cok[u] = c0 + col[u] < a.E;
#pragma unroll
        for (int r = 0; r < NA; r++) {
            const T *b = r == 0 ? (const T *)a.dt : r == 1 ? (const T *)a.x : (const T *)a.z;
            const int ld = r == 0 ? a.lddt : r == 1 ? a.ldx : a.ldz;
            /* where no byte is read (past E, no gate) any valid address does */
            src[r][u] = (const char *)(cok[u] && (r < 2 || gate)
                                           ? b + (size_t)(t0 + row[u]) * ld + c0 + col[u]
                                           : (const T *)a.x);
        }
    }
    /* tile kk's rows into stage stg; always a group, empty past the last tile */
    auto issue = [&](int kk, int stg) {
        if (kk < ntile) {
            const int nt = min(TT, n_tok - kk * TT);
#pragma unroll
            for (int u = 0; u < QPA; u++)
#pragma unroll
                for (int r = 0; r < NA; r++) {
                    const bool ok = cok[u] && row[u] < nt && (r < 2 || gate);
                    cp_async16_n(&sx[stg][r][row[u]][col[u]], src[r][u], ok ? 16 : 0);
                    const int ld = r == 0 ? a.lddt : r == 1 ? a.ldx : a.ldz;
                    if (ok) src[r][u] += (size_t)TT * ld * sizeof(T);
                }
        }
        cp_async_commit();
    };
    /* B/C: value q * 128 + tid of the tile's TT x W, raw, one tile ahead */
    const T *bsrc[NB];
    int brow[NB], bw[NB];
#pragma unroll
    for (int q = 0; q < NB; q++) {
        const int k = q * 128 + tid;
        brow[q] = k / W;
        bw[q] = k % W;
        bsrc[q] = (bw[q] < 16 ? (const T *)a.B : (const T *)a.C) + (size_t)(t0 + brow[q]) * a.ldbc +
                  (bw[q] & 15);
    }
    T braw[NB];
    auto bc_load = [&](int kk) {
        const int nt = min(TT, n_tok - kk * TT);
#pragma unroll
        for (int q = 0; q < NB; q++) {
            braw[q] = ms_zero<T>();  /* past the segment: 0, so d = 0 leaves h as it is */
            if (brow[q] < nt) braw[q] = bsrc[q][0];
            bsrc[q] += (size_t)TT * a.ldbc;
        }
    };
    auto bc_commit = [&](int buf) {
#pragma unroll
        for (int q = 0; q < NB; q++) sbc[buf][brow[q]][bw[q]] = ms_ld(&braw[q]);
    };

    float h[16], A[16];
    float *st = m1_start(a, bt, s, slot, c, live, OUT, h, A);
    const float Dh = live && OUT ? a.D[c] : 0.f;
    const float bias = live && a.dt_bias ? a.dt_bias[c] : 0.f;
    T *py = (T *)a.y + (size_t)t0 * a.ldy + c;
    float dtsum = 0.f;

    issue(0, 0);
    bc_load(0);
    bc_commit(0);
    /* two tiles a trip, so that each one's stage and B/C buffer are known at compile time
     * (a buffer index held in a uniform register cost a move per shared-memory load) */
    for (int k0 = 0; k0 < ntile; k0 += 2) {
#pragma unroll
        for (int b = 0; b < 2; b++) {
            const int k = k0 + b;
            if (k >= ntile) break;
            cp_async_wait_group<0>();                /* tile k's copies (this thread's) */
            __syncthreads();  /* everyone's tile k is in; tile k-1's stage and buffer free */
            issue(k + 1, b ^ 1);
            if (k + 1 < ntile) bc_load(k + 1);
            const int nt = min(TT, n_tok - k * TT);
#pragma unroll
            for (int j = 0; j < TT; j++) {
                const float xv = ms_ld(&sx[b][1][j][tid]);
                float d = ms_softplus_f(ms_ld(&sx[b][0][j][tid]) + bias);
                d = j < nt ? d : 0.f;                /* tail tokens leave h unchanged */
                dtsum += d;
                const float dx = d * xv;
                float acc0 = 0.f, acc1 = 0.f;
                m1_step(OUT, sbc[b][j], d, dx, A, h, acc0, acc1);
                if (OUT) {
                    float yv = acc0 + acc1 + Dh * xv;
                    if (gate) yv *= ms_silu_f(ms_ld(&sx[b][NA - 1][j][tid]));
                    if (live && j < nt) ms_st(py, yv);
                    py += a.ldy;
                }
            }
            if (k + 1 < ntile) bc_commit(b ^ 1);     /* its last readers (tile k-1) passed */
        }
    }
    m1_finish(a, st, h, dtsum, slot, c, live, OUT);
}

/* Tile and occupancy (H200, bench's reference Mamba-1, bf16, M tok/s one stream / reads,
 * two runs): 8 tokens x 5 blocks per SM (96 registers) 1.103-1.113 / 1.373-1.391;
 * 8 x 6 (80) 1.051-1.052 / 1.346-1.356; 8 x 4 1.046-1.072 / 1.343-1.368; 8 x 8 (64,
 * spilling) 1.032-1.066 / 1.326-1.344; 16 x 4 / 5 / 6 1.01-1.05 / 1.29-1.33. */
#define M1_STAGED_TT 8
#define M1_STAGED_MINB 5
template <typename T, int TT, int MINB>
static cudaError_t scan_m1_launch_staged(const ms_cu_scan_args *a, const ms_cu_batch *bt,
                                         cudaStream_t stream)
{
    return scan_m1_passes(scan_m1_staged<T, TT, MINB, false>, scan_m1_staged<T, TT, MINB, true>,
                          a, bt, stream);
}

/* the staged form's 16-byte copies: every row start of dt, x and z 16-byte aligned, and
 * E whole chunks */
template <typename T>
static bool scan_m1_staged_ok(const ms_cu_scan_args *a)
{
    const size_t es = sizeof(T);
    return a->E % (16 / es) == 0 && (uintptr_t)a->x % 16 == 0 && (uintptr_t)a->dt % 16 == 0 &&
           (a->ldx * es) % 16 == 0 && (a->lddt * es) % 16 == 0 &&
           (!a->z || ((uintptr_t)a->z % 16 == 0 && (a->ldz * es) % 16 == 0));
}

template <typename T>
static cudaError_t scan_m1_launch(const ms_cu_scan_args *a, const ms_cu_batch *bt,
                                  cudaStream_t stream)
{
    /* layout limits: N = 16 states per channel (A [E][16], state [E][16]), one head per
     * channel; grid.y = n_seg <= 65535 */
    if (a->N != 16 || a->P != 1 || a->mamba2 || bt->n_seg > 65535) return cudaErrorInvalidValue;
    /* MS_CUDA_M1_TILE=TTxMINB picks another tile / occupancy (tuning runs on new GPUs):
     * 1x8, 2x6 (default), 4x4 */
    static int variant = -1;
    if (variant < 0) {
        const char *e = getenv("MS_CUDA_M1_TILE");
        variant = !e ? 0 : !strcmp(e, "1x8") ? 1 : !strcmp(e, "4x4") ? 2 : 0;
    }
    /* MS_CUDA_M1_STAGED=0: the register-prefetch tiled form only (comparison) */
    static int staged = -1;
    if (staged < 0) {
        const char *e = getenv("MS_CUDA_M1_STAGED");
        staged = !(e && e[0] == '0');
    }
    if (staged && variant == 0 && scan_m1_staged_ok<T>(a))
        return scan_m1_launch_staged<T, M1_STAGED_TT, M1_STAGED_MINB>(a, bt, stream);
    if (variant == 1) return scan_m1_launch_tt<T, 1, 8>(a, bt, stream);
    if (variant == 2) return scan_m1_launch_tt<T, 4, 4>(a, bt, stream);
    return scan_m1_launch_tt<T, M1_TT, M1_MINB>(a, bt, stream);
}

/* S lanes per channel, NPER = 16 states per lane: N <= 16 S. One lane per channel for
 * Mamba-1's N = 16 (no shuffles, the per-token work done once); 8 lanes for N = 128. */
template <typename T, int S, bool VEC>
static cudaError_t scan_launch_s(const ms_cu_scan_args *a, const ms_cu_batch *bt,
                                 cudaStream_t stream)
{
    dim3 grid((unsigned)(((size_t)a->E * S + 127) / 128), bt->n_seg);
    cudaError_t e;
    if (bt->multi) {
        scan_kernel<T, S, 16, VEC><<<grid, 128, 0, stream>>>(*a, *bt, 0);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
        dim3 g2((unsigned)(((size_t)a->E * a->N + 255) / 256), bt->n_chunks);
        scan_combine_kernel<<<g2, 256, 0, stream>>>(*a, *bt);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
    scan_kernel<T, S, 16, VEC><<<grid, 128, 0, stream>>>(*a, *bt, 1);
    return cudaGetLastError();
}

template <typename T>
static cudaError_t scan_launch(const ms_cu_scan_args *a, const ms_cu_batch *bt, cudaStream_t stream)
{
    const int N = a->N;
    /* Mamba-1, N = 16: the tiled kernel (MS_CUDA_SCAN_TILED=0: the per-token one) */
    static int tiled = -1;
    if (tiled < 0) {
        const char *e = getenv("MS_CUDA_SCAN_TILED");
        tiled = !(e && e[0] == '0');
    }
    if (tiled && N == 16 && !a->mamba2 && a->P == 1) return scan_m1_launch<T>(a, bt, stream);
    /* 16-byte loads of B and C rows: 16 states in one lane, every row start aligned */
    const bool vec = N == 16 && !a->mamba2 && (a->ldbc * sizeof(T)) % 16 == 0 &&
                     (uintptr_t)a->B % 16 == 0 && (uintptr_t)a->C % 16 == 0;
    if (vec) return scan_launch_s<T, 1, true>(a, bt, stream);
    if (N <= 16) return scan_launch_s<T, 1, false>(a, bt, stream);
    if (N <= 32) return scan_launch_s<T, 2, false>(a, bt, stream);
    if (N <= 64) return scan_launch_s<T, 4, false>(a, bt, stream);
    if (N <= 128) return scan_launch_s<T, 8, false>(a, bt, stream);
    return scan_launch_s<T, 16, false>(a, bt, stream);
}

extern "C" cudaError_t ms_cu_selective_scan(const ms_cu_scan_args *a, ms_cu_dtype dt,
                                            const ms_cu_batch *bt, cudaStream_t stream)
{
    /* states in registers: at most 16 lanes x 16 states */
    if (a->N < 1 || a->N > 256 || a->P < 1 || a->heads_per_group < 1)
        return cudaErrorInvalidValue;
    if (bt->n_seg <= 0) return cudaSuccess;
    MS_DISPATCH(dt, X, return scan_launch<X>(a, bt, stream));
    return cudaSuccess;
}
