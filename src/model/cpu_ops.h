/* cpu_ops.h - the float32 reference operations of the Mamba forward pass (internal).
 *
 * Activations are token-major: a row per token, [T][width], with an explicit row stride
 * (ld) where an operand is a column slice of a wider projection. The CUDA backend's
 * kernels are tested against these. Time-recurrent ops (conv, scans) take one stream's
 * T consecutive tokens and its state, which they leave updated. */
#ifndef MS_CPU_OPS_H
#define MS_CPU_OPS_H

#include <math.h>
#include <stddef.h>

/* out[t] = norm(x[t]) * w (+ b). rms=1: x / sqrt(mean(x^2) + eps); rms=0: LayerNorm.
 * out may equal x. */
void ms_op_norm(float *out, const float *x, const float *w, const float *b, float eps, int rms,
                int T, int D);

/* out[T][n_out] = x[T][n_in] @ W[n_out][n_in]^T (+ bias), through the BLAS. ldx/ldo are
 * the row strides of x and out. */
void ms_op_linear(float *out, int ldo, const float *x, int ldx, const float *W, const float *bias,
                  int T, int n_in, int n_out);

/* Causal depthwise conv1d continuing from conv_state, then SiLU, in place on x:
 *   y[t][c] = silu(b[c] + sum_k w[c][k] * x_ext[t + k][c]),  k = 0..K-1,
 * where x_ext is conv_state's K-1 previous inputs followed by x. conv_state [C][K-1]
 * (oldest first) is left holding the last K-1 inputs. x [T][C] with row stride ldx. */
void ms_op_conv1d_silu(float *x, int ldx, float *conv_state, const float *w, const float *b,
                       int T, int C, int K);

/* Mamba-1 selective scan over T tokens, E channels, N states:
 *   h[e][n] = exp(dt[t][e] * A[e][n]) * h[e][n] + dt[t][e] * B[t][n] * x[t][e]
 *   y[t][e] = (sum_n h[e][n] * C[t][n] + D[e] * x[t][e]) * silu(z[t][e])
 * dt already through softplus; A = -exp(A_log) [E][N]; z may be NULL (no gate).
 * state h [E][N]. Strides: x ldx, dt lddt, B/C ldbc, z ldz, y ldy. */
void ms_op_scan_mamba1(float *y, int ldy, const float *x, int ldx, const float *dt, int lddt,
                       const float *A, const float *B, const float *C, int ldbc, const float *D,
                       const float *z, int ldz, float *state, int T, int E, int N);

/* Mamba-2 scan (SSD in its recurrent form) over T tokens, H heads of P channels, N
 * states, G groups (head h reads group h / (H/G)):
 *   h[h][p][n] = exp(dt[t][h] * A[h]) * h[h][p][n] + dt[t][h] * x[t][h*P+p] * B[t][g*N+n]
 *   y[t][h*P+p] = sum_n h[h][p][n] * C[t][g*N+n] + D[h] * x[t][h*P+p]
 * dt already through softplus and clamp; A = -exp(A_log) [H]. state [H][P][N]. */
void ms_op_scan_mamba2(float *y, int ldy, const float *x, int ldx, const float *dt, int lddt,
                       const float *A, const float *B, const float *C, int ldbc, const float *D,
                       float *state, int T, int H, int P, int N, int G);

/* Mamba-2 gated RMSNorm, per group of E/G channels: y = rmsnorm_g(y * silu(z)) * w.
 * y [T][E] (ld ldy) in place, z [T][E] (ld ldz). */
void ms_op_gated_rmsnorm(float *y, int ldy, const float *z, int ldz, const float *w, float eps,
                         int T, int E, int G);

/* Weightless RMSNorm of n values in place (FalconMamba's B, C, dt norms). */
void ms_op_rms_inplace(float *x, int n, float eps);

/* exp(x) for the scan's decays, written without calls so that loops over it vectorise
 * (glibc's expf is a scalar call). Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, then
 * a degree-6 polynomial: max relative error ~2e-7 (about 2 ulp) on [-87, 88]; below -87
 * the result is flushed to 0, which is what a decay that small means. */
static inline float ms_exp_vec(float x)
{
    x = x > -87.f ? x : -87.f; /* max/min forms the vectoriser maps to vmaxps/vminps */
    x = x < 88.f ? x : 88.f;
    /* round to nearest by adding 1.5 * 2^23 (no libm call, so the loop vectorises) */
    float k = (x * 1.44269504f + 12582912.f) - 12582912.f;
    float r = x - k * 0.693145752f;
    r = r - k * 1.42860677e-6f;
    float p = 1.f + r * (1.f + r * (0.5f + r * (0.166666672f + r * (0.0416666418f +
              r * (0.00833336543f + r * 0.00138889046f)))));
    int bits;
    __builtin_memcpy(&bits, &p, 4);
    bits += (int)k << 23; /* * 2^k */
    __builtin_memcpy(&p, &bits, 4);
    return p;
}

/* softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), with log1p(u) = 2 atanh(s),
 * s = u / (2 + u) in (0, 1/3], summed to s^13 (truncation < 1e-8): relative error ~3e-7
 * and no libm call, so loops over it vectorise. */
static inline float ms_softplus(float x)
{
    float ax = x > 0.f ? x : -x;
    float u = ms_exp_vec(-ax);
    float sv = u / (2.f + u), s2 = sv * sv;
    float l = 2.f * sv * (1.f + s2 * (1.f / 3 + s2 * (1.f / 5 + s2 * (1.f / 7 + s2 * (1.f / 9 +
              s2 * (1.f / 11 + s2 * (1.f / 13)))))));
    return (x > 0.f ? x : 0.f) + l;
}
/* silu(x) = x * sigmoid(x) */
static inline float ms_silu(float x) { return x / (1.f + ms_exp_vec(-x)); }

#endif
