/* test_fasta_stream.c - the streaming FASTA reader: layout variants, every input kind
 * (plain, gzip, BGZF, stdin pipe), errors with file and line, and bounded memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <htslib/bgzf.h>
#include <zlib.h>

#include "fasta_stream.h"
#include "mamba_stream.h"
#include "test_util.h"

/* ------------------------------------------------------------------ helpers */

typedef struct {
    char *s;
    size_t n, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

static const char *tmp_path(const char *name)
{
    static char bufs[4][4096];
    static int next;
    char *p = bufs[next++ & 3];
    snprintf(p, 4096, "%s/%s", tu_tmpdir(), name);
    return p;
}

/* Read a whole FASTA, reading sequence cap bytes at a time, into a canonical form
 * ">name\nSEQ\n" per record. Returns the reader's final status (0 at clean end). */
static int read_canonical(const char *path, size_t cap, buf_t *out)
{
    ms_fasta *f;
    int rc = ms_fasta_open(path, &f);
    if (rc < 0) return rc;
    char *piece = malloc(cap);
    assert_non_null(piece);
    const char *name;
    while ((rc = ms_fasta_next_record(f, &name)) == 1) {
        buf_str(out, ">");
        buf_str(out, name);
        buf_str(out, "\n");
        ssize_t n;
        while ((n = ms_fasta_read(f, piece, cap)) > 0) {
            assert_true((size_t)n <= cap);
            buf_add(out, piece, (size_t)n);
        }
        if (n < 0) {
            rc = (int)n;
            break;
        }
        buf_str(out, "\n");
    }
    free(piece);
    ms_fasta_close(f);
    return rc;
}

static void write_gzip(const char *path, const char *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

static void write_bgzf(const char *path, const char *data, size_t n)
{
    BGZF *b = bgzf_open(path, "w");
    assert_non_null(b);
    assert_int_equal(bgzf_write(b, data, n), (ssize_t)n);
    assert_int_equal(bgzf_close(b), 0);
}

/* Deterministic test FASTA spanning many I/O buffers: records of assorted lengths
 * (including empty), line widths, case and line ends. *expect gets the canonical form. */
static void make_fasta(buf_t *file, buf_t *expect)
{
    static const int len[] = { 0, 1, 61, 70000, 150001, 5, 0, 200000 };
    static const int width[] = { 60, 60, 60, 70, 80, 1, 60, 61 };
    uint32_t x = 12345;
    for (int r = 0; r < (int)(sizeof len / sizeof len[0]); r++) {
        char name[64], line[32];
        const char *eol = (r % 3 == 1) ? "\r\n" : "\n";
        snprintf(name, sizeof name, "seq%d", r);
        buf_str(file, ">");
        buf_str(file, name);
        buf_str(file, " some description\there");
        buf_str(file, eol);
        buf_str(expect, ">");
        buf_str(expect, name);
        buf_str(expect, "\n");
        for (int i = 0; i < len[r];) {
            int w = 0;
            for (; w < width[r] && i < len[r]; w++, i++) {
                x = x * 1103515245u + 12345u;
                line[w] = "ACGTacgtNn"[(x >> 16) % 10];
            }
            buf_add(file, line, (size_t)w);
            buf_add(expect, line, (size_t)w);
            buf_str(file, eol);
            if (r == 3 && i % 6000 == 0) buf_str(file, eol); /* blank lines */
        }
        buf_str(expect, "\n");
    }
}

/* ----------------------------------------------------------------- layouts */

static void test_layouts(void **state)
{
    (void)state;
    /* leading blank lines, CRLF, blank lines inside, lower case, empty record, a
     * description after the name, and no newline at the very end */
    const char *text = "\n\r\n>chr1 first record\r\nACGT\r\nacgtN\r\n\r\n"
                       ">empty\n"
                       ">chr2\tmore words\n\nAC\n\nGT\n"
                       ">last\nTT*-T";
    const char *expect = ">chr1\nACGTacgtN\n>empty\n\n>chr2\nACGT\n>last\nTT*-T\n";
    const char *path = tmp_path("layouts.fa");
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    for (size_t cap = 1; cap <= 64; cap = cap * 2 + 1) {
        buf_t got = { 0 };
        assert_int_equal(read_canonical(path, cap, &got), 0);
        assert_string_equal(got.s, expect);
        free(got.s);
    }
}

static void test_empty_input(void **state)
{
    (void)state;
    const char *path = tmp_path("empty.fa");
    assert_int_equal(tu_write_file(path, "", 0), 0);
    buf_t got = { 0 };
    assert_int_equal(read_canonical(path, 16, &got), 0);
    assert_null(got.s);
    /* a header alone with no newline: one empty record */
    assert_int_equal(tu_write_file(path, ">x", 2), 0);
    assert_int_equal(read_canonical(path, 16, &got), 0);
    assert_string_equal(got.s, ">x\n\n");
    free(got.s);
}

static void test_tiny_pieces_equal_whole(void **state)
{
    (void)state;
    buf_t file = { 0 }, expect = { 0 };
    make_fasta(&file, &expect);
    const char *path = tmp_path("pieces.fa");
    assert_int_equal(tu_write_file(path, file.s, file.n), 0);
    const size_t caps[] = { 1, 7, 4096, 1 << 20 };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        buf_t got = { 0 };
        assert_int_equal(read_canonical(path, caps[i], &got), 0);
        assert_int_equal(got.n, expect.n);
        assert_memory_equal(got.s, expect.s, expect.n);
        free(got.s);
    }
    free(file.s);
    free(expect.s);
}

static void test_skip_unread(void **state)
{
    (void)state;
    buf_t file = { 0 }, expect = { 0 };
    make_fasta(&file, &expect);
    const char *path = tmp_path("skip.fa");
    assert_int_equal(tu_write_file(path, file.s, file.n), 0);
    ms_fasta *f;
    assert_int_equal(ms_fasta_open(path, &f), 0);
    const char *name;
    char piece[10];
    int n_rec = 0;
    /* read a few bases of every other record only; names must still come in order */
    while (ms_fasta_next_record(f, &name) == 1) {
        char want[32];
        snprintf(want, sizeof want, "seq%d", n_rec);
        assert_string_equal(name, want);
        if (n_rec % 2 == 0) assert_true(ms_fasta_read(f, piece, sizeof piece) >= 0);
        n_rec++;
    }
    assert_int_equal(n_rec, 8);
    /* at end of input it stays at end */
    assert_int_equal(ms_fasta_next_record(f, &name), 0);
    assert_int_equal(ms_fasta_read(f, piece, sizeof piece), 0);
    ms_fasta_close(f);
    free(file.s);
    free(expect.s);
}

/* ------------------------------------------------------------ input kinds */

/* Read path "-" with fd 0 replaced by a pipe that a child fills with data. */
static int read_stdin_pipe(const char *data, size_t n, buf_t *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fds[1], data + off, n - off);
            if (w <= 0) _exit(1);
            off += (size_t)w;
        }
        _exit(0); /* no atexit handlers: the parent owns the temp directory */
    }
    close(fds[1]);
    int saved = dup(STDIN_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fds[0], STDIN_FILENO) >= 0);
    close(fds[0]);
    int rc = read_canonical("-", 1000, out);
    assert_true(dup2(saved, STDIN_FILENO) >= 0);
    close(saved);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return rc;
}

static void test_input_kinds_agree(void **state)
{
    (void)state;
    buf_t file = { 0 }, expect = { 0 };
    make_fasta(&file, &expect);
    const char *plain = tmp_path("kinds.fa"), *gz = tmp_path("kinds.fa.gz"),
               *bgz = tmp_path("kinds.bgz.fa.gz");
    assert_int_equal(tu_write_file(plain, file.s, file.n), 0);
    write_gzip(gz, file.s, file.n);
    write_bgzf(bgz, file.s, file.n);
    const char *paths[] = { plain, gz, bgz };
    for (int i = 0; i < 3; i++) {
        buf_t got = { 0 };
        assert_int_equal(read_canonical(paths[i], 333, &got), 0);
        assert_int_equal(got.n, expect.n);
        assert_memory_equal(got.s, expect.s, expect.n);
        free(got.s);
    }
    /* stdin: plain text and a gzip stream, both through a pipe (not seekable) */
    FILE *g = fopen(gz, "rb");
    assert_non_null(g);
    buf_t gzdata = { 0 };
    char tmp[65536];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, g)) > 0) buf_add(&gzdata, tmp, r);
    fclose(g);
    const buf_t *inputs[] = { &file, &gzdata };
    for (int i = 0; i < 2; i++) {
        buf_t got = { 0 };
        assert_int_equal(read_stdin_pipe(inputs[i]->s, inputs[i]->n, &got), 0);
        assert_int_equal(got.n, expect.n);
        assert_memory_equal(got.s, expect.s, expect.n);
        free(got.s);
    }
    free(gzdata.s);
    free(file.s);
    free(expect.s);
}

/* ------------------------------------------------------------------ errors */

/* Read a whole file expecting a failure with status want and a log line holding
 * each of the given fragments. */
static void expect_error(const char *path, int want, const char *frag1, const char *frag2)
{
    buf_t got = { 0 };
    tu_log_capture();
    int rc = read_canonical(path, 100, &got);
    ms_set_log(NULL, NULL);
    free(got.s);
    assert_int_equal(rc, want);
    const char *log = tu_log_text();
    if (!strstr(log, frag1) || (frag2 && !strstr(log, frag2)))
        fail_msg("log '%s' lacks '%s' / '%s'", log, frag1, frag2 ? frag2 : "");
    int lines = 0;
    for (const char *p = log; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1); /* one error, one line */
}

static void test_error_text_before_header(void **state)
{
    (void)state;
    const char *path = tmp_path("x.fa");
    assert_int_equal(tu_write_file(path, "ACGT\n>a\nAC\n", 11), 0);
    expect_error(path, MS_ERR_FORMAT, "x.fa: line 1: expected '>' at start of FASTA", NULL);
    assert_int_equal(tu_write_file(path, "\n\nhello\n", 8), 0);
    expect_error(path, MS_ERR_FORMAT, "x.fa: line 3: expected '>'", NULL);
}

static void test_error_bad_bytes(void **state)
{
    (void)state;
    const char *path = tmp_path("bad.fa");
    const char nul[] = ">a\nACGT\nAC\0GT\n";
    assert_int_equal(tu_write_file(path, nul, sizeof nul - 1), 0);
    expect_error(path, MS_ERR_FORMAT, "bad.fa: line 3:", "0x00");
    assert_int_equal(tu_write_file(path, ">a\nACGT\n>b\nAC1GT\n", 18), 0);
    expect_error(path, MS_ERR_FORMAT, "bad.fa: line 4:", "0x31");
    const char blank[] = ">a\nAC\n>  \t\nAC\n"; /* "> name" is a name; blanks alone are not */
    assert_int_equal(tu_write_file(path, blank, sizeof blank - 1), 0);
    expect_error(path, MS_ERR_FORMAT, "bad.fa: line 3:", "empty name");
    assert_int_equal(tu_write_file(path, ">\nAC\n", 5), 0);
    expect_error(path, MS_ERR_FORMAT, "bad.fa: line 1:", "empty name");
}

/* Line numbers carry across I/O buffers: a bad byte deep in a multi-buffer file. */
static void test_error_line_across_buffers(void **state)
{
    (void)state;
    buf_t file = { 0 };
    buf_str(&file, ">a\n");
    for (int i = 0; i < 20000; i++) buf_str(&file, "ACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTAC\r\n");
    buf_str(&file, "ACGT.ACGT\n");
    const char *path = tmp_path("deep.fa");
    assert_int_equal(tu_write_file(path, file.s, file.n), 0);
    expect_error(path, MS_ERR_FORMAT, "deep.fa: line 20002:", "0x2e");
    write_gzip(tmp_path("deep.fa.gz"), file.s, file.n);
    expect_error(tmp_path("deep.fa.gz"), MS_ERR_FORMAT, "deep.fa.gz: line 20002:", NULL);
    free(file.s);
}

static void test_error_truncated_gzip(void **state)
{
    (void)state;
    buf_t file = { 0 }, expect = { 0 };
    make_fasta(&file, &expect);
    const char *full = tmp_path("full.fa.gz"), *cut = tmp_path("cut.fa.gz");
    write_gzip(full, file.s, file.n);
    FILE *g = fopen(full, "rb");
    assert_non_null(g);
    char *data = malloc(file.n);
    size_t n = fread(data, 1, file.n, g);
    fclose(g);
    assert_true(n > 1000);
    assert_int_equal(tu_write_file(cut, data, n / 2), 0);
    expect_error(cut, MS_ERR_FORMAT, "cut.fa.gz: truncated or corrupt compressed data after line",
                 NULL);
    /* the same cut in a BGZF file */
    write_bgzf(full, file.s, file.n);
    g = fopen(full, "rb");
    n = fread(data, 1, file.n, g);
    fclose(g);
    assert_int_equal(tu_write_file(cut, data, n / 2), 0);
    expect_error(cut, MS_ERR_FORMAT, "cut.fa.gz: truncated or corrupt compressed data", NULL);
    free(data);
    free(file.s);
    free(expect.s);
}

static void test_error_missing_file(void **state)
{
    (void)state;
    ms_fasta *f = (ms_fasta *)1;
    tu_log_capture();
    assert_int_equal(ms_fasta_open(tmp_path("nope.fa"), &f), MS_ERR_IO);
    ms_set_log(NULL, NULL);
    assert_null(f);
    assert_non_null(strstr(tu_log_text(), "nope.fa: cannot open"));
}

/* ------------------------------------------------------------------ memory */

/* A 50 Mbp record written on the fly into a pipe by a child: the reader's memory must
 * stay bounded (checked with the process's peak RSS). Lines are 1 Mbp long so long
 * lines are covered too. */
static void test_memory_bounded(void **state)
{
    (void)state;
    const size_t total = 50u * 1000 * 1000, line = 1000 * 1000;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        FILE *w = fdopen(fds[1], "w");
        if (!w) _exit(1);
        fputs(">big made on the fly\n", w);
        for (size_t i = 0; i < total; i++) {
            putc("ACGT"[(i * 7 + i / 13) & 3], w);
            if ((i + 1) % line == 0) putc('\n', w);
        }
        _exit(fclose(w) == 0 ? 0 : 1);
    }
    close(fds[1]);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    ms_fasta *f;
    assert_int_equal(ms_fasta_open(path, &f), 0);
    close(fds[0]); /* the reader opened its own descriptor */
    const char *name;
    assert_int_equal(ms_fasta_next_record(f, &name), 1);
    assert_string_equal(name, "big");
    static char piece[1 << 16];
    size_t got = 0, mismatches = 0;
    ssize_t n;
    while ((n = ms_fasta_read(f, piece, sizeof piece)) > 0) {
        for (ssize_t k = 0; k < n; k++, got++)
            mismatches += piece[k] != "ACGT"[(got * 7 + got / 13) & 3];
    }
    assert_int_equal(n, 0);
    assert_int_equal(ms_fasta_next_record(f, &name), 0);
    ms_fasta_close(f);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, total);
    assert_int_equal(mismatches, 0);

    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) {
        printf("note: peak RSS not checked under valgrind (%ld KiB)\n", ru.ru_maxrss);
        return;
    }
    /* ru_maxrss is in KiB on Linux */
    if (ru.ru_maxrss >= 50 * 1024) fail_msg("peak RSS %ld KiB >= 50 MB", ru.ru_maxrss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_tiny_pieces_equal_whole),
        cmocka_unit_test(test_skip_unread),
        cmocka_unit_test(test_input_kinds_agree),
        cmocka_unit_test(test_error_text_before_header),
        cmocka_unit_test(test_error_bad_bytes),
        cmocka_unit_test(test_error_line_across_buffers),
        cmocka_unit_test(test_error_truncated_gzip),
        cmocka_unit_test(test_error_missing_file),
        cmocka_unit_test(test_memory_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
