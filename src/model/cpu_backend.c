/* cpu_backend.c - the float32 CPU backend: the reference forward pass.
 *
 * One forward call runs a batch of chunks (different streams) through the model. Token-
 * wise work (norms, projections, head) runs on all T = sum(n_tokens) rows at once, so the
 * BLAS sees one matrix product per projection; time-recurrent work (conv, scan) runs per
 * chunk from that chunk's stream state. Parallel over channels with OpenMP; the BLAS
 * threads itself. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_ops.h"
#include "log.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int cap_tokens;
    float *resid;  /* [T][d_model] residual stream */
    float *hs;     /* [T][d_model] normed input of the mixer / final norm output */
    float *proj;   /* [T][in_proj_rows] in_proj output: M1 x|z, M2 z|xBC|dt */
    float *xdbl;   /* M1 [T][dt_rank + 2*d_state] x_proj output */
    float *dt;     /* [T][d_inner] (M1) or [T][n_heads] (M2) after softplus */
    float *y;      /* [T][d_inner] scan output */
} cpu_scratch;

static int cpu_init(ms_ctx *ctx)
{
    const ms_config *c = &ctx->model->cfg;
    cpu_scratch *s = calloc(1, sizeof *s);
    if (!s) return MS_ERR_NOMEM;
    size_t T = (size_t)ctx->params.max_tokens;
    s->cap_tokens = ctx->params.max_tokens;
    s->resid = malloc(sizeof(float) * T * c->d_model);
    s->hs = malloc(sizeof(float) * T * c->d_model);
    s->proj = malloc(sizeof(float) * T * ms_in_proj_rows(c));
    s->xdbl = c->arch == MS_ARCH_MAMBA1 ? malloc(sizeof(float) * T * (c->dt_rank + 2 * c->d_state))
                                        : NULL;
    s->dt = malloc(sizeof(float) * T * c->d_inner);
    s->y = malloc(sizeof(float) * T * c->d_inner);
    ctx->impl = s;
    if (!s->resid || !s->hs || !s->proj || !s->dt || !s->y ||
        (c->arch == MS_ARCH_MAMBA1 && !s->xdbl)) {
        ms_error("cpu backend: cannot allocate scratch for %d tokens", ctx->params.max_tokens);
        return MS_ERR_NOMEM;
    }
#ifdef _OPENMP
    if (ctx->model->params.n_threads > 0) omp_set_num_threads(ctx->model->params.n_threads);
#endif
    return MS_OK;
}

static void cpu_free(ms_ctx *ctx)
{
    cpu_scratch *s = ctx->impl;
    if (!s) return;
    free(s->resid); free(s->hs); free(s->proj); free(s->xdbl); free(s->dt); free(s->y);
    free(s);
    ctx->impl = NULL;
}

static int cpu_state_alloc(ms_ctx *ctx, ms_stream *st)
{
    st->state = calloc(ms_state_floats(&ctx->model->cfg), sizeof(float));
    return st->state ? MS_OK : MS_ERR_NOMEM;
}

static void cpu_state_free(ms_ctx *ctx, ms_stream *st) { free(st->state); st->state = NULL; }

static void cpu_state_reset(ms_ctx *ctx, ms_stream *st)
{
    memset(st->state, 0, sizeof(float) * ms_state_floats(&ctx->model->cfg));
}

static int cpu_state_get(ms_ctx *ctx, const ms_stream *st, float *dst)
{
    memcpy(dst, st->state, sizeof(float) * ms_state_floats(&ctx->model->cfg));
    return MS_OK;
}

static int cpu_state_set(ms_ctx *ctx, ms_stream *st, const float *src)
{
    memcpy(st->state, src, sizeof(float) * ms_state_floats(&ctx->model->cfg));
    return MS_OK;
}

/* Layer l's conv and SSM state inside a stream's state block. */
static float *conv_state_of(const ms_config *c, ms_stream *st, int l)
{
    return (float *)st->state + (size_t)l * (ms_conv_state_floats(c) + ms_ssm_state_floats(c));
}
static float *ssm_state_of(const ms_config *c, ms_stream *st, int l)
{
    return conv_state_of(c, st, l) + ms_conv_state_floats(c);
}

/* Mamba-1 mixer: hs [T][d_model] -> y, then out_proj into hs. */
static void mixer_mamba1(const ms_model *m, int l, cpu_scratch *s, const ms_chunk *chunks,
                         int n_chunks, int T)
{
    const ms_config *c = &m->cfg;
    const ms_layer_weights *w = &m->layers[l];
    const int E = c->d_inner, N = c->d_state, R = c->dt_rank, K = c->d_conv;
    const int ldp = 2 * E, ldx = R + 2 * N;

    ms_op_linear(s->proj, ldp, s->hs, c->d_model, w->in_proj_w, w->in_proj_b, T, c->d_model, ldp);
    /* proj row: x [E] | z [E]. Conv + SiLU on x, per stream. */
    for (int i = 0, t0 = 0; i < n_chunks; t0 += chunks[i].n_tokens, i++)
        ms_op_conv1d_silu(s->proj + (size_t)t0 * ldp, ldp, conv_state_of(c, chunks[i].stream, l),
                          w->conv_w, w->conv_b, chunks[i].n_tokens, E, K);
    /* x_proj: xdbl row = dt_low [R] | B [N] | C [N] */
    ms_op_linear(s->xdbl, ldx, s->proj, ldp, w->x_proj_w, NULL, T, E, ldx);
    if (c->falcon) {
        for (int t = 0; t < T; t++) {
            float *r = s->xdbl + (size_t)t * ldx;
            ms_op_rms_inplace(r, R, c->mixer_rms_eps);
            ms_op_rms_inplace(r + R, N, c->mixer_rms_eps);
            ms_op_rms_inplace(r + R + N, N, c->mixer_rms_eps);
        }
    }
    ms_op_linear(s->dt, E, s->xdbl, ldx, w->dt_proj_w, w->dt_proj_b, T, R, E);
#pragma omp parallel for simd schedule(static) if ((size_t)T * E > 65536)
    for (size_t i = 0; i < (size_t)T * E; i++) s->dt[i] = ms_softplus(s->dt[i]);

    /* A = -exp(A_log), computed per call: cheap ([E][N]) and keeps the model immutable. */
    float *A = malloc(sizeof(float) * E * N);
    for (int i = 0; i < E * N; i++) A[i] = -expf(w->A_log[i]);
    for (int i = 0, t0 = 0; i < n_chunks; t0 += chunks[i].n_tokens, i++) {
        const float *xd = s->xdbl + (size_t)t0 * ldx;
        ms_op_scan_mamba1(s->y + (size_t)t0 * E, E, s->proj + (size_t)t0 * ldp, ldp,
                          s->dt + (size_t)t0 * E, E, A, xd + R, xd + R + N, ldx, w->D,
                          s->proj + (size_t)t0 * ldp + E, ldp,
                          ssm_state_of(c, chunks[i].stream, l), chunks[i].n_tokens, E, N);
    }
    free(A);
    ms_op_linear(s->hs, c->d_model, s->y, E, w->out_proj_w, w->out_proj_b, T, E, c->d_model);
}

/* Mamba-2 mixer: proj row = z [E] | xBC [E + 2GN] | dt [H]. */
static void mixer_mamba2(const ms_model *m, int l, cpu_scratch *s, const ms_chunk *chunks,
                         int n_chunks, int T)
{
    const ms_config *c = &m->cfg;
    const ms_layer_weights *w = &m->layers[l];
    const int E = c->d_inner, N = c->d_state, H = c->n_heads, P = c->head_dim, G = c->n_groups;
    const int ldp = ms_in_proj_rows(c), conv_dim = ms_conv_dim(c);

    ms_op_linear(s->proj, ldp, s->hs, c->d_model, w->in_proj_w, w->in_proj_b, T, c->d_model, ldp);
    for (int i = 0, t0 = 0; i < n_chunks; t0 += chunks[i].n_tokens, i++)
        ms_op_conv1d_silu(s->proj + (size_t)t0 * ldp + E, ldp,
                          conv_state_of(c, chunks[i].stream, l), w->conv_w, w->conv_b,
                          chunks[i].n_tokens, conv_dim, c->d_conv);
    for (int t = 0; t < T; t++) {
        const float *raw = s->proj + (size_t)t * ldp + E + conv_dim;
        for (int h = 0; h < H; h++) {
            float d = ms_softplus(raw[h] + w->dt_bias[h]);
            d = d < c->dt_min ? c->dt_min : d;
            d = d > c->dt_max ? c->dt_max : d;
            s->dt[(size_t)t * H + h] = d;
        }
    }
    float A[H];
    for (int h = 0; h < H; h++) A[h] = -expf(w->A_log[h]);
    for (int i = 0, t0 = 0; i < n_chunks; t0 += chunks[i].n_tokens, i++) {
        const float *xbc = s->proj + (size_t)t0 * ldp + E;
        ms_op_scan_mamba2(s->y + (size_t)t0 * E, E, xbc, ldp, s->dt + (size_t)t0 * H, H, A,
                          xbc + E, xbc + E + G * N, ldp, w->D,
                          ssm_state_of(c, chunks[i].stream, l), chunks[i].n_tokens, H, P, N, G);
    }
    ms_op_gated_rmsnorm(s->y, E, s->proj, ldp, w->gnorm_w, c->norm_eps, T, E, G);
    ms_op_linear(s->hs, c->d_model, s->y, E, w->out_proj_w, w->out_proj_b, T, E, c->d_model);
}

static int cpu_forward(ms_ctx *ctx, const ms_chunk *chunks, int n_chunks, const int *cols,
                       int n_cols, float *logits, float *hidden)
{
    const ms_model *m = ctx->model;
    const ms_config *c = &m->cfg;
    cpu_scratch *s = ctx->impl;
    const int D = c->d_model;
    int T = 0;
    for (int i = 0; i < n_chunks; i++) T += chunks[i].n_tokens;

    /* input: embedding gather (tokens), or features [n][d_input] @ frontend.proj^T (+ b) */
    for (int i = 0, t = 0; i < n_chunks; t += chunks[i].n_tokens, i++) {
        const ms_chunk *ch = &chunks[i];
        if (ch->features) {
            const int F = m->info.d_input;
            ms_op_linear(s->resid + (size_t)t * D, D, ch->features, F, m->feat_proj_w,
                         m->feat_proj_b, ch->n_tokens, F, D);
            continue;
        }
        for (int j = 0; j < ch->n_tokens; j++)
            memcpy(s->resid + (size_t)(t + j) * D, m->embedding + (size_t)ch->tokens[j] * D,
                   sizeof(float) * D);
    }

    for (int l = 0; l < c->n_layer; l++) {
        const ms_layer_weights *w = &m->layers[l];
        ms_op_norm(s->hs, s->resid, w->norm_w, w->norm_b, c->norm_eps, c->rms_norm, T, D);
        if (c->arch == MS_ARCH_MAMBA1)
            mixer_mamba1(m, l, s, chunks, n_chunks, T);
        else
            mixer_mamba2(m, l, s, chunks, n_chunks, T);
        for (size_t i = 0; i < (size_t)T * D; i++) s->resid[i] += s->hs[i];
    }
    float *out_h = hidden ? hidden : s->hs;
    ms_op_norm(out_h, s->resid, m->norm_f_w, m->norm_f_b, c->norm_eps, c->rms_norm, T, D);
    /* head: lm_head [n_vocab][D], or the classifier [n_labels][D] (+ bias) */
    const int classify = m->audio.task == MS_TASK_CLASSIFY;
    const float *head = classify ? m->classifier_w : m->lm_head;
    const float *head_b = classify ? m->classifier_b : NULL;
    const int n_out = classify ? m->audio.n_labels : c->n_vocab;
    if (logits && !cols) {
        ms_op_linear(logits, n_out, out_h, D, head, head_b, T, D, n_out);
    } else if (logits) {
        /* the head's selected rows only: [n_cols][D] (+ [n_cols]) */
        float *w = malloc(sizeof(float) * n_cols * (D + 1));
        if (!w) return MS_ERR_NOMEM;
        float *wb = w + (size_t)n_cols * D;
        for (int i = 0; i < n_cols; i++) {
            memcpy(w + (size_t)i * D, head + (size_t)cols[i] * D, sizeof(float) * D);
            wb[i] = head_b ? head_b[cols[i]] : 0.0f;
        }
        ms_op_linear(logits, n_cols, out_h, D, w, head_b ? wb : NULL, T, D, n_cols);
        free(w);
    }
    return MS_OK;
}

static const ms_backend_ops cpu_ops = {
    .name = "cpu",
    .init = cpu_init,
    .free = cpu_free,
    .state_alloc = cpu_state_alloc,
    .state_free = cpu_state_free,
    .state_reset = cpu_state_reset,
    .state_get = cpu_state_get,
    .state_set = cpu_state_set,
    .forward = cpu_forward,
    .supports_features = 1,
    .supports_classifier = 1,
};

const ms_backend_ops *ms_cpu_backend(void) { return &cpu_ops; }
