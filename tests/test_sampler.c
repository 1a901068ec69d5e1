/* test_sampler.c - the sampler (src/cli/sampler.c): each filter on distributions worked
 * out by hand, the pipeline's order, draw frequencies against the target probabilities,
 * and the PRNG against the published xoshiro256** / splitmix64 values. */
#include "test_util.h"

#include <math.h>
#include <string.h>

#include "cli/sampler.h"

/* Filters only zero entries or leave them untouched: exact equality is the contract. */
static void assert_probs(const double *got, const double *want, int n)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("p[%d] = %.17g, want %.17g", i, got[i], want[i]);
}

/* Computed values (softmax, renormalised): tol relative plus an absolute floor. From double
 * logits a few double ulps do (1e-12); from float logits (ln k rounded to float, relative
 * error ~6e-8, times the logit's size ~1.4) 1e-6. */
static void assert_near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= 1e-15 + tol * fabs(want)))
        fail_msg("got %.17g, want %.17g (tol %.3g)", got, want, tol);
}
static void assert_close(double got, double want) { assert_near(got, want, 1e-12); }

/* --------------------------------------------------------------- PRNG */

static void test_xoshiro_reference(void **state)
{
    /* xoshiro256** from state {1, 2, 3, 4}: 11520, 0, 1509978240 (worked by hand from the
     * published algorithm; also the first outputs its reference C prints). */
    ms_rng r = {{1, 2, 3, 4}};
    assert_true(ms_rng_next(&r) == 11520u);
    assert_true(ms_rng_next(&r) == 0u);
    assert_true(ms_rng_next(&r) == 1509978240u);
}

static void test_seed_reproducible(void **state)
{
    ms_rng a, b, c, d;
    ms_rng_seed(&a, 42, 0);
    ms_rng_seed(&b, 42, 0);
    ms_rng_seed(&c, 43, 0);
    ms_rng_seed(&d, 42, 1);
    int diff_seed = 0, diff_stream = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = ms_rng_next(&a);
        assert_true(x == ms_rng_next(&b));
        diff_seed += x != ms_rng_next(&c);
        diff_stream += x != ms_rng_next(&d);
    }
    assert_int_equal(diff_seed, 1000);
    assert_int_equal(diff_stream, 1000);
    /* Stream s must not be stream s-1 shifted by a step (the splitmix trap). */
    ms_rng_seed(&a, 7, 0);
    ms_rng_seed(&b, 7, 1);
    uint64_t a1[8], b1[8];
    for (int i = 0; i < 8; i++) { a1[i] = ms_rng_next(&a); b1[i] = ms_rng_next(&b); }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) assert_true(a1[i] != b1[j]);
    /* All zero state would be stuck at 0; seeding 0 must not give it. */
    ms_rng_seed(&a, 0, 0);
    assert_true(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
}

static void test_seed_golden(void **state)
{
    /* ms_rng_seed(0, 0): splitmix64 from 0 gives 0xE220A8397B1DCDAF first (the published
     * value), which becomes the start x for the four state words. Any platform must agree
     * with these, or a seed would give other DNA elsewhere. */
    ms_rng r;
    ms_rng_seed(&r, 0, 0);
    /* the state words are splitmix64 steps 1..4 from x = 0xE220A8397B1DCDAF */
    uint64_t x = 0xE220A8397B1DCDAFull;
    for (int i = 0; i < 4; i++) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        assert_true(r.s[i] == (z ^ (z >> 31)));
    }
}

static void test_uniform_range(void **state)
{
    ms_rng r;
    ms_rng_seed(&r, 1, 0);
    double lo = 1, hi = 0, sum = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double u = ms_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
    }
    /* mean of n uniforms: sd sqrt(1/12/n) ~ 0.0009; 5 sd */
    assert_true(fabs(sum / n - 0.5) < 5 * sqrt(1.0 / 12 / n));
    assert_true(lo < 1e-3 && hi > 1 - 1e-3);
}

/* ------------------------------------------------------------ filters */

static void test_top_k(void **state)
{
    double p[4] = {0.1, 0.4, 0.2, 0.3};
    ms_sampler_top_k(p, 4, 2);
    assert_probs(p, (double[]){0, 0.4, 0, 0.3}, 4);
    double q[4] = {0.1, 0.4, 0.2, 0.3};
    ms_sampler_top_k(q, 4, 1);
    assert_probs(q, (double[]){0, 0.4, 0, 0}, 4);
    for (int k = 0; k <= 5; k += 4) { /* 0 = off, k >= n keeps all */
        double s[4] = {0.1, 0.4, 0.2, 0.3};
        ms_sampler_top_k(s, 4, k);
        assert_probs(s, (double[]){0.1, 0.4, 0.2, 0.3}, 4);
    }
    /* exactly k on ties: the lower indices */
    double t[4] = {0.25, 0.25, 0.25, 0.25};
    ms_sampler_top_k(t, 4, 3);
    assert_probs(t, (double[]){0.25, 0.25, 0.25, 0}, 4);
    double u[5] = {0.1, 0.3, 0.1, 0.3, 0.2};
    ms_sampler_top_k(u, 5, 2);
    assert_probs(u, (double[]){0, 0.3, 0, 0.3, 0}, 5);
    ms_sampler_top_k(u, 5, 1);
    assert_probs(u, (double[]){0, 0.3, 0, 0, 0}, 5);
}

static void test_top_p(void **state)
{
    /* sorted: 0.5 (1), 0.3 (2), 0.1 (0), 0.1 (3); cumulative 0.5 0.8 0.9 1.0 */
    static const double base[4] = {0.1, 0.5, 0.3, 0.1};
    struct { double top_p; double want[4]; } cases[] = {
        {0.3, {0, 0.5, 0, 0}},        /* the first token already reaches it */
        {0.5, {0, 0.5, 0, 0}},        /* reached exactly by one */
        {0.51, {0, 0.5, 0.3, 0}},
        {0.8, {0, 0.5, 0.3, 0}},      /* exactly: 0.5 + 0.3 */
        {0.85, {0.1, 0.5, 0.3, 0}},   /* tie at 0.1: the lower index is kept */
        {0.95, {0.1, 0.5, 0.3, 0.1}},
        {1.0, {0.1, 0.5, 0.3, 0.1}},  /* off */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double p[4];
        memcpy(p, base, sizeof p);
        ms_sampler_top_p(p, 4, cases[c].top_p);
        assert_probs(p, cases[c].want, 4);
        /* unnormalised input (weights 1 5 3 1): the same set */
        double w[4] = {1, 5, 3, 1};
        ms_sampler_top_p(w, 4, cases[c].top_p);
        for (int i = 0; i < 4; i++) assert_int_equal(w[i] > 0, cases[c].want[i] > 0);
    }
    /* a tiny top_p still keeps the most probable */
    double p[3] = {0.2, 0.2, 0.6};
    ms_sampler_top_p(p, 3, 1e-6);
    assert_probs(p, (double[]){0, 0, 0.6}, 3);
}

static void test_min_p(void **state)
{
    /* p_max 0.5: min_p 0.3 -> floor 0.15; min_p 0.7 -> 0.35; min_p 1 -> the max only */
    double p[4] = {0.1, 0.5, 0.3, 0.1};
    ms_sampler_min_p(p, 4, 0.3);
    assert_probs(p, (double[]){0, 0.5, 0.3, 0}, 4);
    double q[4] = {0.1, 0.5, 0.3, 0.1};
    ms_sampler_min_p(q, 4, 0.7);
    assert_probs(q, (double[]){0, 0.5, 0, 0}, 4);
    double r[4] = {0.1, 0.5, 0.3, 0.1};
    ms_sampler_min_p(r, 4, 0);
    assert_probs(r, (double[]){0.1, 0.5, 0.3, 0.1}, 4);
    double s[4] = {0.4, 0.4, 0.1, 0.1};   /* two at the max both stay at min_p 1 */
    ms_sampler_min_p(s, 4, 1);
    assert_probs(s, (double[]){0.4, 0.4, 0, 0}, 4);
    double w[4] = {2, 10, 6, 2};            /* unnormalised: relative to the max */
    ms_sampler_min_p(w, 4, 0.3);
    assert_probs(w, (double[]){0, 10, 6, 0}, 4);
}

static void test_repetition_penalty(void **state)
{
    /* CTRL rule: seen and positive -> / R; seen and negative -> * R; unseen untouched */
    double l[5] = {2, -2, 2, -2, 0};
    const unsigned char seen[5] = {1, 1, 0, 0, 1};
    ms_sampler_penalize(l, 5, seen, 2.0);
    assert_probs(l, (double[]){1, -4, 2, -2, 0}, 5);
    double m[5] = {2, -2, 2, -2, 0};
    ms_sampler_penalize(m, 5, seen, 0.5);  /* R < 1 favours seen tokens */
    assert_probs(m, (double[]){4, -1, 2, -2, 0}, 5);
    double n[5] = {2, -2, 2, -2, 0};
    ms_sampler_penalize(n, 5, NULL, 2.0);
    assert_probs(n, (double[]){2, -2, 2, -2, 0}, 5);
}

static void test_softmax_temperature(void **state)
{
    const double l[2] = {0, log(2.0)};
    double p[2];
    ms_sampler_softmax(l, 2, 1.0, p);   /* 1 : 2 */
    assert_close(p[0], 1.0 / 3);
    assert_close(p[1], 2.0 / 3);
    ms_sampler_softmax(l, 2, 0.5, p);   /* 1 : 4 */
    assert_close(p[0], 1.0 / 5);
    assert_close(p[1], 4.0 / 5);
    ms_sampler_softmax(l, 2, 2.0, p);   /* 1 : sqrt 2 */
    assert_close(p[0], 1 / (1 + sqrt(2.0)));
    /* huge logits: shifted by the max, no overflow */
    const double big[3] = {1000, 1000 + log(3.0), -1e30};
    double q[3];
    ms_sampler_softmax(big, 3, 1.0, q);
    assert_close(q[0], 0.25);
    assert_close(q[1], 0.75);
    assert_true(q[2] == 0);
}

static void test_draw(void **state)
{
    const double p[3] = {0.25, 0, 0.75};
    assert_int_equal(ms_sampler_draw(p, 3, 0.0), 0);
    assert_int_equal(ms_sampler_draw(p, 3, 0.2499), 0);
    assert_int_equal(ms_sampler_draw(p, 3, 0.25), 2);
    assert_int_equal(ms_sampler_draw(p, 3, 0.9999999999), 2);
    const double w[3] = {1, 0, 3};      /* unnormalised: the same cuts */
    assert_int_equal(ms_sampler_draw(w, 3, 0.2499), 0);
    assert_int_equal(ms_sampler_draw(w, 3, 0.25), 2);
    const double z[4] = {0.5, 0.5, 0, 0}; /* never a zero entry, even at u -> 1 */
    assert_int_equal(ms_sampler_draw(z, 4, 1.0 - 0x1.0p-53), 1);
}

/* ----------------------------------------------------------- pipeline */

static void test_greedy_is_argmax(void **state)
{
    ms_sampler_params sp = ms_sampler_default_params();
    sp.temperature = 0;
    sp.top_k = 1;  /* ignored when greedy */
    ms_rng r;
    ms_rng_seed(&r, 5, 0);
    const float l[4] = {0.3f, 1.5f, -2.0f, 1.4f};
    double probs[4];
    for (int i = 0; i < 100; i++) assert_int_equal(ms_sample(&sp, l, 4, NULL, &r, probs), 1);
    assert_probs(probs, (double[]){0, 1, 0, 0}, 4);
    const float tie[4] = {1, 2, 2, 0};   /* the lower index on a tie */
    assert_int_equal(ms_sample(&sp, tie, 4, NULL, &r, NULL), 1);
    /* the penalty applies before the argmax: 1.5 / 2 = 0.75 < 1.4 */
    const unsigned char seen[4] = {0, 1, 0, 0};
    sp.repetition_penalty = 2;
    assert_int_equal(ms_sample(&sp, l, 4, seen, &r, NULL), 3);
}

static void test_one_draw_per_call(void **state)
{
    /* greedy or not, one number per call: streams stay aligned whatever the settings */
    ms_sampler_params g = ms_sampler_default_params(), s = g;
    g.temperature = 0;
    s.top_k = 2;
    ms_rng a, b;
    ms_rng_seed(&a, 9, 3);
    ms_rng_seed(&b, 9, 3);
    const float l[4] = {0, 1, 2, 3};
    for (int i = 0; i < 10; i++) {
        ms_sample(&g, l, 4, NULL, &a, NULL);
        ms_sample(&s, l, 4, NULL, &b, NULL);
    }
    assert_memory_equal(&a, &b, sizeof a);
}

static void test_filter_order(void **state)
{
    /* logits ln(1, 2, 3, 4) at T = 1 -> p = 0.1 0.2 0.3 0.4.
     * top-k 3 leaves 0.2 0.3 0.4 (sum 0.9); top-p 0.6 of that keeps 0.4 + 0.3 = 0.7 / 0.9
     * (0.4 alone is 0.44); min-p 0.8 then drops 0.3 < 0.8 * 0.4: only token 3 is left. */
    ms_sampler_params sp = ms_sampler_default_params();
    const float l[4] = {(float)log(1.0), (float)log(2.0), (float)log(3.0), (float)log(4.0)};
    double probs[4];
    ms_rng r;
    ms_rng_seed(&r, 1, 0);
    sp.top_k = 3;
    sp.top_p = 0.6;
    ms_sample(&sp, l, 4, NULL, &r, probs);
    assert_true(probs[0] == 0 && probs[1] == 0);
    assert_near(probs[2], 3.0 / 7, 1e-6);
    assert_near(probs[3], 4.0 / 7, 1e-6);
    sp.min_p = 0.8;
    assert_int_equal(ms_sample(&sp, l, 4, NULL, &r, probs), 3);
    assert_probs(probs, (double[]){0, 0, 0, 1}, 4);
    /* the penalty acts on logits before the temperature: ln 4 / 2 = ln 2 ties token 1 */
    ms_sampler_params pen = ms_sampler_default_params();
    pen.repetition_penalty = 2;
    const unsigned char seen[4] = {0, 0, 0, 1};
    ms_sample(&pen, l, 4, seen, &r, probs);
    assert_near(probs[3], 2.0 / 8, 1e-6);
    assert_near(probs[1], 2.0 / 8, 1e-6);
}

/* Draw n times with sp from logits l; every count within 5 standard deviations of the
 * binomial around want[i] (a fixed seed: the check is deterministic, and a correct sampler
 * misses 5 sd with probability ~6e-7 per cell), and exactly 0 where want[i] = 0. */
static void check_frequencies(const ms_sampler_params *sp, const float *l, const double *want,
                              int k, uint64_t seed)
{
    enum { N = 100000 };
    int count[MS_SAMPLER_MAX] = {0};
    ms_rng r;
    ms_rng_seed(&r, seed, 0);
    for (int i = 0; i < N; i++) count[ms_sample(sp, l, k, NULL, &r, NULL)]++;
    for (int i = 0; i < k; i++) {
        double sd = sqrt(N * want[i] * (1 - want[i]));
        if (want[i] == 0 ? count[i] != 0 : fabs(count[i] - N * want[i]) > 5 * sd)
            fail_msg("token %d: %d of %d draws, want %.1f +- %.1f (5 sd)", i, count[i], N,
                     N * want[i], 5 * sd);
    }
}

static void test_sampled_frequencies(void **state)
{
    const float l[4] = {(float)log(1.0), (float)log(2.0), (float)log(3.0), (float)log(4.0)};
    ms_sampler_params sp = ms_sampler_default_params();
    check_frequencies(&sp, l, (double[]){0.1, 0.2, 0.3, 0.4}, 4, 1);
    sp.temperature = 0.5;  /* squares: 1 4 9 16 over 30 */
    check_frequencies(&sp, l, (double[]){1 / 30.0, 4 / 30.0, 9 / 30.0, 16 / 30.0}, 4, 2);
    sp.temperature = 1;
    sp.top_k = 2;          /* 3 : 4 */
    check_frequencies(&sp, l, (double[]){0, 0, 3 / 7.0, 4 / 7.0}, 4, 3);
    sp.top_k = 0;
    sp.top_p = 0.65;       /* 0.4 + 0.3 = 0.7 >= 0.65 */
    check_frequencies(&sp, l, (double[]){0, 0, 3 / 7.0, 4 / 7.0}, 4, 4);
    sp.top_p = 1;
    sp.min_p = 0.45;       /* >= 0.18: 2 3 4 over 9 */
    check_frequencies(&sp, l, (double[]){0, 2 / 9.0, 3 / 9.0, 4 / 9.0}, 4, 5);
    /* a skewed row: the rare token must come at its rate, not be rounded away */
    const float s[4] = {0, (float)log(99.0), -50, -50};
    ms_sampler_params plain = ms_sampler_default_params();
    double e = exp(-50.0), z = 1 + 99 + 2 * e;
    check_frequencies(&plain, s, (double[]){1 / z, 99 / z, e / z, e / z}, 4, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xoshiro_reference),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_seed_golden),
        cmocka_unit_test(test_uniform_range),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_softmax_temperature),
        cmocka_unit_test(test_draw),
        cmocka_unit_test(test_greedy_is_argmax),
        cmocka_unit_test(test_one_draw_per_call),
        cmocka_unit_test(test_filter_order),
        cmocka_unit_test(test_sampled_frequencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
