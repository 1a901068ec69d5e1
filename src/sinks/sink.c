/* sink.c - open / write / close for the score writers; each format lives in
 * sink_tsv.c, sink_bedgraph.c, sink_wig.c and sink_bigwig.c (which writes its own file
 * through libBigWig, under the same temporary name).
 *
 * A named regular file is written as PATH.tmp.<pid> and renamed on a good close, so a
 * reader never sees a half-written PATH and a failed run leaves nothing. Paths that are
 * not regular files (/dev/stdout, /dev/full, a FIFO) cannot be renamed onto and are
 * written in place. stdout ("-" or NULL) is written through its own FILE on a dup of
 * fd 1, so the 1 MiB buffer and the close-time error check are ours. fsync is not
 * called: the rename protects readers from partial files, not from power loss. */
#include "sink_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mamba_stream.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Big enough that writes are a few syscalls per million lines. */
#define MS_SINK_BUF (1u << 20)
/* Text lines: a piece of positions is formatted by one thread into its own part of
 * s->text, and up to MS_SINK_THREADS pieces at a time (a round) are then written in order.
 * 512 TSV positions are ~0.1 ms of work, against a few us to start a parallel region, and
 * a 4096-base chunk (the CLI's default) makes 8 of them. */
#define MS_SINK_PIECE 512             /* positions per piece, at most */
#define MS_SINK_PIECE_BYTES (256u << 10) /* fewer positions for very long chrom names */
#define MS_SINK_THREADS 8             /* enough to outrun the GPU engine on TSV */

static const char *const k_value_names[] = {"logp", "entropy", "pA", "pC", "pG", "pT"};

const char *ms_sink_value_name(ms_sink_value v)
{
    return (unsigned)v < 6 ? k_value_names[v] : "?";
}

int ms_sink_fail(ms_sink *s)
{
    if (!s->err) s->err = errno ? errno : EIO;
    return -1;
}

/* Log the first failure once, naming the path the user asked for. */
static int report(ms_sink *s, const char *what)
{
    if (!s->failed) {
        ms_error("%s %s: %s", what, s->path, strerror(s->err ? s->err : EIO));
        s->failed = 1;
    }
    return MS_ERR_IO;
}

/* s->text holding at least cap bytes (its contents are not kept); 0, or -1 (ENOMEM). */
static int text_reserve(ms_sink *s, size_t cap)
{
    if (s->text_cap >= cap) return 0;
    char *t = malloc(cap);
    if (!t) {
        errno = ENOMEM;
        return ms_sink_fail(s);
    }
    free(s->text);
    s->text = t;
    s->text_cap = cap;
    return 0;
}

/* Threads for one round of pieces: OpenMP's default (OMP_NUM_THREADS, else the cores)
 * up to MS_SINK_THREADS; 1 without OpenMP or when the format is serial. */
static int text_threads(int parallel)
{
#ifdef _OPENMP
    int t = parallel ? omp_get_max_threads() : 1;
    return t < 1 ? 1 : t > MS_SINK_THREADS ? MS_SINK_THREADS : t;
#else
    return 1;
#endif
}

int ms_sink_threads(void) { return text_threads(1); }

/* Where a piece of lines starts or ends: position j of part p. */
typedef struct {
    int p, j;
} part_cursor;

/* cur moved on by up to per positions, over part boundaries (empty parts skipped). */
static part_cursor cursor_advance(const ms_sink_part *parts, int np, part_cursor cur, int per)
{
    while (per > 0 && cur.p < np) {
        int left = (parts[cur.p].n > 0 ? parts[cur.p].n : 0) - cur.j;
        if (left > per) {
            cur.j += per;
            per = 0;
        } else {
            per -= left;
            cur.p++;
            cur.j = 0;
        }
    }
    return cur;
}

/* The lines of positions [a, b) of parts (a piece) at p; returns their end. */
static char *format_piece(ms_sink *s, char *p, const ms_sink_part *parts, int np,
                          part_cursor a, part_cursor b, ms_sink_line_fn line)
{
    for (int k = a.p; k <= b.p && k < np; k++) {
        const ms_sink_part *pt = &parts[k];
        int i0 = k == a.p ? a.j : 0, i1 = k == b.p ? b.j : pt->n;
        if (i0 >= i1) continue;
        size_t clen = strlen(pt->chrom);
        for (int i = i0; i < i1; i++) p = line(s, p, pt->chrom, clen, &pt->scores[i]);
    }
    return p;
}

/* ms_sink_write_lines over several parts: pieces of up to `per` positions, which may span
 * parts (a batch of 150-base reads fills a piece with three or four of them), formatted
 * a round of pieces at a time on the team and written in order. */
static int write_lines_parts(ms_sink *s, const ms_sink_part *parts, int np, ms_sink_line_fn line,
                             int parallel)
{
    size_t clen = 0;
    for (int k = 0; k < np; k++) {
        size_t l = strlen(parts[k].chrom);
        if (l > clen) clen = l;
    }
    size_t line_max = MS_SINK_LINE_MAX(clen);
    size_t fit = MS_SINK_PIECE_BYTES / line_max;
    int per = fit < 1 ? 1 : fit > MS_SINK_PIECE ? MS_SINK_PIECE : (int)fit; /* a piece */
    int threads = text_threads(parallel);
    size_t piece_cap = (size_t)per * line_max;
    size_t used[MS_SINK_THREADS];
    part_cursor at[MS_SINK_THREADS + 1];
    if (text_reserve(s, (size_t)threads * piece_cap) != 0) return -1;
    part_cursor cur = {0, 0};
    while (cur.p < np) {
        int pieces = 0;
        at[0] = cur;
        while (pieces < threads && cur.p < np) {
            cur = cursor_advance(parts, np, cur, per);
            at[++pieces] = cur;
        }
#pragma omp parallel for num_threads(pieces) if (pieces > 1) schedule(static, 1)
        for (int k = 0; k < pieces; k++) {
            char *p0 = s->text + (size_t)k * piece_cap;
            used[k] = (size_t)(format_piece(s, p0, parts, np, at[k], at[k + 1], line) - p0);
        }
        for (int k = 0; k < pieces; k++)
            if (used[k] && fwrite(s->text + (size_t)k * piece_cap, 1, used[k], s->f) != used[k])
                return ms_sink_fail(s);
    }
    return 0;
}

int ms_sink_write_lines(ms_sink *s, const char *chrom, const ms_score *sc, int n,
                        ms_sink_line_fn line, int parallel)
{
    const ms_sink_part part = {chrom, sc, n};
    return write_lines_parts(s, &part, 1, line, parallel);
}

static void sink_free(ms_sink *s)
{
    free(s->text);
    free(s->buf);
    free(s->path);
    free(s->tmp);
    free(s->chrom);
    free(s);
}

static char *dup_str(const char *a)
{
    size_t n = strlen(a) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, a, n);
    return d;
}

static int text_begin(ms_sink *s) { return 0; }
static int text_write(ms_sink *s, const char *chrom, const ms_score *sc, int n) { return 0; }
static const ms_sink_ops text_ops = {text_begin, text_write, NULL, 0, NULL};

int ms_sink_printf(ms_sink *s, const char *fmt, ...)
{
    if (s->failed) return MS_ERR_IO;
    if (!s->f) return MS_ERR_ARG;
    va_list ap;
    va_start(ap, fmt);
    errno = 0;
    int n = vfprintf(s->f, fmt, ap);
    va_end(ap);
    if (n < 0) {
        ms_sink_fail(s);
        return report(s, "cannot write");
    }
    return MS_OK;
}

int ms_sink_open(const char *path, ms_sink_format fmt, ms_sink_value value, ms_sink **out)
{
    ms_sink_opts o = {path, fmt, value, NULL, 0};
    return ms_sink_open_opts(&o, out);
}

int ms_sink_open_opts(const ms_sink_opts *opts, ms_sink **out)
{
    *out = NULL;
    const char *path = opts->path;
    ms_sink_format fmt = opts->format;
    ms_sink_value value = opts->value;
    const ms_sink_ops *ops = fmt == MS_FMT_TSV        ? &ms_sink_tsv_ops
                             : fmt == MS_FMT_BEDGRAPH ? &ms_sink_bedgraph_ops
                             : fmt == MS_FMT_WIG      ? &ms_sink_wig_ops
                             : fmt == MS_FMT_BIGWIG   ? &ms_sink_bigwig_ops
                             : fmt == MS_FMT_TEXT     ? &text_ops
                                                      : NULL;
    if (!ops || (unsigned)value > MS_VAL_PT) {
        ms_error("ms_sink_open: unknown format %d or value %d", (int)fmt, (int)value);
        return MS_ERR_ARG;
    }
    int to_stdout = !path || strcmp(path, "-") == 0;
    if (to_stdout && ops->own_file) {
        ms_error("bigWig output needs a file name (-o FILE.bw), not standard output");
        return MS_ERR_ARG;
    }

    ms_sink *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->ops = ops;
    s->value = value;
    s->mask_soft = opts->mask_soft;
    s->fasta = opts->fasta;
    s->path = dup_str(to_stdout ? "-" : path);
    s->buf = malloc(MS_SINK_BUF);
    if (!s->path || !s->buf) goto nomem;

    if (to_stdout) {
        fflush(stdout);  /* whatever the caller printed comes first */
        int fd = dup(STDOUT_FILENO);
        if (fd < 0 || !(s->f = fdopen(fd, "w"))) {
            if (fd >= 0) close(fd);
            ms_error("cannot write standard output: %s", strerror(errno));
            sink_free(s);
            return MS_ERR_IO;
        }
    } else {
        struct stat st;
        int in_place = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
        if (!in_place) {
            size_t n = strlen(path) + 32;
            if (!(s->tmp = malloc(n))) goto nomem;
            snprintf(s->tmp, n, "%s.tmp.%ld", path, (long)getpid());
        }
        if (ops->own_file) {
            if (s->ops->begin(s) != 0) {
                sink_free(s);  /* the format logged why and left nothing behind */
                return MS_ERR_IO;
            }
            *out = s;
            return MS_OK;
        }
        if (!(s->f = fopen(in_place ? path : s->tmp, "w"))) {
            ms_error("cannot create %s: %s", in_place ? path : s->tmp, strerror(errno));
            sink_free(s);
            return MS_ERR_IO;
        }
    }
    setvbuf(s->f, s->buf, _IOFBF, MS_SINK_BUF);

    errno = 0;
    if (s->ops->begin(s) != 0) {
        report(s, "cannot write");
        (void)ms_sink_close(s, 0);  /* logged once already; nothing left behind */
        return MS_ERR_IO;
    }
    *out = s;
    return MS_OK;

nomem:
    ms_error("out of memory opening %s", path ? path : "-");
    if (s) sink_free(s);
    return MS_ERR_NOMEM;
}

int ms_sink_write(ms_sink *s, const char *chrom, const ms_score *scores, int n)
{
    if (n <= 0) return s->failed ? MS_ERR_IO : MS_OK;
    const ms_sink_part part = {chrom, scores, n};
    return ms_sink_write_parts(s, &part, 1);
}

int ms_sink_write_parts(ms_sink *s, const ms_sink_part *parts, int n)
{
    if (s->failed) return MS_ERR_IO;
    errno = 0;
    int rc = 0;
    if (s->ops->lines) {
        rc = write_lines_parts(s, parts, n, s->ops->lines, 1);
    } else {
        for (int k = 0; k < n && rc == 0; k++)
            if (parts[k].n > 0) rc = s->ops->write(s, parts[k].chrom, parts[k].scores, parts[k].n);
    }
    return rc != 0 ? report(s, "cannot write") : MS_OK;
}

int ms_sink_close(ms_sink *s, int ok)
{
    if (!s) return MS_OK;
    int rc = s->failed ? MS_ERR_IO : MS_OK;

    if (s->ops->own_file) {
        if (s->ops->end(s) != 0 && rc == MS_OK) rc = MS_ERR_IO; /* logged by the format */
        goto rename_tmp;
    }
    errno = 0;
    if (fflush(s->f) != 0 || ferror(s->f)) {
        ms_sink_fail(s);
        rc = report(s, "cannot write");
    }
    errno = 0;
    if (fclose(s->f) != 0) {
        ms_sink_fail(s);
        rc = report(s, "cannot write");
    }
rename_tmp:
    if (s->tmp) {
        if (ok && rc == MS_OK) {
            if (rename(s->tmp, s->path) != 0) {
                s->err = errno;
                rc = report(s, "cannot rename temporary file onto");
                unlink(s->tmp);
            }
        } else {
            unlink(s->tmp);
        }
    }
    sink_free(s);
    return rc;
}

int ms_sink_format_parse(const char *s)
{
    if (!s) return -1;
    if (strcasecmp(s, "tsv") == 0) return MS_FMT_TSV;
    if (strcasecmp(s, "bedgraph") == 0) return MS_FMT_BEDGRAPH;
    if (strcasecmp(s, "wig") == 0) return MS_FMT_WIG;
    if (strcasecmp(s, "bigwig") == 0 || strcasecmp(s, "bw") == 0) return MS_FMT_BIGWIG;
    return -1;
}

int ms_sink_value_parse(const char *s)
{
    if (!s) return -1;
    for (int v = 0; v < 6; v++)
        if (strcasecmp(s, k_value_names[v]) == 0) return v;
    return -1;
}

int ms_sink_format_from_path(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/')) return -1;
    dot++;
    if (strcasecmp(dot, "tsv") == 0 || strcasecmp(dot, "txt") == 0) return MS_FMT_TSV;
    if (strcasecmp(dot, "bedgraph") == 0 || strcasecmp(dot, "bg") == 0) return MS_FMT_BEDGRAPH;
    if (strcasecmp(dot, "wig") == 0) return MS_FMT_WIG;
    if (strcasecmp(dot, "bw") == 0 || strcasecmp(dot, "bigwig") == 0) return MS_FMT_BIGWIG;
    return -1;
}
