/* test_util.c - helpers shared by the cmocka tests. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "test_util.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mamba_stream.h"

const char *tu_fixture(const char *rel)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ & 7];
    const char *root = getenv("MS_FIXTURES");
    snprintf(b, 4096, "%s/%s", root ? root : "../shared/fixtures", rel);
    return b;
}

static char g_tmpdir[4096];
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path); /* best effort */
    return 0;
}
/* In-process, not system("rm -rf"): this runs from atexit, after thread-local destructors,
 * and a child process spawned then goes through compute-sanitizer's process-launch hook,
 * whose thread-local state is already freed (heap-use-after-free seen under ASan; glibc
 * aborted with "malloc(): mismatching next->prev_size"). */
static void rm_tmpdir(void)
{
    if (g_tmpdir[0]) nftw(g_tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_tmpdir(void)
{
    if (!g_tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/ms-test-XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(g_tmpdir)) { perror("mkdtemp"); abort(); }
        atexit(rm_tmpdir);
    }
    return g_tmpdir;
}

double tu_rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

int tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static char g_log[1 << 16];
static size_t g_log_len;
static void capture(int level, const char *msg, void *user)
{
    (void)level; (void)user;
    size_t n = strlen(msg);
    if (g_log_len + n + 2 < sizeof g_log) {
        memcpy(g_log + g_log_len, msg, n);
        g_log_len += n;
        g_log[g_log_len++] = '\n';
        g_log[g_log_len] = 0;
    }
}

void tu_log_capture(void)
{
    g_log_len = 0;
    g_log[0] = 0;
    ms_set_log(capture, NULL);
}

const char *tu_log_text(void) { return g_log; }
