/* frontend_mulaw.h - mu-law sample tokens (the "mulaw" front end, SC09 / SaShiMi style).
 *
 * For a sample x (clamped to [-1, 1]), mu = 2^bits - 1:
 *   e     = sign(x) * ln(1 + mu |x|) / ln(1 + mu)          in [-1, 1]
 *   token = floor((e + 1) / 2 * (2^bits - 0.01) + 0.005)    in [0, 2^bits)
 * which is SaShiMi's mu_law_encode + quantize, without its per-clip min-max scaling (a
 * stream's range is not known until it ends): samples are used as read. */
#ifndef MS_FRONTEND_MULAW_H
#define MS_FRONTEND_MULAW_H

#include <stdint.h>

int32_t ms_mulaw_token(float x, int bits);
/* tokens[i] = ms_mulaw_token(x[i], bits), i < n */
void ms_mulaw_encode(const float *x, int n, int bits, int32_t *tokens);
/* The centre of a token's interval back as a sample (for tests and listening). */
float ms_mulaw_decode(int32_t token, int bits);

#endif
