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

void ms_op_conv1d_silu(float *x, int ldx, float *conv_state, const float *w, const float *b,
                       int T, int C, int K)
{
    const int S = K - 1; /* state length */
#pragma omp parallel for schedule(static) if ((size_t)T * C > 16384)
    for (int c = 0; c < C; c++) {
        float hist[16]; /* sliding window of the last K-1 inputs, oldest first; K <= 17 */
        const float *wc = w + (size_t)c * K;
        float *st = conv_state + (size_t)c * S;
        for (int k = 0; k < S; k++) hist[k] = st[k];
        const float bc = b ? b[c] : 0.f;
        for (int t = 0; t < T; t++) {
            float *xp = x + (size_t)t * ldx + c;
            float in = *xp;
            float acc = bc;
            for (int k = 0; k < S; k++) acc += wc[k] * hist[k];
            acc += wc[S] * in;
            for (int k = 0; k + 1 < S; k++) hist[k] = hist[k + 1];
            if (S > 0) hist[S - 1] = in;
            *xp = ms_silu(acc);
        }
        for (int k = 0; k < S; k++) st[k] = hist[k];
    }
}

void ms_op_scan_mamba1(float *y, int ldy, const float *x, int ldx, const float *dt, int lddt,
                       const float *A, const float *B, const float *C, int ldbc, const float *D,
                       const float *z, int ldz, float *state, int T, int E, int N)
{
#pragma omp parallel for schedule(static) if ((size_t)T * E > 4096)
    for (int e = 0; e < E; e++) {
        float *h = state + (size_t)e * N;
        const float *Ae = A + (size_t)e * N;
        for (int t = 0; t < T; t++) {
            const float d = dt[(size_t)t * lddt + e];
            const float xv = x[(size_t)t * ldx + e];
            const float *Bt = B + (size_t)t * ldbc;
            const float *Ct = C + (size_t)t * ldbc;
            float acc = 0.f;
            for (int n = 0; n < N; n++) {
                h[n] = expf(d * Ae[n]) * h[n] + d * Bt[n] * xv;
                acc += h[n] * Ct[n];
            }
            float out = acc + D[e] * xv;
            if (z) out *= ms_silu(z[(size_t)t * ldz + e]);
            y[(size_t)t * ldy + e] = out;
        }
    }
}

void ms_op_scan_mamba2(float *y, int ldy, const float *x, int ldx, const float *dt, int lddt,
                       const float *A, const float *B, const float *C, int ldbc, const float *D,
                       float *state, int T, int H, int P, int N, int G)
{
    const int heads_per_group = H / G;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)T * H * P > 4096)
    for (int hd = 0; hd < H; hd++) {
        for (int p = 0; p < P; p++) {
            const int g = hd / heads_per_group;
            float *h = state + ((size_t)hd * P + p) * N;
            for (int t = 0; t < T; t++) {
                const float d = dt[(size_t)t * lddt + hd];
                const float decay = expf(d * A[hd]);
                const float xv = x[(size_t)t * ldx + hd * P + p];
                const float *Bt = B + (size_t)t * ldbc + (size_t)g * N;
                const float *Ct = C + (size_t)t * ldbc + (size_t)g * N;
                float acc = 0.f;
                for (int n = 0; n < N; n++) {
                    h[n] = decay * h[n] + d * xv * Bt[n];
                    acc += h[n] * Ct[n];
                }
                y[(size_t)t * ldy + hd * P + p] = acc + D[hd] * xv;
            }
        }
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
