/* fmt.h - numbers to decimal text, byte for byte what printf prints, for the text sinks
 * (one line per base: printf's parsing and locale work cost more than the model on a GPU).
 *
 *   char line[64], *p = line;
 *   p = ms_fmt_i64(p, pos + 1);       // "%lld"
 *   *p++ = '\t';
 *   p = ms_fmt_g(p, score, 6);        // "%.6g" of (double)score
 *   fwrite(line, 1, (size_t)(p - line), f);
 *
 * Both write no terminating NUL and return the end of what they wrote. Pure functions of
 * their arguments: thread-safe. The C locale's decimal point '.' is assumed, as the sinks
 * always run in (the CLI never calls setlocale). */
#ifndef MS_FMT_H
#define MS_FMT_H

#include <stdint.h>

/* Longest outputs: "-9223372036854775808"; "%.9g" of a float, "-1.23456789e-45". */
#define MS_FMT_I64_MAX 20
#define MS_FMT_G_MAX 16

/* "%lld" of v: MS_FMT_I64_MAX bytes at most. */
char *ms_fmt_i64(char *out, int64_t v);
/* "%.<prec>g" of (double)v, prec 1..9 (a float's digits; others are clamped into that
 * range); MS_FMT_G_MAX bytes at most. Rounding, exponent form, trailing-zero removal,
 * "-0", inf and nan are printf's (glibc's: ties to even on the exact binary value). */
char *ms_fmt_g(char *out, float v, int prec);

#endif
