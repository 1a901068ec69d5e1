// ssd_out.cu - Mamba-2's SSD output in one kernel: ssd_scan.cu's stages 3, 4 and 9 (the
// mask, the intra-segment product and the combine) for 16-bit activations, the product on
// the tensor cores. For segment q (tokens t0 .. t0+n-1), head h of group g, rows t < n of
// the head's P channels:
//   y[t0+t][hP+p] = sum_{s<=t} m[t][s] x[s][hP+p] + exp(cum_t) ys[q][t][hP+p] + D[h] x[t][hP+p]
//   m[t][s]       = cb[t][s] exp(cum_t - cum_s) d_s, s <= t, rounded to the activation
//                   type as stage 3 stores it
// with cb (stage 2's product, float32 [L][L] per (q, g)), dt / cum (stage 1) and ys (stage
// 8's product) as ssd_scan.cu describes them. The backend runs stages 1, 5-7, the products
// 8 and 2 (cb last: it may live in S's bytes), then this kernel.
// Why: the staged form wrote m, [Q][H][L][L] 16-bit values (12x cb's bytes for the
// reference model's 24 heads in one group), read it back in product 4 (cuBLAS's batched
// 128 x 128 x 64 products, which do not skip the zeros above the diagonal), and took yi
// through memory to the combine. H200, reference Mamba-2, one layer at 32,768 tokens (ncu):
// mask 99 us, product 4 98 us, combine 97 us; this kernel 203 us (docs/benchmarks.md,
// round 9: latency-bound, at ~1/3 of its memory floor).
// Block (h, q): ceil(L / 32) warps; warp w computes the 16-row tiles w and L/16 - 1 - w
// (their k steps at or below the diagonal add up to the same count for every warp) over
// all P columns: mma.sync m16n8k16, P / 8 n-tiles, float32 accumulators. A = m, built in
// registers from cb (float2 loads from L2 two k steps ahead, or, in the staged form, from
// the warp's rows that cp.async brought to shared memory at the block's start: round 11,
// 204 -> 163 us per layer at 32,768 tokens) and, below the diagonal tiles, two
// factors in (0, 1] (a row's decay to the step's last column, one exp per row and step;
// that column's decay to s times d_s, once per block in shared memory), on the diagonal
// tile one exp per element as stage 3 computes it; B = x's L x P tile staged in shared
// memory (rows padded by 16 bytes, so the transposing ldmatrix of 8 rows hits 8 distinct
// bank groups).
// Tried first: the state output (C hin^T) in this kernel too, on mma.sync with fragments
// from global memory: 328 us per layer, against cuBLAS's 54 us for that product (wgmma,
// large tiles) plus 99 + 98 + 97 for the stages this kernel replaces.
// x rows past the segment's end, up to the next multiple of 16, are read (the caller keeps
// them finite: cuda_ops.h) and meet zeros of m; rows t >= n are not stored, and 16-row
// tiles that start at or past n are skipped whole (a call's L fits its longest chunk:
// reads of 100-151 bases take L = 160, and a read of 100 left 3 of its 10 tiles, 49% of
// the k steps, for nothing).
// Needs a 16-bit type, P in {16, 32, 64}, L % 16 == 0 and L <= 256, E and ldx multiples of
// 8 (16-byte rows of x); ms_cu_ssd_out_ok says so from the shapes.
#include <stdint.h>
#include <stdlib.h>

#include "cuda_dtype.cuh"

#define SSD_OUT_LMAX 256

/* four 8 x 8 tiles of 16-bit values from shared memory, transposed: lane i gives row i % 8
 * of tile i / 8; r[j] is tile j in mma's B layout (k = the tile's rows) */
__device__ __forceinline__ void ldsm_x4_trans(uint32_t *r, const void *p)
{
    const unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s)
                 : "memory");
}

/* m[t][s], m[t][s+1] (s even) packed as mma's A operand from cb's pair c: stage 3's
 * arithmetic; zero above the diagonal and for rows past the segment */
template <typename T>
__device__ __forceinline__ uint32_t mask_pair(float2 c, int s, int t, int n, const float *cum,
                                              const float *dts)
{
    float v0 = 0.f, v1 = 0.f;
    if (t < n && s <= t) {
        const float ct = cum[t];
        v0 = ms_ssd_mask(c.x, ct, cum, dts, s);
        if (s + 1 <= t) v1 = ms_ssd_mask(c.y, ct, cum, dts, s + 1);
    }
    return ms_pack2<T>(v0, v1);
}

/* the four cb pairs of a lane's A fragment at k step s0: rows ra / rb (ma, mb), columns
 * s0 + 2 tq and s0 + 8 + 2 tq */
__device__ __forceinline__ void cb_frag(float2 *c, const float *ma, const float *mb, int s)
{
    c[0] = *reinterpret_cast<const float2 *>(ma + s);
    c[1] = *reinterpret_cast<const float2 *>(mb + s);
    c[2] = *reinterpret_cast<const float2 *>(ma + s + 8);
    c[3] = *reinterpret_cast<const float2 *>(mb + s + 8);
}

/* Floats of a warp's cb rows in the staged form: its two 16-row tiles w and L/16 - 1 - w,
 * columns up to each one's diagonal, rows padded by 8 floats (a lane's float2 of 8 rows x
 * 4 column pairs then covers the 32 banks twice: no conflicts) */
__host__ __device__ constexpr int cb_stage_floats(int nmt) { return 256 * (nmt + 2); }

/* STAGE: cb's rows come to shared memory by cp.async at the block's start, all at once
 * (and x's tile too), instead of float2 loads two k steps ahead from L2: ncu had the
 * kernel at 75% of its warps' stalls on those loads */
template <typename T, int P, bool STAGE>
__global__ void __launch_bounds__(SSD_OUT_LMAX) /* ceil(L / 32) warps, L <= 256 */
    ssd_out_kernel(ms_cu_ssd_args a, ms_cu_batch bt)
{
    constexpr int NT = P / 8, XLD = P + 8; /* n-tiles; x tile row stride (elements) */
    extern __shared__ float4 smem4[];
    const int L = a.L, h = blockIdx.x, q = blockIdx.y;
    float *cum = reinterpret_cast<float *>(smem4), *dts = cum + L, *colw = dts + L; /* [L] each */
    T *xs = reinterpret_cast<T *>(colw + L);                                     /* [L][XLD] */
    const int t0 = bt.seg_start[q], n = bt.seg_n[q], g = h / a.heads_per_group;
    const size_t qh = (size_t)q * a.H + h;
    /* below the diagonal tiles, exp(cum_t - cum_s) = exp(cum_t - cum_e) exp(cum_e - cum_s)
     * with e the last column of s's 16-column step (t > e >= s: both factors in (0, 1]):
     * colw[s] = exp(cum_e - cum_s) d_s once per block, a row factor per step and row */
    for (int i = threadIdx.x; i < L; i += blockDim.x) {
        const float c = a.cum[qh * L + i], d = a.dt[qh * L + i];
        cum[i] = c;
        dts[i] = d;
        colw[i] = ms_exp_nonpos(a.cum[qh * L + (i | 15)] - c) * d;
    }
    /* the 16-row tiles that hold rows t < n: warp w takes tiles w and nlive - 1 - w, so
     * the k steps stay balanced across warps when a chunk is shorter than L (a block is
     * as slow as its slowest warp). ncu, H200, a layer's call of 512 reads of 100-151
     * bases (bundled model, L 160): 180 us with every tile, 159 skipping the tiles past
     * n, 152-153 with them rebalanced. x's rows past the live tiles are never read. */
    const int nmt = L / 16, nlive = min(nmt, (n + 15) >> 4);
    const T *x = (const T *)a.x + (size_t)t0 * a.ldx + (size_t)h * P;
    for (int i = threadIdx.x; i < nlive * 16 * (P / 8); i += blockDim.x) {
        const int r = i / (P / 8), c8 = (i % (P / 8)) * 8;
        if (STAGE)
            cp_async16(xs + r * XLD + c8, x + (size_t)r * a.ldx + c8);
        else
            *reinterpret_cast<uint4 *>(xs + r * XLD + c8) =
                *reinterpret_cast<const uint4 *>(x + (size_t)r * a.ldx + c8);
    }

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tq = lane & 3;
    const bool idle = warp >= (nlive + 1) / 2; /* no tile of its own */
    const float *cbq = a.cb + ((size_t)q * a.G + g) * L * L + 2 * tq;
    /* staged: pass 0's tile rows at cbw0 (row stride cbld0), pass 1's at cbw1 (cbld1);
     * three cp.async groups in all (x's tile, pass 0's rows, pass 1's) */
    float *const cbw0 = reinterpret_cast<float *>(xs + L * XLD) + warp * cb_stage_floats(nmt);
    const int cbld0 = (warp + 1) * 16 + 8, cbld1 = (nlive - warp) * 16 + 8;
    float *const cbw1 = cbw0 + 16 * cbld0;
    if (STAGE) {
        cp_async_commit();
#pragma unroll
        for (int p = 0; p < 2; p++) {
            const int mt = p ? nlive - 1 - warp : warp, w4 = (mt + 1) * 4; /* 16-byte pieces a row */
            const float *src = cbq - 2 * tq + (size_t)mt * 16 * L;
            float *dst = p ? cbw1 : cbw0;
            const int ld = p ? cbld1 : cbld0;
            /* an odd tile count: the middle tile is pass 0's only (its group stays, empty) */
            const int rows = idle || (p && mt <= warp) ? 0 : 16;
            for (int i = lane; i < rows * w4; i += 32) {
                const int r = i / w4, c4 = (i - r * w4) * 4;
                cp_async16(dst + r * ld + c4, src + (size_t)r * L + c4);
            }
            cp_async_commit();
        }
    }
    /* ys NULL: every start state is zero (fresh streams), so is the state output */
    const T *ys = a.ys ? (const T *)a.ys + (size_t)q * L * a.E + (size_t)h * P : nullptr;
    const float Dh = a.D[h];
    T *y = (T *)a.y + (size_t)t0 * a.ldy + (size_t)h * P;
    /* ldmatrix: lane's row within the 16-row k step, its column offset within a pair of n-tiles */
    const int lrow = ((lane >> 3) & 1) * 8 + (lane & 7), lcol = (lane >> 4) * 8;
    for (int pass = 0; pass < 2; pass++) {
        const int mt = pass ? nlive - 1 - warp : warp;
        if (pass && mt <= warp) break; /* an odd tile count: the middle tile once */
        const int ra = mt * 16 + gid, rb = ra + 8;
        float acc[NT][4];
#pragma unroll
        for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
        /* m x over the k steps at or below the diagonal */
        const float *ma = cbq + (size_t)ra * L, *mb = cbq + (size_t)rb * L;
        /* ys's pairs for the epilogue, loaded before the k steps (ncu, one layer at 32,768
         * tokens: 228 -> 211 us) */
        uint32_t ysa[NT], ysb[NT];
#pragma unroll
        for (int j = 0; j < NT; j++) {
            const int col = j * 8 + 2 * tq;
            ysa[j] = ys && !idle && ra < n ? *reinterpret_cast<const uint32_t *>(ys + (size_t)ra * a.E + col) : 0u;
            ysb[j] = ys && !idle && rb < n ? *reinterpret_cast<const uint32_t *>(ys + (size_t)rb * a.E + col) : 0u;
        }
        /* cb's pairs two steps ahead: c for this step, c2 for the next (staged: c read from
         * shared memory at each step, from the tile's rows sa / sb) */
        float2 c[4], c2[4];
        const int sld = pass ? cbld1 : cbld0;
        const float *sa = (pass ? cbw1 : cbw0) + gid * sld + 2 * tq, *sb = sa + 8 * sld;
        if (!STAGE && !idle) {
            cb_frag(c, ma, mb, 0);
            if (mt > 0) cb_frag(c2, ma, mb, 16);
        }
        /* the first tile's loads of ys and cb went out before the barrier, beside x's
         * (ncu: 207 -> 203 us) */
        if (STAGE) {
            if (!pass) cp_async_wait_group<1>(); /* x's tile and pass 0's rows */
            else cp_async_wait_group<0>();
        }
        if (!pass) __syncthreads(); /* cum, dts, colw and x's tile staged */
        else if (STAGE) __syncwarp(); /* the warp's pass 1 rows */
        if (idle) break; /* no tile: it only helped stage x's tile (one barrier for all) */
        const float cta = cum[ra], ctb = cum[rb];
        for (int s0 = 0; s0 <= mt * 16; s0 += 16) {
            const int s = s0 + 2 * tq;
            uint32_t af[4];
            if (STAGE) cb_frag(c, sa, sb, s0);
            if (s0 < mt * 16) { /* below the diagonal: every s < t (rows t >= n are not stored) */
                const float ce = cum[s0 + 15];
                const float fa = ms_exp_nonpos(cta - ce), fb = ms_exp_nonpos(ctb - ce);
                const float2 w0 = *reinterpret_cast<const float2 *>(colw + s);
                const float2 w8 = *reinterpret_cast<const float2 *>(colw + s + 8);
                af[0] = ms_pack2<T>(c[0].x * fa * w0.x, c[0].y * fa * w0.y);
                af[1] = ms_pack2<T>(c[1].x * fb * w0.x, c[1].y * fb * w0.y);
                af[2] = ms_pack2<T>(c[2].x * fa * w8.x, c[2].y * fa * w8.y);
                af[3] = ms_pack2<T>(c[3].x * fb * w8.x, c[3].y * fb * w8.y);
                if (!STAGE) {
#pragma unroll
                    for (int i = 0; i < 4; i++) c[i] = c2[i];
                    if (s0 + 16 < mt * 16) cb_frag(c2, ma, mb, s0 + 32);
                }
            } else { /* the diagonal step: one exp per element, zeros above */
                af[0] = mask_pair<T>(c[0], s, ra, n, cum, dts);
                af[1] = mask_pair<T>(c[1], s, rb, n, cum, dts);
                af[2] = mask_pair<T>(c[2], s + 8, ra, n, cum, dts);
                af[3] = mask_pair<T>(c[3], s + 8, rb, n, cum, dts);
            }
            const T *xr = xs + (s0 + lrow) * XLD + lcol;
#pragma unroll
            for (int j = 0; j < NT; j += 2) {
                uint32_t b[4];
                ldsm_x4_trans(b, xr + j * 8);
                mma16816(acc[j], af, b[0], b[1], T());
                mma16816(acc[j + 1], af, b[2], b[3], T());
            }
        }
        /* + exp(cum_t) ys + D x; accumulator c of n-tile j: row ra (c < 2) or rb, column
         * 8 j + 2 tq + c % 2 */
        const float ea = ms_exp_nonpos(cum[ra]), eb = ms_exp_nonpos(cum[rb]);
#pragma unroll
        for (int j = 0; j < NT; j++) {
            const int col = j * 8 + 2 * tq;
            if (ra < n) {
                const float2 vs = ms_unpack2<T>(ysa[j]);
                const float2 vx = ms_ld2(xs + ra * XLD + col);
                *reinterpret_cast<uint32_t *>(y + (size_t)ra * a.ldy + col) = ms_pack2<T>(
                    acc[j][0] + ea * vs.x + Dh * vx.x, acc[j][1] + ea * vs.y + Dh * vx.y);
            }
            if (rb < n) {
                const float2 vs = ms_unpack2<T>(ysb[j]);
                const float2 vx = ms_ld2(xs + rb * XLD + col);
                *reinterpret_cast<uint32_t *>(y + (size_t)rb * a.ldy + col) = ms_pack2<T>(
                    acc[j][2] + eb * vs.x + Dh * vx.x, acc[j][3] + eb * vs.y + Dh * vx.y);
            }
        }
    }
}

static bool shapes_ok(ms_cu_dtype dt, int P, int L, int E, int ldx)
{
    return (dt == MS_CU_BF16 || dt == MS_CU_F16) && (P == 16 || P == 32 || P == 64) && L > 0 &&
           L % 16 == 0 && L <= SSD_OUT_LMAX && E % 8 == 0 && ldx % 8 == 0;
}

/* read at each call (a context's set-up), so a test may compare both forms in one process */
extern "C" int ms_cu_ssd_out_ok(ms_cu_dtype dt, int P, int L, int E, int ldx)
{
    const char *e = getenv("MS_CUDA_SSD_FUSED"); /* =0: the staged form (comparison) */
    return !(e && e[0] == '0') && shapes_ok(dt, P, L, E, ldx);
}

/* The staged form where its shared memory leaves at least two blocks per SM (and
 * MS_CUDA_SSD_OUT_STAGE is not 0: the comparison) */
#define SSD_OUT_STAGE_MAX (100 << 10)

extern "C" cudaError_t ms_cu_ssd_out(const ms_cu_ssd_args *a, ms_cu_dtype dt,
                                     const ms_cu_batch *bt, cudaStream_t stream)
{
    const uintptr_t al = 16;
    if (!shapes_ok(dt, a->P, a->L, a->E, a->ldx) || a->H < 1 || a->G < 1 ||
        a->heads_per_group != a->H / a->G || a->H % a->G || a->E != a->H * a->P ||
        a->ldy % 2 || (uintptr_t)a->x % al || (uintptr_t)a->ys % 4 || (uintptr_t)a->y % 4 || bt->n_seg > 65535)
        return cudaErrorInvalidValue;
    if (bt->n_seg <= 0) return cudaSuccess;
    const dim3 grid(a->H, bt->n_seg);
    const int threads = 32 * ((a->L / 16 + 1) / 2);
    static int stage_env = -1;
    if (stage_env < 0) {
        const char *e = getenv("MS_CUDA_SSD_OUT_STAGE");
        stage_env = !(e && e[0] == '0');
    }
    /* cum, dts, colw; x's tile of 16-bit values; staged: the warps' cb rows */
    const size_t base = 3 * a->L * sizeof(float) + (size_t)a->L * (a->P + 8) * 2;
    const size_t staged = base + (size_t)(threads / 32) * cb_stage_floats(a->L / 16) * sizeof(float);
    const bool stage = stage_env && staged <= SSD_OUT_STAGE_MAX;
    /* more than 48 KB of shared memory needs the kernel's opt-in, which holds per device:
     * set at every launch (a host call, no device work) */
#define SSD_OUT(PP)                                                                          \
    if (a->P == PP) {                                                                        \
        if (stage) {                                                                         \
            cudaFuncSetAttribute(ssd_out_kernel<X, PP, true>,                                \
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,                \
                                 SSD_OUT_STAGE_MAX);                                         \
            ssd_out_kernel<X, PP, true><<<grid, threads, staged, stream>>>(*a, *bt);         \
        } else {                                                                             \
            ssd_out_kernel<X, PP, false><<<grid, threads, base, stream>>>(*a, *bt);          \
        }                                                                                    \
    }
    switch (dt) {
    case MS_CU_BF16: {
        typedef __nv_bfloat16 X;
        SSD_OUT(16) SSD_OUT(32) SSD_OUT(64)
    } break;
    case MS_CU_F16: {
        typedef __half X;
        SSD_OUT(16) SSD_OUT(32) SSD_OUT(64)
    } break;
    default:
        return cudaErrorInvalidValue;
    }
#undef SSD_OUT
    return cudaGetLastError();
}
