/* test_regions.c - region strings, BED files, faidx fetches on temp files and on the
 * real C. elegans ce.fa from Debian's htslib-test package. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <htslib/bgzf.h>
#include <zlib.h>

#include "fasta_stream.h"
#include "mamba_stream.h"
#include "regions.h"
#include "test_util.h"

static const char *tmp_path(const char *name)
{
    static char bufs[4][4096];
    static int next;
    char *p = bufs[next++ & 3];
    snprintf(p, 4096, "%s/%s", tu_tmpdir(), name);
    return p;
}

static void assert_log_has(const char *frag)
{
    if (!strstr(tu_log_text(), frag)) fail_msg("log '%s' lacks '%s'", tu_log_text(), frag);
}

/* ------------------------------------------------------------ region strings */

static void test_parse_ok(void **state)
{
    (void)state;
    static const struct {
        const char *s, *chrom;
        int64_t beg, end;
    } cases[] = {
        { "chr1", "chr1", 0, INT64_MAX },
        { "chr1:100", "chr1", 99, INT64_MAX },
        { "chr1:100-", "chr1", 99, INT64_MAX },
        { "chr1:100-200", "chr1", 99, 200 },
        { "chr1:1,000-2,000", "chr1", 999, 2000 },
        { "chr1:5-5", "chr1", 4, 5 },
        { "chr1:-10", "chr1", 0, 10 },
        { "{HLA-A*01:01}:2-3", "HLA-A*01:01", 1, 3 },
        { "{HLA-A*01:01}", "HLA-A*01:01", 0, INT64_MAX },
        { "NC_008253.1:1-4938920", "NC_008253.1", 0, 4938920 },
    };
    ms_region_list list = { 0 };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) assert_int_equal(ms_region_parse(cases[i].s, &list), 0);
    assert_int_equal(list.n, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(list.r[i].chrom, cases[i].chrom);
        assert_true(list.r[i].beg == cases[i].beg);
        assert_true(list.r[i].end == cases[i].end);
    }
    ms_region_list_free(&list);
    assert_int_equal(list.n, 0);
    assert_null(list.r);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *bad[] = { "", ":1-5", "chr1:", "chr1:0", "chr1:0-5", "chr1:10-5",
                                 "chr1:abc", "chr1:5-x", "chr1:5-6-7", "chr1:-",
                                 "chr1:99999999999999999999", "{chr1", "{chr1}x" };
    ms_region_list list = { 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_log_capture();
        assert_int_equal(ms_region_parse(bad[i], &list), MS_ERR_ARG);
        ms_set_log(NULL, NULL);
        char want[128];
        snprintf(want, sizeof want, "region '%s'", bad[i]);
        assert_log_has(want);
    }
    assert_int_equal(list.n, 0);
    ms_region_list_free(&list);
}

/* --------------------------------------------------------------- BED files */

static void test_bed_ok(void **state)
{
    (void)state;
    const char *bed = "# a comment\n"
                      "track name=x\n"
                      "browser position chr1:1-100\n"
                      "\n"
                      "chr1\t0\t100\n"
                      "chr1\t50\t50\n"             /* empty: skipped quietly */
                      "chr2\t10\t20\tname\t0\t+\r\n" /* extra columns, CRLF */
                      "  \t\n"
                      "chr3 5 6\n";                /* space separated */
    const char *path = tmp_path("ok.bed");
    assert_int_equal(tu_write_file(path, bed, strlen(bed)), 0);
    ms_region_list list = { 0 };
    tu_log_capture();
    assert_int_equal(ms_region_read_bed(path, &list), 0);
    ms_set_log(NULL, NULL);
    assert_string_equal(tu_log_text(), "");
    assert_int_equal(list.n, 3);
    assert_string_equal(list.r[0].chrom, "chr1");
    assert_true(list.r[0].beg == 0 && list.r[0].end == 100);
    assert_string_equal(list.r[1].chrom, "chr2");
    assert_true(list.r[1].beg == 10 && list.r[1].end == 20);
    assert_string_equal(list.r[2].chrom, "chr3");
    assert_true(list.r[2].beg == 5 && list.r[2].end == 6);
    ms_region_list_free(&list);

    /* the same through gzip */
    gzFile g = gzopen(tmp_path("ok.bed.gz"), "wb");
    assert_non_null(g);
    gzwrite(g, bed, (unsigned)strlen(bed));
    gzclose(g);
    assert_int_equal(ms_region_read_bed(tmp_path("ok.bed.gz"), &list), 0);
    assert_int_equal(list.n, 3);
    ms_region_list_free(&list);
}

static void test_bed_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *frag;
    } cases[] = {
        { "chr1\t0\t10\nchr1\t5\n", "bad.bed: line 2:" },
        { "#h\nchr1\t20\t10\n", "bad.bed: line 2: end 10 is before start 20" },
        { "chr1\tabc\t10\n", "bad.bed: line 1:" },
        { "track x\nchr1\t-1\t10\n", "bad.bed: line 2:" },
        { "chr1\t1,000\t2000\n", "bad.bed: line 1:" },
    };
    const char *path = tmp_path("bad.bed");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(tu_write_file(path, cases[i].text, strlen(cases[i].text)), 0);
        ms_region_list list = { 0 };
        tu_log_capture();
        assert_int_equal(ms_region_read_bed(path, &list), MS_ERR_FORMAT);
        ms_set_log(NULL, NULL);
        assert_log_has(cases[i].frag);
        ms_region_list_free(&list);
    }
    ms_region_list list = { 0 };
    tu_log_capture();
    assert_int_equal(ms_region_read_bed(tmp_path("missing.bed"), &list), MS_ERR_IO);
    ms_set_log(NULL, NULL);
    assert_log_has("missing.bed: cannot open");
}

/* ------------------------------------------------------------------- faidx */

/* Two records with 60-column lines; seq[i] holds the bases for checking fetches. */
static char *g_seq[2];
static const int g_len[2] = { 10007, 1234 };
static const char *g_name[2] = { "alpha", "beta" };

static char *make_fasta_text(size_t *n)
{
    size_t cap = 64 * 1024, len = 0;
    char *t = malloc(cap);
    uint32_t x = 7;
    for (int r = 0; r < 2; r++) {
        free(g_seq[r]);
        g_seq[r] = malloc((size_t)g_len[r]);
        len += (size_t)sprintf(t + len, ">%s desc\n", g_name[r]);
        for (int i = 0; i < g_len[r]; i++) {
            x = x * 1664525u + 1013904223u;
            g_seq[r][i] = "ACGTN"[(x >> 24) % 5];
            t[len++] = g_seq[r][i];
            if ((i + 1) % 60 == 0 || i + 1 == g_len[r]) t[len++] = '\n';
        }
    }
    *n = len;
    return t;
}

/* Fetch [beg, end) of record r in pieces of at most `piece` bases and compare. */
static void check_fetch(ms_faidx *fx, int r, int64_t beg, int64_t end, int64_t piece)
{
    char *buf = malloc((size_t)piece);
    for (int64_t at = beg; at < end; at += piece) {
        int64_t stop = at + piece < end ? at + piece : end;
        ssize_t n = ms_faidx_fetch(fx, g_name[r], at, stop, buf);
        assert_int_equal(n, stop - at);
        assert_memory_equal(buf, g_seq[r] + at, (size_t)n);
    }
    free(buf);
}

static void test_faidx_plain(void **state)
{
    (void)state;
    size_t n;
    char *text = make_fasta_text(&n);
    const char *path = tmp_path("ref.fa");
    assert_int_equal(tu_write_file(path, text, n), 0);
    free(text);
    char fai[4200];
    snprintf(fai, sizeof fai, "%s.fai", path);
    unlink(fai);

    ms_faidx *fx;
    assert_int_equal(ms_faidx_open(path, &fx), 0);
    struct stat st;
    assert_int_equal(stat(fai, &st), 0); /* index built, as samtools faidx would */
    assert_true(ms_faidx_seq_len(fx, "alpha") == g_len[0]);
    assert_true(ms_faidx_seq_len(fx, "beta") == g_len[1]);
    assert_true(ms_faidx_seq_len(fx, "gamma") == -1);
    check_fetch(fx, 0, 0, g_len[0], 1000);
    check_fetch(fx, 0, 59, 61, 1);         /* across a line end */
    check_fetch(fx, 0, 123, 9876, 777);
    check_fetch(fx, 1, 0, g_len[1], 100000);
    assert_int_equal(ms_faidx_fetch(fx, "alpha", 5, 5, NULL), 0);

    /* resolve: clamp, unknown sequence, start beyond the end */
    ms_region_list list = { 0 };
    assert_int_equal(ms_region_parse("alpha:10001-20000", &list), 0);
    assert_int_equal(ms_region_parse("beta", &list), 0);
    assert_int_equal(ms_region_parse("gamma:1-5", &list), 0);
    assert_int_equal(ms_region_parse("beta:1235-", &list), 0);
    assert_int_equal(ms_faidx_resolve(fx, &list.r[0]), 0);
    assert_true(list.r[0].beg == 10000 && list.r[0].end == g_len[0]);
    assert_int_equal(ms_faidx_resolve(fx, &list.r[1]), 0);
    assert_true(list.r[1].beg == 0 && list.r[1].end == g_len[1]);
    tu_log_capture();
    assert_int_equal(ms_faidx_resolve(fx, &list.r[2]), MS_ERR_ARG);
    assert_log_has("region gamma:1-5: no sequence 'gamma'");
    assert_log_has("ref.fa");
    tu_log_capture();
    assert_int_equal(ms_faidx_resolve(fx, &list.r[3]), MS_ERR_ARG);
    assert_log_has("region beta:1235-: starts beyond the end");
    /* a fetch past the end is refused rather than cut short */
    tu_log_capture();
    char buf[16];
    assert_true(ms_faidx_fetch(fx, "beta", 1230, 1240, buf) < 0);
    assert_log_has("beta:1231-1240");
    tu_log_capture();
    assert_true(ms_faidx_fetch(fx, "gamma", 0, 4, buf) < 0);
    assert_log_has("gamma");
    ms_set_log(NULL, NULL);
    ms_region_list_free(&list);
    ms_faidx_close(fx);

    /* the saved index is used on the next open */
    assert_int_equal(ms_faidx_open(path, &fx), 0);
    check_fetch(fx, 1, 17, 1111, 50);
    ms_faidx_close(fx);
}

static void test_faidx_compressed(void **state)
{
    (void)state;
    size_t n;
    char *text = make_fasta_text(&n);
    /* BGZF: indexable (.fai + .gzi built) */
    const char *bgz = tmp_path("ref.bgz.fa.gz");
    BGZF *b = bgzf_open(bgz, "w");
    assert_non_null(b);
    assert_int_equal(bgzf_write(b, text, n), (ssize_t)n);
    assert_int_equal(bgzf_close(b), 0);
    ms_faidx *fx;
    assert_int_equal(ms_faidx_open(bgz, &fx), 0);
    check_fetch(fx, 0, 0, g_len[0], 999);
    ms_faidx_close(fx);

    /* plain gzip: refused with a line saying what to do */
    const char *gz = tmp_path("ref.plain.fa.gz");
    gzFile g = gzopen(gz, "wb");
    assert_non_null(g);
    gzwrite(g, text, (unsigned)n);
    gzclose(g);
    free(text);
    tu_log_capture();
    assert_int_equal(ms_faidx_open(gz, &fx), MS_ERR_FORMAT);
    assert_null(fx);
    assert_log_has("ref.plain.fa.gz: gzip-compressed but not BGZF");
    assert_log_has("bgzip");
    tu_log_capture();
    assert_int_equal(ms_faidx_open("-", &fx), MS_ERR_ARG);
    assert_log_has("stdin");
    tu_log_capture();
    assert_int_equal(ms_faidx_open(tmp_path("none.fa"), &fx), MS_ERR_IO);
    assert_log_has("none.fa: cannot open");
    ms_set_log(NULL, NULL);
}

/* ------------------------------------------------------- real data: ce.fa */

/* ce.fa from Debian's htslib-test, fetched once into $MS_DATA_CACHE. Returns its path,
 * or NULL after printing why it is not available. */
static const char *ce_fa_path(void)
{
    static char path[4096];
    const char *cache = getenv("MS_DATA_CACHE");
    if (!cache || !*cache) {
        printf("skip: MS_DATA_CACHE is not set\n");
        return NULL;
    }
    snprintf(path, sizeof path, "%s/htslib-test/usr/share/htslib-test/test/ce.fa", cache);
    if (access(path, R_OK) == 0) return path;
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/htslib-test' && cd '%s/htslib-test' && "
             "apt-get download htslib-test >apt.log 2>&1 && "
             "dpkg -x htslib-test_*.deb . && rm -f htslib-test_*.deb",
             cache, cache);
    if (system(cmd) != 0 || access(path, R_OK) != 0) {
        printf("skip: could not fetch ce.fa with 'apt-get download htslib-test' "
               "(see %s/htslib-test/apt.log)\n", cache);
        return NULL;
    }
    return path;
}

static void test_ce_fa(void **state)
{
    (void)state;
    const char *ce = ce_fa_path();
    if (!ce) {
        skip();
        return;
    }
    /* Copy to a temp dir without its .fai, so the index is built here too. */
    const char *copy = tmp_path("ce.fa");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", ce, copy);
    assert_int_equal(system(cmd), 0);

    /* The direct read: chromosome I (the first record) via the streaming reader. */
    ms_fasta *f;
    assert_int_equal(ms_fasta_open(copy, &f), 0);
    const char *name;
    assert_int_equal(ms_fasta_next_record(f, &name), 1);
    assert_string_equal(name, "CHROMOSOME_I");
    size_t cap = 2 * 1000 * 1000, len = 0;
    char *chr1 = malloc(cap);
    ssize_t n;
    while ((n = ms_fasta_read(f, chr1 + len, cap - len)) > 0) len += (size_t)n;
    assert_int_equal(n, 0);
    assert_int_equal(len, 1009800);

    ms_faidx *fx;
    assert_int_equal(ms_faidx_open(copy, &fx), 0);
    assert_true(ms_faidx_seq_len(fx, "CHROMOSOME_I") == 1009800);
    /* every other record: streamed length == indexed length */
    int n_rec = 1;
    while (ms_fasta_next_record(f, &name) == 1) {
        int64_t rec_len = 0;
        while ((n = ms_fasta_read(f, chr1 + len, cap - len)) > 0) rec_len += n;
        assert_true(ms_faidx_seq_len(fx, name) == rec_len);
        n_rec++;
    }
    assert_int_equal(n_rec, 7);
    ms_fasta_close(f);
    /* the index built here matches the one Debian ships */
    snprintf(cmd, sizeof cmd, "cmp -s '%s.fai' '%s.fai'", ce, copy);
    assert_int_equal(system(cmd), 0);

    ms_region_list list = { 0 };
    assert_int_equal(ms_region_parse("CHROMOSOME_I:100,001-250,000", &list), 0);
    assert_int_equal(ms_region_parse("CHROMOSOME_I:1,000,001-", &list), 0);
    char *piece = malloc(65536);
    for (int i = 0; i < list.n; i++) {
        ms_region *r = &list.r[i];
        assert_int_equal(ms_faidx_resolve(fx, r), 0);
        for (int64_t at = r->beg; at < r->end; at += 65536) {
            int64_t stop = at + 65536 < r->end ? at + 65536 : r->end;
            assert_int_equal(ms_faidx_fetch(fx, r->chrom, at, stop, piece), stop - at);
            assert_memory_equal(piece, chr1 + at, (size_t)(stop - at));
        }
    }
    assert_true(list.r[1].end == 1009800);
    free(piece);
    free(chr1);
    ms_region_list_free(&list);
    ms_faidx_close(fx);
}

static int teardown(void **state)
{
    (void)state;
    free(g_seq[0]);
    free(g_seq[1]);
    g_seq[0] = g_seq[1] = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_bed_ok),
        cmocka_unit_test(test_bed_errors),
        cmocka_unit_test(test_faidx_plain),
        cmocka_unit_test(test_faidx_compressed),
        cmocka_unit_test(test_ce_fa),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
