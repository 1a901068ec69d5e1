/* test_score.c - ms_score_from_logits / ms_score_uniform against the definitions in
 * score.h, evaluated here directly in double (no printed outputs pasted in). */
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "score.h"

/* A vocab of 8 with the bases scattered, so a wrong index shows. */
static const int k_base_tok[4] = {5, 2, 7, 0};
#define VOCAB 8

/* Float outputs of double math: a few float ulps, relative plus an absolute floor. */
static void assert_close(double got, double want)
{
    double tol = 1e-7 + fabs(want) * 4 * FLT_EPSILON;
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.9g, want %.9g (tol %.3g)", got, want, tol);
}

static void fill_logits(float *row, const double l[4], float other)
{
    for (int i = 0; i < VOCAB; i++) row[i] = other;
    for (int b = 0; b < 4; b++) row[k_base_tok[b]] = (float)l[b];
}

/* p, entropy and ln P(set) straight from the definition (fine for modest logits). */
static void expect_def(const double l[4], unsigned set, double p[4], double *h, double *logp)
{
    double z = 0;
    for (int b = 0; b < 4; b++) z += exp(l[b]);
    *h = 0;
    double ps = 0;
    for (int b = 0; b < 4; b++) {
        p[b] = exp(l[b]) / z;
        if (p[b] > 0) *h -= p[b] * log(p[b]);
        if (set >> b & 1) ps += p[b];
    }
    *logp = log(ps);
}

static void check_all_finite(const ms_score *s)
{
    assert_true(isfinite(s->logp));
    assert_true(isfinite(s->entropy));
    for (int b = 0; b < 4; b++) assert_true(isfinite(s->p[b]));
}

static void test_known_logits(void **state)
{
    (void)state;
    const double l[4] = {1.5, -0.25, 0.75, 2.0};
    const char refs[] = "ACGTacgt";
    float row[VOCAB];
    fill_logits(row, l, 3.0f);  /* non-base tokens larger than any base: must be ignored */
    for (const char *r = refs; *r; r++) {
        unsigned set = 1u << (strchr("ACGT", *r & ~0x20) - "ACGT");
        double p[4], h, logp;
        expect_def(l, set, p, &h, &logp);
        ms_score s;
        memset(&s, 0x55, sizeof s);
        s.pos = 42;
        ms_score_from_logits(row, k_base_tok, *r, &s);
        for (int b = 0; b < 4; b++) assert_close(s.p[b], p[b]);
        assert_close(s.entropy, h);
        assert_close(s.logp, logp);
        assert_int_equal(s.ref, *r);
        assert_int_equal(s.pred, 'T');
        assert_int_equal(s.rule, 0);
        assert_int_equal(s.pos, 42);  /* position is the caller's */
    }
}

static void test_shift_invariant(void **state)
{
    /* Logits near 1e4 overflow a naive exp; max subtraction must give the same answer
     * as the small logits they differ from by a constant. */
    (void)state;
    const double l[4] = {0.5, -1.0, 0.25, -3.0};
    const double big[4] = {10000.5, 9999.0, 10000.25, 9997.0};
    float row[VOCAB];
    double p[4], h, logp;
    expect_def(l, 0x2, p, &h, &logp);
    fill_logits(row, big, 0.0f);
    ms_score s;
    ms_score_from_logits(row, k_base_tok, 'C', &s);
    check_all_finite(&s);
    /* float logits near 1e4 are exact in halves and quarters, so only output rounding */
    for (int b = 0; b < 4; b++) assert_close(s.p[b], p[b]);
    assert_close(s.entropy, h);
    assert_close(s.logp, logp);
    assert_int_equal(s.pred, 'A');
}

static void test_tiny_probability_logp(void **state)
{
    /* P(C) = e^-800 underflows double, yet its log is about -800: logp must say so. */
    (void)state;
    const double l[4] = {0.0, -800.0, -1.0, -2.0};
    float row[VOCAB];
    fill_logits(row, l, 0.0f);
    double lse = log(1 + exp(-1.0) + exp(-2.0));  /* the C term is below double range */
    ms_score s;
    ms_score_from_logits(row, k_base_tok, 'C', &s);
    check_all_finite(&s);
    assert_close(s.logp, -800.0 - lse);
    assert_true(s.p[1] == 0.0f);
    /* Y = C or T: dominated by T */
    ms_score_from_logits(row, k_base_tok, 'Y', &s);
    assert_close(s.logp, log(exp(-800.0 + 2.0) + 1.0) - 2.0 - lse);
}

static void test_huge_logits(void **state)
{
    (void)state;
    const double l[4] = {1e30, -1e30, 0.0, -1e30};
    float row[VOCAB];
    fill_logits(row, l, -INFINITY);  /* a masked-out non-base token */
    ms_score s;
    ms_score_from_logits(row, k_base_tok, 'A', &s);
    check_all_finite(&s);
    assert_true(s.p[0] == 1.0f && s.p[1] == 0.0f && s.p[2] == 0.0f && s.p[3] == 0.0f);
    assert_true(s.entropy == 0.0f);
    assert_true(s.logp == 0.0f);
    assert_int_equal(s.pred, 'A');
    ms_score_from_logits(row, k_base_tok, 'c', &s);
    check_all_finite(&s);
    assert_close(s.logp, (double)(float)-1e30 - (double)(float)1e30);
    ms_score_from_logits(row, k_base_tok, 'G', &s);
    assert_close(s.logp, -(double)(float)1e30);
    ms_score_from_logits(row, k_base_tok, 'N', &s);
    assert_true(s.logp == 0.0f);

    /* Non-base tokens of +inf or NaN are not looked at. */
    const double m[4] = {0.0, 1.0, 2.0, 3.0};
    double p[4], h, logp;
    expect_def(m, 0x4, p, &h, &logp);
    fill_logits(row, m, INFINITY);
    ms_score_from_logits(row, k_base_tok, 'G', &s);
    assert_close(s.logp, logp);
    fill_logits(row, m, NAN);
    ms_score_from_logits(row, k_base_tok, 'G', &s);
    assert_close(s.logp, logp);
    assert_close(s.entropy, h);
}

static void test_nonfinite_base_logits(void **state)
{
    (void)state;
    float row[VOCAB];
    ms_score s;

    /* A = -inf: A has no mass, its logp is clamped to a finite floor. */
    const double l[4] = {-INFINITY, 0.0, 0.0, 0.0};
    fill_logits(row, l, 0.0f);
    ms_score_from_logits(row, k_base_tok, 'A', &s);
    check_all_finite(&s);
    assert_true(s.p[0] == 0.0f);
    assert_true(s.logp == -FLT_MAX);
    assert_close(s.entropy, log(3.0));
    assert_int_equal(s.pred, 'C');
    ms_score_from_logits(row, k_base_tok, 'R', &s);  /* A or G: 1/3 */
    assert_close(s.logp, log(1.0 / 3.0));

    /* Two +inf logits share all the mass. */
    const double inf2[4] = {0.0, INFINITY, 5.0, INFINITY};
    fill_logits(row, inf2, 0.0f);
    ms_score_from_logits(row, k_base_tok, 'T', &s);
    check_all_finite(&s);
    assert_close(s.p[1], 0.5);
    assert_close(s.p[3], 0.5);
    assert_close(s.logp, log(0.5));
    assert_close(s.entropy, log(2.0));
    assert_int_equal(s.pred, 'C');

    /* All -inf or NaN: nothing to go on, uniform. */
    const double none[4] = {-INFINITY, NAN, -INFINITY, NAN};
    fill_logits(row, none, 0.0f);
    ms_score_from_logits(row, k_base_tok, 'G', &s);
    check_all_finite(&s);
    for (int b = 0; b < 4; b++) assert_close(s.p[b], 0.25);
    assert_close(s.logp, log(0.25));
    assert_close(s.entropy, log(4.0));
}

static void test_ambiguity_codes(void **state)
{
    (void)state;
    static const struct { char code; unsigned set; } k_codes[] = {
        {'A', 0x1}, {'C', 0x2}, {'G', 0x4}, {'T', 0x8}, {'U', 0x8},
        {'R', 0x5}, {'Y', 0xA}, {'S', 0x6}, {'W', 0x9}, {'K', 0xC}, {'M', 0x3},
        {'B', 0xE}, {'D', 0xD}, {'H', 0xB}, {'V', 0x7},
        {'N', 0xF}, {'X', 0xF}, {'-', 0xF}, {'*', 0xF}, {'\0', 0xF}, {(char)0xC3, 0xF},
    };
    const double l[4] = {-0.5, 1.25, 0.0, 0.5};
    float row[VOCAB];
    fill_logits(row, l, 0.0f);
    for (size_t i = 0; i < sizeof k_codes / sizeof k_codes[0]; i++) {
        for (int lower = 0; lower < 2; lower++) {
            char c = k_codes[i].code;
            if (lower && c >= 'A' && c <= 'Z') c = (char)(c + 'a' - 'A');
            double p[4], h, logp;
            expect_def(l, k_codes[i].set, p, &h, &logp);
            ms_score s;
            ms_score_from_logits(row, k_base_tok, c, &s);
            if (k_codes[i].set == 0xF)
                assert_true(s.logp == 0.0f);  /* N and unknowns: ln 1, exactly */
            else
                assert_close(s.logp, logp);
            assert_int_equal(s.ref, c);
            assert_close(s.entropy, h);
        }
    }
}

static void test_uniform(void **state)
{
    (void)state;
    ms_score s;
    ms_score_uniform('A', &s);
    for (int b = 0; b < 4; b++) assert_true(s.p[b] == 0.25f);
    assert_close(s.entropy, log(4.0));
    assert_close(s.logp, log(1.0 / 4.0));
    assert_int_equal(s.rule, 2);
    assert_int_equal(s.ref, 'A');
    assert_true(s.pred == 'A' || s.pred == 'C' || s.pred == 'G' || s.pred == 'T');
    ms_score_uniform('n', &s);
    assert_true(s.logp == 0.0f);
    assert_int_equal(s.rule, 2);
    ms_score_uniform('y', &s);
    assert_close(s.logp, log(2.0 / 4.0));
    ms_score_uniform('V', &s);
    assert_close(s.logp, log(3.0 / 4.0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_logits),
        cmocka_unit_test(test_shift_invariant),
        cmocka_unit_test(test_tiny_probability_logp),
        cmocka_unit_test(test_huge_logits),
        cmocka_unit_test(test_nonfinite_base_logits),
        cmocka_unit_test(test_ambiguity_codes),
        cmocka_unit_test(test_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
