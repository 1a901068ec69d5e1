/* cpu_ops.c - float32 reference operations of the Mamba forward pass.
 *
 * Written to be read beside mamba_ssm's reference (selective_scan_ref, ssd_minimal) and
 * transformers' torch_forward: plain loops, token-major activations. Reductions over the
 * model width accumulate in double so that the float32 engine stays within ~1e-6 of a
 * float64 reference. */
#include "cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void ms_op_norm(float *out, const float *x, const float *w, const float *b, float eps, int rms,
                int T, int D)
{
#pragma omp parallel for schedule(static) if (T > 64)
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * D;
        float *ot = out + (size_t)t * D;
        double mean = 0, var = 0;
        if (!rms) {
            for (int i = 0; i < D; i++) mean += xt[i];
            mean /= D;
        }
        for (int i = 0; i < D; i++) {
            double d = xt[i] - mean;
            var += d * d;
        }
        float inv = (float)(1.0 / sqrt(var / D + eps));
        for (int i = 0; i < D; i++) {
            float v = (float)(xt[i] - mean) * inv * w[i];
            ot[i] = b ? v + b[i] : v;
        }
    }
}

void ms_op_linear(float *out, int ldo, const float *x, int ldx, const float *W, const float *bias,
                  int T, int n_in, int n_out)
{
    if (bias) {
        for (int t = 0; t < T; t++) memcpy(out + (size_t)t * ldo, bias, sizeof(float) * n_out);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n_out, n_in, 1.0f, x, ldx, W, n_in,
                bias ? 1.0f : 0.0f, out, ldo);
}

/* Channel blocks of CONV_CB, vectorised across channels. In place: going backwards in
 * time, y[t] is written only after the later outputs that read x[t] are done. */
#define CONV_CB 64

void ms_op_conv1d_silu(float *x, int ldx, float *conv_state, const float *w, const float *b,
                       int T, int C, int K)
{
    const int S = K - 1; /* state length */
    const int n_blocks = (C + CONV_CB - 1) / CONV_CB;
#pragma omp parallel for schedule(static) if ((size_t)T * C > 16384)
    for (int blk = 0; blk < n_blocks; blk++) {
        const int c0 = blk * CONV_CB;
        const int wd = C - c0 < CONV_CB ? C - c0 : CONV_CB;
        float wt[K][CONV_CB], old[S > 0 ? S : 1][CONV_CB], bias[CONV_CB];
        for (int i = 0; i < wd; i++) {
            for (int k = 0; k < K; k++) wt[k][i] = w[(size_t)(c0 + i) * K + k];
            for (int k = 0; k < S; k++) old[k][i] = conv_state[(size_t)(c0 + i) * S + k];
            bias[i] = b ? b[c0 + i] : 0.f;
        }
        /* input j of the extended sequence (state then x): j < S from the state */
#define XIN(j, i) ((j) < S ? old[(j)][(i)] : x[(size_t)((j) - S) * ldx + c0 + (i)])
        /* new state: the last S inputs of the extended sequence */
        for (int k = 0; k < S; k++)
            for (int i = 0; i < wd; i++)
                conv_state[(size_t)(c0 + i) * S + k] = XIN(T + k, i);
        for (int t = T - 1; t >= 0; t--) {
            float *xt = x + (size_t)t * ldx + c0;
            float acc[CONV_CB];
            for (int i = 0; i < wd; i++) acc[i] = bias[i];
            for (int k = 0; k < K; k++) {
                const int j = t + k; /* extended index of tap k */
                if (j >= S) {
                    const float *xr = x + (size_t)(j - S) * ldx + c0;
#pragma omp simd
                    for (int i = 0; i < wd; i++) acc[i] += wt[k][i] * xr[i];
                } else {
                    for (int i = 0; i < wd; i++) acc[i] += wt[k][i] * old[j][i];
                }
            }
#pragma omp simd
            for (int i = 0; i < wd; i++) xt[i] = ms_silu(acc[i]);
        }
#undef XIN
    }
}

/* Channels are processed in blocks of SCAN_EB with the state transposed to [N][EB], so
 * the inner loops run over contiguous channels (vectorised, one cache line per row of
 * x/dt/z/y) instead of striding down a column per channel. */
#define SCAN_EB 16

void ms_op_scan_mamba1(float *y, int ldy, const float *x, int ldx, const float *dt, int lddt,
                       const float *A, const float *B, const float *C, int ldbc, const float *D,
                       const float *z, int ldz, float *state, int T, int E, int N)
{
    const int n_blocks = (E + SCAN_EB - 1) / SCAN_EB;
#pragma omp parallel for schedule(static) if ((size_t)T * E > 4096)
    for (int blk = 0; blk < n_blocks; blk++) {
        const int e0 = blk * SCAN_EB;
        const int w = E - e0 < SCAN_EB ? E - e0 : SCAN_EB;
        float h[N][SCAN_EB], At[N][SCAN_EB]; /* state and A of this block, [n][e] */
        for (int n = 0; n < N; n++)
            for (int i = 0; i < SCAN_EB; i++) {
                h[n][i] = i < w ? state[(size_t)(e0 + i) * N + n] : 0.f;
                At[n][i] = i < w ? A[(size_t)(e0 + i) * N + n] : 0.f;
            }
        for (int t = 0; t < T; t++) {
            float d[SCAN_EB], dx[SCAN_EB], acc[SCAN_EB] = {0};
            const float *dtt = dt + (size_t)t * lddt + e0, *xt = x + (size_t)t * ldx + e0;
            for (int i = 0; i < SCAN_EB; i++) {
                d[i] = i < w ? dtt[i] : 0.f;
                dx[i] = i < w ? d[i] * xt[i] : 0.f;
            }
            const float *Bt = B + (size_t)t * ldbc, *Ct = C + (size_t)t * ldbc;
            for (int n = 0; n < N; n++) {
                const float bn = Bt[n], cn = Ct[n];
#pragma omp simd
                for (int i = 0; i < SCAN_EB; i++) {
                    h[n][i] = ms_exp_vec(d[i] * At[n][i]) * h[n][i] + dx[i] * bn;
                    acc[i] += h[n][i] * cn;
                }
            }
            float *yt = y + (size_t)t * ldy + e0;
            const float *zt = z ? z + (size_t)t * ldz + e0 : NULL;
#pragma omp simd
            for (int i = 0; i < w; i++) {
                float out = acc[i] + D[e0 + i] * xt[i];
                yt[i] = zt ? out * ms_silu(zt[i]) : out;
            }
        }
        for (int n = 0; n < N; n++)
            for (int i = 0; i < w; i++) state[(size_t)(e0 + i) * N + n] = h[n][i];
    }
}

/* Mamba-2: work items are (head, block of SCAN_EB head channels), the block's state
 * transposed to [N][EB] as in ms_op_scan_mamba1, so the inner loop runs over contiguous
 * channels with B and C broadcast: no horizontal sum per channel and token, and the decay
 * exp(dt A), one scalar per head and token, computed once for the block instead of once
 * per channel. (Channel-by-channel with a vector over n was 3x slower: the DNA model's
 * d_state 64 made every token end in 16 x 32 horizontal sums per head.) */
void ms_op_scan_mamba2(float *y, int ldy, const float *x, int ldx, const float *dt, int lddt,
                       const float *A, const float *B, const float *C, int ldbc, const float *D,
                       float *state, int T, int H, int P, int N, int G)
{
    const int heads_per_group = H / G, pb = (P + SCAN_EB - 1) / SCAN_EB;
#pragma omp parallel for schedule(static) if ((size_t)T * H * P > 4096)
    for (int item = 0; item < H * pb; item++) {
        const int hd = item / pb, p0 = (item % pb) * SCAN_EB, g = hd / heads_per_group;
        const int w = P - p0 < SCAN_EB ? P - p0 : SCAN_EB;
        float *st = state + ((size_t)hd * P + p0) * N; /* [w][N] of this block */
        float h[N][SCAN_EB];
        for (int n = 0; n < N; n++)
            for (int i = 0; i < SCAN_EB; i++) h[n][i] = i < w ? st[(size_t)i * N + n] : 0.f;
        const float Ah = A[hd], Dh = D[hd];
        for (int t = 0; t < T; t++) {
            const float d = dt[(size_t)t * lddt + hd], decay = expf(d * Ah);
            const float *xt = x + (size_t)t * ldx + hd * P + p0;
            float dx[SCAN_EB], acc[SCAN_EB] = {0};
            for (int i = 0; i < SCAN_EB; i++) dx[i] = i < w ? d * xt[i] : 0.f;
            const float *Bt = B + (size_t)t * ldbc + (size_t)g * N;
            const float *Ct = C + (size_t)t * ldbc + (size_t)g * N;
            for (int n = 0; n < N; n++) {
                const float bn = Bt[n], cn = Ct[n];
#pragma omp simd
                for (int i = 0; i < SCAN_EB; i++) {
                    h[n][i] = decay * h[n][i] + dx[i] * bn;
                    acc[i] += h[n][i] * cn;
                }
            }
            float *yt = y + (size_t)t * ldy + hd * P + p0;
            for (int i = 0; i < w; i++) yt[i] = acc[i] + Dh * xt[i];
        }
        for (int n = 0; n < N; n++)
            for (int i = 0; i < w; i++) st[(size_t)i * N + n] = h[n][i];
    }
}

void ms_op_gated_rmsnorm(float *y, int ldy, const float *z, int ldz, const float *w, float eps,
                         int T, int E, int G)
{
    const int gs = E / G;
#pragma omp parallel for schedule(static) if (T > 64)
    for (int t = 0; t < T; t++) {
        float *yt = y + (size_t)t * ldy;
        const float *zt = z + (size_t)t * ldz;
        for (int g = 0; g < G; g++) {
            double ss = 0;
            for (int i = g * gs; i < (g + 1) * gs; i++) {
                yt[i] *= ms_silu(zt[i]);
                ss += (double)yt[i] * yt[i];
            }
            float inv = (float)(1.0 / sqrt(ss / gs + eps));
            for (int i = g * gs; i < (g + 1) * gs; i++) yt[i] = yt[i] * inv * w[i];
        }
    }
}

void ms_op_rms_inplace(float *x, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) x[i] *= inv;
}
