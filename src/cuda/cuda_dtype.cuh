/* cuda_dtype.cuh - element load/store helpers shared by the kernels (internal).
 * Activations are float, __nv_bfloat16 or __half; all arithmetic is float32. */
#ifndef MS_CUDA_DTYPE_CUH
#define MS_CUDA_DTYPE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "cuda_ops.h"

__device__ __forceinline__ float ms_ld(const float *p) { return *p; }
__device__ __forceinline__ float ms_ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ float ms_ld(const __half *p) { return __half2float(*p); }
template <typename T> __device__ __forceinline__ T ms_zero() { return T(0.f); }
__device__ __forceinline__ void ms_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void ms_st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void ms_st(__half *p, float v) { *p = __float2half_rn(v); }

/* 8 consecutive elements <-> 8 floats with 16-byte accesses (two for float); p must be
 * 16-byte aligned. */
__device__ __forceinline__ void ms_ld8(const float *p, float *v)
{
    const float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void ms_st8(float *p, const float *v)
{
    reinterpret_cast<float4 *>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4 *>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
/* 16-bit pairs to floats: the one step that differs between bf16 and fp16 */
__device__ __forceinline__ float2 ms_pair_f2(__nv_bfloat162 x) { return __bfloat1622float2(x); }
__device__ __forceinline__ float2 ms_pair_f2(__half2 x) { return __half22float2(x); }
template <typename P2>
__device__ __forceinline__ void ms_ld8_pairs(const void *p, float *v)
{
    const uint4 q = *reinterpret_cast<const uint4 *>(p);
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        P2 h;
        memcpy(&h, &w[k], 4);
        const float2 f = ms_pair_f2(h);
        v[2 * k] = f.x;
        v[2 * k + 1] = f.y;
    }
}
__device__ __forceinline__ void ms_ld8(const __nv_bfloat16 *p, float *v) { ms_ld8_pairs<__nv_bfloat162>(p, v); }
__device__ __forceinline__ void ms_ld8(const __half *p, float *v) { ms_ld8_pairs<__half2>(p, v); }
__device__ __forceinline__ __nv_bfloat162 ms_f2_pair(float a, float b, __nv_bfloat162) { return __floats2bfloat162_rn(a, b); }
__device__ __forceinline__ __half2 ms_f2_pair(float a, float b, __half2) { return __floats2half2_rn(a, b); }
template <typename P2>
__device__ __forceinline__ void ms_st8_pairs(void *p, const float *v)
{
    uint32_t w[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const P2 h = ms_f2_pair(v[2 * k], v[2 * k + 1], P2());
        memcpy(&w[k], &h, 4);
    }
    *reinterpret_cast<uint4 *>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}
__device__ __forceinline__ void ms_st8(__nv_bfloat16 *p, const float *v) { ms_st8_pairs<__nv_bfloat162>(p, v); }
__device__ __forceinline__ void ms_st8(__half *p, const float *v) { ms_st8_pairs<__half2>(p, v); }

/* V = 1 or 8 consecutive elements <-> floats (kernels with a scalar and a vector form) */
template <int V, typename T>
__device__ __forceinline__ void ms_ldv(const T *p, float *v)
{
    if (V == 8) ms_ld8(p, v);
    else v[0] = ms_ld(p);
}
template <int V, typename T>
__device__ __forceinline__ void ms_stv(T *p, const float *v)
{
    if (V == 8) ms_st8(p, v);
    else ms_st(p, v[0]);
}

/* 16 bytes global -> shared without registers (cp.async, sm_80+); the issuing thread reads
 * them after cp_async_wait_all (or its group's wait). The _n form copies n bytes (0 or
 * 16) and zero-fills the rest: n = 0 reads nothing (rows past a segment, channels past E). */
__device__ __forceinline__ void cp_async16(void *sm, const void *gm)
{
    const unsigned a = (unsigned)__cvta_generic_to_shared(sm);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(a), "l"(gm) : "memory");
}
__device__ __forceinline__ void cp_async16_n(void *sm, const void *gm, int n)
{
    const unsigned a = (unsigned)__cvta_generic_to_shared(sm);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(a), "l"(gm), "r"(n)
                 : "memory");
}
/* 8 bytes (cp.async.ca: the .cg form copies only 16) */
__device__ __forceinline__ void cp_async8(void *sm, const void *gm)
{
    const unsigned a = (unsigned)__cvta_generic_to_shared(sm);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(a), "l"(gm) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all()
{
    asm volatile("cp.async.wait_all;" ::: "memory");
}
__device__ __forceinline__ void cp_async_commit()
{
    asm volatile("cp.async.commit_group;" ::: "memory");
}
/* this thread's copies of all but the newest N committed groups have landed */
template <int N> __device__ __forceinline__ void cp_async_wait_group()
{
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

/* SiLU and softplus on the MUFU unit, branch-free. The scan computes both once per token
 * and channel beside ~5 instructions per state; with expf, log1pf and IEEE division they
 * took ~70 of a token's ~180 instructions (H200, ncu), now ~30. Error (float32, checked on
 * a dense grid against float64): a few ulp, <= 4e-7 relative, against 1e-5 for the GPU's
 * float32 check mode. */
#define MS_LOG2E 1.4426950408889634f

/* 2^x, flushing denormal results to 0 (one MUFU op; <= 2 ulp otherwise) */
__device__ __forceinline__ float ms_ex2_ftz(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* e^a for a <= 0: 2^(a log2 e) with the product's rounding error (and log2 e's) carried
 * by a first-order factor, so |a| up to ~90 loses nothing to the argument */
__device__ __forceinline__ float ms_exp_nonpos(float a)
{
    const float y = a * MS_LOG2E;
    const float lo = fmaf(a, MS_LOG2E, -y) + a * 1.925963033500011079e-08f;
    return ms_ex2_ftz(y) * fmaf(lo, 0.69314718f, 1.f);
}

__device__ __forceinline__ float ms_rcp_approx(float x)
{
    float y;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* x sigmoid(x); sigmoid from t = e^-|x| as (x >= 0 ? 1 : t) / (1 + t) */
__device__ __forceinline__ float ms_silu_f(float x)
{
    const float t = ms_exp_nonpos(-fabsf(x));
    return x * ((x >= 0.f ? 1.f : t) * ms_rcp_approx(1.f + t));
}

/* log(1 + e^x) = max(x, 0) + log1p(t), t = e^-|x| in (0, 1]; log1p(t) = t p(t) with p a
 * degree-8 fit of log1p(t)/t on [0, 1] (3e-8 relative; 2.1e-7 evaluated in float32) */
__device__ __forceinline__ float ms_softplus_f(float x)
{
    const float t = ms_exp_nonpos(-fabsf(x));
    float p = 5.232044030e-03f;
    p = fmaf(p, t, -2.950152569e-02f);
    p = fmaf(p, t, 7.821778953e-02f);
    p = fmaf(p, t, -1.366233528e-01f);
    p = fmaf(p, t, 1.910544634e-01f);
    p = fmaf(p, t, -2.484279126e-01f);
    p = fmaf(p, t, 3.331906199e-01f);
    p = fmaf(p, t, -4.999949038e-01f);
    p = fmaf(p, t, 9.999999404e-01f);
    return fmaxf(x, 0.f) + t * p;
}

/* One step of the causal depthwise conv1d of one channel (decode): st holds the channel's
 * last K-1 inputs, oldest first (K <= MS_CONV_KMAX), w its K weights, b its bias; returns
 * silu(b + sum_k<K-1 w[k] st[k] + w[K-1] v) and shifts v into st. The sum runs in the order
 * of conv1d_silu.cu's, so a step equals the chunk path within float32 rounding. */
#define MS_CONV_KMAX 8
__device__ __forceinline__ float ms_conv_step(float *st, const float *w, float b, float v, int K)
{
    const int S = K - 1;
    float win[MS_CONV_KMAX - 1];
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++) win[k] = k < S ? st[k] : 0.f;
    float acc = b, wl = 0.f;
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++)
        if (k < S) acc += w[k] * win[k];
    /* w[S] by a compile-time index, so st and w may be register arrays (decode_step_m1.cu) */
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX; k++)
        if (k == S) wl = w[k];
    acc += wl * v;
#pragma unroll
    for (int k = 0; k < MS_CONV_KMAX - 1; k++)
        if (k < S) st[k] = k + 1 < S ? win[k + 1] : v;
    return ms_silu_f(acc);
}
/* Whether chunk ci's stream starts from zeros (ms_cu_batch.fresh): then its state is not
 * read, only written */
__device__ __forceinline__ bool ms_fresh(const ms_cu_batch &bt, int ci)
{
    return bt.fresh && bt.fresh[ci];
}

/* v rounded to T's precision, as a store to T and a load back would */
template <typename T> __device__ __forceinline__ float ms_round(float v)
{
    T t;
    ms_st(&t, v);
    return ms_ld(&t);
}

/* The decode conv step fused into a product (ms_cu_gemv_fuse's conv members): channel c
 * of the stream whose state block is st, on the product's stored output v, into the
 * token's xc row */
template <typename T>
__device__ __forceinline__ void ms_fused_conv_step(const ms_cu_gemv_fuse &f, float *st, int c,
                                                   float v, T *xc)
{
    st += f.conv_off + (size_t)c * (f.conv_k - 1);
    const float b = f.conv_b ? f.conv_b[c] : 0.f;
    ms_st(xc + c, ms_conv_step(st, f.conv_w + (size_t)c * f.conv_k, b, v, f.conv_k));
}
/* Mamba-2's SSD mask entry m[t][s] (s <= t) from cb[t][s]: cb exp(cum_t - cum[s]) dt[s]
 * (ssd_scan.cu's stage 3, and ssd_out.cu's diagonal tiles, which must match it) */
__device__ __forceinline__ float ms_ssd_mask(float cb, float cum_t, const float *cum,
                                             const float *dt, int s)
{
    return cb * ms_exp_nonpos(cum_t - cum[s]) * dt[s];
}
/* Sum over the 32 lanes of a warp; every lane gets the total. */
__device__ __forceinline__ float ms_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread
 * gets the total. sh: 32 floats of shared memory. */
__device__ __forceinline__ float ms_block_sum(float v, float *sh)
{
    v = ms_warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.f;
    return ms_warp_sum(v);
}

/* Short norm rows (add_norm.cu, gated_rmsnorm.cu: at most MS_WARP_ROW_MAX values) a warp
 * each, MS_ROWS_PER_BLOCK warps a block. Longer rows keep a block each: H200, the reference
 * widths (768, 1,536) as warp rows gained nothing in scoring and cost decode of 64 streams
 * 1-2% (Mamba-1) and 10% (Mamba-2) */
#define MS_ROWS_PER_BLOCK 4
#define MS_WARP_ROW_MAX 512

/* Programmatic dependent launch (Hopper): a kernel launched by ms_launch while the PDL
 * switch is on (launch.cu; the backend turns it on for decode calls) may start before the
 * previous kernel in the stream ends, so it can read its weights, or just be resident,
 * while that kernel runs. Such a kernel calls ms_pdl_begin() in every thread before it
 * touches anything an earlier kernel writes or reads: its wait returns once the previous
 * kernel has ended and its writes are visible (that kernel waited on its own predecessor,
 * so the whole stream before is done); then it lets the next kernel start launching. Both
 * steps are no-ops in a launch without the attribute and below sm_90. */
__device__ __forceinline__ void ms_pdl_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void ms_pdl_trigger()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void ms_pdl_begin()
{
    ms_pdl_wait();
    ms_pdl_trigger();
}
/* Besides weights, a decode kernel may read a stream's recurrent state before the wait: a
 * call holds at most one chunk per stream, so the state's last writer is the same layer's
 * kernel in an earlier call, which ended before this call began (the backend synchronizes
 * at the end of each call). The batch (bt) is uploaded before the call's first kernel. */
__device__ __forceinline__ void ms_prefetch_l1(const void *p)
{
    asm volatile("prefetch.global.L1 [%0];" ::"l"(p));
}
/* What ms_fused_conv_step reads for channel c of the stream whose state block is st (its
 * state row and weights), brought to L1 before the PDL wait */
__device__ __forceinline__ void ms_fused_conv_prefetch(const ms_cu_gemv_fuse &f, const float *st,
                                                       int c)
{
    ms_prefetch_l1(st + f.conv_off + (size_t)c * (f.conv_k - 1));
    ms_prefetch_l1(f.conv_w + (size_t)c * f.conv_k);
}

/* c += a b on the tensor cores (mma.sync m16n8k16, float32 accumulators): a a 16 x 16
 * tile in mma's A layout, b a 16 x 8 tile in its B layout (b0: k 0-7, b1: k 8-15), two
 * 16-bit values per register; one overload per 16-bit type (its name in the instruction).
 * gemm_few.cu and ssd_out.cu. */
#define MS_MMA(TYPE, NAME)                                                                   \
    __device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0,      \
                                             uint32_t b1, TYPE)                            \
    {                                                                                      \
        asm("mma.sync.aligned.m16n8k16.row.col.f32." NAME "." NAME ".f32 {%0,%1,%2,%3}, "   \
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                                       \
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                               \
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));               \
    }
MS_MMA(__nv_bfloat16, "bf16")
MS_MMA(__half, "f16")
#undef MS_MMA
/* two values rounded to T as ms_st would, packed as mma's operands hold them (lo: the
 * lower index, in the low half) */
template <typename T> __device__ __forceinline__ uint32_t ms_pack2(float lo, float hi)
{
    T v[2];
    ms_st(&v[0], lo);
    ms_st(&v[1], hi);
    uint32_t r;
    memcpy(&r, v, sizeof r);
    return r;
}
/* two adjacent 16-bit values (4-byte aligned) as floats, one load; and ms_pack2's
 * inverse, a packed pair as floats */
__device__ __forceinline__ float2 ms_ld2(const __nv_bfloat16 *p)
{
    return ms_pair_f2(*reinterpret_cast<const __nv_bfloat162 *>(p));
}
__device__ __forceinline__ float2 ms_ld2(const __half *p)
{
    return ms_pair_f2(*reinterpret_cast<const __half2 *>(p));
}
template <typename T> __device__ __forceinline__ float2 ms_unpack2(uint32_t v)
{
    return ms_ld2(reinterpret_cast<const T *>(&v));
}

/* kernel<<<grid, block, smem, stream>>>(args...), with the programmatic-serialization
 * attribute when this thread's PDL switch is on (only for kernels that call ms_pdl_wait). */
int ms_cu_pdl_on(void);
template <typename... KArgs, typename... Args>
static cudaError_t ms_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                             cudaStream_t stream, Args... args)
{
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = at;
    cfg.numAttrs = ms_cu_pdl_on() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, ((KArgs)args)...);
}

/* Instantiate a launch for the runtime dtype: MS_DISPATCH(dt, T, { body using T }). */
#define MS_DISPATCH(dt, T, ...)                                   \
    switch (dt) {                                                 \
    case MS_CU_F32: { typedef float T; __VA_ARGS__; } break;      \
    case MS_CU_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break; \
    case MS_CU_F16: { typedef __half T; __VA_ARGS__; } break;     \
    default: return cudaErrorInvalidValue;                        \
    }

#endif
