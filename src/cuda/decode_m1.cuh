/* decode_m1.cuh - the per-channel pieces of Mamba-1's one-token step (internal), shared
 * by decode_m1.cu's scan kernels and decode_step_m1.cu's whole-step kernel, so both run
 * the chunk path's arithmetic in the same order. */
#ifndef MS_DECODE_M1_CUH
#define MS_DECODE_M1_CUH

#include "cuda_dtype.cuh"

/* The mask of this thread's LPC-lane group (LPC a power of two <= 32). */
template <int LPC>
__device__ __forceinline__ unsigned lane_mask()
{
    return LPC == 32 ? 0xffffffffu : ((1u << LPC) - 1u) << ((threadIdx.x & 31) & ~(LPC - 1));
}

/* dt_proj weights per lane read before the PDL wait (decode_dt_pre): dt_rank up to
 * DT_PRE LPC (64 for d_state 16), the rest read in decode_dt */
#define DT_PRE 16

/* The lane's first DT_PRE weights of dt_proj row c: wd[i] = Wdt[c][lane + i LPC]. */
template <typename T, int LPC>
__device__ __forceinline__ void decode_dt_pre(const T *Wdt, int c, int lane, int R, float *wd)
{
#pragma unroll
    for (int i = 0; i < DT_PRE; i++)
        wd[i] = lane + i * LPC < R ? ms_ld(Wdt + (size_t)c * R + lane + i * LPC) : 0.f;
}

/* Channel c's d = softplus(dt_proj row c . dt_in + bias): the dot split over the LPC lanes
 * (a shuffle sum within the group), rounded to the activation type as the chunk path
 * stores dt_proj's output. dt_in is sr[0, R) in shared memory; wd from decode_dt_pre. */
template <typename T, int LPC>
__device__ __forceinline__ float decode_dt(const T *Wdt, float bias, const float *sr, int c,
                                           int lane, int R, unsigned gmask, const float *wd)
{
    float d = 0.f;
#pragma unroll
    for (int i = 0; i < DT_PRE; i++)
        if (lane + i * LPC < R) d += wd[i] * sr[lane + i * LPC];
    for (int r = lane + DT_PRE * LPC; r < R; r += LPC) d += ms_ld(Wdt + (size_t)c * R + r) * sr[r];
#pragma unroll
    for (int o = LPC / 2; o > 0; o >>= 1) d += __shfl_xor_sync(gmask, d, o, LPC);
    T dv;
    ms_st(&dv, d);
    d = ms_ld(&dv);
    return ms_softplus_f(d + bias);
}

/* Four states of one channel one token on, as the chunk path's scan steps them:
 * h = exp(d A) h + (d x) B, A its four entries of -exp(A_log); returns sum h C over them. */
__device__ __forceinline__ float ssm_step4(float4 &h, float4 a, float d, float dx, const float *B,
                                           const float *C)
{
    const float L2E = 1.4426950408889634f;
    h.x = exp2f(d * (a.x * L2E)) * h.x + dx * B[0];
    h.y = exp2f(d * (a.y * L2E)) * h.y + dx * B[1];
    h.z = exp2f(d * (a.z * L2E)) * h.z + dx * B[2];
    h.w = exp2f(d * (a.w * L2E)) * h.w + dx * B[3];
    return fmaf(h.x, C[0], h.y * C[1]) + fmaf(h.z, C[2], h.w * C[3]);
}

#endif
