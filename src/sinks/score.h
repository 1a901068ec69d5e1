/* score.h - next-base scores from a row of logits (internal).
 *
 * The model's next-token distribution is restricted to the four base tokens and
 * renormalised: p(b) = exp(l_b) / sum_{A,C,G,T} exp(l_x). logp is ln of the probability of
 * the observed base; an IUPAC ambiguity code scores ln of the summed probability of the
 * bases it stands for (N: ln 1 = 0); any other byte is treated as N. Every score is
 * finite. */
#ifndef MS_SCORE_H
#define MS_SCORE_H

#include "sink.h"

/* logits: one row [n_vocab]; base_token: tokens of A, C, G, T. */
void ms_score_from_logits(const float *logits, const int base_token[4], char ref, ms_score *out);
/* The uniform prediction (first base of a record when the model has no BOS token). */
void ms_score_uniform(char ref, ms_score *out);

#endif
