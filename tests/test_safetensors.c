/* test_safetensors.c - safetensors round trip, dtype conversion, and malformed files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mamba_stream.h"
#include "safetensors.h"
#include "test_util.h"

static const char *tmp_path(const char *name)
{
    static char buf[8][4096];
    static int next;
    char *b = buf[next++ & 7];
    snprintf(b, 4096, "%s/%s", tu_tmpdir(), name);
    return b;
}

/* A file made by hand: 8-byte length, header JSON verbatim, n_data zero bytes. */
static const char *raw_file(const char *name, const char *header, size_t n_data)
{
    const char *path = tmp_path(name);
    size_t hl = strlen(header), n = 8 + hl + n_data;
    unsigned char *b = calloc(1, n);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    assert_int_equal(tu_write_file(path, b, n), 0);
    free(b);
    return path;
}

/* Open must fail with rc; the one log line names the file and every string in names. */
static void expect_open_error(const char *path, int rc, const char *const *names)
{
    ms_st_set *set = (ms_st_set *)1;
    tu_log_capture();
    assert_int_equal(ms_st_open_file(path, &set), rc);
    assert_null(set);
    const char *log = tu_log_text();
    assert_non_null(strstr(log, path));
    for (int i = 0; names && names[i]; i++) {
        char q[256];
        snprintf(q, sizeof q, "'%s'", names[i]);
        if (!strstr(log, q)) fail_msg("log lacks %s: %s", q, log);
    }
    /* exactly one line */
    assert_non_null(strchr(log, '\n'));
    assert_string_equal(strchr(log, '\n'), "\n");
    ms_set_log(NULL, NULL);
}

static void test_round_trip(void **state)
{
    (void)state;
    float f32[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-20f, 6e10f};
    uint16_t f16[4] = {0x3c00, 0xc000, 0x0001, 0x7c00};
    uint16_t bf16[4] = {0x3f80, 0xc020, 0x0000, 0x7f80};
    int64_t i64[3] = {0, -1, (int64_t)1 << 40};
    ms_st_out outs[] = {
        {"w.f32", MS_DT_F32, 2, {2, 3}, f32},
        {"w.f16", MS_DT_F16, 1, {4}, f16},
        {"w.bf16", MS_DT_BF16, 2, {2, 2}, bf16},
        {"ids", MS_DT_I64, 1, {3}, i64},
        {"empty", MS_DT_F32, 2, {0, 5}, NULL},
    };
    const char *path = tmp_path("rt.safetensors");
    assert_int_equal(ms_st_write(path, outs, 5), MS_OK);

    /* the header is padded so the data starts 8-byte aligned */
    FILE *f = fopen(path, "rb");
    unsigned char le[8];
    assert_int_equal(fread(le, 1, 8, f), 8);
    fclose(f);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)le[i] << (8 * i);
    assert_int_equal(hl % 8, 0);

    ms_st_set *set;
    assert_int_equal(ms_st_open_file(path, &set), MS_OK);
    assert_int_equal(ms_st_count(set), 5);
    for (int i = 0; i < 5; i++) {
        const ms_st_tensor *t = ms_st_find(set, outs[i].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, outs[i].dtype);
        assert_int_equal(t->n_dim, outs[i].n_dim);
        for (int d = 0; d < t->n_dim; d++) assert_int_equal(t->shape[d], outs[i].shape[d]);
        assert_string_equal(t->file, path);
        if (t->nbytes) assert_memory_equal(t->data, outs[i].data, t->nbytes);
    }
    assert_null(ms_st_find(set, "nope"));
    assert_non_null(ms_st_at(set, 4));
    assert_null(ms_st_at(set, 5));

    float out[6];
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "w.f32"), out), MS_OK);
    assert_memory_equal(out, f32, sizeof f32);
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "w.bf16"), out), MS_OK);
    assert_true(out[0] == 1.0f && out[1] == -2.5f && out[2] == 0.0f && isinf(out[3]));
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "w.f16"), out), MS_OK);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1, -24) && isinf(out[3]));
    int64_t iout[3];
    assert_int_equal(ms_st_to_i64(ms_st_find(set, "ids"), iout), MS_OK);
    assert_memory_equal(iout, i64, sizeof i64);
    tu_log_capture();
    assert_true(ms_st_to_f32(ms_st_find(set, "ids"), out) < 0);
    assert_non_null(strstr(tu_log_text(), "'ids'"));
    ms_set_log(NULL, NULL);
    ms_st_close(set);
}

static void test_f16_special_values(void **state)
{
    (void)state;
    const struct {
        uint16_t h;
        float f;
    } cases[] = {
        {0x0000, 0.0f},          {0x3c00, 1.0f},           {0xc000, -2.0f},
        {0x7bff, 65504.0f},      {0xfbff, -65504.0f},      {0x3555, 0.333251953125f},
        {0x0400, ldexpf(1, -14)}, {0x0001, ldexpf(1, -24)}, {0x8001, -ldexpf(1, -24)},
        {0x03ff, ldexpf(1023, -24)}, {0x0200, ldexpf(1, -15)}, {0x0155, ldexpf(0x155, -24)},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    uint16_t h[N + 4];
    for (int i = 0; i < N; i++) h[i] = cases[i].h;
    h[N] = 0x8000;     /* -0 */
    h[N + 1] = 0x7c00; /* +inf */
    h[N + 2] = 0xfc00; /* -inf */
    h[N + 3] = 0x7e01; /* nan */
    ms_st_out o = {"h", MS_DT_F16, 1, {N + 4}, h};
    const char *path = tmp_path("f16.safetensors");
    assert_int_equal(ms_st_write(path, &o, 1), MS_OK);
    ms_st_set *set;
    assert_int_equal(ms_st_open_file(path, &set), MS_OK);
    float f[N + 4];
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "h"), f), MS_OK);
    for (int i = 0; i < N; i++)
        if (f[i] != cases[i].f) fail_msg("0x%04x -> %g, want %g", cases[i].h, f[i], cases[i].f);
    assert_true(f[N] == 0.0f && signbit(f[N]));
    assert_true(isinf(f[N + 1]) && f[N + 1] > 0);
    assert_true(isinf(f[N + 2]) && f[N + 2] < 0);
    assert_true(isnan(f[N + 3]));
    ms_st_close(set);

    /* BF16 and F64 too */
    uint16_t b[3] = {0x4049, 0x0001, 0xff80};
    double d[2] = {0.1, -1e300};
    ms_st_out o2[2] = {{"b", MS_DT_BF16, 1, {3}, b}, {"d", MS_DT_F64, 1, {2}, d}};
    path = tmp_path("bf16.safetensors");
    assert_int_equal(ms_st_write(path, o2, 2), MS_OK);
    assert_int_equal(ms_st_open_file(path, &set), MS_OK);
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "b"), f), MS_OK);
    assert_true(f[0] == 3.140625f && f[1] == ldexpf(1, -133) && isinf(f[2]) && f[2] < 0);
    assert_int_equal(ms_st_to_f32(ms_st_find(set, "d"), f), MS_OK);
    assert_true(f[0] == 0.1f && isinf(f[1]));
    ms_st_close(set);
}

static void test_truncated(void **state)
{
    (void)state;
    float x[1024] = {0};
    ms_st_out o[2] = {{"a", MS_DT_F32, 1, {512}, x}, {"b.weight", MS_DT_F32, 1, {512}, x + 512}};
    const char *path = tmp_path("trunc.safetensors");
    assert_int_equal(ms_st_write(path, o, 2), MS_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 100), 0);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"b.weight", NULL});
    assert_non_null(strstr(tu_log_text(), "beyond end of file"));

    assert_int_equal(truncate(path, 5), 0);
    expect_open_error(path, MS_ERR_FORMAT, NULL);
    assert_non_null(strstr(tu_log_text(), "truncated"));

    expect_open_error(tmp_path("does-not-exist.safetensors"), MS_ERR_IO, NULL);
}

static void test_header_beyond_file(void **state)
{
    (void)state;
    const char *path = tmp_path("hl.safetensors");
    unsigned char b[40] = {0xe8, 0x03}; /* claims a 1000-byte header in a 40-byte file */
    memcpy(b + 8, "{\"a\":{}}", 8);
    assert_int_equal(tu_write_file(path, b, sizeof b), 0);
    expect_open_error(path, MS_ERR_FORMAT, NULL);
    assert_non_null(strstr(tu_log_text(), "header length 1000"));

    path = raw_file("notjson.safetensors", "{\"a\": [", 16);
    expect_open_error(path, MS_ERR_FORMAT, NULL);
}

static void test_offsets_out_of_range(void **state)
{
    (void)state;
    const char *path = raw_file(
        "oor.safetensors",
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"backbone.layers.0.mixer.D\":{\"dtype\":\"F32\",\"shape\":[249999],\"data_offsets\":[0,999996]}}",
        4096);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"backbone.layers.0.mixer.D", NULL});
    assert_non_null(strstr(tu_log_text(), "data_offsets [0, 999996] beyond end of file (4096 data bytes)"));

    path = raw_file("rev.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"t", NULL});

    path = raw_file("neg.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"t", NULL});
}

static void test_overlap(void **state)
{
    (void)state;
    const char *path = raw_file(
        "ovl.safetensors",
        "{\"first\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"second\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
        24);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"first", "second", NULL});
    assert_non_null(strstr(tu_log_text(), "overlaps"));

    /* a tensor nested inside a long one, listed out of order */
    path = raw_file("ovl2.safetensors",
                    "{\"inner\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[20,22]},"
                    "\"outer\":{\"dtype\":\"U8\",\"shape\":[30],\"data_offsets\":[0,30]},"
                    "\"zero\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,5]}}",
                    32);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"inner", "outer", NULL});

    /* adjacent and empty tensors are fine */
    path = raw_file("adj.safetensors",
                    "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                    "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                    8);
    ms_st_set *set;
    assert_int_equal(ms_st_open_file(path, &set), MS_OK);
    assert_int_equal(ms_st_count(set), 3);
    ms_st_close(set);
}

static void test_shape_size_mismatch(void **state)
{
    (void)state;
    const char *path = raw_file(
        "mis.safetensors", "{\"x.weight\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"x.weight", NULL});
    assert_non_null(strstr(tu_log_text(), "needs 12 bytes"));

    path = raw_file("negshape.safetensors",
                    "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1, 4],\"data_offsets\":[0,16]}}", 16);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"x", NULL});

    path = raw_file("noshape.safetensors", "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", 16);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"x", NULL});
}

static void test_bad_dtype(void **state)
{
    (void)state;
    const char *path = raw_file(
        "dt.safetensors", "{\"y\":{\"dtype\":\"F8_E9M9\",\"shape\":[16],\"data_offsets\":[0,16]}}", 16);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"y", "F8_E9M9", NULL});
}

static void test_duplicate_name(void **state)
{
    (void)state;
    const char *path = raw_file("dup.safetensors",
                                "{\"d\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                                "\"d\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                                8);
    expect_open_error(path, MS_ERR_FORMAT, (const char *const[]){"d", NULL});
}

static void test_write_errors(void **state)
{
    (void)state;
    float x[2] = {1, 2};
    ms_st_out o[2] = {{"same", MS_DT_F32, 1, {2}, x}, {"same", MS_DT_F32, 1, {1}, x}};
    tu_log_capture();
    assert_int_equal(ms_st_write(tmp_path("w1.safetensors"), o, 2), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "'same'"));
    assert_int_equal(access(tmp_path("w1.safetensors"), F_OK), -1);
    assert_int_equal(ms_st_write(tmp_path("no/such/dir/w.safetensors"), o, 1), MS_ERR_IO);
    ms_set_log(NULL, NULL);
    /* an empty file is valid */
    ms_st_set *set;
    assert_int_equal(ms_st_write(tmp_path("empty.safetensors"), NULL, 0), MS_OK);
    assert_int_equal(ms_st_open_file(tmp_path("empty.safetensors"), &set), MS_OK);
    assert_int_equal(ms_st_count(set), 0);
    assert_null(ms_st_find(set, "x"));
    ms_st_close(set);
}

static void test_fixture_reference(void **state)
{
    (void)state;
    ms_st_set *set;
    assert_int_equal(ms_st_open_file(tu_fixture("hf/mamba1-tiny-hf/reference.safetensors"), &set),
                     MS_OK);
    const ms_st_tensor *ids = ms_st_find(set, "input_ids");
    assert_non_null(ids);
    assert_int_equal(ids->dtype, MS_DT_I64);
    assert_int_equal(ids->n_dim, 2);
    assert_non_null(ms_st_find(set, "logits"));
    ms_st_close(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_f16_special_values),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_header_beyond_file),
        cmocka_unit_test(test_offsets_out_of_range),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_shape_size_mismatch),
        cmocka_unit_test(test_bad_dtype),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_fixture_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
