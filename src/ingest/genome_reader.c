/* genome_reader.c - FASTA records or faidx regions -> chunks on the ring (own thread). */
#include "genome_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dna.h"
#include "fasta_stream.h"
#include "log.h"
#include "mamba_stream.h"

ms_seq_name *ms_seq_name_new(const char *s)
{
    ms_seq_name *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->name = strdup(s);
    n->refs = 1; /* the reader's own reference, dropped when the segment ends */
    if (!n->name) { free(n); return NULL; }
    return n;
}

void ms_seq_name_unref(ms_seq_name *n)
{
    if (n && __atomic_sub_fetch(&n->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        if (n->user_free) n->user_free(n->user);
        free(n->name);
        free(n);
    }
}

void ms_seq_chunk_free(ms_seq_chunk *c)
{
    if (!c) return;
    ms_seq_name_unref(c->name);
    free(c);
}

ms_seq_chunk *ms_seq_chunk_new(ms_seq_name *name, int64_t segment, int cap)
{
    ms_seq_chunk *c = malloc(sizeof *c + (size_t)cap);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    __atomic_add_fetch(&name->refs, 1, __ATOMIC_ACQ_REL);
    c->name = name;
    c->segment = segment;
    return c;
}

/* Push a finished chunk; -1 if the consumer closed the ring (it stopped early). */
static int push(ms_genome_reader *r, ms_seq_chunk *c)
{
    if (ms_ring_push(r->out, c) != 0) {
        ms_seq_chunk_free(c);
        return -1;
    }
    return 0;
}

/* Every record of a FASTA stream, read piece by piece. */
static int read_records(ms_genome_reader *r)
{
    const int cap = r->opts.chunk;
    ms_fasta *f;
    int rc = ms_fasta_open(r->opts.fasta, &f);
    if (rc != MS_OK) return rc;
    const char *nm;
    int64_t segment = 0;
    while ((rc = ms_fasta_next_record(f, &nm)) == 1) {
        ms_seq_name *name = ms_seq_name_new(nm);
        if (!name) { rc = MS_ERR_NOMEM; break; }
        ms_seq_chunk *cur = NULL;
        int64_t pos = 0;
        char prev = 0;
        for (;;) {
            ms_seq_chunk *c = ms_seq_chunk_new(name, segment, cap);
            if (!c) { rc = MS_ERR_NOMEM; break; }
            ssize_t got = 0;
            while (c->n < cap && (got = ms_fasta_read(f, c->bases + c->n, cap - c->n)) > 0)
                c->n += (int)got;
            if (got < 0) { rc = (int)got; ms_seq_chunk_free(c); break; }
            if (c->n == 0) { ms_seq_chunk_free(c); break; } /* end of record */
            c->pos0 = pos;
            c->first = pos == 0;
            c->prev = prev;
            pos += c->n;
            prev = c->bases[c->n - 1];
            /* The previous chunk is known not to be the last only now. */
            if (cur && push(r, cur) != 0) { cur = NULL; ms_seq_chunk_free(c); rc = MS_ERR_ARG; break; }
            cur = c;
        }
        if (cur) {
            cur->last = 1;
            if (rc == 1 || rc == MS_OK) { if (push(r, cur) != 0) rc = MS_ERR_ARG; }
            else ms_seq_chunk_free(cur);
        }
        ms_seq_name_unref(name);
        if (rc != 1 && rc != MS_OK) break;
        if (pos > 0) segment++;
        rc = MS_OK;
    }
    ms_fasta_close(f);
    return rc < 0 ? rc : MS_OK;
}

/* One resolved region through faidx, with warm-up context before it. */
static int read_region(ms_genome_reader *r, ms_faidx *fx, const ms_region *reg, int64_t segment)
{
    const int cap = r->opts.chunk;
    const int64_t start = reg->beg - r->opts.context > 0 ? reg->beg - r->opts.context : 0;
    ms_seq_name *name = ms_seq_name_new(reg->chrom);
    if (!name) return MS_ERR_NOMEM;
    int rc = MS_OK;
    char prev = 0;
    for (int64_t pos = start; pos < reg->end;) {
        int n = reg->end - pos < cap ? (int)(reg->end - pos) : cap;
        ms_seq_chunk *c = ms_seq_chunk_new(name, segment, n);
        if (!c) { rc = MS_ERR_NOMEM; break; }
        ssize_t got = ms_faidx_fetch(fx, reg->chrom, pos, pos + n, c->bases);
        if (got != n) { ms_seq_chunk_free(c); rc = got < 0 ? (int)got : MS_ERR_IO; break; }
        c->n = n;
        c->pos0 = pos;
        c->first = pos == start;
        c->last = pos + n == reg->end;
        c->prev = prev;
        c->n_warm = pos < reg->beg ? (int)(reg->beg - pos < n ? reg->beg - pos : n) : 0;
        prev = c->bases[n - 1];
        pos += n;
        if (push(r, c) != 0) { rc = MS_ERR_ARG; break; }
    }
    ms_seq_name_unref(name);
    return rc;
}

/* One region read backwards and complemented: the reverse strand in its own 5'->3'
 * order, with up to `context` warm-up bases after the region's end fed first. Pieces of
 * at most one chunk are fetched from the end towards the start: memory stays bounded. */
static int read_region_reverse(ms_genome_reader *r, ms_faidx *fx, const ms_region *reg,
                               int64_t segment)
{
    const int cap = r->opts.chunk;
    const int64_t len = ms_faidx_seq_len(fx, reg->chrom);
    const int64_t stop = reg->end + r->opts.context < len ? reg->end + r->opts.context : len;
    ms_seq_name *name = ms_seq_name_new(reg->chrom);
    char *tmp = malloc((size_t)cap);
    int rc = name && tmp ? MS_OK : MS_ERR_NOMEM;
    char prev = 0;
    for (int64_t hi = stop; rc == MS_OK && hi > reg->beg;) {
        int n = hi - reg->beg < cap ? (int)(hi - reg->beg) : cap;
        ms_seq_chunk *c = ms_seq_chunk_new(name, segment, n);
        if (!c) { rc = MS_ERR_NOMEM; break; }
        ssize_t got = ms_faidx_fetch(fx, reg->chrom, hi - n, hi, tmp);
        if (got != n) { ms_seq_chunk_free(c); rc = got < 0 ? (int)got : MS_ERR_IO; break; }
        for (int j = 0; j < n; j++) c->bases[j] = ms_complement(tmp[n - 1 - j]);
        c->n = n;
        c->pos0 = hi - 1;
        c->reverse = 1;
        c->first = hi == stop;
        c->last = hi - n == reg->beg;
        c->prev = prev;
        c->n_warm = hi > reg->end ? (int)(hi - reg->end < n ? hi - reg->end : n) : 0;
        prev = c->bases[n - 1];
        hi -= n;
        if (push(r, c) != 0) rc = MS_ERR_ARG;
    }
    free(tmp);
    if (name) ms_seq_name_unref(name);
    return rc;
}

static void *reader_main(void *arg)
{
    ms_genome_reader *r = arg;
    int rc = MS_OK;
    if (r->opts.strand != MS_STRAND_FORWARD) {
        ms_faidx *fx;
        rc = ms_faidx_open(r->opts.fasta, &fx);
        for (int i = 0; rc == MS_OK && i < r->opts.regions->n; i++) {
            rc = read_region_reverse(r, fx, &r->opts.regions->r[i], 2 * (int64_t)i + 1);
            if (rc == MS_OK && r->opts.strand == MS_STRAND_BOTH)
                rc = read_region(r, fx, &r->opts.regions->r[i], 2 * (int64_t)i);
        }
        if (fx) ms_faidx_close(fx);
    } else if (r->opts.regions && r->opts.regions->n > 0) {
        ms_faidx *fx;
        rc = ms_faidx_open(r->opts.fasta, &fx);
        for (int i = 0; rc == MS_OK && i < r->opts.regions->n; i++)
            rc = read_region(r, fx, &r->opts.regions->r[i], i);
        if (fx) ms_faidx_close(fx);
    } else {
        rc = read_records(r);
    }
    r->status = rc;
    ms_ring_close(r->out);
    return NULL;
}

/* Sum of sequence lengths from PATH.fai when one exists (for progress ETA); -1 else. */
static int64_t fai_total(const char *fasta)
{
    if (!strcmp(fasta, "-")) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s.fai", fasta);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int64_t total = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) { total = -1; break; }
        total += strtoll(tab + 1, NULL, 10);
    }
    fclose(f);
    return total;
}

int ms_genome_reader_start(ms_genome_reader *r, const ms_genome_reader_opts *opts, ms_ring *out)
{
    memset(r, 0, sizeof *r);
    r->opts = *opts;
    r->out = out;
    r->total_bases = -1;
    if (opts->chunk < 1) {
        ms_error("--chunk must be >= 1 (got %d)", opts->chunk);
        return MS_ERR_ARG;
    }
    if ((opts->regions && opts->regions->n > 0) || opts->strand != MS_STRAND_FORWARD) {
        if (!strcmp(opts->fasta, "-")) {
            ms_error("--region/--regions/--strand need an indexable FASTA file, not stdin");
            return MS_ERR_ARG;
        }
        /* Resolve every region before starting, so bad ones fail before any output. */
        ms_faidx *fx;
        int rc = ms_faidx_open(opts->fasta, &fx);
        if (rc != MS_OK) return rc;
        if (!opts->regions || opts->regions->n == 0) {
            /* Whole records, in file order, become regions (the reverse pass needs
             * random access). */
            for (int i = 0; rc == MS_OK && i < ms_faidx_count(fx); i++)
                rc = ms_region_add(&r->whole, ms_faidx_name(fx, i), 0, INT64_MAX);
            r->opts.regions = &r->whole;
            opts = &r->opts;
        }
        r->total_bases = 0;
        for (int i = 0; rc == MS_OK && i < opts->regions->n; i++) {
            rc = ms_faidx_resolve(fx, &opts->regions->r[i]);
            if (rc != MS_OK) break;
            r->total_bases += opts->regions->r[i].end - opts->regions->r[i].beg;
        }
        if (opts->strand == MS_STRAND_BOTH) r->total_bases *= 2;
        ms_faidx_close(fx);
        if (rc != MS_OK) { ms_region_list_free(&r->whole); return rc; }
    } else {
        /* Open once here so a missing file fails before the pipeline starts. */
        if (strcmp(opts->fasta, "-")) {
            FILE *f = fopen(opts->fasta, "rb");
            if (!f) {
                ms_error("%s: cannot open FASTA", opts->fasta);
                return MS_ERR_IO;
            }
            fclose(f);
        }
        r->total_bases = fai_total(opts->fasta);
    }
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        ms_error("cannot start the reader thread");
        ms_region_list_free(&r->whole);
        return MS_ERR_NOMEM;
    }
    return MS_OK;
}

int ms_genome_reader_join(ms_genome_reader *r)
{
    pthread_join(r->thread, NULL);
    ms_region_list_free(&r->whole);
    return r->status;
}
