/* test_audio_engine.c - feature input and the classifier head on the CPU backend.
 *
 * The feature path is checked against the exact token path: a log-mel-style model whose
 * frontend.proj is the transposed embedding of a token model, fed one-hot features, must
 * give the token model's outputs (one nonzero term per sum: equal to float rounding of
 * the BLAS, 1e-6). The classifier head is checked against hidden @ W^T + b in double; the
 * posteriors do not depend on how a feature stream is cut or batched; bad calls and bad
 * models are refused with one line; a backend without feature support refuses at once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "random_model.h"
#include "safetensors.h"
#include "test_util.h"

static char g_tok_dir[1024], g_feat_dir[1024];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *b = calloc(1, 1 << 16);
    size_t n = fread(b, 1, (1 << 16) - 1, f);
    fclose(f);
    b[n] = 0;
    return b;
}

/* A mu-law classifier (tokens) and its one-hot twin with a log-mel front end of 256 bins. */
static int setup(void **st)
{
    (void)st;
    snprintf(g_tok_dir, sizeof g_tok_dir, "%s/tok", tu_tmpdir());
    snprintf(g_feat_dir, sizeof g_feat_dir, "%s/feat", tu_tmpdir());
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", g_tok_dir, g_feat_dir);
    if (system(cmd) != 0) return -1;
    ms_random_spec s = ms_random_spec_kws();
    s.frontend = MS_FRONTEND_MULAW;
    s.vocab = 256;
    s.d_model = 32;
    if (ms_random_model_write(&s, g_tok_dir) != MS_OK) return -1;

    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", g_tok_dir);
    ms_st_set *set;
    if (ms_st_open_file(path, &set) != MS_OK) return -1;
    const int n = ms_st_count(set), D = s.d_model;
    ms_st_out *out = calloc((size_t)n + 1, sizeof *out);
    float *proj = malloc(sizeof(float) * 256 * D), *emb = malloc(sizeof(float) * 256 * D);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const ms_st_tensor *t = ms_st_at(set, i);
        if (!strcmp(t->name, "backbone.embeddings.weight")) {
            ms_st_to_f32(t, emb);
            for (int v = 0; v < 256; v++)
                for (int d = 0; d < D; d++) proj[d * 256 + v] = emb[v * D + d];
            out[k++] = (ms_st_out){.name = "frontend.proj.weight", .dtype = MS_DT_F32, .n_dim = 2,
                                   .shape = {D, 256}, .data = proj};
            continue;
        }
        out[k] = (ms_st_out){.name = t->name, .dtype = t->dtype, .n_dim = t->n_dim, .data = t->data};
        for (int j = 0; j < t->n_dim; j++) out[k].shape[j] = t->shape[j];
        k++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", g_feat_dir);
    int rc = ms_st_write(path, out, k);
    ms_st_close(set);
    free(out); free(proj); free(emb);
    if (rc != MS_OK) return -1;
    snprintf(path, sizeof path, "%s/config.json", g_tok_dir);
    char *cfg = slurp(path);
    char *fe = strstr(cfg, "{\"type\": \"mulaw\"");
    if (!fe) return -1;
    snprintf(fe, 256, "{\"type\": \"logmel\", \"n_mels\": 256, \"n_fft\": 512, \"fmax\": 8000}}}\n");
    snprintf(path, sizeof path, "%s/config.json", g_feat_dir);
    rc = tu_write_file(path, cfg, strlen(cfg));
    free(cfg);
    return rc;
}

static void open_ctx(const char *dir, int max_tokens, ms_model **m, ms_ctx **ctx)
{
    assert_int_equal(ms_model_load(dir, NULL, m), MS_OK);
    ms_ctx_params cp = ms_ctx_default_params();
    cp.max_tokens = max_tokens;
    cp.max_streams = 4;
    assert_int_equal(ms_ctx_new(*m, &cp, ctx), MS_OK);
}

static void test_info(void **st)
{
    (void)st;
    ms_model *m;
    assert_int_equal(ms_model_load(g_feat_dir, NULL, &m), MS_OK);
    const ms_model_info *in = ms_model_info_get(m);
    assert_int_equal(in->d_input, 256);
    assert_int_equal(in->n_vocab, 0);
    assert_int_equal(in->task, MS_TASK_CLASSIFY);
    assert_int_equal(in->n_labels, 12);
    assert_string_equal(in->labels[2], "yes");
    assert_int_equal(in->pooling, MS_POOL_MEAN);
    assert_int_equal(in->frontend.type, MS_FRONTEND_LOGMEL);
    assert_int_equal(in->frontend.hop_length, 160);
    ms_model_free(m);
    assert_int_equal(ms_model_load(g_tok_dir, NULL, &m), MS_OK);
    in = ms_model_info_get(m);
    assert_int_equal(in->d_input, 0);
    assert_int_equal(in->n_vocab, 256);
    assert_int_equal(in->frontend.type, MS_FRONTEND_MULAW);
    assert_int_equal(in->frontend.bits, 8);
    ms_model_free(m);
}

static void test_onehot_equals_tokens(void **st)
{
    (void)st;
    const int T = 40, L = 12, D = 32;
    ms_model *ma, *mb;
    ms_ctx *ca, *cb;
    open_ctx(g_tok_dir, 64, &ma, &ca);
    open_ctx(g_feat_dir, 64, &mb, &cb);
    int32_t tok[40];
    float *feat = calloc((size_t)T * 256, sizeof(float));
    for (int t = 0; t < T; t++) {
        tok[t] = (t * 37 + 11) % 256;
        feat[t * 256 + tok[t]] = 1.0f;
    }
    ms_stream *sa, *sb;
    assert_int_equal(ms_stream_new(ca, &sa), MS_OK);
    assert_int_equal(ms_stream_new(cb, &sb), MS_OK);
    float la[40 * 12], lb[40 * 12], ha[40 * 32], hb[40 * 32];
    ms_chunk a = {.stream = sa, .tokens = tok, .n_tokens = T};
    ms_chunk b = {.stream = sb, .n_tokens = T, .features = feat};
    assert_int_equal(ms_forward(ca, &a, 1, la, ha), MS_OK);
    assert_int_equal(ms_forward(cb, &b, 1, lb, hb), MS_OK);
    assert_true(tu_rel_err(lb, la, (size_t)T * L) < 1e-6);
    assert_true(tu_rel_err(hb, ha, (size_t)T * D) < 1e-6);
    ms_stream_free(sa);
    ms_stream_free(sb);
    ms_ctx_free(ca); ms_ctx_free(cb);
    ms_model_free(ma); ms_model_free(mb);
    free(feat);
}

static void test_classifier_head(void **st)
{
    (void)st;
    const int T = 9, L = 12, D = 32;
    ms_model *m;
    ms_ctx *ctx;
    open_ctx(g_feat_dir, 64, &m, &ctx);
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", g_feat_dir);
    ms_st_set *set;
    assert_int_equal(ms_st_open_file(path, &set), MS_OK);
    float W[12 * 32], bias[12];
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "classifier.weight"), W), MS_OK);
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "classifier.bias"), bias), MS_OK);
    ms_st_close(set);
    float feat[9 * 256];
    for (int i = 0; i < T * 256; i++) feat[i] = (float)sin(i * 0.37) * 3;
    ms_stream *s;
    assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
    float lg[9 * 12], h[9 * 32], sub[9 * 3];
    ms_chunk c = {.stream = s, .n_tokens = T, .features = feat};
    assert_int_equal(ms_forward(ctx, &c, 1, lg, h), MS_OK);
    for (int t = 0; t < T; t++)
        for (int l = 0; l < L; l++) {
            double want = bias[l];
            for (int d = 0; d < D; d++) want += (double)h[t * D + d] * W[l * D + d];
            assert_float_equal(lg[t * L + l], want, 1e-5 + 1e-5 * fabs(want));
        }
    /* selected label rows, with their biases */
    ms_stream_reset(s);
    const int cols[3] = {11, 0, 5};
    assert_int_equal(ms_forward_cols(ctx, &c, 1, cols, 3, sub, NULL), MS_OK);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < 3; j++) assert_float_equal(sub[t * 3 + j], lg[t * L + cols[j]], 1e-5);
    const int bad_col[1] = {12};
    tu_log_capture();
    assert_int_equal(ms_forward_cols(ctx, &c, 1, bad_col, 1, sub, NULL), MS_ERR_ARG);
    ms_stream_free(s);
    ms_ctx_free(ctx);
    ms_model_free(m);
}

/* Same posteriors whole, in chunks of 1 / 7 / 13, and batched beside another stream. */
static void test_chunk_invariance(void **st)
{
    (void)st;
    const int T = 50, L = 12, F = 256;
    ms_model *m;
    ms_ctx *ctx;
    open_ctx(g_feat_dir, 128, &m, &ctx);
    float *feat = malloc(sizeof(float) * T * F), *other = malloc(sizeof(float) * T * F);
    for (int i = 0; i < T * F; i++) { feat[i] = (float)cos(i * 0.013) * 2; other[i] = (float)sin(i * 0.7); }
    ms_stream *s, *s2;
    assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
    assert_int_equal(ms_stream_new(ctx, &s2), MS_OK);
    float whole[50 * 12], cut[50 * 12], pair[100 * 12];
    ms_chunk c = {.stream = s, .n_tokens = T, .features = feat};
    assert_int_equal(ms_forward(ctx, &c, 1, whole, NULL), MS_OK);
    const int sizes[3] = {1, 7, 13};
    for (int k = 0; k < 3; k++) {
        ms_stream_reset(s);
        for (int t = 0; t < T; t += sizes[k]) {
            int n = T - t < sizes[k] ? T - t : sizes[k];
            c = (ms_chunk){.stream = s, .n_tokens = n, .features = feat + (size_t)t * F};
            assert_int_equal(ms_forward(ctx, &c, 1, cut + (size_t)t * L, NULL), MS_OK);
        }
        assert_true(tu_rel_err(cut, whole, (size_t)T * L) < 1e-5);
    }
    ms_stream_reset(s);
    ms_chunk two[2] = {{.stream = s2, .n_tokens = T, .features = other},
                       {.stream = s, .n_tokens = T, .features = feat}};
    assert_int_equal(ms_forward(ctx, two, 2, pair, NULL), MS_OK);
    assert_true(tu_rel_err(pair + (size_t)T * L, whole, (size_t)T * L) < 1e-5);
    ms_stream_free(s);
    ms_stream_free(s2);
    ms_ctx_free(ctx);
    ms_model_free(m);
    free(feat);
    free(other);
}

static void test_refusals(void **st)
{
    (void)st;
    ms_model *ma, *mb;
    ms_ctx *ca, *cb;
    open_ctx(g_tok_dir, 16, &ma, &ca);
    open_ctx(g_feat_dir, 16, &mb, &cb);
    ms_stream *sa, *sb;
    assert_int_equal(ms_stream_new(ca, &sa), MS_OK);
    assert_int_equal(ms_stream_new(cb, &sb), MS_OK);
    int32_t tok[2] = {1, 2};
    float feat[2 * 256] = {0}, lg[2 * 12];
    ms_chunk c = {.stream = sb, .tokens = tok, .n_tokens = 2};
    tu_log_capture();
    assert_int_equal(ms_forward(cb, &c, 1, lg, NULL), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "carries tokens, but the model takes 256 features"));
    c = (ms_chunk){.stream = sa, .n_tokens = 2, .features = feat};
    assert_int_equal(ms_forward(ca, &c, 1, lg, NULL), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "the model takes tokens"));
    c = (ms_chunk){.stream = sa, .n_tokens = 2};
    assert_int_equal(ms_forward(ca, &c, 1, lg, NULL), MS_ERR_ARG);
    c = (ms_chunk){.stream = sa, .tokens = tok, .n_tokens = 2, .features = feat};
    assert_int_equal(ms_forward(ca, &c, 1, lg, NULL), MS_ERR_ARG);
    ms_stream_free(sa);
    ms_stream_free(sb);
    ms_ctx_free(ca);
    ms_ctx_free(cb);
    /* a backend without feature support refuses the model at ms_ctx_new, in one line */
    const ms_backend_ops *cuda = ms_cuda_backend();
    if (cuda && !cuda->supports_features) {
        ms_ctx_params cp = ms_ctx_default_params();
        cp.device = MS_DEVICE_CUDA;
        ms_ctx *g = NULL;
        tu_log_capture();
        assert_int_equal(ms_ctx_new(mb, &cp, &g), MS_ERR_UNSUPPORTED);
        assert_null(g);
        assert_non_null(strstr(tu_log_text(), "does not run feature-input"));
    } else {
        print_message("no CUDA backend in this build (or it takes features): refusal not exercised\n");
    }
    ms_model_free(ma);
    ms_model_free(mb);
}

/* Broken audio models: one line naming the tensor or field. */
static void test_bad_models(void **st)
{
    (void)st;
    char dir[1024], path[1200], cmd[4000];
    snprintf(dir, sizeof dir, "%s/bad", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dir, g_feat_dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *cfg = slurp(path);
    ms_model *m = NULL;
    /* task lm with a log-mel front end: no embedding for an LM head */
    char *task = strstr(cfg, "\"classify\"");
    memcpy(task, "\"lm\"      ", 10);
    assert_int_equal(tu_write_file(path, cfg, strlen(cfg)), 0);
    tu_log_capture();
    assert_int_equal(ms_model_load(dir, NULL, &m), MS_ERR_MODEL);
    assert_non_null(strstr(tu_log_text(), "needs \"task\": \"classify\""));
    free(cfg);
    /* mu-law with more bits than the vocabulary has tokens */
    snprintf(path, sizeof path, "%s/config.json", g_tok_dir);
    cfg = slurp(path);
    char *bits = strstr(cfg, "\"bits\": 8");
    memcpy(bits, "\"bits\": 9", 9);
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(tu_write_file(path, cfg, strlen(cfg)), 0);
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/'", g_tok_dir, dir);
    assert_int_equal(system(cmd), 0);
    tu_log_capture();
    assert_int_equal(ms_model_load(dir, NULL, &m), MS_ERR_MODEL);
    assert_non_null(strstr(tu_log_text(), "mu-law with 9 bits needs 512 tokens"));
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),           cmocka_unit_test(test_onehot_equals_tokens),
        cmocka_unit_test(test_classifier_head), cmocka_unit_test(test_chunk_invariance),
        cmocka_unit_test(test_refusals),       cmocka_unit_test(test_bad_models),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
