/* score.c - next-base scores from a row of logits.
 *
 * Everything is done in double on the four base logits l[A,C,G,T]:
 *   m = max l,  s = sum exp(l - m),  lse = m + ln s
 *   p[b] = exp(l[b] - m) / s,  ln p[b] = l[b] - lse
 *   entropy = -sum p ln p (terms with p = 0 dropped: 0 ln 0 = 0)
 *   logp(set) = lse(set) - lse, the members' own log-sum-exp, so a set of tiny
 *   probabilities keeps its exact logarithm instead of ln(0).
 * Non-finite logits are folded in first (NaN as -inf; +inf ties share the mass), so
 * every output is finite; a logp below the float range (a base with probability
 * exactly 0, or a logit gap past 3.4e38) is clamped to -FLT_MAX. out->pos is the
 * caller's and is left as it was. */
#include "score.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Bases an input letter stands for, as a mask over A=1 C=2 G=4 T=8 (IUPAC, any case;
 * U is T; anything else is N). */
static unsigned base_mask(char ref)
{
    unsigned c = (unsigned char)ref;
    if (c >= 'a' && c <= 'z') c -= 'a' - 'A';
    switch (c) {
    case 'A': return 0x1;
    case 'C': return 0x2;
    case 'G': return 0x4;
    case 'T': case 'U': return 0x8;
    case 'R': return 0x1 | 0x4;        /* A G */
    case 'Y': return 0x2 | 0x8;        /* C T */
    case 'S': return 0x2 | 0x4;        /* C G */
    case 'W': return 0x1 | 0x8;        /* A T */
    case 'K': return 0x4 | 0x8;        /* G T */
    case 'M': return 0x1 | 0x2;        /* A C */
    case 'B': return 0x2 | 0x4 | 0x8;  /* not A */
    case 'D': return 0x1 | 0x4 | 0x8;  /* not C */
    case 'H': return 0x1 | 0x2 | 0x8;  /* not G */
    case 'V': return 0x1 | 0x2 | 0x4;  /* not T */
    default: return 0xF;               /* N and everything else */
    }
}

static float clamp_to_float(double x)
{
    return x < -FLT_MAX ? -FLT_MAX : x > FLT_MAX ? FLT_MAX : (float)x;
}

void ms_score_from_logits(const float *logits, const int base_token[4], char ref, ms_score *out)
{
    double l[4];  /* base logits, made non-NaN with a finite maximum below */
    double m = -INFINITY;
    for (int b = 0; b < 4; b++) {
        double x = base_token[b] >= 0 ? (double)logits[base_token[b]] : -INFINITY;
        l[b] = isnan(x) ? -INFINITY : x;
        if (l[b] > m) m = l[b];
    }
    if (m == INFINITY) {
        /* +inf ties split the whole mass; everything else gets none. */
        for (int b = 0; b < 4; b++) l[b] = l[b] == INFINITY ? 0.0 : -INFINITY;
        m = 0.0;
    } else if (m == -INFINITY) {
        /* No base has any mass: nothing to prefer, so uniform. */
        for (int b = 0; b < 4; b++) l[b] = 0.0;
        m = 0.0;
    }

    double e[4], s = 0.0;  /* e[b] = exp(l[b] - m) in [0, 1], the largest exactly 1 */
    for (int b = 0; b < 4; b++) {
        e[b] = exp(l[b] - m);
        s += e[b];
    }
    double lse = m + log(s);  /* s >= 1, so lse >= every l[b] */

    double h = 0.0;
    int pred = 0;
    for (int b = 0; b < 4; b++) {
        double p = e[b] / s;
        out->p[b] = (float)p;
        if (p > 0.0) h -= p * (l[b] - lse);
        if (l[b] > l[pred]) pred = b;  /* first of ties: A before C before G before T */
    }

    unsigned mask = base_mask(ref);
    double logp = 0.0;  /* N: ln 1, exactly */
    if (mask != 0xF) {
        double ms = -INFINITY, ss = 0.0;
        for (int b = 0; b < 4; b++)
            if ((mask >> b & 1) && l[b] > ms) ms = l[b];
        if (ms == -INFINITY) {
            logp = -INFINITY;  /* every member has probability exactly 0 */
        } else {
            for (int b = 0; b < 4; b++)
                if (mask >> b & 1) ss += exp(l[b] - ms);
            logp = ms + log(ss) - lse;
            if (logp > 0.0) logp = 0.0;  /* rounding on a set holding all the mass */
        }
    }

    out->ref = ref;
    out->pred = "ACGT"[pred];
    out->rule = 0;
    out->logp = clamp_to_float(logp);
    out->entropy = (float)h;
}

void ms_score_uniform(char ref, ms_score *out)
{
    unsigned mask = base_mask(ref);
    int k = 0;
    for (int b = 0; b < 4; b++) k += mask >> b & 1;
    out->ref = ref;
    out->pred = 'A';
    out->rule = 2;
    out->logp = (float)log(k / 4.0);
    out->entropy = (float)log(4.0);
    for (int b = 0; b < 4; b++) out->p[b] = 0.25f;
}
