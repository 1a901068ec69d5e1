/* sink_wig.c - one value per base as wiggle fixedStep blocks:
 *   fixedStep chrom=C start=S step=1     (S 1-based)
 *   value                                 (one line per base, %.6g as in sink_tsv.c)
 * A new block starts at the first position, on a change of chrom, and wherever the
 * positions skip (regions, soft-masked runs left out), since fixedStep has no way to say "no value here". */
#include <stdlib.h>
#include <string.h>

#include "sink_impl.h"

static int wig_begin(ms_sink *s)
{
    return fprintf(s->f, "track type=wiggle_0 name=\"mamba-stream %s\"\n",
                   ms_sink_value_name(s->value)) < 0
               ? ms_sink_fail(s)
               : 0;
}

/* Remember the chrom of the open block (the caller's string need not outlive the call). */
static int set_chrom(ms_sink *s, const char *chrom)
{
    size_t n = strlen(chrom) + 1;
    if (n > s->chrom_cap) {
        char *c = realloc(s->chrom, n);
        if (!c) return ms_sink_fail(s);
        s->chrom = c;
        s->chrom_cap = n;
    }
    memcpy(s->chrom, chrom, n);
    return 0;
}

static int wig_write(ms_sink *s, const char *chrom, const ms_score *sc, int n)
{
    int same_chrom = s->chrom && strcmp(s->chrom, chrom) == 0;
    if (!same_chrom && set_chrom(s, chrom) != 0) return -1;
    for (int i = 0; i < n; i++) {
        if (s->mask_soft && ms_sink_masked(&sc[i])) continue; /* the gap starts a new block */
        if (!same_chrom || sc[i].pos != s->next_pos) {
            if (fprintf(s->f, "fixedStep chrom=%s start=%lld step=1\n", chrom,
                        (long long)sc[i].pos + 1) < 0)
                return ms_sink_fail(s);
            same_chrom = 1;
        }
        if (fprintf(s->f, "%.6g\n", ms_sink_value_of(&sc[i], s->value)) < 0)
            return ms_sink_fail(s);
        s->next_pos = sc[i].pos + 1;
    }
    return 0;
}

const ms_sink_ops ms_sink_wig_ops = {wig_begin, wig_write, NULL, 0};
