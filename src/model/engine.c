/* engine.c - contexts, streams and the forward entry point; dispatches to a backend. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"

#ifndef MS_HAVE_CUDA
/* This build has no CUDA backend (configure with -DMS_CUDA=ON). */
const ms_backend_ops *ms_cuda_backend(void) { return NULL; }
#endif

ms_ctx_params ms_ctx_default_params(void)
{
    ms_ctx_params p = {
        .device = MS_DEVICE_CPU,
        .precision = MS_PREC_FP32,
        .device_index = 0,
        .max_tokens = 4096,
        .max_streams = 64,
    };
    return p;
}

int ms_ctx_new(const ms_model *model, const ms_ctx_params *params, ms_ctx **out)
{
    *out = NULL;
    ms_ctx_params p = params ? *params : ms_ctx_default_params();
    if (p.max_tokens < 1 || p.max_streams < 1) {
        ms_error("ms_ctx_new: max_tokens (%d) and max_streams (%d) must be >= 1", p.max_tokens,
                 p.max_streams);
        return MS_ERR_ARG;
    }
    const ms_backend_ops *ops = NULL;
    if (p.device == MS_DEVICE_CPU) {
        ops = ms_cpu_backend();
        if (p.precision != MS_PREC_FP32) {
            ms_error("the CPU backend computes in float32 only (--precision fp32); bf16/fp16 "
                     "need --device cuda");
            return MS_ERR_UNSUPPORTED;
        }
    } else if (p.device == MS_DEVICE_CUDA) {
        ops = ms_cuda_backend();
        if (!ops) {
            ms_error("CUDA requested, but this build of mamba-stream has no CUDA backend "
                     "(rebuild with -DMS_CUDA=ON)");
            return MS_ERR_BACKEND;
        }
    } else {
        ms_error("ms_ctx_new: unknown device kind %d", (int)p.device);
        return MS_ERR_ARG;
    }
    const ms_model_info *mi = &model->info;
    if ((mi->d_input > 0 && !ops->supports_features) ||
        (mi->task == MS_TASK_CLASSIFY && !ops->supports_classifier)) {
        ms_error("%s: the %s backend does not run %s models yet; use --device cpu", mi->name,
                 ops->name, mi->d_input > 0 ? "feature-input (log-mel audio)" : "classifier");
        return MS_ERR_UNSUPPORTED;
    }
    ms_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return MS_ERR_NOMEM;
    ctx->model = model;
    ctx->params = p;
    ctx->ops = ops;
    int rc = ops->init(ctx);
    if (rc != MS_OK) {
        ops->free(ctx);
        free(ctx);
        return rc;
    }
    *out = ctx;
    return MS_OK;
}

void ms_ctx_free(ms_ctx *ctx)
{
    if (!ctx) return;
    ctx->ops->free(ctx);
    free(ctx);
}

const char *ms_ctx_backend_name(const ms_ctx *ctx) { return ctx->ops->name; }

int ms_stream_new(ms_ctx *ctx, ms_stream **out)
{
    *out = NULL;
    ms_stream *s = calloc(1, sizeof *s);
    if (!s) return MS_ERR_NOMEM;
    s->ctx = ctx;
    int rc = ctx->ops->state_alloc(ctx, s);
    if (rc != MS_OK) {
        free(s);
        ms_error("cannot allocate stream state (%zu floats)", ms_state_floats(&ctx->model->cfg));
        return rc;
    }
    *out = s;
    return MS_OK;
}

void ms_stream_free(ms_stream *s)
{
    if (!s) return;
    s->ctx->ops->state_free(s->ctx, s);
    free(s);
}

void ms_stream_reset(ms_stream *s)
{
    s->ctx->ops->state_reset(s->ctx, s);
    s->pos = 0;
}

int64_t ms_stream_pos(const ms_stream *s) { return s->pos; }

size_t ms_stream_state_size(const ms_ctx *ctx) { return ms_state_floats(&ctx->model->cfg); }

int ms_stream_state_get(const ms_stream *s, float *dst) { return s->ctx->ops->state_get(s->ctx, s, dst); }

int ms_stream_state_set(ms_stream *s, const float *src) { return s->ctx->ops->state_set(s->ctx, s, src); }

int ms_forward(ms_ctx *ctx, const ms_chunk *chunks, int n_chunks, float *logits, float *hidden)
{
    return ms_forward_cols(ctx, chunks, n_chunks, NULL, 0, logits, hidden);
}

int ms_forward_cols(ms_ctx *ctx, const ms_chunk *chunks, int n_chunks, const int *cols,
                    int n_cols, float *logits, float *hidden)
{
    const ms_model_info *mi = &ctx->model->info;
    const int n_vocab = mi->n_vocab;
    const int n_out = mi->task == MS_TASK_CLASSIFY ? mi->n_labels : n_vocab;
    if (n_chunks < 1 || n_chunks > ctx->params.max_streams) {
        ms_error("ms_forward: %d chunks, context takes 1..%d", n_chunks, ctx->params.max_streams);
        return MS_ERR_ARG;
    }
    long total = 0;
    const uint64_t mark = ++ctx->calls; /* streams named so far in this call carry it */
    for (int i = 0; i < n_chunks; i++) {
        const ms_chunk *c = &chunks[i];
        if (!c->stream || c->stream->ctx != ctx || c->n_tokens < 1) {
            ms_error("ms_forward: chunk %d has no stream of this context or no tokens", i);
            return MS_ERR_ARG;
        }
        if (c->stream->call_mark == mark) { /* O(1); pairs cost 1.3 M compares for 1,600 reads */
            int j = 0;
            while (chunks[j].stream != c->stream) j++;
            ms_error("ms_forward: chunks %d and %d share a stream", j, i);
            return MS_ERR_ARG;
        }
        c->stream->call_mark = mark;
        if (!c->tokens == !c->features) {
            ms_error("ms_forward: chunk %d must carry either tokens or features", i);
            return MS_ERR_ARG;
        }
        if (c->features && (mi->d_input < 1 || !ctx->ops->supports_features)) {
            ms_error("ms_forward: chunk %d carries features, but %s", i,
                     mi->d_input < 1 ? "the model takes tokens"
                                     : "this backend does not take feature input");
            return MS_ERR_ARG;
        }
        if (c->tokens && mi->d_input > 0) {
            ms_error("ms_forward: chunk %d carries tokens, but the model takes %d features per "
                     "position", i, mi->d_input);
            return MS_ERR_ARG;
        }
        for (int j = 0; c->tokens && j < c->n_tokens; j++)
            if (c->tokens[j] < 0 || c->tokens[j] >= n_vocab) {
                ms_error("ms_forward: chunk %d token %d is %d, vocabulary is 0..%d", i, j,
                         c->tokens[j], n_vocab - 1);
                return MS_ERR_ARG;
            }
        total += c->n_tokens;
    }
    if (total > ctx->params.max_tokens) {
        ms_error("ms_forward: %ld tokens, context takes at most %d", total, ctx->params.max_tokens);
        return MS_ERR_ARG;
    }
    if (cols) {
        if (n_cols < 1 || n_cols > n_out) {
            ms_error("ms_forward_cols: n_cols %d outside 1..%d", n_cols, n_out);
            return MS_ERR_ARG;
        }
        for (int i = 0; i < n_cols; i++)
            if (cols[i] < 0 || cols[i] >= n_out) {
                ms_error("ms_forward_cols: column %d is %d, head rows are 0..%d", i, cols[i],
                         n_out - 1);
                return MS_ERR_ARG;
            }
    }
    int rc = ctx->ops->forward(ctx, chunks, n_chunks, cols, n_cols, logits, hidden);
    if (rc == MS_OK)
        for (int i = 0; i < n_chunks; i++) {
            if (chunks[i].last) ms_stream_reset(chunks[i].stream); /* its state not kept */
            else chunks[i].stream->pos += chunks[i].n_tokens;
        }
    return rc;
}
