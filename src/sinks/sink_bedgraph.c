/* sink_bedgraph.c - one value per base as bedGraph: chrom, start, end (0-based,
 * half-open, end = start + 1), value %.6g (see sink_tsv.c for why 6 digits).
 *
 * Runs of equal values are not merged: the values are floats that rarely repeat, and
 * one line per base is what genome browsers and bedtools expect of a per-base track. */
#include "sink_impl.h"

static int bedgraph_begin(ms_sink *s)
{
    return fprintf(s->f, "track type=bedGraph name=\"mamba-stream %s\"\n",
                   ms_sink_value_name(s->value)) < 0
               ? ms_sink_fail(s)
               : 0;
}

static int bedgraph_write(ms_sink *s, const char *chrom, const ms_score *sc, int n)
{
    for (int i = 0; i < n; i++) {
        if (s->mask_soft && ms_sink_masked(&sc[i])) continue;
        long long start = (long long)sc[i].pos;
        if (fprintf(s->f, "%s\t%lld\t%lld\t%.6g\n", chrom, start, start + 1,
                    ms_sink_value_of(&sc[i], s->value)) < 0)
            return ms_sink_fail(s);
    }
    return 0;
}

const ms_sink_ops ms_sink_bedgraph_ops = {bedgraph_begin, bedgraph_write, NULL, 0};
