/* test_sink.c - TSV, bedGraph and wig writers: write to a temporary path, read the
 * file back and parse it; temp-file-and-rename on close; write errors; parsers. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mamba_stream.h"
#include "sink.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Arbitrary scores with many significant digits; the sink does not check consistency. */
static ms_score make_score(int64_t pos, int k)
{
    ms_score s;
    memset(&s, 0, sizeof s);
    s.pos = pos;
    s.ref = "ACGTNacgtR"[k % 10];
    s.pred = "ACGT"[k % 4];
    s.rule = (uint8_t)(k % 3);
    s.logp = -0.1234567f * (float)(k + 1);
    s.entropy = 1.0f / (float)(k + 3);
    for (int b = 0; b < 4; b++) s.p[b] = (float)(b + 1 + k) / (float)(13 + 4 * k) + 1e-7f;
    if (k == 7) s.logp = -3.0e30f;  /* huge magnitudes survive %.6g too */
    if (k == 8) s.p[2] = 1.5e-30f;
    return s;
}

/* %.6g keeps 6 significant digits: relative error <= 5e-6. */
static void assert_float_text(double got, float want)
{
    double tol = 5e-6 * fabs((double)want) + 1e-45;
    if (!(fabs(got - (double)want) <= tol)) fail_msg("read %.9g, wrote %.9g", got, (double)want);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    return b;
}

/* A fresh empty directory per test, so leftover files are easy to see. */
static const char *subdir(const char *name)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, 4096, "%s/%s", tu_tmpdir(), name);
    assert_int_equal(mkdir(b, 0700), 0);
    return b;
}

static int count_entries(const char *dir, const char *containing)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strstr(e->d_name, containing)) n++;
    closedir(d);
    return n;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The scores of the shared layout: chr1 0..5 in two calls, chr1 20..22 after a gap,
 * chrUn_x 3..4; k counts across all of them. */
typedef struct { const char *chrom; int64_t start; int n; } span;
static const span k_spans[] = {{"chr1", 0, 4}, {"chr1", 4, 2}, {"chr1", 20, 3}, {"chrUn_x", 3, 2}};
#define N_SPANS (int)(sizeof k_spans / sizeof k_spans[0])

static void write_spans(ms_sink *s)
{
    int k = 0;
    for (int i = 0; i < N_SPANS; i++) {
        ms_score sc[8];
        for (int j = 0; j < k_spans[i].n; j++) sc[j] = make_score(k_spans[i].start + j, k++);
        assert_int_equal(ms_sink_write(s, k_spans[i].chrom, sc, k_spans[i].n), MS_OK);
    }
}

static void test_tsv_roundtrip(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/out.tsv", subdir("tsv"));
    ms_sink *s;
    assert_int_equal(ms_sink_open(path, MS_FMT_TSV, MS_VAL_LOGP, &s), MS_OK);
    write_spans(s);
    assert_int_equal(ms_sink_close(s, 1), MS_OK);

    char *text = slurp(path), *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    assert_string_equal(line, "#chrom\tpos\tref\tlogp\tentropy\tpA\tpC\tpG\tpT\tpred\trule\tmasked");
    int k = 0;
    for (int i = 0; i < N_SPANS; i++) {
        for (int j = 0; j < k_spans[i].n; j++, k++) {
            ms_score w = make_score(k_spans[i].start + j, k);
            line = strtok_r(NULL, "\n", &save);
            assert_non_null(line);
            char chrom[64], ref, pred;
            long long pos;
            double logp, h, p[4];
            unsigned rule;
            assert_int_equal(sscanf(line, "%63[^\t]\t%lld\t%c\t%lf\t%lf\t%lf\t%lf\t%lf\t%lf\t%c\t%u",
                                    chrom, &pos, &ref, &logp, &h, &p[0], &p[1], &p[2], &p[3],
                                    &pred, &rule),
                             11);
            assert_string_equal(chrom, k_spans[i].chrom);
            assert_int_equal(pos, w.pos + 1);  /* 1-based */
            assert_int_equal(ref, w.ref);
            assert_int_equal(pred, w.pred);
            assert_int_equal(rule, w.rule);
            assert_float_text(logp, w.logp);
            assert_float_text(h, w.entropy);
            for (int b = 0; b < 4; b++) assert_float_text(p[b], w.p[b]);
        }
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(text);
}

static void test_bedgraph_roundtrip(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/out.bedGraph", subdir("bedgraph"));
    ms_sink *s;
    assert_int_equal(ms_sink_open(path, MS_FMT_BEDGRAPH, MS_VAL_PG, &s), MS_OK);
    write_spans(s);
    assert_int_equal(ms_sink_close(s, 1), MS_OK);

    char *text = slurp(path), *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    assert_string_equal(line, "track type=bedGraph name=\"mamba-stream pG\"");
    int k = 0;
    for (int i = 0; i < N_SPANS; i++) {
        for (int j = 0; j < k_spans[i].n; j++, k++) {
            ms_score w = make_score(k_spans[i].start + j, k);
            line = strtok_r(NULL, "\n", &save);
            assert_non_null(line);
            char chrom[64];
            long long start, end;
            double v;
            assert_int_equal(sscanf(line, "%63[^\t]\t%lld\t%lld\t%lf", chrom, &start, &end, &v), 4);
            assert_string_equal(chrom, k_spans[i].chrom);
            assert_int_equal(start, w.pos);  /* 0-based, half-open, one base */
            assert_int_equal(end, w.pos + 1);
            assert_float_text(v, w.p[2]);
        }
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(text);
}

static void test_wig_blocks(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/out.wig", subdir("wig"));
    ms_sink *s;
    assert_int_equal(ms_sink_open(path, MS_FMT_WIG, MS_VAL_ENTROPY, &s), MS_OK);
    write_spans(s);
    /* Same positions on another chrom right after: still a new block. */
    ms_score again = make_score(5, 99);
    assert_int_equal(ms_sink_write(s, "chr2", &again, 1), MS_OK);
    /* A gap inside one call also opens a block. */
    ms_score two[2] = {make_score(6, 100), make_score(9, 101)};
    assert_int_equal(ms_sink_write(s, "chr2", two, 2), MS_OK);
    assert_int_equal(ms_sink_close(s, 1), MS_OK);

    /* Expected: one block per contiguous run, 1-based starts. */
    static const struct { const char *chrom; int64_t start; int n; } blocks[] = {
        {"chr1", 0, 6}, {"chr1", 20, 3}, {"chrUn_x", 3, 2}, {"chr2", 5, 2}, {"chr2", 9, 1}};
    static const int ks[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 99, 100, 101};
    char *text = slurp(path), *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    assert_string_equal(line, "track type=wiggle_0 name=\"mamba-stream entropy\"");
    int v = 0;
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "fixedStep chrom=%s start=%lld step=1", blocks[i].chrom,
                 (long long)blocks[i].start + 1);
        line = strtok_r(NULL, "\n", &save);
        assert_non_null(line);
        assert_string_equal(line, want);
        for (int j = 0; j < blocks[i].n; j++, v++) {
            line = strtok_r(NULL, "\n", &save);
            assert_non_null(line);
            char *end;
            double x = strtod(line, &end);
            assert_true(*end == 0);
            assert_float_text(x, make_score(0, ks[v]).entropy);
        }
    }
    assert_int_equal(v, (int)(sizeof ks / sizeof ks[0]));
    assert_null(strtok_r(NULL, "\n", &save));
    free(text);
}

/* The lines as the formats have always been defined, with fprintf (the sinks build them
 * with fmt.h, in pieces on several threads): the reference for byte-for-byte checks. */
typedef struct {
    ms_sink_format fmt;
    ms_sink_value value;
    int mask_soft;
    char chrom[4096]; /* wig: the open block's chrom and next position */
    int64_t next_pos;
} ref_writer;

static void ref_write(ref_writer *r, FILE *f, const char *chrom, const ms_score *sc, int n)
{
    int same_chrom = r->chrom[0] && strcmp(r->chrom, chrom) == 0;
    snprintf(r->chrom, sizeof r->chrom, "%s", chrom);
    for (int i = 0; i < n; i++) {
        const ms_score *c = &sc[i];
        int masked = c->ref >= 'a' && c->ref <= 'z';
        float v = r->value == MS_VAL_ENTROPY ? c->entropy : r->value == MS_VAL_PG ? c->p[2] : c->logp;
        if (r->fmt == MS_FMT_TSV) {
            fprintf(f, "%s\t%lld\t%c\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%c\t%u\t%d\n", chrom,
                    (long long)c->pos + 1, c->ref, c->logp, c->entropy, c->p[0], c->p[1],
                    c->p[2], c->p[3], c->pred, (unsigned)c->rule, masked);
            continue;
        }
        if (r->mask_soft && masked) continue;
        if (r->fmt == MS_FMT_BEDGRAPH) {
            fprintf(f, "%s\t%lld\t%lld\t%.6g\n", chrom, (long long)c->pos, (long long)c->pos + 1, v);
            continue;
        }
        if (!same_chrom || c->pos != r->next_pos)
            fprintf(f, "fixedStep chrom=%s start=%lld step=1\n", chrom, (long long)c->pos + 1);
        same_chrom = 1;
        fprintf(f, "%.6g\n", v);
        r->next_pos = c->pos + 1;
    }
}

/* Scores whose floats are anything finite: random bits, every exponent and sign, zeros. */
static void random_scores(ms_score *sc, int n, int64_t pos, uint64_t *rng)
{
    for (int i = 0; i < n; i++) {
        sc[i] = make_score(pos + i, (int)(*rng % 1000));
        float *f[6] = {&sc[i].logp, &sc[i].entropy, &sc[i].p[0], &sc[i].p[1], &sc[i].p[2], &sc[i].p[3]};
        for (int k = 0; k < 6; k++) {
            *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t b = (uint32_t)(*rng >> 32);
            if ((b & 0x7f800000u) == 0x7f800000u) b &= 0xbfffffffu; /* no inf / nan */
            if (k % 2 == 0 && (b & 3) == 0) memcpy(f[k], &b, sizeof b);
            if (b % 97 == 0) *f[k] = (b & 4) ? -0.0f : 0.0f;
        }
    }
}

/* Every text format, byte for byte against ref_write: chunks longer than one formatting
 * piece (512 positions), gaps and soft-masked runs, a chrom name long enough to shrink the
 * pieces to a few dozen positions; on one thread and on several. */
/* The same positions through three paths must give the same bytes as the printf
 * reference: a ms_sink_write per call; every call as one part of one ms_sink_write_parts
 * (an empty part among them); and pieces of 37 positions as parts (a batch of reads: pieces
 * of lines then span parts). */
enum { VIA_WRITE, VIA_PARTS, VIA_SMALL_PARTS, N_VIA };

static void test_text_bytes_match_printf(void **state)
{
    (void)state;
    static char long_name[3001];
    memset(long_name, 'z', sizeof long_name - 1);
    const struct { const char *chrom; int64_t start; int n; } calls[] = {
        {"chr1", 0, 5000}, {"chr1", 5007, 3}, {"chr1", 5017, 1500}, {long_name, 0, 700},
        {"chr2", 0, 1}, {"chr2", 8, 2000}}; /* the second half of each 7 further on */
    enum { N_CALLS = sizeof calls / sizeof calls[0] };
    const struct { ms_sink_format fmt; ms_sink_value value; int mask_soft; } cases[] = {
        {MS_FMT_TSV, MS_VAL_LOGP, 0}, {MS_FMT_BEDGRAPH, MS_VAL_PG, 1},
        {MS_FMT_BEDGRAPH, MS_VAL_LOGP, 0}, {MS_FMT_WIG, MS_VAL_ENTROPY, 1}, {MS_FMT_WIG, MS_VAL_LOGP, 0}};
    const char *dir = subdir("bytes");
    ms_score *sc[N_CALLS];
    ms_sink_part parts[N_CALLS + 1], small[N_CALLS * 200];
    for (int threads = 1; threads <= 4; threads += 3) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            ref_writer r = {cases[c].fmt, cases[c].value, cases[c].mask_soft, "", 0};
            char *want = NULL;
            size_t want_len = 0;
            FILE *ref = open_memstream(&want, &want_len);
            assert_non_null(ref);
            fputs(cases[c].fmt == MS_FMT_TSV ? "#chrom\tpos\tref\tlogp\tentropy\tpA\tpC\tpG\tpT\tpred\trule\tmasked\n"
                  : cases[c].fmt == MS_FMT_WIG ? (cases[c].value == MS_VAL_ENTROPY
                                                       ? "track type=wiggle_0 name=\"mamba-stream entropy\"\n"
                                                       : "track type=wiggle_0 name=\"mamba-stream logp\"\n")
                  : cases[c].value == MS_VAL_PG ? "track type=bedGraph name=\"mamba-stream pG\"\n"
                                                : "track type=bedGraph name=\"mamba-stream logp\"\n",
                  ref);
            uint64_t rng = 42 + c;
            int np = 0, ns = 0;
            for (int i = 0; i < N_CALLS; i++) {
                sc[i] = malloc(sizeof(ms_score) * (size_t)calls[i].n);
                assert_non_null(sc[i]);
                random_scores(sc[i], calls[i].n, calls[i].start, &rng);
                for (int j = 0; j < calls[i].n; j++) /* a gap inside a call */
                    if (j >= calls[i].n / 2) sc[i][j].pos += 7;
                ref_write(&r, ref, calls[i].chrom, sc[i], calls[i].n);
                if (i == 2) parts[np++] = (ms_sink_part){"chrEmpty", sc[i], 0};
                parts[np++] = (ms_sink_part){calls[i].chrom, sc[i], calls[i].n};
                for (int j = 0; j < calls[i].n; j += 37)
                    small[ns++] = (ms_sink_part){calls[i].chrom, sc[i] + j,
                                                 calls[i].n - j < 37 ? calls[i].n - j : 37};
            }
            fclose(ref);
            for (int via = 0; via < N_VIA; via++) {
                char path[4200];
                snprintf(path, sizeof path, "%s/out%zu_%d_%d", dir, c, threads, via);
                ms_sink_opts o = {path, cases[c].fmt, cases[c].value, NULL, cases[c].mask_soft};
                ms_sink *s;
                assert_int_equal(ms_sink_open_opts(&o, &s), MS_OK);
                if (via == VIA_WRITE)
                    for (int i = 0; i < N_CALLS; i++)
                        assert_int_equal(ms_sink_write(s, calls[i].chrom, sc[i], calls[i].n), MS_OK);
                else if (via == VIA_PARTS)
                    assert_int_equal(ms_sink_write_parts(s, parts, np), MS_OK);
                else
                    assert_int_equal(ms_sink_write_parts(s, small, ns), MS_OK);
                assert_int_equal(ms_sink_close(s, 1), MS_OK);
                char *got = slurp(path);
                if (strlen(got) != want_len || memcmp(got, want, want_len) != 0) {
                    size_t k = 0;
                    while (got[k] && got[k] == want[k]) k++;
                    fail_msg("case %zu, %d threads, path %d: differs at byte %zu: got \"%.40s\", "
                             "want \"%.40s\"", c, threads, via, k, got + (k > 20 ? k - 20 : 0),
                             want + (k > 20 ? k - 20 : 0));
                }
                free(got);
            }
            free(want);
            for (int i = 0; i < N_CALLS; i++) free(sc[i]);
        }
    }
}

static void test_close_failed_leaves_nothing(void **state)
{
    (void)state;
    const char *dir = subdir("fail");
    char path[4200], old[4200];
    snprintf(path, sizeof path, "%s/new.tsv", dir);
    snprintf(old, sizeof old, "%s/old.wig", dir);
    assert_int_equal(tu_write_file(old, "previous\n", 9), 0);

    ms_sink *s;
    assert_int_equal(ms_sink_open(path, MS_FMT_TSV, MS_VAL_LOGP, &s), MS_OK);
    assert_int_equal(count_entries(dir, ".tmp."), 1);  /* written under a temporary name */
    assert_false(exists(path));
    write_spans(s);
    assert_int_equal(ms_sink_close(s, 0), MS_OK);
    assert_false(exists(path));

    /* A failed run over an existing file leaves the old one untouched. */
    assert_int_equal(ms_sink_open(old, MS_FMT_WIG, MS_VAL_LOGP, &s), MS_OK);
    write_spans(s);
    assert_int_equal(ms_sink_close(s, 0), MS_OK);
    char *text = slurp(old);
    assert_string_equal(text, "previous\n");
    free(text);
    assert_int_equal(count_entries(dir, ".tmp."), 0);
    assert_int_equal(count_entries(dir, ""), 1);
}

static void test_close_ok_renames(void **state)
{
    (void)state;
    const char *dir = subdir("ok");
    char path[4200];
    snprintf(path, sizeof path, "%s/out.bg", dir);
    assert_int_equal(tu_write_file(path, "previous\n", 9), 0);
    ms_sink *s;
    assert_int_equal(ms_sink_open(path, MS_FMT_BEDGRAPH, MS_VAL_LOGP, &s), MS_OK);
    write_spans(s);
    char *text = slurp(path);
    assert_string_equal(text, "previous\n");  /* readers see the old file until close */
    free(text);
    assert_int_equal(ms_sink_close(s, 1), MS_OK);
    assert_int_equal(count_entries(dir, ".tmp."), 0);
    assert_int_equal(count_entries(dir, ""), 1);
    text = slurp(path);
    assert_non_null(strstr(text, "track type=bedGraph"));
    free(text);
}

static int count_lines(const char *t)
{
    int n = 0;
    for (; *t; t++) n += *t == '\n';
    return n;
}

static void test_dev_full(void **state)
{
    (void)state;
    if (!exists("/dev/full")) skip();
    ms_sink *s;

    /* Small output: the error shows when close flushes. */
    tu_log_capture();
    assert_int_equal(ms_sink_open("/dev/full", MS_FMT_TSV, MS_VAL_LOGP, &s), MS_OK);
    write_spans(s);
    assert_int_equal(ms_sink_close(s, 1), MS_ERR_IO);
    assert_non_null(strstr(tu_log_text(), "/dev/full"));
    assert_int_equal(count_lines(tu_log_text()), 1);

    /* More than the buffer: a write reports it, later writes and close repeat the code
     * but not the message. */
    tu_log_capture();
    assert_int_equal(ms_sink_open("/dev/full", MS_FMT_WIG, MS_VAL_LOGP, &s), MS_OK);
    enum { N = 4096 };
    static ms_score sc[N];
    for (int i = 0; i < N; i++) sc[i] = make_score(i, i);
    int rc = MS_OK;
    for (int rep = 0; rep < 200 && rc == MS_OK; rep++) rc = ms_sink_write(s, "chr1", sc, N);
    assert_int_equal(rc, MS_ERR_IO);
    assert_int_equal(ms_sink_write(s, "chr1", sc, N), MS_ERR_IO);
    assert_int_equal(ms_sink_close(s, 1), MS_ERR_IO);
    assert_non_null(strstr(tu_log_text(), "/dev/full"));
    assert_int_equal(count_lines(tu_log_text()), 1);
    ms_set_log(NULL, NULL);
}

static void test_open_error(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/no/such/dir/out.tsv", tu_tmpdir());
    tu_log_capture();
    ms_sink *s = (ms_sink *)&s;
    assert_int_equal(ms_sink_open(path, MS_FMT_TSV, MS_VAL_LOGP, &s), MS_ERR_IO);
    assert_null(s);
    assert_non_null(strstr(tu_log_text(), "/no/such/dir/out.tsv"));
    assert_int_equal(count_lines(tu_log_text()), 1);
    ms_set_log(NULL, NULL);
}

static void test_stdout(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/stdout.txt", subdir("stdout"));
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(saved >= 0 && dup2(fileno(f), STDOUT_FILENO) >= 0);
    fclose(f);

    ms_sink *s;
    int rc1 = ms_sink_open("-", MS_FMT_BEDGRAPH, MS_VAL_PA, &s);
    ms_score one = make_score(7, 1);
    int rc2 = rc1 == MS_OK ? ms_sink_write(s, "chrM", &one, 1) : rc1;
    int rc3 = rc1 == MS_OK ? ms_sink_close(s, 1) : rc1;
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(rc1, MS_OK);
    assert_int_equal(rc2, MS_OK);
    assert_int_equal(rc3, MS_OK);

    char *text = slurp(path);
    char want[256];
    snprintf(want, sizeof want, "track type=bedGraph name=\"mamba-stream pA\"\nchrM\t7\t8\t%.6g\n",
             (double)one.p[0]);
    assert_string_equal(text, want);
    free(text);
}

static void test_parsers(void **state)
{
    (void)state;
    assert_int_equal(ms_sink_format_parse("tsv"), MS_FMT_TSV);
    assert_int_equal(ms_sink_format_parse("bedgraph"), MS_FMT_BEDGRAPH);
    assert_int_equal(ms_sink_format_parse("bedGraph"), MS_FMT_BEDGRAPH);
    assert_int_equal(ms_sink_format_parse("WIG"), MS_FMT_WIG);
    assert_int_equal(ms_sink_format_parse("bed"), -1);
    assert_int_equal(ms_sink_format_parse(""), -1);
    assert_int_equal(ms_sink_format_parse(NULL), -1);

    assert_int_equal(ms_sink_value_parse("logp"), MS_VAL_LOGP);
    assert_int_equal(ms_sink_value_parse("Entropy"), MS_VAL_ENTROPY);
    assert_int_equal(ms_sink_value_parse("pA"), MS_VAL_PA);
    assert_int_equal(ms_sink_value_parse("pc"), MS_VAL_PC);
    assert_int_equal(ms_sink_value_parse("PG"), MS_VAL_PG);
    assert_int_equal(ms_sink_value_parse("pT"), MS_VAL_PT);
    assert_int_equal(ms_sink_value_parse("pN"), -1);
    assert_int_equal(ms_sink_value_parse("log"), -1);
    assert_int_equal(ms_sink_value_parse(NULL), -1);

    assert_int_equal(ms_sink_format_from_path("out.tsv"), MS_FMT_TSV);
    assert_int_equal(ms_sink_format_from_path("a/b/out.txt"), MS_FMT_TSV);
    assert_int_equal(ms_sink_format_from_path("x.bedgraph"), MS_FMT_BEDGRAPH);
    assert_int_equal(ms_sink_format_from_path("x.bedGraph"), MS_FMT_BEDGRAPH);
    assert_int_equal(ms_sink_format_from_path("x.bg"), MS_FMT_BEDGRAPH);
    assert_int_equal(ms_sink_format_from_path("x.y.wig"), MS_FMT_WIG);
    assert_int_equal(ms_sink_format_from_path("x.bed"), -1);
    assert_int_equal(ms_sink_format_from_path("x.tsv.gz"), -1);
    assert_int_equal(ms_sink_format_from_path("wig"), -1);
    assert_int_equal(ms_sink_format_from_path("dir.wig/out"), -1);
    assert_int_equal(ms_sink_format_from_path("-"), -1);
    assert_int_equal(ms_sink_format_from_path(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tsv_roundtrip),
        cmocka_unit_test(test_bedgraph_roundtrip),
        cmocka_unit_test(test_wig_blocks),
        cmocka_unit_test(test_text_bytes_match_printf),
        cmocka_unit_test(test_close_failed_leaves_nothing),
        cmocka_unit_test(test_close_ok_renames),
        cmocka_unit_test(test_dev_full),
        cmocka_unit_test(test_open_error),
        cmocka_unit_test(test_stdout),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
