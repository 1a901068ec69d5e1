/* regions.c - samtools-style region strings, BED files, and bounded faidx fetches.
 *
 * Regions are kept 0-based half-open ([beg, end), end INT64_MAX = to the end of the
 * sequence) whatever their source: a string's 1-based inclusive "beg-end" becomes
 * [beg-1, end), a BED line's fields are taken as they are. */
#include "regions.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>

#include "log.h"
#include "mamba_stream.h"

/* ------------------------------------------------------------ region lists */

static int list_append(ms_region_list *list, const char *chrom, size_t chrom_len,
                       int64_t beg, int64_t end)
{
    if (list->n == list->cap) {
        int cap = list->cap ? list->cap * 2 : 16;
        ms_region *p = realloc(list->r, (size_t)cap * sizeof *p);
        if (!p) return MS_ERR_NOMEM;
        list->r = p;
        list->cap = cap;
    }
    char *name = strndup(chrom, chrom_len);
    if (!name) return MS_ERR_NOMEM;
    list->r[list->n++] = (ms_region){ .chrom = name, .beg = beg, .end = end };
    return MS_OK;
}

int ms_region_add(ms_region_list *list, const char *chrom, int64_t beg, int64_t end)
{
    return list_append(list, chrom, strlen(chrom), beg, end);
}

void ms_region_list_free(ms_region_list *list)
{
    for (int i = 0; i < list->n; i++) free(list->r[i].chrom);
    free(list->r);
    list->r = NULL;
    list->n = list->cap = 0;
}

/* -------------------------------------------------------- region strings */

/* A position: digits with optional thousands commas ("1,000,000"). Parses [s, e);
 * returns 0 and *out, or -1 if empty, junk or out of range. */
static int parse_pos(const char *s, const char *e, int64_t *out)
{
    int64_t v = 0;
    int digits = 0;
    for (const char *p = s; p < e; p++) {
        if (*p == ',') continue;
        if (*p < '0' || *p > '9') return -1;
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
        digits++;
    }
    if (!digits) return -1;
    *out = v;
    return 0;
}

/* "beg", "beg-", "beg-end", "-end" (1-based inclusive) -> [*beg, *end) 0-based. */
static int parse_range(const char *s, int64_t *beg, int64_t *end)
{
    const char *dash = strchr(s, '-');
    const char *s_end = s + strlen(s);
    int64_t b = 1, e = INT64_MAX;
    if (dash != s && parse_pos(s, dash ? dash : s_end, &b) < 0) return -1;
    if (dash && dash[1] && parse_pos(dash + 1, s_end, &e) < 0) return -1;
    if (dash == s && !dash[1]) return -1; /* a lone "-" */
    if (b < 1 || b > e) return -1;
    *beg = b - 1;
    *end = e;
    return 0;
}

int ms_region_parse(const char *s, ms_region_list *list)
{
    const char *chrom = s, *range = NULL;
    size_t chrom_len;
    if (s[0] == '{') {
        /* "{name:with:colons}:beg-end", as htslib allows for names holding ':' */
        const char *close = strchr(s, '}');
        if (!close || (close[1] && close[1] != ':')) goto bad;
        chrom = s + 1;
        chrom_len = (size_t)(close - chrom);
        if (close[1] == ':') range = close + 2;
    } else {
        /* The last ':' splits name from range, so names with ':' need the braces. */
        const char *colon = strrchr(s, ':');
        chrom_len = colon ? (size_t)(colon - s) : strlen(s);
        if (colon) range = colon + 1;
    }
    if (chrom_len == 0) goto bad;
    int64_t beg = 0, end = INT64_MAX;
    if (range && parse_range(range, &beg, &end) < 0) goto bad;
    int rc = list_append(list, chrom, chrom_len, beg, end);
    if (rc < 0) ms_error("region '%s': out of memory", s);
    return rc;
bad:
    ms_error("region '%s': expected chr, chr:beg, chr:beg- or chr:beg-end "
             "(1-based, beg >= 1, beg <= end)", s);
    return MS_ERR_ARG;
}

/* --------------------------------------------------------------- BED files */

/* Whitespace-separated fields of a line, in place: up to max, returns the count. */
static int split_fields(char *line, char **field, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t && n < max;
         t = strtok_r(NULL, " \t\r", &save))
        field[n++] = t;
    return n;
}

static int bed_skip_line(const char *line)
{
    const char *p = line + strspn(line, " \t\r");
    return *p == 0 || *p == '#' || strncmp(p, "track", 5) == 0 ||
           strncmp(p, "browser", 7) == 0;
}

/* One data line -> appended region; 1 if appended, 0 if empty (skipped), < 0 on error. */
static int bed_line(const char *path, int64_t lineno, char *line, ms_region_list *list)
{
    char *field[3];
    int64_t beg, end;
    if (split_fields(line, field, 3) < 3) {
        ms_error("%s: line %lld: expected chrom, start and end fields", path,
                 (long long)lineno);
        return MS_ERR_FORMAT;
    }
    /* BED coordinates have no commas: check digits only before parse_pos. */
    if (strchr(field[1], ',') || strchr(field[2], ',') ||
        parse_pos(field[1], field[1] + strlen(field[1]), &beg) < 0 ||
        parse_pos(field[2], field[2] + strlen(field[2]), &end) < 0) {
        ms_error("%s: line %lld: start '%s' / end '%s' must be non-negative integers", path,
                 (long long)lineno, field[1], field[2]);
        return MS_ERR_FORMAT;
    }
    if (end < beg) {
        ms_error("%s: line %lld: end %lld is before start %lld", path, (long long)lineno,
                 (long long)end, (long long)beg);
        return MS_ERR_FORMAT;
    }
    if (end == beg) return 0; /* an empty interval: nothing to read */
    int rc = list_append(list, field[0], strlen(field[0]), beg, end);
    return rc < 0 ? rc : 1;
}

int ms_region_read_bed(const char *path, ms_region_list *list)
{
    kstring_t line = { 0, 0, NULL };
    int rc = MS_OK;
    int64_t lineno = 0;
    errno = 0;
    BGZF *fp = bgzf_open(path, "r"); /* plain or compressed BED alike */
    if (!fp) {
        ms_error("%s: cannot open BED file: %s", path, strerror(errno ? errno : EIO));
        return MS_ERR_IO;
    }
    int got;
    while ((got = bgzf_getline(fp, '\n', &line)) >= 0) {
        lineno++;
        if (bed_skip_line(line.s)) continue;
        rc = bed_line(path, lineno, line.s, list);
        if (rc < 0) goto fail;
    }
    if (got < -1) {
        ms_error("%s: read error after line %lld", path, (long long)lineno);
        rc = MS_ERR_IO;
        goto fail;
    }
    rc = MS_OK;
fail:
    free(line.s);
    bgzf_close(fp);
    return rc;
}

/* ------------------------------------------------------------------- faidx */

struct ms_faidx {
    faidx_t *fai;
    char *path;  /* for messages */
};

/* faidx reads plain or BGZF; a plain-gzip file cannot be indexed, and htslib's own
 * message for that is easy to miss, so check first and say what to do. */
static int check_indexable(const char *path)
{
    struct stat st;
    if (strcmp(path, "-") == 0) {
        ms_error("--region needs a FASTA file, not stdin");
        return MS_ERR_ARG;
    }
    if (stat(path, &st) != 0) {
        ms_error("%s: cannot open: %s", path, strerror(errno));
        return MS_ERR_IO;
    }
    BGZF *fp = bgzf_open(path, "r");
    if (!fp) {
        ms_error("%s: cannot open: %s", path, strerror(errno ? errno : EIO));
        return MS_ERR_IO;
    }
    int kind = bgzf_compression(fp); /* 0 none, 1 gzip, 2 BGZF */
    bgzf_close(fp);
    if (kind == 1) {
        /* said for every reader through faidx: --region, --strand reverse|both, the vcf
         * command, bigWig's chromosome sizes */
        ms_error("%s: gzip-compressed but not BGZF, so it cannot be indexed (--region, "
                 "--strand reverse|both, vcf and bigWig output read it through a .fai); "
                 "zcat it, then bgzip", path);
        return MS_ERR_FORMAT;
    }
    return MS_OK;
}

int ms_faidx_open(const char *fasta_path, ms_faidx **out)
{
    *out = NULL;
    int rc = check_indexable(fasta_path);
    if (rc < 0) return rc;
    ms_faidx *fx = calloc(1, sizeof *fx);
    if (!fx || !(fx->path = strdup(fasta_path))) {
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    /* FAI_CREATE: build <path>.fai (and .gzi) if missing, as samtools faidx does. */
    fx->fai = fai_load3(fasta_path, NULL, NULL, FAI_CREATE);
    if (!fx->fai) {
        ms_error("%s: cannot load or build the FASTA index (%s.fai)", fasta_path,
                 fasta_path);
        rc = MS_ERR_FORMAT;
        goto fail;
    }
    *out = fx;
    return MS_OK;
fail:
    ms_faidx_close(fx);
    return rc;
}

void ms_faidx_close(ms_faidx *fx)
{
    if (!fx) return;
    if (fx->fai) fai_destroy(fx->fai);
    free(fx->path);
    free(fx);
}

int ms_faidx_count(const ms_faidx *fx)
{
    return faidx_nseq(fx->fai);
}

const char *ms_faidx_name(const ms_faidx *fx, int i)
{
    return faidx_iseq(fx->fai, i);
}

int64_t ms_faidx_seq_len(const ms_faidx *fx, const char *chrom)
{
    if (!faidx_has_seq(fx->fai, chrom)) return -1;
#if HTS_VERSION >= 102100
    return faidx_seq_len64(fx->fai, chrom);
#else
    /* Older htslib (Debian 12 has 1.16) lacks faidx_seq_len64: int covers < 2^31 bp. */
    return faidx_seq_len(fx->fai, chrom);
#endif
}

/* "chr:beg-end" 1-based for messages; "chr:beg-" when open-ended. */
static void region_str(const ms_region *r, char *buf, size_t n)
{
    if (r->end == INT64_MAX)
        snprintf(buf, n, "%s:%lld-", r->chrom, (long long)r->beg + 1);
    else
        snprintf(buf, n, "%s:%lld-%lld", r->chrom, (long long)r->beg + 1, (long long)r->end);
}

int ms_faidx_resolve(const ms_faidx *fx, ms_region *r)
{
    char name[512];
    int64_t len = ms_faidx_seq_len(fx, r->chrom);
    if (len < 0) {
        region_str(r, name, sizeof name);
        ms_error("region %s: no sequence '%s' in %s", name, r->chrom, fx->path);
        return MS_ERR_ARG;
    }
    if (r->beg < 0 || r->beg > r->end || (r->beg >= len && r->beg > 0)) {
        region_str(r, name, sizeof name);
        ms_error("region %s: starts beyond the end of %s (length %lld) in %s", name,
                 r->chrom, (long long)len, fx->path);
        return MS_ERR_ARG;
    }
    if (r->end > len) r->end = len;
    return MS_OK;
}

ssize_t ms_faidx_fetch(const ms_faidx *fx, const char *chrom, int64_t beg, int64_t end,
                       char *buf)
{
    if (beg < 0 || end < beg) {
        ms_error("%s: fetch %s:%lld-%lld: bad range", fx->path, chrom, (long long)beg + 1,
                 (long long)end);
        return MS_ERR_ARG;
    }
    if (!faidx_has_seq(fx->fai, chrom)) {
        ms_error("%s: fetch %s:%lld-%lld: no sequence '%s'", fx->path, chrom,
                 (long long)beg + 1, (long long)end, chrom);
        return MS_ERR_ARG;
    }
    if (end == beg) return 0;
    hts_pos_t got = 0;
    /* faidx_fetch_seq64 takes 0-based inclusive ends and returns a malloc'd copy. */
    char *seq = faidx_fetch_seq64(fx->fai, chrom, beg, end - 1, &got);
    if (!seq || got < 0) {
        ms_error("%s: cannot fetch %s:%lld-%lld", fx->path, chrom, (long long)beg + 1,
                 (long long)end);
        free(seq);
        return got == -2 ? MS_ERR_ARG : MS_ERR_IO;
    }
    if (got != end - beg) {
        /* faidx clamps silently; callers resolve regions first, so this is a bug. */
        ms_error("%s: fetch %s:%lld-%lld: got %lld bases; the sequence ends earlier",
                 fx->path, chrom, (long long)beg + 1, (long long)end, (long long)got);
        free(seq);
        return MS_ERR_ARG;
    }
    memcpy(buf, seq, (size_t)got);
    free(seq);
    return (ssize_t)got;
}
