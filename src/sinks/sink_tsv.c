/* sink_tsv.c - every score of every position, one tab-separated line each:
 *   #chrom pos ref logp entropy pA pC pG pT pred rule masked   (pos 1-based; masked 1
 *   for a lower-case, soft-masked, reference letter)
 *
 * Floats are written %.6g: relative error <= 5e-6, below the spread of the model's
 * float32 outputs between backends and chunkings (summation order, fused ops: ~1e-5
 * and up), so a reader gets back every digit that means something. %.9g would
 * round-trip the exact bits for ~40% more bytes, and those digits are noise. */
#include <string.h>

#include "fmt.h"
#include "sink_impl.h"

static int tsv_begin(ms_sink *s)
{
    return fputs("#chrom\tpos\tref\tlogp\tentropy\tpA\tpC\tpG\tpT\tpred\trule\tmasked\n", s->f) < 0
               ? ms_sink_fail(s)
               : 0;
}

/* One position's line, the fields of the header:
 * "%s\t%lld\t%c\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%c\t%u\t%d\n". */
static char *tsv_line(ms_sink *s, char *p, const char *chrom, size_t clen, const ms_score *c)
{
    memcpy(p, chrom, clen);
    p += clen;
    *p++ = '\t';
    p = ms_fmt_i64(p, c->pos + 1);
    *p++ = '\t';
    *p++ = c->ref;
    const float v[6] = {c->logp, c->entropy, c->p[0], c->p[1], c->p[2], c->p[3]};
    for (int k = 0; k < 6; k++) {
        *p++ = '\t';
        p = ms_fmt_g(p, v[k], 6);
    }
    *p++ = '\t';
    *p++ = c->pred;
    *p++ = '\t';
    p = ms_fmt_i64(p, c->rule);
    *p++ = '\t';
    *p++ = (char)('0' + ms_sink_masked(c));
    *p++ = '\n';
    return p;
}

const ms_sink_ops ms_sink_tsv_ops = {tsv_begin, NULL, NULL, 0, tsv_line};
