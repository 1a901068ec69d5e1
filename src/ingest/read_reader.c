/* read_reader.c - SAM/BAM/CRAM records -> read segments on the ring (own thread). */
#include "read_reader.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htslib/hts.h>

#include "dna.h"
#include "genome_reader.h"
#include "log.h"
#include "mamba_stream.h"

static void read_free(void *p)
{
    ms_read *rd = p;
    if (!rd) return;
    if (rd->rec) bam_destroy1(rd->rec);
    free(rd);
}

/* Push one record as its chunks (none for an empty skipped one unless keep_all). */
static int push_read(ms_read_reader *r, const bam1_t *b, int64_t index, int64_t segment, int skipped)
{
    const int cap = r->opts.chunk;
    const int64_t len = skipped ? 0 : b->core.l_qseq;
    ms_read *rd = calloc(1, sizeof *rd);
    ms_seq_name *name = rd ? ms_seq_name_new(bam_get_qname(b)) : NULL;
    if (!name) { free(rd); return MS_ERR_NOMEM; }
    name->user = rd;
    name->user_free = read_free;
    rd->flag = b->core.flag;
    rd->length = len;
    rd->skipped = skipped;
    rd->index = index;
    rd->reversed = !r->opts.as_stored && (b->core.flag & BAM_FREVERSE);
    if (r->opts.keep_all && !(rd->rec = bam_dup1(b))) { ms_seq_name_unref(name); return MS_ERR_NOMEM; }
    const uint8_t *seq = bam_get_seq(b);
    int rc = MS_OK;
    char prev = 0;
    int64_t pos = 0;
    do {
        int n = len - pos < cap ? (int)(len - pos) : cap;
        ms_seq_chunk *c = ms_seq_chunk_new(name, segment, n);
        if (!c) { rc = MS_ERR_NOMEM; break; }
        for (int j = 0; j < n; j++) {
            int64_t i = pos + j;
            c->bases[j] = rd->reversed ? ms_complement(seq_nt16_str[bam_seqi(seq, len - 1 - i)])
                                       : seq_nt16_str[bam_seqi(seq, i)];
        }
        c->n = n;
        c->pos0 = pos;
        c->first = pos == 0;
        c->last = pos + n == len;
        c->prev = prev;
        prev = n ? c->bases[n - 1] : 0;
        pos += n;
        if (ms_ring_push(r->out, c) != 0) { ms_seq_chunk_free(c); rc = MS_ERR_ARG; break; }
    } while (pos < len);
    ms_seq_name_unref(name);
    return rc;
}

static void *reader_main(void *arg)
{
    ms_read_reader *r = arg;
    bam1_t *b = bam_init1();
    int rc = b ? MS_OK : MS_ERR_NOMEM, got = 0;
    int64_t segment = 0;
    while (rc == MS_OK && (got = r->itr ? sam_itr_next(r->fp, r->itr, b) : sam_read1(r->fp, r->hdr, b)) >= 0) {
        int64_t index = r->n_records++;
        uint16_t f = b->core.flag;
        int skipped = 0;
        if ((f & r->opts.require) != r->opts.require || (f & r->opts.exclude)) {
            r->n_filtered++;
            skipped = 1;
        } else if (b->core.l_qseq == 0) {
            r->n_empty++;
            skipped = 2;
        } else {
            r->n_reads++;
            r->n_bases += b->core.l_qseq;
        }
        if (!skipped || r->opts.keep_all) rc = push_read(r, b, index, segment++, skipped);
    }
    if (rc == MS_OK && got < -1) {
        ms_error("%s: cannot read record %" PRId64 " (after %s): truncated or corrupt", r->opts.path,
                 r->n_records + 1, r->n_records ? bam_get_qname(b) : "the header");
        rc = MS_ERR_FORMAT;
    }
    bam_destroy1(b);
    r->status = rc;
    ms_ring_close(r->out);
    return NULL;
}

int ms_read_reader_start(ms_read_reader *r, const ms_read_reader_opts *opts, ms_ring *out)
{
    memset(r, 0, sizeof *r);
    r->opts = *opts;
    r->out = out;
    int rc = MS_ERR_FORMAT;
    char **regs = NULL;
    int n_regs = opts->regions ? opts->regions->n : 0;
    if (!(r->fp = sam_open(opts->path, "r"))) {
        ms_error("%s: cannot open", opts->path);
        return MS_ERR_IO;
    }
    if (opts->reference && hts_set_opt(r->fp, CRAM_OPT_REFERENCE, opts->reference) != 0) {
        ms_error("%s: cannot use %s as the CRAM reference", opts->path, opts->reference);
        goto fail;
    }
    if (opts->threads > 0 && hts_set_threads(r->fp, opts->threads) != 0) {
        ms_error("%s: cannot start %d decompression threads", opts->path, opts->threads);
        goto fail;
    }
    if (!(r->hdr = sam_hdr_read(r->fp))) {
        ms_error("%s: cannot read the SAM/BAM/CRAM header", opts->path);
        goto fail;
    }
    if (n_regs > 0) {
        if (!(r->idx = sam_index_load(r->fp, opts->path))) {
            ms_error("%s: --region needs an index (samtools index %s)", opts->path, opts->path);
            goto fail;
        }
        regs = calloc(n_regs, sizeof *regs);
        if (!regs) { rc = MS_ERR_NOMEM; goto fail; }
        for (int i = 0; i < n_regs; i++) {
            const ms_region *g = &opts->regions->r[i];
            if (sam_hdr_name2tid(r->hdr, g->chrom) < 0) {
                ms_error("%s: region %s: no reference sequence '%s' in the header", opts->path,
                         g->chrom, g->chrom);
                rc = MS_ERR_ARG;
                goto fail;
            }
            size_t len = strlen(g->chrom) + 64;
            if (!(regs[i] = malloc(len))) { rc = MS_ERR_NOMEM; goto fail; }
            if (g->end == INT64_MAX) snprintf(regs[i], len, "{%s}:%lld", g->chrom, (long long)g->beg + 1);
            else snprintf(regs[i], len, "{%s}:%lld-%lld", g->chrom, (long long)g->beg + 1, (long long)g->end);
        }
        /* One iterator over all regions: a read overlapping several comes once. */
        if (!(r->itr = sam_itr_regarray(r->idx, r->hdr, regs, n_regs))) {
            ms_error("%s: cannot query the regions through the index", opts->path);
            goto fail;
        }
    }
    for (int i = 0; regs && i < n_regs; i++) free(regs[i]);
    free(regs);
    regs = NULL;
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        ms_error("cannot start the reads reader thread");
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    return MS_OK;
fail:
    for (int i = 0; regs && i < n_regs; i++) free(regs[i]);
    free(regs);
    ms_read_reader_free(r);
    return rc;
}

int ms_read_reader_join(ms_read_reader *r)
{
    pthread_join(r->thread, NULL);
    return r->status;
}

void ms_read_reader_free(ms_read_reader *r)
{
    if (r->itr) hts_itr_destroy(r->itr);
    if (r->idx) hts_idx_destroy(r->idx);
    if (r->hdr) sam_hdr_destroy(r->hdr);
    if (r->fp) sam_close(r->fp);
    r->itr = NULL;
    r->idx = NULL;
    r->hdr = NULL;
    r->fp = NULL;
}
