/* sink_wig.c - one value per base as wiggle fixedStep blocks:
 *   fixedStep chrom=C start=S step=1     (S 1-based)
 *   value                                 (one line per base, %.6g as in sink_tsv.c)
 * A new block starts at the first position, on a change of chrom, and wherever the
 * positions skip (regions, soft-masked runs left out), since fixedStep has no way to say "no value here". */
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
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

/* "fixedStep chrom=%s start=%lld step=1\n" (start 1-based); returns its end. */
static char *wig_block_line(char *p, const char *chrom, size_t clen, int64_t pos)
{
    static const char a[] = "fixedStep chrom=", b[] = " start=", c[] = " step=1\n";
    memcpy(p, a, sizeof a - 1);
    p += sizeof a - 1;
    memcpy(p, chrom, clen);
    p += clen;
    memcpy(p, b, sizeof b - 1);
    p = ms_fmt_i64(p + sizeof b - 1, pos + 1);
    memcpy(p, c, sizeof c - 1);
    return p + sizeof c - 1;
}

/* A position's value line "%.6g\n", after a block line where the previous block ends
 * (s->chrom is chrom from the chunk's start; a new one has s->next_pos = -1). Serial: it
 * moves s->next_pos. */
static char *wig_line(ms_sink *s, char *p, const char *chrom, size_t clen, const ms_score *sc)
{
    if (s->mask_soft && ms_sink_masked(sc)) return p; /* the gap starts a new block */
    if (sc->pos != s->next_pos) p = wig_block_line(p, chrom, clen, sc->pos);
    p = ms_fmt_g(p, ms_sink_value_of(sc, s->value), 6);
    *p++ = '\n';
    s->next_pos = sc->pos + 1;
    return p;
}

static int wig_write(ms_sink *s, const char *chrom, const ms_score *sc, int n)
{
    if (!s->chrom || strcmp(s->chrom, chrom) != 0) {
        if (set_chrom(s, chrom) != 0) return -1;
        s->next_pos = -1; /* no block open on this chrom: the first position starts one */
    }
    return ms_sink_write_lines(s, chrom, sc, n, wig_line, 0);
}

const ms_sink_ops ms_sink_wig_ops = {wig_begin, wig_write, NULL, 0, NULL};
