/* frontend_mulaw.c - mu-law companding to tokens (definition in the header). */
#include "frontend_mulaw.h"

#include <math.h>

int32_t ms_mulaw_token(float x, int bits)
{
    const double q = (double)(1 << bits), mu = q - 1;
    double v = x != x ? 0.0 : x; /* NaN counts as silence */
    v = v > 1 ? 1 : v < -1 ? -1 : v;
    double e = (v < 0 ? -1 : 1) * log1p(mu * fabs(v)) / log1p(mu);
    int32_t t = (int32_t)floor((e + 1) / 2 * (q - 0.01) + 0.005);
    return t < 0 ? 0 : t > (int32_t)mu ? (int32_t)mu : t;
}

void ms_mulaw_encode(const float *x, int n, int bits, int32_t *tokens)
{
    for (int i = 0; i < n; i++) tokens[i] = ms_mulaw_token(x[i], bits);
}

float ms_mulaw_decode(int32_t token, int bits)
{
    const double q = (double)(1 << bits), mu = q - 1;
    double e = (token + 0.5) / q * 2 - 1;
    return (float)((e < 0 ? -1 : 1) * expm1(fabs(e) * log1p(mu)) / mu);
}
