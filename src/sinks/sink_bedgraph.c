/* sink_bedgraph.c - one value per base as bedGraph: chrom, start, end (0-based,
 * half-open, end = start + 1), value %.6g (see sink_tsv.c for why 6 digits).
 *
 * Runs of equal values are not merged: the values are floats that rarely repeat, and
 * one line per base is what genome browsers and bedtools expect of a per-base track. */
#include <string.h>

#include "fmt.h"
#include "sink_impl.h"

static int bedgraph_begin(ms_sink *s)
{
    return fprintf(s->f, "track type=bedGraph name=\"mamba-stream %s\"\n",
                   ms_sink_value_name(s->value)) < 0
               ? ms_sink_fail(s)
               : 0;
}

/* "%s\t%lld\t%lld\t%.6g\n": chrom, start, start + 1, value; nothing for a masked base. */
static char *bedgraph_line(ms_sink *s, char *p, const char *chrom, size_t clen,
                           const ms_score *sc)
{
    if (s->mask_soft && ms_sink_masked(sc)) return p;
    memcpy(p, chrom, clen);
    p += clen;
    *p++ = '\t';
    p = ms_fmt_i64(p, sc->pos);
    *p++ = '\t';
    p = ms_fmt_i64(p, sc->pos + 1);
    *p++ = '\t';
    p = ms_fmt_g(p, ms_sink_value_of(sc, s->value), 6);
    *p++ = '\n';
    return p;
}

const ms_sink_ops ms_sink_bedgraph_ops = {bedgraph_begin, NULL, NULL, 0, bedgraph_line};
