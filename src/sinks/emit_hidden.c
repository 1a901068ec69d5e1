/* emit_hidden.c - hidden rows -> pooled windows -> spill file -> safetensors. */
#include "emit_hidden.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "mamba_stream.h"
#include "safetensors.h"

struct ms_emit_hidden {
    char *path;
    int d, f16;
    int64_t pool;
    int fd;             /* spill of the hidden rows, [N][d] in the output dtype */
    int64_t n_rows;
    /* coordinates, [cap] each */
    int32_t *seq, *len;
    int64_t *pos;
    int64_t cap;
    char *names;        /* seq_names text */
    size_t names_len, names_cap;
    int n_seq;
    char *cur;          /* name of the current sequence */
    int ended;          /* the current sequence ended (its last chunk came) */
    /* the open window */
    double *acc;        /* [d] */
    int64_t win_pos, win_n;
    void *row;          /* [d] converted row */
};

uint16_t ms_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0)); /* inf, NaN */
    int32_t he = (int32_t)e - 127 + 15;
    if (he >= 31) return (uint16_t)(sign | 0x7c00u);                     /* overflow */
    if (he <= 0) {                                                        /* subnormal */
        if (he < -10) return (uint16_t)sign;
        m |= 0x800000u;
        int shift = 14 - he;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)he << 10) | (m >> 13), rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into the exponent */
    return (uint16_t)(sign | h);
}

int ms_emit_hidden_open(const char *path, int d_model, int64_t pool, int f16, ms_emit_hidden **out)
{
    *out = NULL;
    ms_emit_hidden *e = calloc(1, sizeof *e);
    if (!e) return MS_ERR_NOMEM;
    e->fd = -1;
    e->d = d_model;
    e->pool = pool < 1 ? 1 : pool;
    e->f16 = f16;
    e->path = strdup(path);
    e->acc = calloc((size_t)d_model, sizeof *e->acc);
    e->row = malloc((size_t)d_model * 4);
    if (!e->path || !e->acc || !e->row) {
        ms_emit_hidden_close(e, 0);
        return MS_ERR_NOMEM;
    }
    const char *dir = getenv("TMPDIR");
    char spill[4096];
    snprintf(spill, sizeof spill, "%s/mamba-stream-hidden-XXXXXX", dir && *dir ? dir : "/tmp");
    if ((e->fd = mkstemp(spill)) < 0) {
        ms_error("%s: cannot create a spill file in %s: %s", path, dir && *dir ? dir : "/tmp",
                 strerror(errno));
        ms_emit_hidden_close(e, 0);
        return MS_ERR_IO;
    }
    unlink(spill);
    *out = e;
    return MS_OK;
}

int ms_emit_hidden_dim(const ms_emit_hidden *e)
{
    return e->d;
}

static int add_name(ms_emit_hidden *e, const char *name)
{
    size_t n = strlen(name) + 1;
    if (e->names_len + n > e->names_cap) {
        size_t cap = (e->names_len + n) * 2;
        char *p = realloc(e->names, cap);
        if (!p) return MS_ERR_NOMEM;
        e->names = p;
        e->names_cap = cap;
    }
    memcpy(e->names + e->names_len, name, n - 1);
    e->names[e->names_len + n - 1] = '\n';
    e->names_len += n;
    free(e->cur);
    if (!(e->cur = strdup(name))) return MS_ERR_NOMEM;
    e->n_seq++;
    return MS_OK;
}

/* Close the open window: its mean becomes a row. */
static int flush_window(ms_emit_hidden *e)
{
    if (e->win_n == 0) return MS_OK;
    if (e->n_rows == e->cap) {
        int64_t cap = e->cap ? e->cap * 2 : 1024;
        int32_t *s = realloc(e->seq, sizeof *s * cap);
        if (s) e->seq = s;
        int32_t *l = realloc(e->len, sizeof *l * cap);
        if (l) e->len = l;
        int64_t *p = realloc(e->pos, sizeof *p * cap);
        if (p) e->pos = p;
        if (!s || !l || !p) return MS_ERR_NOMEM;
        e->cap = cap;
    }
    for (int k = 0; k < e->d; k++) {
        float v = (float)(e->acc[k] / (double)e->win_n);
        if (e->f16) ((uint16_t *)e->row)[k] = ms_f32_to_f16(v);
        else ((float *)e->row)[k] = v;
        e->acc[k] = 0;
    }
    size_t bytes = (size_t)e->d * (e->f16 ? 2 : 4);
    if (write(e->fd, e->row, bytes) != (ssize_t)bytes) {
        ms_error("%s: cannot write the hidden-state spill file: %s", e->path, strerror(errno));
        return MS_ERR_IO;
    }
    e->seq[e->n_rows] = e->n_seq - 1;
    e->pos[e->n_rows] = e->win_pos;
    e->len[e->n_rows] = (int32_t)e->win_n;
    e->n_rows++;
    e->win_n = 0;
    return MS_OK;
}

int ms_emit_hidden_add(ms_emit_hidden *e, const char *name, int64_t pos0, const float *hidden, int n,
                       int last)
{
    int rc = MS_OK;
    if (!e->cur || e->ended || strcmp(e->cur, name)) {
        e->ended = 0;
        if ((rc = flush_window(e)) != MS_OK) return rc;
        if ((rc = add_name(e, name)) != MS_OK) return rc;
    }
    for (int j = 0; j < n && rc == MS_OK; j++) {
        if (e->win_n > 0 && pos0 + j != e->win_pos + e->win_n) rc = flush_window(e); /* a gap */
        if (rc != MS_OK) break;
        if (e->win_n == 0) e->win_pos = pos0 + j;
        const float *h = hidden + (size_t)j * e->d;
        for (int k = 0; k < e->d; k++) e->acc[k] += h[k];
        if (++e->win_n == e->pool) rc = flush_window(e);
    }
    if (rc == MS_OK && last) {
        rc = flush_window(e);
        e->ended = 1;
    }
    if (rc == MS_ERR_NOMEM) ms_error("%s: out of memory", e->path);
    return rc;
}

int ms_emit_hidden_close(ms_emit_hidden *e, int ok)
{
    if (!e) return MS_OK;
    int rc = MS_OK;
    void *map = MAP_FAILED;
    size_t bytes = (size_t)e->n_rows * e->d * (e->f16 ? 2 : 4);
    if (ok) rc = flush_window(e);
    if (ok && rc == MS_OK && bytes > 0) {
        map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, e->fd, 0);
        if (map == MAP_FAILED) {
            ms_error("%s: cannot map the hidden-state spill file: %s", e->path, strerror(errno));
            rc = MS_ERR_IO;
        }
    }
    if (ok && rc == MS_OK) {
        ms_st_out t[5] = {
            {"hidden", e->f16 ? MS_DT_F16 : MS_DT_F32, 2, {e->n_rows, e->d}, bytes ? map : NULL},
            {"seq", MS_DT_I32, 1, {e->n_rows}, e->seq},
            {"pos", MS_DT_I64, 1, {e->n_rows}, e->pos},
            {"len", MS_DT_I32, 1, {e->n_rows}, e->len},
            {"seq_names", MS_DT_U8, 1, {(int64_t)e->names_len}, e->names},
        };
        rc = ms_st_write(e->path, t, 5);
    }
    if (map != MAP_FAILED) munmap(map, bytes);
    if (e->fd >= 0) close(e->fd);
    free(e->path); free(e->seq); free(e->len); free(e->pos); free(e->names); free(e->cur);
    free(e->acc); free(e->row);
    free(e);
    return rc;
}
