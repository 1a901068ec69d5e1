/* test_engine.c - the CPU engine against float64 transformers references.
 *
 * For every fixture: logits and hidden within 1e-5 relative error (float32 arithmetic vs a
 * float64 reference lands near 1e-7; 1e-5 leaves room for the longer sums, see
 * ../shared/fixtures/README.md), whether the sequence runs whole, in chunks of 1, 7 or 64,
 * or all batch rows together in one call with unequal cuts; state saved and restored
 * mid-sequence continues exactly; a chunk marked last leaves its stream reset; bad calls
 * are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mamba_stream.h"
#include "safetensors.h"
#include "test_util.h"

typedef tu_ref_fixture fixture;

/* Run every row as its own stream, cut into chunks of `chunk` tokens (0 = whole), one row
 * after another. */
static void run_rows(fixture *f, int chunk, float *logits, float *hidden)
{
    ms_ctx_params cp = ms_ctx_default_params();
    cp.max_tokens = f->L;
    ms_ctx *ctx;
    assert_int_equal(ms_ctx_new(f->model, &cp, &ctx), MS_OK);
    for (int b = 0; b < f->B; b++) {
        ms_stream *s;
        assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
        int step = chunk ? chunk : f->L;
        for (int t = 0; t < f->L; t += step) {
            int n = t + step <= f->L ? step : f->L - t;
            ms_chunk c = {s, f->ids + (size_t)b * f->L + t, n};
            size_t row = (size_t)b * f->L + t;
            assert_int_equal(ms_forward(ctx, &c, 1, logits + row * f->V, hidden + row * f->D), MS_OK);
        }
        assert_int_equal(ms_stream_pos(s), f->L);
        ms_stream_free(s);
    }
    ms_ctx_free(ctx);
}

static void check_close(const fixture *f, const float *logits, const float *hidden, const char *what,
                        const char *name)
{
    double el = tu_rel_err(logits, f->logits, (size_t)f->B * f->L * f->V);
    double eh = tu_rel_err(hidden, f->hidden, (size_t)f->B * f->L * f->D);
    print_message("  %-18s %-22s logits %.2e hidden %.2e\n", name, what, el, eh);
    assert_true(el <= 1e-5);
    assert_true(eh <= 1e-5);
}

static void test_fixtures_chunked(void **st)
{
    for (int i = 0; i < tu_n_fixtures; i++) {
        fixture f;
        tu_ref_fixture_load(tu_fixture_names[i], &f);
        size_t nl = (size_t)f.B * f.L * f.V, nh = (size_t)f.B * f.L * f.D;
        float *lg = malloc(sizeof(float) * nl), *hd = malloc(sizeof(float) * nh);
        int chunks[] = {0, 1, 7, 64};
        for (int k = 0; k < 4; k++) {
            for (size_t j = 0; j < nl; j++) lg[j] = NAN; /* poison: every output written */
            for (size_t j = 0; j < nh; j++) hd[j] = NAN;
            run_rows(&f, chunks[k], lg, hd);
            char what[32];
            snprintf(what, sizeof what, "chunk %d", chunks[k]);
            check_close(&f, lg, hd, what, tu_fixture_names[i]);
        }
        free(lg); free(hd);
        tu_ref_fixture_free(&f);
    }
}

/* All rows in one forward call per step, each row cut at different places: stream
 * independence within a batch. */
static void test_fixtures_batched(void **st)
{
    for (int i = 0; i < tu_n_fixtures; i++) {
        fixture f;
        tu_ref_fixture_load(tu_fixture_names[i], &f);
        ms_ctx_params cp = ms_ctx_default_params();
        cp.max_tokens = f.B * f.L;
        cp.max_streams = f.B;
        ms_ctx *ctx;
        assert_int_equal(ms_ctx_new(f.model, &cp, &ctx), MS_OK);
        ms_stream **s = calloc(f.B, sizeof *s);
        int *done = calloc(f.B, sizeof *done);
        for (int b = 0; b < f.B; b++) assert_int_equal(ms_stream_new(ctx, &s[b]), MS_OK);
        float *lg = malloc(sizeof(float) * f.B * f.L * f.V);
        float *hd = malloc(sizeof(float) * f.B * f.L * f.D);
        float *olg = malloc(sizeof(float) * f.B * f.L * f.V);
        float *ohd = malloc(sizeof(float) * f.B * f.L * f.D);
        ms_chunk *c = calloc(f.B, sizeof *c);
        int *from = calloc(f.B, sizeof *from);
        for (int step = 0;; step++) {
            int n = 0, tot = 0;
            for (int b = 0; b < f.B; b++) {
                if (done[b] == f.L) continue;
                int len = 3 + (step * 5 + b * 11) % 29; /* awkward, unequal cuts */
                if (done[b] + len > f.L) len = f.L - done[b];
                c[n] = (ms_chunk){s[b], f.ids + (size_t)b * f.L + done[b], len};
                from[n] = b;
                n++;
                tot += len;
            }
            if (!n) break;
            assert_int_equal(ms_forward(ctx, c, n, olg, ohd), MS_OK);
            for (int k = 0, t = 0; k < n; t += c[k].n_tokens, k++) {
                size_t row = (size_t)from[k] * f.L + done[from[k]];
                memcpy(lg + row * f.V, olg + (size_t)t * f.V, sizeof(float) * c[k].n_tokens * f.V);
                memcpy(hd + row * f.D, ohd + (size_t)t * f.D, sizeof(float) * c[k].n_tokens * f.D);
                done[from[k]] += c[k].n_tokens;
            }
        }
        check_close(&f, lg, hd, "batched, uneven cuts", tu_fixture_names[i]);
        for (int b = 0; b < f.B; b++) ms_stream_free(s[b]);
        ms_ctx_free(ctx);
        free(s); free(done); free(lg); free(hd); free(olg); free(ohd); free(c); free(from);
        tu_ref_fixture_free(&f);
    }
}

/* Save the state mid-sequence, continue in a fresh stream: identical to never stopping. */
static void test_state_save_restore(void **st)
{
    fixture f;
    tu_ref_fixture_load("hf/mamba2-tiny-hf", &f);
    ms_ctx *ctx;
    assert_int_equal(ms_ctx_new(f.model, NULL, &ctx), MS_OK);
    ms_stream *a, *b;
    assert_int_equal(ms_stream_new(ctx, &a), MS_OK);
    assert_int_equal(ms_stream_new(ctx, &b), MS_OK);
    const int half = f.L / 2;
    float *la = malloc(sizeof(float) * f.L * f.V), *lb = malloc(sizeof(float) * f.L * f.V);
    ms_chunk c = {a, f.ids, f.L};
    assert_int_equal(ms_forward(ctx, &c, 1, la, NULL), MS_OK);
    ms_stream_reset(a);
    c = (ms_chunk){a, f.ids, half};
    assert_int_equal(ms_forward(ctx, &c, 1, lb, NULL), MS_OK);
    size_t n = ms_stream_state_size(ctx);
    float *state = malloc(sizeof(float) * n);
    assert_int_equal(ms_stream_state_get(a, state), MS_OK);
    assert_int_equal(ms_stream_state_set(b, state), MS_OK);
    c = (ms_chunk){b, f.ids + half, f.L - half};
    assert_int_equal(ms_forward(ctx, &c, 1, lb + (size_t)half * f.V, NULL), MS_OK);
    assert_true(tu_rel_err(lb, la, (size_t)f.L * f.V) <= 1e-6);
    free(state); free(la); free(lb);
    ms_stream_free(a); ms_stream_free(b);
    ms_ctx_free(ctx);
    tu_ref_fixture_free(&f);
}

/* A chunk marked last ends its stream: the same outputs, then the stream as after a reset
 * (position 0, zero state; the next chunk starts the sequence again). */
static void test_last_chunk(void **st)
{
    fixture f;
    tu_ref_fixture_load("hf/mamba2-tiny-hf", &f);
    ms_ctx *ctx;
    assert_int_equal(ms_ctx_new(f.model, NULL, &ctx), MS_OK);
    ms_stream *a;
    assert_int_equal(ms_stream_new(ctx, &a), MS_OK);
    float *la = malloc(sizeof(float) * f.L * f.V), *lb = malloc(sizeof(float) * f.L * f.V);
    ms_chunk c = {a, f.ids, f.L};
    assert_int_equal(ms_forward(ctx, &c, 1, la, NULL), MS_OK);
    assert_int_equal(ms_stream_pos(a), f.L);
    ms_stream_reset(a);
    c.last = 1;
    assert_int_equal(ms_forward(ctx, &c, 1, lb, NULL), MS_OK);
    assert_memory_equal(la, lb, sizeof(float) * f.L * f.V);
    assert_int_equal(ms_stream_pos(a), 0);
    size_t n = ms_stream_state_size(ctx);
    float *state = malloc(sizeof(float) * n);
    assert_int_equal(ms_stream_state_get(a, state), MS_OK);
    for (size_t i = 0; i < n; i++) assert_true(state[i] == 0.f);
    c.last = 0; /* starts again: the first call's logits */
    assert_int_equal(ms_forward(ctx, &c, 1, lb, NULL), MS_OK);
    assert_memory_equal(la, lb, sizeof(float) * f.L * f.V);
    free(state); free(la); free(lb);
    ms_stream_free(a);
    ms_ctx_free(ctx);
    tu_ref_fixture_free(&f);
}

static void test_bad_calls(void **st)
{
    fixture f;
    tu_ref_fixture_load("hf/mamba1-tiny-hf", &f);
    ms_ctx_params cp = ms_ctx_default_params();
    cp.max_tokens = 8;
    cp.max_streams = 2;
    ms_ctx *ctx;
    assert_int_equal(ms_ctx_new(f.model, &cp, &ctx), MS_OK);
    ms_stream *s;
    assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
    float lg[16 * 16];
    tu_log_capture();
    int32_t bad[2] = {1, 16};
    ms_chunk c = {s, bad, 2};
    assert_int_equal(ms_forward(ctx, &c, 1, lg, NULL), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "token 1 is 16"));
    int32_t many[9] = {0};
    c = (ms_chunk){s, many, 9};
    assert_int_equal(ms_forward(ctx, &c, 1, lg, NULL), MS_ERR_ARG);
    ms_chunk two[2] = {{s, many, 1}, {s, many, 1}};
    assert_int_equal(ms_forward(ctx, two, 2, lg, NULL), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "chunks 0 and 1 share a stream"));
    assert_int_equal(ms_stream_pos(s), 0); /* refused calls consume nothing */
    /* a refused call's marks do not refuse the next one; a repeat after another stream
     * is named by its first chunk */
    ms_stream *s2;
    assert_int_equal(ms_stream_new(ctx, &s2), MS_OK);
    ms_chunk pair[2] = {{s2, many, 1}, {s, many, 1}};
    assert_int_equal(ms_forward(ctx, pair, 2, lg, NULL), MS_OK);
    assert_int_equal(ms_stream_pos(s), 1);
    cp.max_streams = 3;
    ms_ctx *ctx3;
    assert_int_equal(ms_ctx_new(f.model, &cp, &ctx3), MS_OK);
    ms_stream *a, *b;
    assert_int_equal(ms_stream_new(ctx3, &a), MS_OK);
    assert_int_equal(ms_stream_new(ctx3, &b), MS_OK);
    ms_chunk three[3] = {{a, many, 1}, {b, many, 1}, {a, many, 1}};
    assert_int_equal(ms_forward(ctx3, three, 3, lg, NULL), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "chunks 0 and 2 share a stream"));
    ms_stream_free(a);
    ms_stream_free(b);
    ms_ctx_free(ctx3);
    ms_stream_free(s2);
    cp.device = MS_DEVICE_CUDA;
    ms_ctx *cuda = NULL;
    int rc = ms_ctx_new(f.model, &cp, &cuda);
    if (rc == MS_OK) ms_ctx_free(cuda); /* a CUDA build on a GPU machine */
    else assert_int_equal(rc, MS_ERR_BACKEND);
    ms_set_log(NULL, NULL);
    ms_stream_free(s);
    ms_ctx_free(ctx);
    tu_ref_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_chunked),
        cmocka_unit_test(test_fixtures_batched),
        cmocka_unit_test(test_state_save_restore),
        cmocka_unit_test(test_last_chunk),
        cmocka_unit_test(test_bad_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
