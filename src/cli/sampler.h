/* sampler.h - choosing the next token from a short row of logits (the DNA letters a
 * model may emit), with a seeded PRNG of our own so that a seed gives the same draws on
 * every platform and with any thread count.
 *
 * Pipeline of ms_sample, in transformers' order:
 *   1. repetition penalty on the logits (CTRL rule: a seen token's logit l becomes l / R
 *      when l > 0, l * R otherwise);
 *   2. temperature: p = softmax(l / T); T = 0 is greedy: the argmax of the penalised
 *      logits, and steps 3-5 are skipped;
 *   3. top-k, 4. top-p (nucleus), 5. min-p, each on the distribution the previous step
 *      left, renormalised;
 *   6. one draw from what is left.
 * Ties are broken by the lower index everywhere (argmax, the order top-k and top-p keep
 * tokens in), so results never depend on a sort's stability.
 *
 * All functions are pure over caller arrays (n <= MS_SAMPLER_MAX); probabilities are
 * double. Nothing here allocates or keeps state but the PRNG. */
#ifndef MS_SAMPLER_H
#define MS_SAMPLER_H

#include <stdint.h>

#define MS_SAMPLER_MAX 64 /* candidates per row: small alphabets only */

/* xoshiro256** (Blackman & Vigna), seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} ms_rng;

/* Seed the generator for one of several independent sequences (stream = sample index):
 * the same (seed, stream) always gives the same numbers. */
void ms_rng_seed(ms_rng *r, uint64_t seed, uint64_t stream);
uint64_t ms_rng_next(ms_rng *r);
/* Uniform in [0, 1), from the top 53 bits of one ms_rng_next. */
double ms_rng_uniform(ms_rng *r);

typedef struct {
    double temperature;        /* >= 0; 0 = greedy (argmax) */
    int top_k;                 /* keep the k most probable; 0 = off */
    double top_p;              /* keep the smallest set of mass >= top_p; 1 = off; (0, 1] */
    double min_p;              /* keep p >= min_p * p_max; 0 = off; [0, 1] */
    double repetition_penalty; /* > 0; 1 = off */
} ms_sampler_params;

/* temperature 1, every filter off. */
ms_sampler_params ms_sampler_default_params(void);

/* logits[i] of every token with seen[i] != 0: divided by penalty if > 0, else multiplied. */
void ms_sampler_penalize(double *logits, int n, const unsigned char *seen, double penalty);
/* Index of the largest value; the lowest index on a tie. */
int ms_sampler_argmax(const double *x, int n);
/* p[i] = exp((logits[i] - max) / temperature) / sum; temperature > 0. */
void ms_sampler_softmax(const double *logits, int n, double temperature, double *p);
/* Filters on probabilities (any positive total; removed entries become 0, survivors are
 * left unnormalised). Each keeps at least the most probable token. */
void ms_sampler_top_k(double *p, int n, int k);
void ms_sampler_top_p(double *p, int n, double top_p);
void ms_sampler_min_p(double *p, int n, double min_p);
/* Divide by the sum (> 0). */
void ms_sampler_normalize(double *p, int n);
/* The index i with cumsum(p)[i-1] <= u * sum(p) < cumsum(p)[i], u in [0, 1); never an
 * entry with p = 0. */
int ms_sampler_draw(const double *p, int n, double u);

/* The whole pipeline above on one row. seen: [n] flags for the repetition penalty (NULL:
 * none). Draws exactly one number from r per call, greedy or not, so a sample's random
 * stream does not depend on its settings. probs (may be NULL): [n] the final distribution
 * drawn from (greedy: 1 on the argmax). Returns the chosen index in [0, n). */
int ms_sample(const ms_sampler_params *sp, const float *logits, int n, const unsigned char *seen,
              ms_rng *r, double *probs);

#endif
