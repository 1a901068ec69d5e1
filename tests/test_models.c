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
#include "test_util.h"

#define CHUNK 37

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
    const char *dir = tu_model_dir("dna-mamba2-small");
    tu_ref_fixture f;
    tu_ref_fixture_load_dir(dir, &f);
    const size_t nl = (size_t)f.B * f.L * f.V, nh = (size_t)f.B * f.L * f.D;
    float *got_l = malloc(sizeof(float) * nl), *got_h = malloc(sizeof(float) * nh);
    run(f.model, f.B, f.L, f.ids, NULL, 0, got_l, f.V, got_h, f.D);
    printf("  %s: %d x %d bases\n", dir, f.B, f.L);
    expect_close("logits", got_l, f.logits, nl);
    expect_close("hidden", got_h, f.hidden, nh);
    free(got_l); free(got_h);
    tu_ref_fixture_free(&f);
}

static void test_kws_model(void **state)
{
    (void)state;
    const char *dir = tu_model_dir("kws-mamba2-small");
    tu_feat_ref r;
    tu_feat_ref_load(dir, &r);
    const size_t n = (size_t)r.B * r.L * r.V;
    float *got = malloc(sizeof(float) * n);
    run(r.model, r.B, r.L, NULL, r.features, r.F, got, r.V, NULL, 0);
    printf("  %s: %d clips x %d frames\n", dir, r.B, r.L);
    expect_close("label logits", got, r.logits, n);
    free(got);
    tu_feat_ref_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dna_model),
        cmocka_unit_test(test_kws_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
