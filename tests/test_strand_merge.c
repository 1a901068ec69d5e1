/* test_strand_merge.c - reverse-strand mapping (GPN convention), the strand mean, the
 * spill file's ordering for --strand reverse / both, and float16 conversion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#include "emit_hidden.h"
#include "strand_merge.h"

/* A sink that records what it gets, through a bedGraph file of logp values. */
static ms_score score_at(int64_t pos, char ref, float base)
{
    ms_score s = {0};
    s.pos = pos;
    s.ref = ref;
    s.pred = 'A';
    s.logp = -base;
    s.entropy = base / 2;
    s.p[0] = 0.1f; s.p[1] = 0.2f; s.p[2] = 0.3f; s.p[3] = 0.4f;
    return s;
}

static void test_to_forward(void **state)
{
    (void)state;
    ms_score s = score_at(5, 'a', 1.0f);
    s.pred = 'C';
    ms_score_to_forward(&s);
    assert_int_equal(s.ref, 't');  /* case kept */
    assert_int_equal(s.pred, 'G');
    assert_true(s.p[0] == 0.4f && s.p[1] == 0.3f && s.p[2] == 0.2f && s.p[3] == 0.1f);
    assert_true(s.logp == -1.0f);
}

static void test_mean(void **state)
{
    (void)state;
    ms_score f = score_at(1, 'G', 1.0f), r = score_at(1, 'G', 3.0f), m;
    r.p[0] = 0.7f; r.p[1] = 0.1f; r.p[2] = 0.1f; r.p[3] = 0.1f;
    ms_score_mean(&f, &r, &m);
    assert_true(m.logp == -2.0f && m.entropy == 1.0f);
    assert_true(m.p[0] == 0.4f && m.pred == 'A');
    assert_int_equal(m.ref, 'G');
}

/* Reverse pass of positions 10..19 in two chunks (descending), then the forward pass:
 * REVERSE writes ascending after the last chunk; BOTH writes the means with the forward. */
static void run_merge(int both, const char *path)
{
    ms_sink *sink;
    ms_strand_merge *m;
    assert_int_equal(ms_sink_open(path, MS_FMT_BEDGRAPH, MS_VAL_LOGP, &sink), 0);
    assert_int_equal(ms_strand_merge_new(both, &m), 0);
    ms_score a[6], b[4];
    for (int j = 0; j < 6; j++) a[j] = score_at(19 - j, 'C', (float)(19 - j));
    for (int j = 0; j < 4; j++) b[j] = score_at(13 - j, 'C', (float)(13 - j));
    assert_int_equal(ms_strand_merge_write(m, sink, "c", 1, a, 6, 1, 0), 0);
    assert_int_equal(ms_strand_merge_write(m, sink, "c", 1, b, 4, 1, 1), 0);
    if (both) {
        ms_score f[10];
        for (int j = 0; j < 10; j++) f[j] = score_at(10 + j, 'G', 1.0f);
        assert_int_equal(ms_strand_merge_write(m, sink, "c", 0, f, 7, 0, 0), 0);
        assert_int_equal(ms_strand_merge_write(m, sink, "c", 0, f + 7, 3, 0, 1), 0);
    }
    ms_strand_merge_free(m);
    assert_int_equal(ms_sink_close(sink, 1), 0);
}

static void test_merge_order(void **state)
{
    (void)state;
    char dir[] = "/tmp/ms-test-strand-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    for (int both = 0; both < 2; both++) {
        snprintf(path, sizeof path, "%s/out%d.bg", dir, both);
        run_merge(both, path);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char line[256];
        assert_non_null(fgets(line, sizeof line, f)); /* track line */
        for (int p = 10; p < 20; p++) {
            char chrom[8];
            long long s, e;
            double v;
            assert_non_null(fgets(line, sizeof line, f));
            assert_int_equal(sscanf(line, "%7s %lld %lld %lf", chrom, &s, &e, &v), 4);
            assert_int_equal(s, p);
            double want = both ? (-1.0 - p) / 2 : -p;
            assert_true(v > want - 1e-5 && v < want + 1e-5);
        }
        assert_null(fgets(line, sizeof line, f));
        fclose(f);
        unlink(path);
    }
    rmdir(dir);
}

static void test_f16(void **state)
{
    (void)state;
    assert_int_equal(ms_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(ms_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(ms_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(ms_f32_to_f16(1e6f), 0x7c00);         /* overflow -> inf */
    assert_int_equal(ms_f32_to_f16(5.960464477539063e-8f), 0x0001); /* smallest subnormal */
    assert_int_equal(ms_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);    /* tie -> even */
    assert_int_equal(ms_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);    /* tie -> even (up) */
    assert_int_equal(ms_f32_to_f16(0.0f), 0x0000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_forward),
        cmocka_unit_test(test_mean),
        cmocka_unit_test(test_merge_order),
        cmocka_unit_test(test_f16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
