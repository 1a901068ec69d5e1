/* model.h - the loaded model: configuration and float32 weights (internal).
 *
 * Shapes follow mamba_ssm / transformers (row-major, [out][in] for linear layers) so the
 * forward pass reads beside theirs. Weights stored in the file as F16/BF16 are widened to
 * float32 once at load; F32 tensors point into the mmap'd safetensors file. */
#ifndef MS_MODEL_H
#define MS_MODEL_H

#include "audio_config.h"
#include "mamba_stream.h"
#include "safetensors.h"

typedef struct {
    ms_arch arch;
    int falcon;            /* FalconMamba: weightless RMSNorm on B, C and dt input */
    int mamba_ssm_layout;  /* 1: mamba_ssm names (backbone.embedding.weight) */
    int d_model, n_layer;
    int vocab_size;        /* from the config */
    int n_vocab;           /* rows of embedding / head (vocab padded as mamba_ssm does) */
    int d_inner, d_state, d_conv;
    int dt_rank;                       /* Mamba-1 */
    int n_heads, head_dim, n_groups;   /* Mamba-2 */
    int use_bias;          /* in_proj / out_proj biases */
    int use_conv_bias;
    int rms_norm;          /* 1: RMSNorm, 0: LayerNorm (with bias) in blocks and final norm */
    int residual_in_fp32;
    int tie_embeddings;
    float norm_eps;        /* layer_norm_epsilon / norm_epsilon */
    float mixer_rms_eps;   /* FalconMamba */
    float dt_min, dt_max;  /* Mamba-2 time_step_limit (clamp after softplus); 0, +inf = none */
} ms_config;

/* One layer's weights; NULL where the config has no such tensor. */
typedef struct {
    const float *norm_w;     /* [d_model] */
    const float *norm_b;     /* [d_model] LayerNorm only */
    const float *in_proj_w;  /* M1 [2*d_inner][d_model]; M2 [d_in_proj][d_model] */
    const float *in_proj_b;  /* same rows */
    const float *conv_w;     /* [conv_dim][d_conv]  (file: [conv_dim][1][d_conv]) */
    const float *conv_b;     /* [conv_dim] */
    const float *x_proj_w;   /* M1 [dt_rank + 2*d_state][d_inner] */
    const float *dt_proj_w;  /* M1 [d_inner][dt_rank] */
    const float *dt_proj_b;  /* M1 [d_inner] */
    const float *dt_bias;    /* M2 [n_heads] */
    const float *A_log;      /* M1 [d_inner][d_state]; M2 [n_heads] */
    const float *D;          /* M1 [d_inner]; M2 [n_heads] */
    const float *gnorm_w;    /* M2 gated RMSNorm [d_inner] */
    const float *out_proj_w; /* [d_model][d_inner] */
    const float *out_proj_b; /* [d_model] */
} ms_layer_weights;

struct ms_model {
    ms_config cfg;
    ms_model_info info;
    ms_model_params params;
    const float *embedding;  /* [n_vocab][d_model] */
    const float *norm_f_w;   /* [d_model] */
    const float *norm_f_b;   /* [d_model] LayerNorm only */
    const float *lm_head;    /* [n_vocab][d_model]; == embedding when tied; NULL for a
                              * classifier or a feature-input model */
    /* Audio models: the input projection replacing the embedding (logmel) and the
     * classifier head (task classify); NULL otherwise. */
    const float *feat_proj_w;  /* [d_model][d_input] frontend.proj.weight */
    const float *feat_proj_b;  /* [d_model] frontend.proj.bias, optional */
    const float *classifier_w; /* [n_labels][d_model] classifier.weight */
    const float *classifier_b; /* [n_labels] classifier.bias, optional */
    ms_audio_config audio;     /* task, labels, pooling, front end (owns labels) */
    ms_layer_weights *layers; /* [n_layer] */
    ms_st_set *files;        /* the open safetensors files (mmap'd) */
    float **owned;           /* widened copies, freed with the model */
    int n_owned, cap_owned;
};

/* Derived sizes. */
static inline int ms_conv_dim(const ms_config *c)
{
    return c->arch == MS_ARCH_MAMBA1 ? c->d_inner : c->d_inner + 2 * c->n_groups * c->d_state;
}
static inline int ms_in_proj_rows(const ms_config *c)
{
    return c->arch == MS_ARCH_MAMBA1 ? 2 * c->d_inner
                                     : 2 * c->d_inner + 2 * c->n_groups * c->d_state + c->n_heads;
}
/* Floats of SSM state per layer. */
static inline size_t ms_ssm_state_floats(const ms_config *c)
{
    return c->arch == MS_ARCH_MAMBA1 ? (size_t)c->d_inner * c->d_state
                                     : (size_t)c->n_heads * c->head_dim * c->d_state;
}
static inline size_t ms_conv_state_floats(const ms_config *c)
{
    return (size_t)ms_conv_dim(c) * (c->d_conv - 1);
}

#endif
