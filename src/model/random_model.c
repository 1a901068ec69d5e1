/* random_model.c - random-weight model directories in the Hugging Face layout. */
#include "random_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

ms_random_spec ms_random_spec_reference(ms_arch arch)
{
    ms_random_spec s = {
        .arch = arch, .d_model = 768, .n_layer = 24, .vocab = 16, .d_state = 16, .d_conv = 4,
        .expand = 2, .head_dim = 64, .n_groups = 1, .dtype = MS_DT_BF16, .seed = 1,
    };
    if (arch == MS_ARCH_MAMBA2) s.d_state = 128;
    return s;
}

ms_random_spec ms_random_spec_kws(void)
{
    ms_random_spec s = {
        .arch = MS_ARCH_MAMBA1, .d_model = 64, .n_layer = 2, .vocab = 16, .d_state = 16,
        .d_conv = 4, .expand = 2, .head_dim = 32, .n_groups = 1, .dtype = MS_DT_F32, .seed = 7,
        .frontend = MS_FRONTEND_LOGMEL, .n_labels = 12, .n_mels = 40, .sample_rate = 16000,
        .pooling_mean = 1,
    };
    return s;
}

void ms_random_label(int i, char *buf, int n)
{
    static const char *const kw[] = {"_silence_", "_unknown_", "yes", "no", "up", "down",
                                      "left", "right", "on", "off", "stop", "go"};
    if (i < 12) snprintf(buf, n, "%s", kw[i]);
    else snprintf(buf, n, "extra%d", i);
}

/* The "mamba_stream" section of an audio classifier (spec->frontend != NONE). */
static void write_audio_section(FILE *f, const ms_random_spec *s)
{
    char lab[32];
    fprintf(f, ",\n \"mamba_stream\": {\"task\": \"classify\", \"pooling\": \"%s\", \"labels\": [",
            s->pooling_mean ? "mean" : "last");
    for (int i = 0; i < s->n_labels; i++) {
        ms_random_label(i, lab, sizeof lab);
        fprintf(f, "%s\"%s\"", i ? ", " : "", lab);
    }
    int n_fft = 2;
    while (n_fft < s->sample_rate / 40) n_fft *= 2;
    if (s->frontend == MS_FRONTEND_LOGMEL)
        fprintf(f, "],\n  \"frontend\": {\"type\": \"logmel\", \"sample_rate\": %d, \"win_length\": %d,"
                " \"hop_length\": %d, \"n_fft\": %d, \"window\": \"hann\", \"n_mels\": %d,"
                " \"fmin\": 20, \"fmax\": %d, \"preemphasis\": 0.97, \"log_floor\": 1e-6,"
                " \"mel_scale\": \"htk\"}}",
                s->sample_rate, s->sample_rate / 40, s->sample_rate / 100, n_fft, s->n_mels,
                s->sample_rate * 19 / 40);
    else
        fprintf(f, "],\n  \"frontend\": {\"type\": \"mulaw\", \"sample_rate\": %d, \"bits\": 8}}",
                s->sample_rate);
}

/* splitmix64: a small deterministic generator, so a benchmark's weights are repeatable */
static double urand(uint64_t *st)
{
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (z >> 11) * (1.0 / 9007199254740992.0);
}

static uint16_t to_half_bits(float f, ms_dtype dt)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if (dt == MS_DT_BF16) return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16); /* RNE */
    /* float -> IEEE half, round to nearest (values here are normal and small) */
    uint32_t sign = (x >> 16) & 0x8000;
    int exp = (int)((x >> 23) & 0xFF) - 127 + 15;
    uint32_t mant = x & 0x7FFFFF;
    if (exp <= 0) return (uint16_t)sign; /* flush tiny values: fine for random weights */
    if (exp >= 31) return (uint16_t)(sign | 0x7C00);
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
    if ((mant & 0x1FFF) > 0x1000 || ((mant & 0x1FFF) == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

typedef struct {
    ms_st_out *t;
    void **bufs;
    int n, cap;
    ms_dtype dt;
    uint64_t rng;
} tensor_list;

/* Add a tensor of the given shape: kind 0 = U(-scale, scale), 1 = constant scale,
 * 2 = A_log rows log(1..cols), 3 = dt bias (inverse softplus of dt in [1e-3, 1e-1]). */
static int add(tensor_list *l, const char *name, int n_dim, int64_t d0, int64_t d1, int64_t d2,
               int kind, double scale)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, sizeof *l->t * l->cap);
        l->bufs = realloc(l->bufs, sizeof *l->bufs * l->cap);
        if (!l->t || !l->bufs) return MS_ERR_NOMEM;
    }
    int64_t shape[3] = {d0, d1, d2}, n = 1;
    for (int i = 0; i < n_dim; i++) n *= shape[i];
    size_t es = l->dt == MS_DT_F32 ? 4 : 2;
    void *buf = malloc(es * n);
    char *nm = strdup(name);
    if (!buf || !nm) { free(buf); free(nm); return MS_ERR_NOMEM; }
    for (int64_t i = 0; i < n; i++) {
        float v;
        if (kind == 0) v = (float)((2 * urand(&l->rng) - 1) * scale);
        else if (kind == 1) v = (float)scale;
        else if (kind == 2) v = logf((float)(1 + (n_dim > 1 ? i % shape[1] : i % 16)));
        else {
            double dtv = exp(log(1e-3) + urand(&l->rng) * (log(1e-1) - log(1e-3)));
            v = (float)(dtv + log(-expm1(-dtv))); /* softplus^-1 */
        }
        if (l->dt == MS_DT_F32) ((float *)buf)[i] = v;
        else ((uint16_t *)buf)[i] = to_half_bits(v, l->dt);
    }
    ms_st_out *o = &l->t[l->n];
    memset(o, 0, sizeof *o);
    o->name = nm;
    o->dtype = l->dt;
    o->n_dim = n_dim;
    for (int i = 0; i < n_dim; i++) o->shape[i] = shape[i];
    o->data = buf;
    l->bufs[l->n++] = buf;
    return MS_OK;
}

int ms_random_model_write(const ms_random_spec *s, const char *dir)
{
    const int D = s->d_model, E = s->expand * s->d_model, N = s->d_state, K = s->d_conv;
    const int R = (D + 15) / 16;
    const int H = s->arch == MS_ARCH_MAMBA2 ? E / s->head_dim : 0, G = s->n_groups;
    if (s->arch == MS_ARCH_MAMBA2 && (E % s->head_dim || H % G)) {
        ms_error("random model: d_inner %d must be a multiple of head_dim %d and heads of groups", E,
                 s->head_dim);
        return MS_ERR_ARG;
    }
    if (s->frontend != MS_FRONTEND_NONE &&
        (s->n_labels < 1 || (s->frontend == MS_FRONTEND_LOGMEL && s->n_mels < 1) ||
         (s->frontend == MS_FRONTEND_MULAW && s->vocab < 256) || s->sample_rate < 1000)) {
        ms_error("random model: an audio classifier needs n_labels, n_mels (logmel), vocab >= "
                 "256 (mulaw) and sample_rate >= 1000");
        return MS_ERR_ARG;
    }
    tensor_list l = {.dt = s->dtype, .rng = s->seed};
    int rc;
    if (s->frontend == MS_FRONTEND_LOGMEL) {
        rc = add(&l, "frontend.proj.weight", 2, D, s->n_mels, 0, 0, 1 / sqrt(s->n_mels));
        if (rc == MS_OK) rc = add(&l, "frontend.proj.bias", 1, D, 0, 0, 0, 0.1);
    } else {
        rc = add(&l, "backbone.embeddings.weight", 2, s->vocab, D, 0, 0, 1.0);
    }
    char nm[128];
    for (int i = 0; rc == MS_OK && i < s->n_layer; i++) {
#define T(suffix) (snprintf(nm, sizeof nm, "backbone.layers.%d.%s", i, suffix), nm)
        rc |= add(&l, T("norm.weight"), 1, D, 0, 0, 1, 1.0);
        if (s->arch == MS_ARCH_MAMBA1) {
            rc |= add(&l, T("mixer.in_proj.weight"), 2, 2 * E, D, 0, 0, 1 / sqrt(D));
            rc |= add(&l, T("mixer.conv1d.weight"), 3, E, 1, K, 0, 1 / sqrt(K));
            rc |= add(&l, T("mixer.conv1d.bias"), 1, E, 0, 0, 0, 1 / sqrt(K));
            rc |= add(&l, T("mixer.x_proj.weight"), 2, R + 2 * N, E, 0, 0, 1 / sqrt(E));
            rc |= add(&l, T("mixer.dt_proj.weight"), 2, E, R, 0, 0, 1 / sqrt(R));
            rc |= add(&l, T("mixer.dt_proj.bias"), 1, E, 0, 0, 3, 0);
            rc |= add(&l, T("mixer.A_log"), 2, E, N, 0, 2, 0);
            rc |= add(&l, T("mixer.D"), 1, E, 0, 0, 1, 1.0);
        } else {
            const int conv_dim = E + 2 * G * N;
            rc |= add(&l, T("mixer.in_proj.weight"), 2, 2 * E + 2 * G * N + H, D, 0, 0, 1 / sqrt(D));
            rc |= add(&l, T("mixer.conv1d.weight"), 3, conv_dim, 1, K, 0, 1 / sqrt(K));
            rc |= add(&l, T("mixer.conv1d.bias"), 1, conv_dim, 0, 0, 0, 1 / sqrt(K));
            rc |= add(&l, T("mixer.dt_bias"), 1, H, 0, 0, 3, 0);
            rc |= add(&l, T("mixer.A_log"), 1, H, 0, 0, 2, 0);
            rc |= add(&l, T("mixer.D"), 1, H, 0, 0, 1, 1.0);
            rc |= add(&l, T("mixer.norm.weight"), 1, E, 0, 0, 1, 1.0);
        }
        rc |= add(&l, T("mixer.out_proj.weight"), 2, D, E, 0, 0, 1 / sqrt(E) / sqrt(2.0 * s->n_layer));
#undef T
    }
    if (rc == MS_OK) rc = add(&l, "backbone.norm_f.weight", 1, D, 0, 0, 1, 1.0);
    if (rc == MS_OK && s->frontend != MS_FRONTEND_NONE) {
        rc = add(&l, "classifier.weight", 2, s->n_labels, D, 0, 0, 1 / sqrt(D));
        if (rc == MS_OK) rc = add(&l, "classifier.bias", 1, s->n_labels, 0, 0, 0, 0.1);
    }
    if (rc != MS_OK) rc = MS_ERR_NOMEM;
    char path[4096];
    if (rc == MS_OK) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = ms_st_write(path, l.t, l.n);
    }
    if (rc == MS_OK) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "w");
        if (!f) {
            ms_error("%s: cannot write", path);
            rc = MS_ERR_IO;
        } else {
            const char *dts = s->dtype == MS_DT_F32 ? "float32" : s->dtype == MS_DT_BF16 ? "bfloat16" : "float16";
            if (s->arch == MS_ARCH_MAMBA1)
                fprintf(f, "{\"architectures\": [\"MambaForCausalLM\"], \"model_type\": \"mamba\",\n"
                        " \"hidden_size\": %d, \"num_hidden_layers\": %d, \"vocab_size\": %d,\n"
                        " \"state_size\": %d, \"conv_kernel\": %d, \"expand\": %d, \"intermediate_size\": %d,\n"
                        " \"time_step_rank\": %d, \"use_bias\": false, \"use_conv_bias\": true,\n"
                        " \"layer_norm_epsilon\": 1e-05, \"residual_in_fp32\": true,\n"
                        " \"tie_word_embeddings\": true, \"dtype\": \"%s\"",
                        D, s->n_layer, s->vocab, N, K, s->expand, E, R, dts);
            else
                fprintf(f, "{\"architectures\": [\"Mamba2ForCausalLM\"], \"model_type\": \"mamba2\",\n"
                        " \"hidden_size\": %d, \"num_hidden_layers\": %d, \"vocab_size\": %d,\n"
                        " \"state_size\": %d, \"conv_kernel\": %d, \"expand\": %d, \"head_dim\": %d,\n"
                        " \"num_heads\": %d, \"n_groups\": %d, \"chunk_size\": 256, \"use_bias\": false,\n"
                        " \"use_conv_bias\": true, \"layer_norm_epsilon\": 1e-05, \"residual_in_fp32\": true,\n"
                        " \"time_step_limit\": [0.0, {\"__float__\": \"Infinity\"}],\n"
                        " \"tie_word_embeddings\": true, \"dtype\": \"%s\"",
                        D, s->n_layer, s->vocab, N, K, s->expand, s->head_dim, H, G, dts);
            if (s->frontend != MS_FRONTEND_NONE) write_audio_section(f, s);
            fprintf(f, "}\n");
            if (fclose(f) != 0) rc = MS_ERR_IO;
        }
    }
    for (int i = 0; i < l.n; i++) { free(l.bufs[i]); free((void *)l.t[i].name); }
    free(l.bufs);
    free(l.t);
    return rc;
}
