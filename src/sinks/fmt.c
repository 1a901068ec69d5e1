/* fmt.c - ms_fmt_i64 and ms_fmt_g (see fmt.h).
 *
 * "%.Pg" of a finite v != 0, as C11 7.21.6.1 defines it:
 *   X = the decimal exponent of |v| once rounded to P significant digits,
 *   n = round(|v| * 10^(P-1-X)), the P digits, an integer in [10^(P-1), 10^P);
 *   written as %f with P-1-X decimals when -4 <= X < P, else as d.ddde+XX, and in both
 *   the fraction's trailing zeros removed (then a bare '.').
 * The scaling is done in double: |v| is exact there (24 of 53 bits), 10^k is exact for
 * 0 <= k <= 22 and within half an ulp otherwise, and the multiply rounds once more, so
 * the scaled value is within 2^-52 relative, < 2.5e-7 absolute below 10^9, of the exact
 * product. Rounding that to the nearest integer can only differ from
 * printf's (exact binary value, ties to even) when the exact product lies within that
 * distance of a half-integer; so every scaled value within TIE_MARGIN of one goes to
 * snprintf instead: about 2 * TIE_MARGIN of all values, and every exact tie
 * (1234565.f or 1024.125f at P = 6). An integer boundary crossed by the error is harmless
 * (the rounding goes up to the same integer), and so is a wrong first guess of X (the
 * range checks below move it, and a value that rounds up to 10^P gains a digit of X as
 * printf's does). inf and nan also go to snprintf, for glibc's spelling of their signs. */
#include "fmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TIE_MARGIN 1e-6 /* > 4x the worst scaling error at P = 9 (above) */

/* 10^k for k = -46..55, at k_pow10[k + POW10_MIN]: the float range's decimal exponents
 * (-45..38) and the scale factors 10^(P-1-X) of every X and P = 1..9. The compiler rounds
 * each literal correctly; 10^0..10^22 are exact. */
#define POW10_MIN 46
static const double k_pow10[] = {
    1e-46, 1e-45, 1e-44, 1e-43, 1e-42, 1e-41, 1e-40, 1e-39, 1e-38, 1e-37, 1e-36, 1e-35,
    1e-34, 1e-33, 1e-32, 1e-31, 1e-30, 1e-29, 1e-28, 1e-27, 1e-26, 1e-25, 1e-24, 1e-23,
    1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11,
    1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4,
    1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
    1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33,
    1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47,
    1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55,
};

/* "00" "01" .. "99": two digits per division (no NUL: 200 chars). */
static const char k_pairs[200] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The w low decimal digits of m, zero-padded, at out; returns out + w. Each byte is
 * stored on its own, so reading them back right away costs no store-forwarding stall. */
static char *put_digits(char *out, uint64_t m, int w)
{
    int i = w;
    for (; i >= 2; i -= 2, m /= 100) {
        out[i - 1] = k_pairs[2 * (m % 100) + 1];
        out[i - 2] = k_pairs[2 * (m % 100)];
    }
    if (i) out[0] = (char)('0' + m % 10);
    return out + w;
}

/* Unsigned decimal, no leading zeros: its width by comparisons, then the digits. */
static char *put_u64(char *out, uint64_t u)
{
    int w = 1;
    for (uint64_t p = 10; w < 20 && u >= p; p *= 10) w++;
    return put_digits(out, u, w);
}

char *ms_fmt_i64(char *out, int64_t v)
{
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        *out++ = '-';
        u = 0 - u; /* modular: right for INT64_MIN too */
    }
    return put_u64(out, u);
}

/* What printf itself writes: the exact-rounding path and the spellings of inf / nan. */
static char *fallback_g(char *out, float v, int prec)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
    memcpy(out, buf, (size_t)n);
    return out + n;
}

/* 10^k, k in -46..55. */
static double pow10_of(int k)
{
    return k_pow10[k + POW10_MIN];
}

/* floor(log10(d)) for a positive normal double (every float is one), or one off where d
 * is within rounding of a power of ten (round_digits copes). With e its binary exponent,
 * log10(d) is in [e, e + 1) * log10(2), so floor(log10(d)) is g = floor((e + 1) log10(2))
 * or g - 1, and one comparison, without a branch, says which. g is computed in integers:
 * 78913 / 2^18 ~ log10(2), shifted by 392 (* log10(2) = 118.003) to stay non-negative;
 * checked against exact powers for every e in -160..139 (floats: -149..127). */
static int decimal_exponent(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int e = (int)(bits >> 52) - 1023; /* the sign bit is 0 */
    int g = (int)((uint32_t)(e + 1 + 392) * 78913u >> 18) - 118;
    return g - (d < pow10_of(g));
}

/* The P significant digits of d > 0 as an integer n in [10^(P-1), 10^P), and the
 * decimal exponent x of the first, as "%.{P-1}e" would print them; 0 when d is too near
 * a rounding tie to tell in double. */
static int round_digits(double d, int prec, uint32_t *n_out, int *x_out)
{
    const double lo = pow10_of(prec - 1), hi = pow10_of(prec);
    int x = decimal_exponent(d);
    double scaled = d * pow10_of(prec - 1 - x);
    if (scaled >= hi) scaled = d * pow10_of(prec - 1 - ++x);
    else if (scaled < lo) scaled = d * pow10_of(prec - 1 - --x);
    double whole = floor(scaled), frac = scaled - whole; /* both exact */
    if (fabs(frac - 0.5) < TIE_MARGIN) return 0;
    uint32_t n = (uint32_t)whole + (frac > 0.5);
    if (n == (uint32_t)hi) { /* 9.999995 -> 10.0000: one more digit of exponent */
        n = (uint32_t)lo;
        x++;
    }
    *n_out = n;
    *x_out = x;
    return 1;
}

/* Drop the trailing zeros of a fraction, then the point if nothing is left after it
 * (the digits before the point are never reached: the point stops the scan). */
static char *trim_fraction(char *end)
{
    while (end[-1] == '0') end--;
    return end[-1] == '.' ? end - 1 : end;
}

/* The prec digits of n as %f with the point after digit x, x in -4..prec-1. */
static char *put_fixed(char *out, uint32_t n, int prec, int x)
{
    if (x < 0) { /* "0." and -x - 1 zeros (no loop: its varying count mispredicts) */
        memcpy(out, "0.0000", 6);
        return trim_fraction(put_digits(out + 1 - x, n, prec));
    }
    char *end = put_digits(out, n, prec);
    if (x == prec - 1) return end; /* no fraction */
    for (char *q = end; q > out + x + 1; q--) q[0] = q[-1]; /* open a gap for the point */
    out[x + 1] = '.';
    return trim_fraction(end + 1);
}

/* The prec digits of n as d.ddde+XX (two exponent digits, as printf: floats have
 * |x| <= 45). */
static char *put_exp(char *out, uint32_t n, int prec, int x)
{
    char *end = put_digits(out + 1, n, prec);
    out[0] = out[1];
    out[1] = '.';
    out = trim_fraction(end); /* prec = 1: "d." and no digit after it -> "d" */
    *out++ = 'e';
    *out++ = x < 0 ? '-' : '+';
    return put_digits(out, (uint32_t)(x < 0 ? -x : x), 2);
}

char *ms_fmt_g(char *out, float v, int prec)
{
    if (prec < 1) prec = 1; /* printf reads %.0g as %.1g */
    if (prec > 9) prec = 9;
    if (!isfinite(v)) return fallback_g(out, v, prec);
    if (signbit(v)) *out++ = '-';
    if (v == 0.0f) {
        *out++ = '0';
        return out;
    }
    uint32_t n;
    int x;
    if (!round_digits(fabs((double)v), prec, &n, &x))
        return fallback_g(out, fabsf(v), prec); /* the sign is written */
    return x >= -4 && x < prec ? put_fixed(out, n, prec, x) : put_exp(out, n, prec, x);
}
