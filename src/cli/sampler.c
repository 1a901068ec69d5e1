/* sampler.c - repetition penalty, temperature, top-k / top-p / min-p and the draw, over
 * one short row of logits; xoshiro256** for the random numbers. */
#include "sampler.h"

#include <math.h>

/* ------------------------------------------------------------------ PRNG */

/* splitmix64: one step of the sequence x, x + gamma, ... through a bijective mixer. Used
 * only to spread a seed over xoshiro's 256 bits of state (never all zero this way). */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ms_rng_seed(ms_rng *r, uint64_t seed, uint64_t stream)
{
    /* Streams start far apart in splitmix's sequence: stream s begins at the mixed value
     * of s, not at seed + s * gamma (which would make stream s+1 stream s shifted by one). */
    uint64_t t = stream;
    uint64_t x = seed ^ splitmix64(&t);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t ms_rng_next(ms_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double ms_rng_uniform(ms_rng *r)
{
    return (double)(ms_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------- filters */

ms_sampler_params ms_sampler_default_params(void)
{
    ms_sampler_params p = {1.0, 0, 1.0, 0.0, 1.0};
    return p;
}

void ms_sampler_penalize(double *logits, int n, const unsigned char *seen, double penalty)
{
    if (!seen || penalty == 1.0) return;
    for (int i = 0; i < n; i++)
        if (seen[i]) logits[i] = logits[i] > 0 ? logits[i] / penalty : logits[i] * penalty;
}

int ms_sampler_argmax(const double *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

void ms_sampler_softmax(const double *logits, int n, double temperature, double *p)
{
    double mx = logits[ms_sampler_argmax(logits, n)];
    for (int i = 0; i < n; i++) p[i] = exp((logits[i] - mx) / temperature);
    ms_sampler_normalize(p, n);
}

void ms_sampler_normalize(double *p, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++) sum += p[i];
    for (int i = 0; i < n; i++) p[i] /= sum;
}

/* order[0..n) = indices by p descending, the lower index first on a tie (insertion sort:
 * n is a handful). */
static void order_desc(const double *p, int n, int *order)
{
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && p[order[j - 1]] < p[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

void ms_sampler_top_k(double *p, int n, int k)
{
    if (k <= 0 || k >= n) return;
    int order[MS_SAMPLER_MAX];
    order_desc(p, n, order);
    for (int j = k; j < n; j++) p[order[j]] = 0;
}

void ms_sampler_top_p(double *p, int n, double top_p)
{
    if (top_p >= 1.0) return;
    int order[MS_SAMPLER_MAX];
    order_desc(p, n, order);
    double total = 0;
    for (int i = 0; i < n; i++) total += p[i];
    /* Keep tokens, most probable first, until their mass reaches top_p of the total; a mass
     * short of it by rounding only (1e-9 relative) counts as reaching it, so that p = 0.8
     * over {0.5, 0.3, 0.2} keeps two tokens whatever the last bits of the sum. */
    double need = top_p * total - 1e-9 * total, cum = 0;
    int j = 0;
    while (j < n && (j == 0 || cum < need)) cum += p[order[j++]];
    for (; j < n; j++) p[order[j]] = 0;
}

void ms_sampler_min_p(double *p, int n, double min_p)
{
    if (min_p <= 0) return;
    double floor = min_p * p[ms_sampler_argmax(p, n)];
    for (int i = 0; i < n; i++)
        if (p[i] < floor) p[i] = 0;
}

int ms_sampler_draw(const double *p, int n, double u)
{
    double total = 0;
    for (int i = 0; i < n; i++) total += p[i];
    double target = u * total, cum = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] <= 0) continue;
        last = i;
        cum += p[i];
        if (target < cum) return i;
    }
    return last; /* u * total rounded up to the full sum: the last possible token */
}

int ms_sample(const ms_sampler_params *sp, const float *logits, int n, const unsigned char *seen,
              ms_rng *r, double *probs)
{
    double l[MS_SAMPLER_MAX], p[MS_SAMPLER_MAX];
    double u = ms_rng_uniform(r);
    if (n < 1 || n > MS_SAMPLER_MAX) return 0; /* outside the contract: no token to choose */
    for (int i = 0; i < n; i++) l[i] = logits[i];
    ms_sampler_penalize(l, n, seen, sp->repetition_penalty);
    int pick;
    if (sp->temperature <= 0) {
        pick = ms_sampler_argmax(l, n);
        for (int i = 0; i < n; i++) p[i] = i == pick;
    } else {
        ms_sampler_softmax(l, n, sp->temperature, p);
        ms_sampler_top_k(p, n, sp->top_k);
        ms_sampler_top_p(p, n, sp->top_p);
        ms_sampler_min_p(p, n, sp->min_p);
        ms_sampler_normalize(p, n);
        pick = ms_sampler_draw(p, n, u);
    }
    if (probs)
        for (int i = 0; i < n; i++) probs[i] = p[i];
    return pick;
}
