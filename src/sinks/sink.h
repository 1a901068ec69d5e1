/* sink.h - per-position score writers: TSV, bedGraph, wig (fixedStep).
 *
 * Positions arrive in input order, each exactly once. With a path, output goes to
 * PATH.tmp.<pid> and is renamed to PATH by ms_sink_close(s, 1); ms_sink_close(s, 0)
 * (a failed run) removes it, so no half-written file is left under the real name. */
#ifndef MS_SINK_H
#define MS_SINK_H

#include <stdint.h>

typedef enum { MS_FMT_TSV, MS_FMT_BEDGRAPH, MS_FMT_WIG } ms_sink_format;
/* Which score a one-value track (bedGraph, wig) carries. */
typedef enum { MS_VAL_LOGP, MS_VAL_ENTROPY, MS_VAL_PA, MS_VAL_PC, MS_VAL_PG, MS_VAL_PT } ms_sink_value;

/* One scored position. Probabilities are over A, C, G, T (renormalised); logp is the
 * natural log of the probability of the reference base (for an ambiguity code, of the
 * set of bases it stands for); entropy in nats. */
typedef struct {
    int64_t pos;       /* 0-based position in chrom */
    char ref;          /* reference letter as in the input (case kept) */
    char pred;         /* most probable base, A/C/G/T */
    uint8_t rule;      /* 0 model, 1 after BOS token, 2 uniform (first base, no BOS) */
    float logp;
    float entropy;
    float p[4];        /* A, C, G, T */
} ms_score;

typedef struct ms_sink ms_sink;

/* path NULL or "-" writes stdout. Returns 0 and *out, or MS_ERR_IO after logging
 * (MS_ERR_ARG for an unknown format / value, MS_ERR_NOMEM); *out is then NULL. */
int ms_sink_open(const char *path, ms_sink_format fmt, ms_sink_value value, ms_sink **out);
/* Scores of n consecutive-or-not positions of one chrom, ascending. A gap in positions
 * (regions) starts a new wig block. Returns 0 or MS_ERR_IO. */
int ms_sink_write(ms_sink *s, const char *chrom, const ms_score *scores, int n);
/* Flush and finish. ok=1 renames the temporary file into place; ok=0 removes it.
 * Returns 0 or MS_ERR_IO. Frees s either way. */
int ms_sink_close(ms_sink *s, int ok);

/* Parse "tsv" / "bedgraph" / "wig" and "logp" / "entropy" / "pA".. ; -1 if unknown. */
int ms_sink_format_parse(const char *s);
int ms_sink_value_parse(const char *s);
/* Guess a format from a file name's extension (.tsv/.bedgraph/.bg/.wig); -1 if none. */
int ms_sink_format_from_path(const char *path);

#endif
