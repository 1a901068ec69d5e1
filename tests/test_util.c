/* test_util.c - helpers shared by the cmocka tests. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "test_util.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mamba_stream.h"
#include "safetensors.h"

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

const char *const tu_fixture_names[] = {
    "hf/mamba1-tiny-hf", "hf/mamba1-tiny-ssm", "hf/mamba2-tiny-hf",
    /* made by tests/fixtures/make_extra_fixtures.py */
    "@falcon-mamba", "@mamba2-groups", "@mamba1-odd", "@mamba1-bf16", "@mamba2-f16",
    "@mamba1-sharded", "@mamba2-ssm",
};
const int tu_n_fixtures = (int)(sizeof tu_fixture_names / sizeof tu_fixture_names[0]);

const char *tu_fixture_dir(const char *name)
{
    static char bufs[8][4096];
    static int next;
    if (name[0] != '@') return tu_fixture(name);
    char *b = bufs[next++ & 7];
    const char *src = getenv("MS_SRC");
    snprintf(b, 4096, "%s/tests/fixtures/%s", src ? src : "..", name + 1);
    return b;
}

void tu_ref_fixture_load(const char *name, tu_ref_fixture *f)
{
    tu_ref_fixture_load_dir(tu_fixture_dir(name), f);
}

static float *ref_f32(ms_st_set *st, const char *name, const ms_st_tensor **t)
{
    *t = ms_st_find(st, name);
    assert_non_null(*t);
    float *v = malloc(sizeof(float) * (*t)->n_elem);
    assert_int_equal(ms_st_to_f32(*t, v), MS_OK);
    return v;
}

/* The model of dir into *m and its reference.safetensors, opened. */
static ms_st_set *open_ref(const char *dir, ms_model **m)
{
    assert_int_equal(ms_model_load(dir, NULL, m), MS_OK);
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/reference.safetensors", dir);
    ms_st_set *st;
    assert_int_equal(ms_st_open_file(ref, &st), MS_OK);
    return st;
}

void tu_ref_fixture_load_dir(const char *dir, tu_ref_fixture *f)
{
    memset(f, 0, sizeof *f);
    ms_st_set *st = open_ref(dir, &f->model);
    const ms_st_tensor *ids = ms_st_find(st, "input_ids"), *lg, *hd;
    assert_non_null(ids);
    f->logits = ref_f32(st, "logits", &lg);
    f->hidden = ref_f32(st, "hidden", &hd);
    f->B = (int)ids->shape[0];
    f->L = (int)ids->shape[1];
    f->V = (int)lg->shape[2];
    f->D = (int)hd->shape[2];
    const ms_model_info *info = ms_model_info_get(f->model);
    assert_int_equal(f->V, info->n_vocab);
    assert_int_equal(f->D, info->d_model);
    int64_t *ids64 = malloc(sizeof(int64_t) * ids->n_elem);
    assert_int_equal(ms_st_to_i64(ids, ids64), MS_OK);
    f->ids = malloc(sizeof(int32_t) * ids->n_elem);
    for (int64_t i = 0; i < ids->n_elem; i++) f->ids[i] = (int32_t)ids64[i];
    free(ids64);
    ms_st_close(st);
}

void tu_ref_fixture_free(tu_ref_fixture *f)
{
    ms_model_free(f->model);
    free(f->ids); free(f->logits); free(f->hidden);
}

const char *tu_model_dir(const char *name)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ & 7];
    const char *env = getenv("MS_MODELS"), *src = getenv("MS_SRC");
    if (env) snprintf(b, 4096, "%s/%s", env, name);
    else snprintf(b, 4096, "%s/models/%s", src ? src : "..", name);
    return b;
}

void tu_feat_ref_load(const char *dir, tu_feat_ref *r)
{
    memset(r, 0, sizeof *r);
    ms_st_set *st = open_ref(dir, &r->model);
    const ms_st_tensor *ft, *lt;
    r->features = ref_f32(st, "features", &ft);
    r->logits = ref_f32(st, "logits", &lt);
    r->B = (int)ft->shape[0];
    r->L = (int)ft->shape[1];
    r->F = (int)ft->shape[2];
    r->V = (int)lt->shape[2];
    const ms_model_info *info = ms_model_info_get(r->model);
    assert_int_equal(r->F, info->d_input);
    assert_int_equal(r->V, info->n_labels);
    ms_st_close(st);
}

void tu_feat_ref_free(tu_feat_ref *r)
{
    ms_model_free(r->model);
    free(r->features);
    free(r->logits);
}

float tu_rand_q(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((int)((*s >> 8) % 511) - 255) / 64.f;
}

uint16_t tu_bf16_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)(b >> 16); /* exact for the values it takes */
}

float tu_bf16_value(uint16_t h)
{
    const uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

uint16_t tu_f16_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if (!(b & 0x7fffffffu)) return (uint16_t)(b >> 16);
    const uint32_t sign = (b >> 16) & 0x8000u, exp = (b >> 23) & 0xff, mant = b & 0x7fffffu;
    return (uint16_t)(sign | ((exp - 112) << 10) | (mant >> 13));
}

float tu_f16_value(uint16_t h)
{
    const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    const float s = h & 0x8000 ? -1.f : 1.f;
    if (exp == 0x1f) return mant ? NAN : s * INFINITY;
    return exp ? s * ldexpf(1.f + mant / 1024.f, exp - 15) : s * ldexpf(mant / 1024.f, -14);
}
