/* backend.h - the table of operations a compute backend provides (internal).
 *
 * The engine (engine.c) owns contexts and streams and calls only this table; nothing
 * above it knows which backend runs. A backend keeps its scratch memory in ctx->impl and
 * each stream's state (float32, layout as in ms_stream_state_get) in stream->state. */
#ifndef MS_BACKEND_H
#define MS_BACKEND_H

#include "mamba_stream.h"
#include "model.h"

typedef struct ms_backend_ops ms_backend_ops;

struct ms_ctx {
    const ms_model *model;
    ms_ctx_params params;
    const ms_backend_ops *ops;
    void *impl;                 /* backend scratch, sized by params.max_tokens/max_streams */
    uint64_t calls;             /* forward calls validated (ms_stream.call_mark) */
};

struct ms_stream {
    ms_ctx *ctx;
    void *state;                /* backend memory: per layer conv_state then ssm_state */
    int64_t pos;                /* tokens consumed since reset */
    int fresh;                  /* backend-owned (CUDA): the state is to be read as zeros,
                                 * whatever its memory holds (a reset that has not yet
                                 * touched the device); 0 once a forward has written it */
    uint64_t call_mark;         /* the ctx->calls of the last call that named this stream:
                                 * a second chunk of one call on it is refused, in O(1) */
};

struct ms_backend_ops {
    const char *name;
    int (*init)(ms_ctx *ctx);
    void (*free)(ms_ctx *ctx);
    int (*state_alloc)(ms_ctx *ctx, ms_stream *s);   /* zeroed */
    void (*state_free)(ms_ctx *ctx, ms_stream *s);
    void (*state_reset)(ms_ctx *ctx, ms_stream *s);
    int (*state_get)(ms_ctx *ctx, const ms_stream *s, float *dst);
    int (*state_set)(ms_ctx *ctx, ms_stream *s, const float *src);
    /* chunks validated by the engine (tokens in range, totals within params, distinct
     * streams). Outputs as in ms_forward; with cols != NULL, logits holds only the n_cols
     * vocabulary entries cols[] per row (ms_forward_cols). */
    int (*forward)(ms_ctx *ctx, const ms_chunk *chunks, int n_chunks, const int *cols, int n_cols,
                   float *logits, float *hidden);
    /* Optional (NULL: not tracked): the most device memory the backend has held at once
     * (weights + scratch + stream states), in bytes. */
    size_t (*peak_device_bytes)(const ms_ctx *ctx);
    /* Audio models (kept last so tables written with designated initializers stay valid;
     * 0 = not supported): feature chunks through frontend.proj (ms_chunk.features), and
     * the classifier head (logits over labels). ms_ctx_new refuses a model needing what
     * the backend lacks, with one line saying so. */
    int supports_features;
    int supports_classifier;
};

/* The backend's peak device memory in bytes, 0 where it does not track it (CPU). */
static inline size_t ms_ctx_peak_device_bytes(const ms_ctx *ctx)
{
    return ctx->ops->peak_device_bytes ? ctx->ops->peak_device_bytes(ctx) : 0;
}

const ms_backend_ops *ms_cpu_backend(void);
/* NULL when this build has no CUDA backend. */
const ms_backend_ops *ms_cuda_backend(void);

/* Floats of one stream's state over all layers. */
static inline size_t ms_state_floats(const ms_config *c)
{
    return (size_t)c->n_layer * (ms_conv_state_floats(c) + ms_ssm_state_floats(c));
}

#endif
