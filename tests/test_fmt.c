/* test_fmt.c - ms_fmt_g and ms_fmt_i64 against snprintf, byte for byte: whole binades
 * around the scores' range, every exponent, special values, decimal rounding ties (exact
 * ones and the floats nearest the inexact ones), all precisions 1..9. */
#include "test_util.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"

static long n_checked, n_bad;

/* Compare one value; the first few differences are printed, all are counted. */
static void check_g(float v, int prec)
{
    char want[64], got[MS_FMT_G_MAX + 16];
    int nw = snprintf(want, sizeof want, "%.*g", prec, (double)v);
    size_t ng = (size_t)(ms_fmt_g(got, v, prec) - got);
    n_checked++;
    if (ng == (size_t)nw && ng <= MS_FMT_G_MAX && memcmp(got, want, ng) == 0) return;
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (n_bad++ < 10)
        print_message("%%.%dg of %.9g (0x%08" PRIx32 "): printf \"%s\", ms_fmt_g \"%.*s\"\n", prec,
                      (double)v, bits, want, (int)ng, got);
}

static float from_bits(uint32_t b)
{
    float v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void expect_none_bad(const char *what)
{
    long bad = n_bad;
    print_message("%s: %ld values, %ld differ\n", what, n_checked, n_bad);
    n_checked = n_bad = 0; /* for the next test, whatever this one's outcome */
    assert_int_equal(bad, 0);
}

/* A few spellings written out, so the test does not lean on snprintf alone. */
static void test_g_known(void **state)
{
    (void)state;
    static const struct { float v; int prec; const char *want; } k[] = {
        {0.0f, 6, "0"}, {-0.0f, 6, "-0"}, {1.0f, 6, "1"}, {-2.5f, 6, "-2.5"},
        {1e-5f, 6, "1e-05"}, {1e-4f, 6, "0.0001"}, {1234567.0f, 6, "1.23457e+06"},
        {123456.0f, 6, "123456"}, {999999.5f, 6, "1e+06"}, {0.25f, 6, "0.25"},
        {1234565.0f, 6, "1.23456e+06"}, {1234575.0f, 6, "1.23458e+06"}, /* exact ties: even */
        {1024.125f, 6, "1024.12"}, {1024.375f, 6, "1024.38"}, {3.0e30f, 6, "3e+30"},
        {-1.3862944f, 6, "-1.38629"}, {FLT_MAX, 9, "3.40282347e+38"},
        {1.4e-45f, 6, "1.4013e-45"}, {0.5f, 1, "0.5"}, {2.5f, 1, "2"}, {INFINITY, 6, "inf"},
        {-INFINITY, 6, "-inf"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        char got[MS_FMT_G_MAX + 1];
        *ms_fmt_g(got, k[i].v, k[i].prec) = 0;
        assert_string_equal(got, k[i].want);
    }
}

/* Zeros, infinities, NaNs of both signs, denormals, the float range's ends, the %f / %e
 * switch points, at every precision. */
static void test_g_special(void **state)
{
    (void)state;
    const float vals[] = {0.0f, INFINITY, NAN, FLT_MIN, FLT_MAX, FLT_TRUE_MIN, 1.0e-40f,
                          from_bits(0x007fffff), FLT_EPSILON, 1e-4f, 9.9999e-5f, 99999.95f,
                          999999.5f, 1e6f, 1e9f, 0.1f, 0.3f, 1.0f / 3.0f, 0.25f, 1.3862944f};
    for (int prec = 1; prec <= 9; prec++)
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            float up = vals[i], down = vals[i];
            check_g(vals[i], prec);
            check_g(-vals[i], prec);
            for (int k = 0; k < 3; k++) {
                check_g(up = nextafterf(up, INFINITY), prec);
                check_g(down = nextafterf(down, -INFINITY), prec);
            }
        }
    expect_none_bad("special values");
}

/* Every 3rd float in [0.25, 4) (probabilities, entropies, logp), alternately negated. */
static void test_g_binades(void **state)
{
    (void)state;
    uint32_t lo, hi;
    float a = 0.25f, b = 4.0f;
    memcpy(&lo, &a, 4);
    memcpy(&hi, &b, 4);
    for (uint32_t u = lo; u < hi; u += 3) check_g((u & 1) ? -from_bits(u) : from_bits(u), 6);
    expect_none_bad("[0.25, 4) at stride 3");
}

/* Every finite float (all binary exponents, denormals included) at a stride of 997 ulps,
 * both signs, at %.6g; every 9973rd at the other precisions. */
static void test_g_all_exponents(void **state)
{
    (void)state;
    for (uint32_t u = 0; u < 0x7f800000u; u += 997) {
        check_g(from_bits(u), 6);
        check_g(-from_bits(u + 1), 6);
    }
    for (int prec = 1; prec <= 9; prec++)
        for (uint32_t u = (uint32_t)prec; u < 0x7f800000u; u += 9973) check_g(from_bits(u), prec);
    expect_none_bad("all exponents");
}

/* The floats nearest decimal ties d.ddd..d5 x 10^e (P digits d, every e of the float
 * range), and 3 ulps either side: where a fast path's rounding error would show. */
static void test_g_inexact_ties(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    for (int prec = 1; prec <= 9; prec++) {
        long long lo = 1, n_mant = prec == 6 ? 4000 : 300;
        for (int i = 1; i < prec; i++) lo *= 10;
        for (int e = -46; e <= 38; e++)
            for (long long j = 0; j < n_mant; j++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                long long m = j == 0 ? lo : j == 1 ? 10 * lo - 1 : lo + (long long)(rng >> 33) % (9 * lo);
                char s[64];
                snprintf(s, sizeof s, "%lld5e%d", m, e - prec);
                float t = strtof(s, NULL), up = t, down = t;
                check_g(t, prec);
                for (int k = 0; k < 3; k++) {
                    check_g(up = nextafterf(up, INFINITY), prec);
                    check_g(down = nextafterf(down, -INFINITY), prec);
                }
            }
    }
    expect_none_bad("floats around decimal ties");
}

/* Exact ties: dyadic k / 2^j whose decimal expansion ends in 5 at digit P + 1 (j decimal
 * places, integer part of P + 1 - j digits), as odd k at a stride; for P = 6 every
 * integer ending in 5 of 7 digits below 2^24 too. printf rounds these to even. */
static void test_g_exact_ties(void **state)
{
    (void)state;
    for (int32_t k = 1000005; k < (1 << 24); k += 10) check_g((float)k, 6);
    for (int prec = 1; prec <= 8; prec++)
        for (int j = 1; j <= prec; j++) {
            double lo = pow(10.0, prec - j) * ldexp(1.0, j), hi = 10.0 * lo; /* k range */
            long long step = (long long)((hi - lo) / 20000) | 1, k0 = (long long)lo | 1;
            for (long long k = k0; k < hi && k < (1LL << 24); k += 2 * step)
                check_g((float)ldexp((double)k, -j), prec);
        }
    expect_none_bad("exact ties");
}

static void check_i64(int64_t v)
{
    char want[32], got[MS_FMT_I64_MAX + 8];
    int nw = snprintf(want, sizeof want, "%" PRId64, v);
    size_t ng = (size_t)(ms_fmt_i64(got, v) - got);
    n_checked++;
    if (ng == (size_t)nw && ng <= MS_FMT_I64_MAX && memcmp(got, want, ng) == 0) return;
    if (n_bad++ < 10) print_message("%s: ms_fmt_i64 \"%.*s\"\n", want, (int)ng, got);
}

/* Zero, the extremes, every power of ten and its neighbours, random magnitudes. */
static void test_i64(void **state)
{
    (void)state;
    check_i64(0);
    check_i64(INT64_MAX);
    check_i64(INT64_MIN);
    check_i64(INT64_MIN + 1);
    for (int64_t p = 1, i = 0; i < 19; i++, p *= 10)
        for (int d = -1; d <= 1; d++) {
            check_i64(p + d);
            check_i64(-(p + d));
        }
    uint64_t rng = 99;
    for (int i = 0; i < 200000; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        check_i64((int64_t)rng >> (rng & 63)); /* every magnitude, both signs */
    }
    expect_none_bad("int64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_g_known),        cmocka_unit_test(test_g_special),
        cmocka_unit_test(test_g_binades),      cmocka_unit_test(test_g_all_exponents),
        cmocka_unit_test(test_g_inexact_ties), cmocka_unit_test(test_g_exact_ties),
        cmocka_unit_test(test_i64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
