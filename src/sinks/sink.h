/* sink.h - per-position score writers: TSV, bedGraph, wig (fixedStep), bigWig.
 *
 * Positions arrive in input order, each exactly once. With a path, output goes to
 * PATH.tmp.<pid> and is renamed to PATH by ms_sink_close(s, 1); ms_sink_close(s, 0)
 * (a failed run) removes it, so no half-written file is left under the real name. */
#ifndef MS_SINK_H
#define MS_SINK_H

#include <stdint.h>

/* MS_FMT_TEXT: no per-position format; the caller writes lines with ms_sink_printf (per-read
 * and per-variant tables), getting the same temporary name, rename and error handling. */
typedef enum { MS_FMT_TSV, MS_FMT_BEDGRAPH, MS_FMT_WIG, MS_FMT_BIGWIG, MS_FMT_TEXT } ms_sink_format;
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

typedef struct {
    const char *path;      /* NULL or "-": stdout (not for bigWig) */
    ms_sink_format format;
    ms_sink_value value;
    const char *fasta;     /* bigWig: chromosome sizes from this FASTA's .fai (built if
                            * missing), in its order; positions must come in that order */
    int mask_soft;         /* 1: lower-case (soft-masked) positions left out of tracks
                            * (bedGraph, wig, bigWig); TSV keeps them, flagged */
} ms_sink_opts;

/* Open a sink as opts say. Returns as ms_sink_open. */
int ms_sink_open_opts(const ms_sink_opts *opts, ms_sink **out);
/* path NULL or "-" writes stdout. Returns 0 and *out, or MS_ERR_IO after logging
 * (MS_ERR_ARG for an unknown format / value, MS_ERR_NOMEM); *out is then NULL. */
int ms_sink_open(const char *path, ms_sink_format fmt, ms_sink_value value, ms_sink **out);
/* Scores of n consecutive-or-not positions of one chrom, ascending. A gap in positions
 * (regions) starts a new wig block. Returns 0 or MS_ERR_IO. */
int ms_sink_write(ms_sink *s, const char *chrom, const ms_score *scores, int n);
/* Positions of several chroms in one call, in order (a batch of reads): the same bytes as
 * one ms_sink_write per part, formatted across the team where the format allows (TSV,
 * bedGraph). Returns 0 or MS_ERR_IO. */
typedef struct {
    const char *chrom;
    const ms_score *scores;
    int n;
} ms_sink_part;
int ms_sink_write_parts(ms_sink *s, const ms_sink_part *parts, int n);

/* The OpenMP team size of a sink's parallel formatting (OpenMP's default, at most 8).
 * Other parallel loops on the sink's thread use the same size: a thread whose regions
 * change team size keeps the pool's extra threads spinning between regions (on the H200
 * host, scoring on 16 and formatting on 8 threads burned 7 cores and halved the GPU's
 * use). */
int ms_sink_threads(void);
/* Formatted text (MS_FMT_TEXT, or a header before a TSV's first position). Returns 0 or
 * MS_ERR_IO (logged once). */
int ms_sink_printf(ms_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flush and finish. ok=1 renames the temporary file into place; ok=0 removes it.
 * Returns 0 or MS_ERR_IO. Frees s either way. */
int ms_sink_close(ms_sink *s, int ok);

/* Parse "tsv" / "bedgraph" / "wig" / "bigwig" and "logp" / "entropy" / "pA".. ; -1 if unknown. */
int ms_sink_format_parse(const char *s);
int ms_sink_value_parse(const char *s);
/* Guess a format from a file name's extension (.tsv/.bedgraph/.bg/.wig/.bw/.bigwig);
 * -1 if none. */
int ms_sink_format_from_path(const char *path);

#endif
