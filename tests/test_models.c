/* test_models.c - the shipped models (models/) reproduce the outputs PyTorch gave at export.
 *
 * train/export.py wrote, beside each model, reference.safetensors: inputs and the float32
 * outputs of the exported (bf16-rounded) weights run in PyTorch. The C engine must give the
 * same numbers from the shipped files: max |difference| <= 1e-4 of the reference's largest
 * magnitude (float32 vs float32 with different summation orders lands near 1e-6; a wrong
 * tensor, norm or scan is off by whole units). Each model runs in chunks of 37 positions
 * carrying state, so the check covers the stream state too.
 *   DNA model: input_ids [B][L] -> logits [B][L][V] and hidden [B][L][D] (after norm_f);
 *   keyword model: features [B][L][n_mels] (standardised log-mel) -> logits [B][L][labels].
 * $MS_MODELS overrides the folder (default $MS_SRC/models). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mamba_stream.h"
#include "safetensors.h"
#include "test_util.h"

#define CHUNK 37

static const char *model_dir(const char *name)
{
    static char b[4096];
    const char *env = getenv("MS_MODELS"), *src = getenv("MS_SRC");
    if (env) snprintf(b, sizeof b, "%s/%s", env, name);
    else snprintf(b, sizeof b, "%s/models/%s", src ? src : "..", name);
    return b;
}

static float *load_f32(ms_st_set *st, const char *name, const ms_st_tensor **t)
{
    *t = ms_st_find(st, name);
    assert_non_null(*t);
    float *v = malloc(sizeof(float) * (*t)->n_elem);
    assert_int_equal(ms_st_to_f32(*t, v), MS_OK);
    return v;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Compare got with want; prints the worst position so a failure says where. */
static void expect_close(const char *what, const float *got, const float *want, size_t n)
{
    const double tol = 1e-4 * fmax(1.0, max_abs(want, n));
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst)) worst = d, at = i;
    }
    printf("  %s: max |diff| %.3g (tolerance %.3g) at element %zu\n", what, worst, tol, at);
    assert_true(worst <= tol);
}

/* Runs every row as its own stream, CHUNK positions per call. tokens or features. */
static void run(ms_model *m, int B, int L, const int32_t *tok, const float *feat, int n_in,
                float *logits, int V, float *hidden, int D)
{
    ms_ctx_params cp = ms_ctx_default_params();
    cp.max_tokens = CHUNK;
    ms_ctx *ctx;
    assert_int_equal(ms_ctx_new(m, &cp, &ctx), MS_OK);
    for (int b = 0; b < B; b++) {
        ms_stream *s;
        assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
        for (int t = 0; t < L; t += CHUNK) {
            int n = t + CHUNK <= L ? CHUNK : L - t;
            size_t row = (size_t)b * L + t;
            ms_chunk c = {.stream = s, .n_tokens = n};
            if (tok) c.tokens = tok + row;
            else c.features = feat + row * n_in;
            assert_int_equal(ms_forward(ctx, &c, 1, logits + row * V,
                                        hidden ? hidden + row * D : NULL), MS_OK);
        }
        ms_stream_free(s);
    }
    ms_ctx_free(ctx);
}

static void test_dna_model(void **state)
{
    (void)state;
    const char *dir = model_dir("dna-mamba2-small");
    ms_model *m;
    assert_int_equal(ms_model_load(dir, NULL, &m), MS_OK);
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/reference.safetensors", dir);
    ms_st_set *st;
    assert_int_equal(ms_st_open_file(ref, &st), MS_OK);
    const ms_st_tensor *ids = ms_st_find(st, "input_ids"), *lg, *hd;
    assert_non_null(ids);
    const int B = (int)ids->shape[0], L = (int)ids->shape[1];
    int64_t *ids64 = malloc(sizeof(int64_t) * ids->n_elem);
    int32_t *tok = malloc(sizeof(int32_t) * ids->n_elem);
    assert_int_equal(ms_st_to_i64(ids, ids64), MS_OK);
    for (int64_t i = 0; i < ids->n_elem; i++) tok[i] = (int32_t)ids64[i];
    float *want_l = load_f32(st, "logits", &lg), *want_h = load_f32(st, "hidden", &hd);
    const int V = (int)lg->shape[2], D = (int)hd->shape[2];
    float *got_l = malloc(sizeof(float) * lg->n_elem), *got_h = malloc(sizeof(float) * hd->n_elem);
    run(m, B, L, tok, NULL, 0, got_l, V, got_h, D);
    printf("  %s: %d x %d bases\n", dir, B, L);
    expect_close("logits", got_l, want_l, (size_t)lg->n_elem);
    expect_close("hidden", got_h, want_h, (size_t)hd->n_elem);
    free(ids64); free(tok); free(want_l); free(want_h); free(got_l); free(got_h);
    ms_st_close(st);
    ms_model_free(m);
}

static void test_kws_model(void **state)
{
    (void)state;
    const char *dir = model_dir("kws-mamba2-small");
    ms_model *m;
    assert_int_equal(ms_model_load(dir, NULL, &m), MS_OK);
    const ms_model_info *info = ms_model_info_get(m);
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/reference.safetensors", dir);
    ms_st_set *st;
    assert_int_equal(ms_st_open_file(ref, &st), MS_OK);
    const ms_st_tensor *ft, *lg;
    float *feat = load_f32(st, "features", &ft), *want = load_f32(st, "logits", &lg);
    const int B = (int)ft->shape[0], L = (int)ft->shape[1], M = (int)ft->shape[2];
    const int V = (int)lg->shape[2];
    assert_int_equal(V, info->n_labels);
    float *got = malloc(sizeof(float) * lg->n_elem);
    run(m, B, L, NULL, feat, M, got, V, NULL, 0);
    printf("  %s: %d clips x %d frames\n", dir, B, L);
    expect_close("label logits", got, want, (size_t)lg->n_elem);
    free(feat); free(want); free(got);
    ms_st_close(st);
    ms_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dna_model),
        cmocka_unit_test(test_kws_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
