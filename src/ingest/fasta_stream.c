/* fasta_stream.c - streaming FASTA reader over htslib BGZF.
 *
 * The parser holds one fixed I/O buffer and the current record's name; sequence bytes
 * go straight from that buffer into the caller's, so memory does not grow with record
 * length. BGZF (bgzf_open / bgzf_dopen with "r") gives plain, gzip and BGZF input alike.
 *
 * State machine over the byte stream:
 *   ST_START   before the first header: only blank lines may come before '>'
 *   ST_SEQ     inside a record's sequence lines
 *   ST_HEADER  positioned on the '>' of the next header (the current record is done)
 *   ST_EOF     end of input
 * An error is sticky: every later call returns it again without logging. */
#include "fasta_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <htslib/bgzf.h>

#include "log.h"
#include "mamba_stream.h"

#define MS_FASTA_BUF (64 * 1024)      /* I/O buffer: the parser's whole working set */
#define MS_FASTA_MAX_NAME (64 * 1024) /* longest record name kept (names, not sequence) */

enum { ST_START, ST_SEQ, ST_HEADER, ST_EOF };

struct ms_fasta {
    BGZF *fp;
    char *path;            /* as given ("stdin" for "-"), for messages */
    int state;
    int err;               /* sticky negative ms_status once an error was logged */
    int bol;               /* 1 when buf[pos] is the first byte of a line */
    int64_t line;          /* 1-based line number of buf[pos] */
    size_t pos, len;       /* unread bytes are buf[pos .. len) */
    char *name;            /* current record's name, NUL-terminated */
    size_t name_len, name_cap;
    unsigned char buf[MS_FASTA_BUF];
};

/* Bytes allowed in sequence lines: letters (IUPAC codes, any case, kept as is), '*'
 * (stop / unknown) and '-' (gap). Line ends are handled apart. */
static int seq_byte_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*' || c == '-';
}

static int fail(ms_fasta *f, int status)
{
    f->err = status;
    return status;
}

/* Refill the buffer. Returns 1 with bytes available, 0 at end of input, or a negative
 * status after logging. A failed read in a compressed stream is almost always a cut or
 * damaged file, so say that; the line is the last one that had any data. */
static int refill(ms_fasta *f)
{
    if (f->pos < f->len) return 1;
    ssize_t n = bgzf_read(f->fp, f->buf, sizeof f->buf);
    if (n < 0) {
        int64_t last = f->bol ? f->line - 1 : f->line;
        if (f->fp->is_compressed)
            ms_error("%s: truncated or corrupt compressed data after line %lld", f->path,
                     (long long)last);
        else
            ms_error("%s: read error after line %lld", f->path, (long long)last);
        return fail(f, f->fp->is_compressed ? MS_ERR_FORMAT : MS_ERR_IO);
    }
    f->pos = 0;
    f->len = (size_t)n;
    return n > 0;
}

int ms_fasta_open(const char *path, ms_fasta **out)
{
    *out = NULL;
    ms_fasta *f = calloc(1, sizeof *f);
    if (!f) return MS_ERR_NOMEM;
    int is_stdin = strcmp(path, "-") == 0;
    f->path = strdup(is_stdin ? "stdin" : path);
    f->name_cap = 256;
    f->name = malloc(f->name_cap);
    if (!f->path || !f->name) goto nomem;
    f->name[0] = 0;
    f->line = 1;
    f->bol = 1;
    f->state = ST_START;
    errno = 0;
    if (is_stdin) {
        /* Work on a duplicate so closing the reader leaves the process's stdin open. */
        int fd = dup(STDIN_FILENO);
        if (fd >= 0) {
            f->fp = bgzf_dopen(fd, "r");
            if (!f->fp) close(fd);
        }
    } else {
        f->fp = bgzf_open(path, "r");
    }
    if (!f->fp) {
        ms_error("%s: cannot open: %s", f->path, strerror(errno ? errno : EIO));
        ms_fasta_close(f);
        return MS_ERR_IO;
    }
    *out = f;
    return MS_OK;
nomem:
    ms_fasta_close(f);
    return MS_ERR_NOMEM;
}

void ms_fasta_close(ms_fasta *f)
{
    if (!f) return;
    if (f->fp) bgzf_close(f->fp);
    free(f->path);
    free(f->name);
    free(f);
}

/* Copy (out != NULL) or skip (out == NULL) up to cap sequence bytes of the current
 * record. Stops at the '>' of the next header or at end of input, updating the state. */
static ssize_t scan_sequence(ms_fasta *f, char *out, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        int r = refill(f);
        if (r < 0) return r;
        if (r == 0) {
            f->state = ST_EOF;
            break;
        }
        if (f->bol && f->buf[f->pos] == '>') {
            f->state = ST_HEADER;
            break;
        }
        /* One line's worth (or what the buffer / cap allow) in a tight loop. */
        const unsigned char *p = f->buf + f->pos, *end = f->buf + f->len;
        while (p < end && n < cap) {
            unsigned char c = *p;
            if (c == '\n') {
                p++;
                f->line++;
                f->bol = 1;
                break;
            }
            f->bol = 0;
            if (c != '\r') {
                if (!seq_byte_ok(c)) {
                    f->pos = (size_t)(p - f->buf);
                    ms_error("%s: line %lld: unexpected byte 0x%02x in sequence of '%s'",
                             f->path, (long long)f->line, c, f->name);
                    return fail(f, MS_ERR_FORMAT);
                }
                if (out) out[n] = (char)c;
                n++;
            }
            p++;
        }
        f->pos = (size_t)(p - f->buf);
    }
    return (ssize_t)n;
}

ssize_t ms_fasta_read(ms_fasta *f, char *buf, size_t cap)
{
    if (f->err) return f->err;
    if (f->state != ST_SEQ || cap == 0) return 0;
    return scan_sequence(f, buf, cap);
}

/* Next byte without consuming it: 0..255, -1 at end of input, or a negative status
 * below -1 (ms_status values are all <= -2). */
static int peek_byte(ms_fasta *f)
{
    int r = refill(f);
    if (r < 0) return r;
    return r == 0 ? -1 : f->buf[f->pos];
}

static void take_byte(ms_fasta *f)
{
    if (f->buf[f->pos++] == '\n') {
        f->line++;
        f->bol = 1;
    } else {
        f->bol = 0;
    }
}

/* Before the first record: skip lines holding only whitespace, then expect '>'. */
static int find_first_header(ms_fasta *f)
{
    for (;;) {
        int c = peek_byte(f);
        if (c < -1) return c;
        if (c == -1) {
            f->state = ST_EOF;
            return 0;
        }
        if (c == '>' && f->bol) {
            f->state = ST_HEADER;
            return 1;
        }
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t') {
            ms_error("%s: line %lld: expected '>' at start of FASTA", f->path,
                     (long long)f->line);
            return fail(f, MS_ERR_FORMAT);
        }
        take_byte(f);
    }
}

static int name_push(ms_fasta *f, char c)
{
    if (f->name_len + 1 >= f->name_cap) {
        if (f->name_cap >= MS_FASTA_MAX_NAME) {
            ms_error("%s: line %lld: record name longer than %d bytes", f->path,
                     (long long)f->line, MS_FASTA_MAX_NAME);
            return fail(f, MS_ERR_FORMAT);
        }
        char *p = realloc(f->name, f->name_cap * 2);
        if (!p) return fail(f, MS_ERR_NOMEM);
        f->name = p;
        f->name_cap *= 2;
    }
    f->name[f->name_len++] = c;
    f->name[f->name_len] = 0;
    return 0;
}

/* Positioned on '>': read the name (the first word: blanks right after '>' are skipped,
 * as in real files such as "> pig1"), skip the rest of the header line. */
static int parse_header(ms_fasta *f)
{
    int64_t header_line = f->line;
    take_byte(f); /* '>' */
    f->name_len = 0;
    f->name[0] = 0;
    int in_name = 1;
    for (;;) {
        int c = peek_byte(f);
        if (c < -1) return c;
        if (c == -1) break;
        take_byte(f);
        if (c == '\n') break;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
            if (f->name_len > 0) in_name = 0; /* blanks before the name are skipped */
            continue;
        }
        if (in_name && name_push(f, (char)c) < 0) return f->err;
    }
    if (f->name_len == 0) {
        ms_error("%s: line %lld: FASTA header with an empty name", f->path,
                 (long long)header_line);
        return fail(f, MS_ERR_FORMAT);
    }
    f->state = ST_SEQ;
    return 1;
}

int ms_fasta_next_record(ms_fasta *f, const char **name)
{
    *name = NULL;
    if (f->err) return f->err;
    if (f->state == ST_START) {
        int r = find_first_header(f);
        if (r <= 0) return r;
    }
    while (f->state == ST_SEQ) {
        ssize_t r = scan_sequence(f, NULL, SIZE_MAX);
        if (r < 0) return (int)r;
    }
    if (f->state == ST_EOF) return 0;
    int r = parse_header(f);
    if (r < 0) return r;
    *name = f->name;
    return 1;
}
