/* sink_impl.h - what sink.c shares with the per-format writers (internal).
 *
 * sink.c owns the FILE (temporary name, rename, error reporting); a format only turns
 * scores into text on s->f (the per-position lines through ms_sink_write_lines, below).
 * A format's functions return 0, or -1 with s->err set to the errno of the failed call;
 * sink.c then logs one line naming the path. */
#ifndef MS_SINK_IMPL_H
#define MS_SINK_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "sink.h"

/* The text formats turn positions into lines with fmt.h (printf's parsing cost more than
 * the model on a GPU) and hand them to sink.c, which formats a chunk into s->text, in
 * pieces on several threads where the format allows, and fwrites the pieces in order.
 * A line function writes the line(s) of one position at p (none for a position left
 * out), at most MS_SINK_LINE_MAX(strlen(chrom)) bytes, and returns their end. */
#define MS_SINK_LINE_MAX(chrom_len) ((chrom_len) + 256) /* TSV's longest: chrom + 134 */
typedef char *(*ms_sink_line_fn)(ms_sink *s, char *p, const char *chrom, size_t chrom_len,
                                 const ms_score *sc);

typedef struct {
    int (*begin)(ms_sink *s);  /* header / track line */
    /* n > 0 positions of chrom; NULL when lines is set */
    int (*write)(ms_sink *s, const char *chrom, const ms_score *scores, int n);
    int (*end)(ms_sink *s);    /* before the file is closed; NULL when nothing to do */
    int own_file;              /* 1: the format writes s->tmp / s->path itself (no FILE) */
    /* A line per position that reads s and nothing else of the sink changes (TSV,
     * bedGraph): sink.c then formats any run of positions, of one chrom or of many
     * (ms_sink_write_parts), on the team. NULL: write, in order, one chrom at a time. */
    ms_sink_line_fn lines;
} ms_sink_ops;

struct ms_sink {
    FILE *f;
    char *buf;             /* [MS_SINK_BUF] stdio buffer of f */
    char *path;            /* final name, or "-" for stdout */
    char *tmp;             /* PATH.tmp.<pid>, or NULL when writing in place */
    const ms_sink_ops *ops;
    ms_sink_value value;
    int err;               /* errno of the first failed write; 0 while none */
    int failed;            /* the failure has been logged */
    /* wig: the open fixedStep block */
    char *chrom;           /* chrom of the block, NULL before the first */
    size_t chrom_cap;
    int64_t next_pos;      /* 0-based position that continues the block */
    int mask_soft;         /* leave lower-case positions out of tracks */
    const char *fasta;     /* bigWig: where chromosome sizes come from */
    void *bw;              /* bigWig writer state (sink_bigwig.c) */
    char *text;            /* [text_cap] pieces of lines being formatted (ms_sink_write_lines) */
    size_t text_cap;
};

extern const ms_sink_ops ms_sink_tsv_ops;
extern const ms_sink_ops ms_sink_bedgraph_ops;
extern const ms_sink_ops ms_sink_wig_ops;
extern const ms_sink_ops ms_sink_bigwig_ops;

/* Soft-masked: a lower-case letter. */
static inline int ms_sink_masked(const ms_score *sc)
{
    return sc->ref >= 'a' && sc->ref <= 'z';
}

/* The score a one-value track carries, and its name for track lines. */
static inline float ms_sink_value_of(const ms_score *sc, ms_sink_value v)
{
    switch (v) {
    case MS_VAL_LOGP: return sc->logp;
    case MS_VAL_ENTROPY: return sc->entropy;
    case MS_VAL_PA: return sc->p[0];
    case MS_VAL_PC: return sc->p[1];
    case MS_VAL_PG: return sc->p[2];
    case MS_VAL_PT: return sc->p[3];
    }
    return sc->logp;
}

const char *ms_sink_value_name(ms_sink_value v);

/* Record a failed stdio call (its errno) and return -1 for the caller to pass up. */
int ms_sink_fail(ms_sink *s);

/* The lines of sc[0..n) written in order. parallel = 1: line reads s and nothing else
 * of the sink changes, so pieces may be formatted on OpenMP threads; 0: one thread, in
 * order (line may update s). Returns 0, or -1 with s->err set. */
int ms_sink_write_lines(ms_sink *s, const char *chrom, const ms_score *sc, int n,
                        ms_sink_line_fn line, int parallel);

#endif
