/* strand_merge.c - reverse pass -> forward coordinates, spill file, strand mean. */
#include "strand_merge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dna.h"
#include "log.h"
#include "mamba_stream.h"

#define SPILL_BLOCK 4096 /* scores per read-back of the spill */

void ms_score_to_forward(ms_score *s)
{
    float p[4] = {s->p[3], s->p[2], s->p[1], s->p[0]}; /* A,C,G,T <- T,G,C,A */
    memcpy(s->p, p, sizeof p);
    s->ref = ms_complement(s->ref);
    s->pred = ms_complement(s->pred);
}

void ms_score_mean(const ms_score *fwd, const ms_score *rev, ms_score *out)
{
    ms_score m = *fwd;
    m.logp = (float)(((double)fwd->logp + rev->logp) / 2);
    m.entropy = (float)(((double)fwd->entropy + rev->entropy) / 2);
    int pred = 0;
    for (int b = 0; b < 4; b++) {
        m.p[b] = (float)(((double)fwd->p[b] + rev->p[b]) / 2);
        if (m.p[b] > m.p[pred]) pred = b;
    }
    m.pred = "ACGT"[pred];
    if (!m.rule) m.rule = rev->rule;
    *out = m;
}

struct ms_strand_merge {
    int both;
    int fd;              /* spill: the score of forward position p at p * sizeof(ms_score) */
    int64_t segment;     /* reverse segment held in the spill, -1 none */
    int64_t lo, hi;      /* positions spilled: [lo, hi] */
    ms_score *buf;       /* [SPILL_BLOCK] */
};

int ms_strand_merge_new(int both, ms_strand_merge **out)
{
    *out = NULL;
    ms_strand_merge *m = calloc(1, sizeof *m);
    if (!m) return MS_ERR_NOMEM;
    m->both = both;
    m->segment = -1;
    m->fd = -1;
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/mamba-stream-strand-XXXXXX", dir && *dir ? dir : "/tmp");
    m->buf = malloc(sizeof(ms_score) * SPILL_BLOCK);
    if (!m->buf || (m->fd = mkstemp(path)) < 0) {
        ms_error("cannot create a spill file for the reverse strand in %s: %s",
                 dir && *dir ? dir : "/tmp", strerror(errno));
        ms_strand_merge_free(m);
        return MS_ERR_IO;
    }
    unlink(path); /* gone when closed, however the run ends */
    *out = m;
    return MS_OK;
}

void ms_strand_merge_free(ms_strand_merge *m)
{
    if (!m) return;
    if (m->fd >= 0) close(m->fd);
    free(m->buf);
    free(m);
}

static int spill_io(ms_strand_merge *m, int write, ms_score *s, int n, int64_t pos)
{
    size_t bytes = sizeof(ms_score) * (size_t)n;
    off_t off = (off_t)pos * (off_t)sizeof(ms_score);
    ssize_t got = write ? pwrite(m->fd, s, bytes, off) : pread(m->fd, s, bytes, off);
    if (got != (ssize_t)bytes) {
        ms_error("reverse-strand spill file: cannot %s %zu bytes: %s", write ? "write" : "read",
                 bytes, got < 0 ? strerror(errno) : "short transfer (disk full?)");
        return MS_ERR_IO;
    }
    return MS_OK;
}

int ms_strand_merge_write(ms_strand_merge *m, ms_sink *sink, const char *chrom, int64_t segment,
                          ms_score *scores, int n, int reverse, int last)
{
    int rc = MS_OK;
    if (reverse) {
        if (segment != m->segment) {
            if (ftruncate(m->fd, 0) != 0) return spill_io(m, 1, NULL, 0, -1);
            m->segment = segment;
            m->lo = INT64_MAX;
            m->hi = -1;
        }
        /* descending positions: write them ascending, one pwrite per chunk */
        for (int j = 0; j < n / 2; j++) {
            ms_score t = scores[j];
            scores[j] = scores[n - 1 - j];
            scores[n - 1 - j] = t;
        }
        for (int j = 0; j < n; j++) ms_score_to_forward(&scores[j]);
        if (n > 0) {
            if (scores[0].pos < m->lo) m->lo = scores[0].pos;
            if (scores[n - 1].pos > m->hi) m->hi = scores[n - 1].pos;
            rc = spill_io(m, 1, scores, n, scores[0].pos);
        }
        if (rc != MS_OK || !last || m->both) return rc;
        for (int64_t p = m->lo; rc == MS_OK && p <= m->hi; p += SPILL_BLOCK) {
            int k = m->hi + 1 - p < SPILL_BLOCK ? (int)(m->hi + 1 - p) : SPILL_BLOCK;
            rc = spill_io(m, 0, m->buf, k, p);
            if (rc == MS_OK) rc = ms_sink_write(sink, chrom, m->buf, k);
        }
        return rc;
    }
    /* forward pass (BOTH): the reverse scores of these positions are in the spill */
    for (int j0 = 0; rc == MS_OK && j0 < n; j0 += SPILL_BLOCK) {
        int k = n - j0 < SPILL_BLOCK ? n - j0 : SPILL_BLOCK;
        if (scores[j0].pos < m->lo || scores[j0 + k - 1].pos > m->hi) {
            ms_error("%s:%lld: no reverse-strand score to average with (internal ordering bug)",
                     chrom, (long long)scores[j0].pos + 1);
            return MS_ERR_ARG;
        }
        rc = spill_io(m, 0, m->buf, k, scores[j0].pos);
        for (int j = 0; rc == MS_OK && j < k; j++)
            ms_score_mean(&scores[j0 + j], &m->buf[j], &scores[j0 + j]);
        if (rc == MS_OK) rc = ms_sink_write(sink, chrom, scores + j0, k);
    }
    return rc;
}
