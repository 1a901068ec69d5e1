/* sink_bigwig.c - one value per base as bigWig (libBigWig), fixedStep blocks of span 1.
 *
 * The header needs every chromosome's size before the first value: they come from the
 * FASTA's .fai (built if missing), in its order, and bigWig data must follow that order
 * (chromosomes as in the index, positions ascending, no position twice), so out-of-order
 * regions are an error that says so. Values are buffered per run of consecutive
 * positions; a gap (regions, soft-masked runs left out) starts a new block. libBigWig
 * builds the zoom levels and the index when the file is closed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Local files only: without NOCURL bigWig.h wants curl's headers for types we never use
 * (the one affected field is a union of two pointers, so the layout is the same). */
#define NOCURL 1
#include <bigWig.h>

#include "log.h"
#include "mamba_stream.h"
#include "regions.h"
#include "sink_impl.h"

#define BW_RUN 65536 /* values buffered before handing a run to libBigWig */

typedef struct {
    bigWigFile_t *fp;
    char **names;      /* [n_chrom] in .fai order; handed to bwCreateChromList */
    uint32_t *lens;    /* [n_chrom] */
    int n_chrom;
    int tid;           /* chrom of the current run, -1 before the first */
    int64_t start;     /* position of vals[0] */
    int n;             /* values buffered */
    int continues;     /* the run continues a block already handed to libBigWig */
    int64_t end;       /* position after the last one taken (order check) */
    float vals[BW_RUN];
} bw_state;

static const char *bw_path(const ms_sink *s)
{
    return s->tmp ? s->tmp : s->path;
}

static void bw_free(bw_state *b)
{
    if (!b) return;
    for (int i = 0; i < b->n_chrom; i++) free(b->names[i]);
    free(b->names);
    free(b->lens);
    free(b);
}

static int bw_begin(ms_sink *s)
{
    bw_state *b = calloc(1, sizeof *b);
    ms_faidx *fx = NULL;
    if (!b) { ms_error("out of memory opening %s", s->path); return -1; }
    b->tid = -1;
    if (!s->fasta || !strcmp(s->fasta, "-")) {
        ms_error("%s: bigWig output needs the chromosome sizes of an indexable FASTA file "
                 "(not stdin)", s->path);
        goto fail;
    }
    if (ms_faidx_open(s->fasta, &fx) != MS_OK) goto fail;
    b->n_chrom = ms_faidx_count(fx);
    b->names = calloc(b->n_chrom ? b->n_chrom : 1, sizeof *b->names);
    b->lens = calloc(b->n_chrom ? b->n_chrom : 1, sizeof *b->lens);
    if (!b->names || !b->lens) { ms_error("out of memory opening %s", s->path); goto fail; }
    for (int i = 0; i < b->n_chrom; i++) {
        int64_t len = ms_faidx_seq_len(fx, ms_faidx_name(fx, i));
        if (len > UINT32_MAX) {
            ms_error("%s: sequence %s is %lld bp, more than bigWig's 2^32 - 1", s->path,
                     ms_faidx_name(fx, i), (long long)len);
            goto fail;
        }
        b->lens[i] = (uint32_t)len;
        if (!(b->names[i] = strdup(ms_faidx_name(fx, i)))) goto fail;
    }
    ms_faidx_close(fx);
    fx = NULL;
    if (bwInit(1 << 17) != 0 || !(b->fp = bwOpen((char *)bw_path(s), NULL, "w"))) {
        ms_error("cannot create %s", bw_path(s));
        goto fail;
    }
    if (bwCreateHdr(b->fp, 10) != 0 ||
        !(b->fp->cl = bwCreateChromList((const char *const *)b->names, b->lens, b->n_chrom)) ||
        bwWriteHdr(b->fp) != 0) {
        ms_error("cannot write the bigWig header of %s", s->path);
        goto fail;
    }
    s->bw = b;
    return 0;
fail:
    if (fx) ms_faidx_close(fx);
    if (b && b->fp) { bwClose(b->fp); unlink(bw_path(s)); }
    bw_free(b);
    return -1;
}

/* Hand the buffered run to libBigWig. */
static int bw_flush(ms_sink *s, bw_state *b)
{
    if (b->n == 0) return 0;
    int e = b->continues ? bwAppendIntervalSpanSteps(b->fp, b->vals, (uint32_t)b->n)
                         : bwAddIntervalSpanSteps(b->fp, b->names[b->tid], (uint32_t)b->start,
                                                  1, 1, b->vals, (uint32_t)b->n);
    if (e != 0) {
        ms_error("cannot write %s: libBigWig error %d at %s:%lld", s->path, e, b->names[b->tid],
                 (long long)b->start + 1);
        s->failed = 1;
        return -1;
    }
    b->start += b->n;
    b->n = 0;
    b->continues = 1;
    return 0;
}

static int find_tid(const bw_state *b, const char *chrom)
{
    for (int i = 0; i < b->n_chrom; i++)
        if (!strcmp(b->names[i], chrom)) return i;
    return -1;
}

static int bw_write(ms_sink *s, const char *chrom, const ms_score *sc, int n)
{
    bw_state *b = s->bw;
    int tid = b->tid >= 0 && !strcmp(b->names[b->tid], chrom) ? b->tid : find_tid(b, chrom);
    if (tid < 0) {
        ms_error("%s: no sequence %s in %s.fai", s->path, chrom, s->fasta);
        s->failed = 1;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (s->mask_soft && ms_sink_masked(&sc[i])) continue;
        int64_t pos = sc[i].pos;
        if (tid != b->tid || pos != b->start + b->n) {
            if (bw_flush(s, b) != 0) return -1;
            if (tid < b->tid || (tid == b->tid && pos < b->end)) {
                ms_error("%s: %s:%lld comes after %s:%lld; bigWig needs positions in the "
                         "order of %s.fai (sort the regions, no overlaps)", s->path, chrom,
                         (long long)pos + 1, b->names[b->tid], (long long)b->end, s->fasta);
                s->failed = 1;
                return -1;
            }
            b->tid = tid;
            b->start = pos;
            b->continues = 0;
        }
        b->vals[b->n++] = ms_sink_value_of(&sc[i], s->value);
        b->end = pos + 1;
        if (b->n == BW_RUN && bw_flush(s, b) != 0) return -1;
    }
    return 0;
}

static int bw_end(ms_sink *s)
{
    bw_state *b = s->bw;
    if (!b) return -1;
    int rc = s->failed ? -1 : bw_flush(s, b);
    bwClose(b->fp); /* writes the index and zoom levels */
    bwCleanup();
    bw_free(b);
    s->bw = NULL;
    return rc;
}

const ms_sink_ops ms_sink_bigwig_ops = {bw_begin, bw_write, bw_end, 1, NULL};
