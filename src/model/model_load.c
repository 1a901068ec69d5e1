/* model_load.c - config + safetensors -> ms_model with float32 weights.
 *
 * Each tensor the config implies is looked up by name and checked for dtype (F32, F16,
 * BF16) and exact shape. Aligned F32 tensors are used in place in the mmap; the rest are
 * widened once into malloc'd arrays listed in model->owned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "model.h"

ms_model_params ms_model_default_params(void)
{
    ms_model_params p = {.n_threads = 0};
    return p;
}

typedef struct {
    ms_model *m;
    char where[4200]; /* the file named when a tensor is missing */
} loader;

static const char *fmt_shape(char *buf, size_t n, const int64_t *shape, int nd)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static int own(ms_model *m, float *p)
{
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 32;
        float **g = realloc(m->owned, (size_t)cap * sizeof *g);
        if (!g) return MS_ERR_NOMEM;
        m->owned = g;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return MS_OK;
}

/* Check t against the expected shape and point *dst at float32 data. */
static int use_tensor(loader *L, const ms_st_tensor *t, int nd, const int64_t *shape,
                      const float **dst)
{
    char got[256], want[256];
    if (t->dtype != MS_DT_F32 && t->dtype != MS_DT_F16 && t->dtype != MS_DT_BF16) {
        ms_error("%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", t->file, t->name,
                 ms_dtype_name(t->dtype));
        return MS_ERR_MODEL;
    }
    int same = t->n_dim == nd;
    for (int i = 0; same && i < nd; i++) same = t->shape[i] == shape[i];
    if (!same) {
        ms_error("%s: tensor '%s' has shape %s, config expects %s", t->file, t->name,
                 fmt_shape(got, sizeof got, t->shape, t->n_dim), fmt_shape(want, sizeof want, shape, nd));
        return MS_ERR_MODEL;
    }
    if (t->dtype == MS_DT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *dst = t->data;
        return MS_OK;
    }
    float *w = malloc((size_t)(t->n_elem ? t->n_elem : 1) * sizeof *w);
    if (!w || own(L->m, w) != MS_OK) {
        free(w);
        ms_error("%s: tensor '%s': out of memory", t->file, t->name);
        return MS_ERR_NOMEM;
    }
    *dst = w;
    return ms_st_to_f32(t, w);
}

/* Bind a required tensor of up to 3 dims (unused dims < 0). */
static int need(loader *L, const char *name, int64_t d0, int64_t d1, int64_t d2, const float **dst)
{
    const ms_st_tensor *t = ms_st_find(L->m->files, name);
    int64_t shape[3] = {d0, d1, d2};
    int nd = d2 >= 0 ? 3 : d1 >= 0 ? 2 : 1;
    if (!t) {
        ms_error("%s: missing tensor '%s'", L->where, name);
        return MS_ERR_MODEL;
    }
    return use_tensor(L, t, nd, shape, dst);
}

/* Tensor name of layer i: "backbone.layers.{i}.<suffix>". */
static const char *layer_name(char *buf, size_t n, int i, const char *suffix)
{
    snprintf(buf, n, "backbone.layers.%d.%s", i, suffix);
    return buf;
}

static int bind_layer(loader *L, int i, ms_layer_weights *w)
{
    const ms_config *c = &L->m->cfg;
    const int64_t D = c->d_model, E = c->d_inner, N = c->d_state, R = c->dt_rank, H = c->n_heads;
    const int64_t conv = ms_conv_dim(c), rows = ms_in_proj_rows(c);
    char b[256];
    int rc;
#define NEED(sfx, d0, d1, d2, dst) \
    if ((rc = need(L, layer_name(b, sizeof b, i, sfx), d0, d1, d2, dst))) return rc
    NEED("norm.weight", D, -1, -1, &w->norm_w);
    if (!c->rms_norm) NEED("norm.bias", D, -1, -1, &w->norm_b);
    NEED("mixer.in_proj.weight", rows, D, -1, &w->in_proj_w);
    if (c->use_bias) NEED("mixer.in_proj.bias", rows, -1, -1, &w->in_proj_b);
    NEED("mixer.conv1d.weight", conv, 1, c->d_conv, &w->conv_w);
    if (c->use_conv_bias) NEED("mixer.conv1d.bias", conv, -1, -1, &w->conv_b);
    if (c->arch == MS_ARCH_MAMBA1) {
        NEED("mixer.x_proj.weight", R + 2 * N, E, -1, &w->x_proj_w);
        NEED("mixer.dt_proj.weight", E, R, -1, &w->dt_proj_w);
        NEED("mixer.dt_proj.bias", E, -1, -1, &w->dt_proj_b);
        NEED("mixer.A_log", E, N, -1, &w->A_log);
        NEED("mixer.D", E, -1, -1, &w->D);
    } else {
        NEED("mixer.dt_bias", H, -1, -1, &w->dt_bias);
        NEED("mixer.A_log", H, -1, -1, &w->A_log);
        NEED("mixer.D", H, -1, -1, &w->D);
        NEED("mixer.norm.weight", E, -1, -1, &w->gnorm_w);
    }
    NEED("mixer.out_proj.weight", D, E, -1, &w->out_proj_w);
    if (c->use_bias) NEED("mixer.out_proj.bias", D, -1, -1, &w->out_proj_b);
#undef NEED
    return MS_OK;
}

/* An optional tensor: bound when present (and then checked), left NULL when absent. */
static int maybe(loader *L, const char *name, int64_t d0, int64_t d1, const float **dst)
{
    if (!ms_st_find(L->m->files, name)) return MS_OK;
    return need(L, name, d0, d1, -1, dst);
}

/* The input end: frontend.proj for a log-mel model (an embedding, if the exporter kept
 * one, is ignored), else the embedding under the layout's name or the other layout's. */
static int bind_input(loader *L)
{
    ms_model *m = L->m;
    const ms_config *c = &m->cfg;
    if (m->info.d_input > 0) {
        int rc = need(L, "frontend.proj.weight", c->d_model, m->info.d_input, -1, &m->feat_proj_w);
        return rc ? rc : maybe(L, "frontend.proj.bias", c->d_model, -1, &m->feat_proj_b);
    }
    const char *names[2] = {"backbone.embeddings.weight", "backbone.embedding.weight"};
    const char *emb = c->mamba_ssm_layout ? names[1] : names[0];
    if (!ms_st_find(m->files, emb) && ms_st_find(m->files, c->mamba_ssm_layout ? names[0] : names[1]))
        emb = c->mamba_ssm_layout ? names[0] : names[1];
    return need(L, emb, c->n_vocab, c->d_model, -1, &m->embedding);
}

/* Input end, final norm, then the head: classifier.weight for task classify, else
 * lm_head or the tied embedding. */
static int bind_ends(loader *L)
{
    ms_model *m = L->m;
    const ms_config *c = &m->cfg;
    int rc;
    if ((rc = bind_input(L)) ||
        (rc = need(L, "backbone.norm_f.weight", c->d_model, -1, -1, &m->norm_f_w)))
        return rc;
    if (!c->rms_norm && (rc = need(L, "backbone.norm_f.bias", c->d_model, -1, -1, &m->norm_f_b)))
        return rc;
    if (m->audio.task == MS_TASK_CLASSIFY) {
        const int n = m->audio.n_labels;
        if ((rc = need(L, "classifier.weight", n, c->d_model, -1, &m->classifier_w))) return rc;
        return maybe(L, "classifier.bias", n, -1, &m->classifier_b);
    }
    if (!m->embedding) {
        ms_error("%s: a model with a log-mel front end needs \"task\": \"classify\" (no "
                 "token embedding to tie an LM head to)", L->where);
        return MS_ERR_MODEL;
    }
    if (ms_st_find(m->files, "lm_head.weight"))
        return need(L, "lm_head.weight", c->n_vocab, c->d_model, -1, &m->lm_head);
    if (!c->tie_embeddings) {
        ms_error("%s: missing tensor 'lm_head.weight' (embeddings are not tied)", L->where);
        return MS_ERR_MODEL;
    }
    m->lm_head = m->embedding;
    return MS_OK;
}

static void fill_info(ms_model *m, const char *dir)
{
    const ms_config *c = &m->cfg;
    ms_model_info *in = &m->info;
    in->arch = c->arch;
    in->falcon = c->falcon;
    in->d_model = c->d_model;
    in->n_layer = c->n_layer;
    in->n_vocab = c->n_vocab;
    in->d_inner = c->d_inner;
    in->d_state = c->d_state;
    in->d_conv = c->d_conv;
    in->dt_rank = c->arch == MS_ARCH_MAMBA1 ? c->dt_rank : 0;
    in->n_heads = c->arch == MS_ARCH_MAMBA2 ? c->n_heads : 0;
    in->head_dim = c->arch == MS_ARCH_MAMBA2 ? c->head_dim : 0;
    in->n_groups = c->arch == MS_ARCH_MAMBA2 ? c->n_groups : 0;
    snprintf(in->name, sizeof in->name, "%s", dir);
    const ms_audio_config *a = &m->audio;
    in->task = a->task;
    in->n_labels = a->n_labels;
    in->labels = (const char *const *)a->labels;
    in->pooling = a->pooling;
    in->frontend = a->frontend;
    in->d_input = a->frontend.type == MS_FRONTEND_LOGMEL ? a->frontend.n_mels : 0;
    if (in->d_input > 0) in->n_vocab = 0; /* no token input */
}

/* Checks across the audio section and the backbone config. */
static int check_audio(const ms_model *m, const char *dir)
{
    const ms_frontend_params *f = &m->audio.frontend;
    if (f->type == MS_FRONTEND_MULAW && (1 << f->bits) > m->cfg.n_vocab) {
        ms_error("%s/config.json: mu-law with %d bits needs %d tokens, vocab_size is %d", dir,
                 f->bits, 1 << f->bits, m->cfg.n_vocab);
        return MS_ERR_MODEL;
    }
    return MS_OK;
}

int ms_model_load(const char *dir, const ms_model_params *params, ms_model **out)
{
    cJSON *root = NULL;
    loader L = {0};
    char b[256];
    int rc;
    if (!out || !dir || !dir[0]) {
        ms_error("ms_model_load: no model directory given");
        return MS_ERR_ARG;
    }
    *out = NULL;
    ms_model *m = calloc(1, sizeof *m);
    if (!m) {
        ms_error("%s: out of memory", dir);
        return MS_ERR_NOMEM;
    }
    L.m = m;
    m->params = params ? *params : ms_model_default_params();
    if ((rc = ms_config_load(dir, &m->cfg, &root))) goto fail;
    snprintf(L.where, sizeof L.where, "%s/config.json", dir);
    if ((rc = ms_audio_config_parse(L.where, root, &m->audio)) || (rc = check_audio(m, dir)))
        goto fail;
    fill_info(m, dir);
    if ((rc = ms_alphabet_load(dir, root, &m->cfg, &m->info))) goto fail;
    if ((rc = ms_st_open_dir(dir, &m->files))) goto fail;
    snprintf(L.where, sizeof L.where, "%s/%s", dir, "model.safetensors.index.json");
    if (access(L.where, F_OK) != 0) snprintf(L.where, sizeof L.where, "%s/model.safetensors", dir);
    if ((rc = bind_ends(&L))) goto fail;
    /* A config promising more layers than the file holds fails here, before allocating. */
    if (!ms_st_find(m->files, layer_name(b, sizeof b, m->cfg.n_layer - 1, "norm.weight"))) {
        ms_error("%s: missing tensor '%s' (config has %d layers)", L.where, b, m->cfg.n_layer);
        rc = MS_ERR_MODEL;
        goto fail;
    }
    m->layers = calloc((size_t)m->cfg.n_layer, sizeof *m->layers);
    if (!m->layers) {
        ms_error("%s: out of memory for %d layers", dir, m->cfg.n_layer);
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < m->cfg.n_layer; i++)
        if ((rc = bind_layer(&L, i, &m->layers[i]))) goto fail;
    cJSON_Delete(root);
    *out = m;
    return MS_OK;
fail:
    cJSON_Delete(root);
    ms_model_free(m);
    return rc;
}

void ms_model_free(ms_model *model)
{
    if (!model) return;
    for (int i = 0; i < model->n_owned; i++) free(model->owned[i]);
    free(model->owned);
    free(model->layers);
    ms_st_close(model->files);
    ms_audio_config_free(&model->audio);
    free(model);
}

const ms_model_info *ms_model_info_get(const ms_model *model) { return model ? &model->info : NULL; }
