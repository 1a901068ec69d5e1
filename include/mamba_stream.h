/*
 * mamba_stream.h - run Mamba-1 / Mamba-2 models over very long streams.
 *
 * Usage (error checks elided; every call below returns MS_OK or a negative code):
 *
 *     ms_model *model;
 *     ms_model_params mp = ms_model_default_params();
 *     ms_model_load("models/dna", &mp, &model);          // config.json + safetensors
 *
 *     ms_ctx_params cp = ms_ctx_default_params();
 *     cp.max_tokens = 4096;                              // tokens per forward call
 *     ms_ctx *ctx;
 *     ms_ctx_new(model, &cp, &ctx);                      // backend + scratch memory
 *
 *     ms_stream *s;
 *     ms_stream_new(ctx, &s);                            // zeroed conv + SSM state
 *     ms_chunk c = { .stream = s, .tokens = ids, .n_tokens = n };
 *     float *logits = malloc(n * ms_model_info_get(model)->n_vocab * sizeof(float));
 *     ms_forward(ctx, &c, 1, logits, NULL);             // state carried to the next call
 *
 * Audio models (info->d_input > 0, e.g. log-mel frames from the front end that
 * info->frontend declares) take features instead of tokens, and a classifier
 * (info->task == MS_TASK_CLASSIFY) gives label logits per position:
 *
 *     ms_chunk a = { .stream = s, .n_tokens = n_frames, .features = frames }; // [n][d_input]
 *     ms_forward(ctx, &a, 1, label_logits, NULL);       // [n_frames][info->n_labels]
 *
 * Thread safety: a loaded ms_model is immutable and may be shared by any number of
 * threads. An ms_ctx (and the streams made from it) belongs to one thread at a time.
 *
 * Return contract: functions returning int give MS_OK (0) on success and a negative
 * ms_status on failure; a one-line reason naming the file / tensor / field at fault has
 * then been written through the log callback (stderr by default). The library never
 * calls exit().
 */
#ifndef MAMBA_STREAM_H
#define MAMBA_STREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MS_CHECK __attribute__((warn_unused_result))
#else
#define MS_CHECK
#endif

typedef enum {
    MS_OK = 0,
    MS_ERR_IO = -2,        /* a file could not be opened, read or written */
    MS_ERR_FORMAT = -3,    /* a file is malformed (JSON, safetensors header, FASTA, ...) */
    MS_ERR_MODEL = -4,     /* config or tensors inconsistent: missing, wrong shape/dtype */
    MS_ERR_NOMEM = -5,     /* allocation failed */
    MS_ERR_ARG = -6,       /* a caller passed something out of range */
    MS_ERR_BACKEND = -7,   /* the requested backend is unavailable or failed */
    MS_ERR_UNSUPPORTED = -8 /* a model feature this build does not implement */
} ms_status;

/* A short English name for a status code ("format error", ...). */
const char *ms_status_str(int status);

/* Log sink for the one-line error messages and warnings. level: 0 error, 1 warning,
 * 2 info. Default writes "mamba-stream: <msg>\n" to stderr. NULL restores it. */
typedef void (*ms_log_fn)(int level, const char *msg, void *user);
void ms_set_log(ms_log_fn fn, void *user);

/* ------------------------------------------------------------------ model */

typedef enum { MS_ARCH_MAMBA1 = 1, MS_ARCH_MAMBA2 = 2 } ms_arch;

typedef enum {
    MS_DEVICE_CPU = 0,
    MS_DEVICE_CUDA = 1
} ms_device_kind;

typedef struct {
    int n_threads;  /* CPU threads for the engine; 0 = all cores */
} ms_model_params;

/* What a model computes (config.json "mamba_stream": {"task": ...}). */
typedef enum {
    MS_TASK_LM = 0,       /* next-token logits over the vocabulary (lm_head) */
    MS_TASK_CLASSIFY = 1  /* label logits per position (classifier.weight on the final norm) */
} ms_task;

/* How a classifier's per-position predictions become one per clip. */
typedef enum {
    MS_POOL_LAST = 0,     /* the last position's logits */
    MS_POOL_MEAN = 1      /* the mean of all positions' logits (= classifier of the mean
                           * final-norm output, the head being affine) */
} ms_pooling;

typedef enum { MS_FRONTEND_NONE = 0, MS_FRONTEND_LOGMEL = 1, MS_FRONTEND_MULAW = 2 } ms_frontend_type;
typedef enum { MS_WINDOW_HANN = 0, MS_WINDOW_HAMMING = 1 } ms_window_type;
typedef enum { MS_MEL_HTK = 0, MS_MEL_SLANEY = 1 } ms_mel_scale;

/* An audio model's front end, as declared in config.json (docs/model-format.md holds the
 * exact definition of every step). Samples are mono float in [-1, 1) at sample_rate. */
typedef struct {
    ms_frontend_type type;
    int sample_rate;       /* Hz */
    /* logmel: frame t covers samples [t*hop_length, t*hop_length + win_length) */
    int win_length, hop_length, n_fft, n_mels;
    ms_window_type window;
    ms_mel_scale mel_scale;
    float fmin, fmax;      /* Hz, edges of the mel filterbank */
    float preemphasis;     /* y[n] = x[n] - preemphasis * x[n-1] over the stream, x[-1] = 0 */
    float log_floor;       /* feature = ln(max(mel_energy, log_floor)) */
    const float *norm_mean, *norm_std; /* [n_mels] or NULL: (feature - mean) / std */
    /* mulaw: one token per sample, 2^bits tokens */
    int bits;
} ms_frontend_params;

ms_model_params ms_model_default_params(void);

/* What a loaded model is; stable for the model's lifetime. */
typedef struct {
    ms_arch arch;
    int falcon;          /* 1 for FalconMamba (extra weightless norms on B, C, dt) */
    int d_model;
    int n_layer;
    int n_vocab;         /* rows of the head: logits per position (padded vocab) */
    int d_inner;
    int d_state;
    int d_conv;
    int dt_rank;         /* Mamba-1 */
    int n_heads;         /* Mamba-2 */
    int head_dim;        /* Mamba-2 */
    int n_groups;        /* Mamba-2 */
    /* Input alphabet (from tokenizer files or the config's "mamba_stream" section).
     * token_of_char[c] is the token for byte c (upper and lower case alike), or -1. */
    int has_alphabet;
    int16_t token_of_char[256];
    int base_token[4];   /* tokens of A, C, G, T; -1 when absent */
    int bos_token;       /* -1 when the model names no BOS token */
    int unk_token;       /* token for letters outside the alphabet (N if present, else UNK) */
    char name[256];      /* model directory as given */
    /* Audio models (the "mamba_stream" section's task / labels / pooling / frontend).
     * d_input > 0: the model takes feature chunks (ms_chunk.features) of d_input floats
     * per position through frontend.proj instead of tokens; n_vocab is then 0. */
    int d_input;
    ms_task task;
    int n_labels;                 /* classify: logits per position (0 for LM) */
    const char *const *labels;    /* [n_labels], owned by the model */
    ms_pooling pooling;
    ms_frontend_params frontend;  /* type MS_FRONTEND_NONE for token (DNA) models */
} ms_model_info;

typedef struct ms_model ms_model;

/* Load a model directory: config.json + model.safetensors (or shards listed in
 * model.safetensors.index.json) + optional tokenizer files. Layouts: Hugging Face
 * MambaForCausalLM / Mamba2ForCausalLM / FalconMambaForCausalLM and mamba_ssm
 * (MambaConfig with ssm_cfg). Weights of dtype F32/F16/BF16 are checked against the
 * config by name, dtype and shape. Returns MS_OK and *out, or a negative status. */
MS_CHECK int ms_model_load(const char *dir, const ms_model_params *params, ms_model **out);
void ms_model_free(ms_model *model);
const ms_model_info *ms_model_info_get(const ms_model *model);

/* -------------------------------------------------------------- contexts */

typedef enum {
    MS_PREC_FP32 = 0,  /* float32 everywhere (CUDA: TF32 off) - the check mode */
    MS_PREC_BF16 = 1,  /* bf16 weights and activations, float32 accumulation and state */
    MS_PREC_FP16 = 2   /* fp16 likewise */
} ms_precision;

typedef struct {
    ms_device_kind device;
    ms_precision precision; /* CPU: MS_PREC_FP32 only */
    int device_index;    /* CUDA device ordinal */
    int max_tokens;      /* most tokens (summed over chunks) one ms_forward call takes */
    int max_streams;     /* most chunks one ms_forward call takes */
} ms_ctx_params;

ms_ctx_params ms_ctx_default_params(void);

typedef struct ms_ctx ms_ctx;
typedef struct ms_stream ms_stream;

/* A context: one backend instance and its scratch memory, sized by max_tokens and
 * max_streams, never by sequence length. */
MS_CHECK int ms_ctx_new(const ms_model *model, const ms_ctx_params *params, ms_ctx **out);
void ms_ctx_free(ms_ctx *ctx);
const char *ms_ctx_backend_name(const ms_ctx *ctx);

/* ---------------------------------------------------------------- streams */

/* A stream's recurrent state (conv + SSM for every layer, float32), zeroed: the state
 * before the first token of a sequence. */
MS_CHECK int ms_stream_new(ms_ctx *ctx, ms_stream **out);
void ms_stream_free(ms_stream *stream);
void ms_stream_reset(ms_stream *stream);
/* Tokens consumed since the last reset. */
int64_t ms_stream_pos(const ms_stream *stream);

/* Size in floats of a stream's state, and copies of it to / from host memory in the
 * layout: for each layer, conv_state [conv_dim][d_conv-1] then ssm_state
 * ([d_inner][d_state] for Mamba-1, [n_heads][head_dim][d_state] for Mamba-2). */
size_t ms_stream_state_size(const ms_ctx *ctx);
MS_CHECK int ms_stream_state_get(const ms_stream *stream, float *dst);
MS_CHECK int ms_stream_state_set(ms_stream *stream, const float *src);

/* ---------------------------------------------------------------- forward */

/* A slice of one stream: either tokens (token models) or features (models with
 * d_input > 0, e.g. log-mel frames); exactly one of the two is non-NULL. */
typedef struct {
    ms_stream *stream;
    const int32_t *tokens;  /* [n_tokens], each in [0, n_vocab) */
    int n_tokens;           /* >= 1 (positions: tokens or feature rows) */
    const float *features;  /* [n_tokens][d_input] */
    int last;               /* nonzero: the stream ends with this chunk (a read, a clip, a
                             * record's end): afterwards it is as after ms_stream_reset, and
                             * a backend need not write the final state (CUDA: Mamba-2
                             * calls of whole reads then skip the chunk-state product) */
} ms_chunk;

/* Run a batch of chunks, each from a different stream, each continuing from its
 * stream's state and leaving it updated. Outputs are concatenated in chunk order:
 *   logits  [sum n_tokens][n_out]     (may be NULL); n_out = n_vocab for an LM,
 *                                     n_labels for a classifier (task classify)
 *   hidden  [sum n_tokens][d_model]   backbone output after the final norm (may be NULL)
 * Results do not depend on how a sequence is cut into chunks (to float rounding).
 * Returns MS_OK, MS_ERR_ARG for a token out of range / too many tokens / a stream used
 * twice in one call / tokens given to a feature model or the reverse, or a backend
 * error. Both backends run audio models (feature input, classifier head). */
MS_CHECK int ms_forward(ms_ctx *ctx, const ms_chunk *chunks, int n_chunks, float *logits,
                        float *hidden);

/* As ms_forward, but the logits of only n_cols head rows cols[] (vocabulary entries,
 * or labels of a classifier) are computed:
 *   logits [sum n_tokens][n_cols]
 * (scoring DNA needs the four base tokens' logits, not the whole head). */
MS_CHECK int ms_forward_cols(ms_ctx *ctx, const ms_chunk *chunks, int n_chunks, const int *cols,
                             int n_cols, float *logits, float *hidden);

#ifdef __cplusplus
}
#endif
#endif
