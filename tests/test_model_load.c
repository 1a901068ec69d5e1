/* test_model_load.c - the three fixture models, and variants of them made at test time
 * (missing tensor, wrong shape, truncated, sharded, BF16 / F16, misaligned F32). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "safetensors.h"
#include "test_util.h"

/* ------------------------------------------------------------- helpers */

static uint16_t f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16); /* round to nearest even */
}

static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    int32_t fexp = (int32_t)((x >> 23) & 0xff), exp = fexp - 112;
    if (fexp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) { /* subnormal half: units of 2^-24 */
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - exp;
        uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

static const char *tmp_sub(const char *name)
{
    static char buf[8][4096];
    static int next;
    char *b = buf[next++ & 7];
    snprintf(b, 4096, "%s/%s", tu_tmpdir(), name);
    mkdir(b, 0755);
    return b;
}

static void copy_file(const char *src, const char *dst)
{
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    assert_int_equal(tu_write_file(dst, b, (size_t)n), 0);
    free(b);
}

/* A fixture's tensors as ms_st_out rows pointing into its mmap, to edit and write. */
typedef struct {
    ms_st_set *src;
    ms_st_out *t;
    int n;
    void *bufs[1024]; /* converted data, freed with the variant */
    int n_bufs;
    char fixture[4096];
} variant;

static void variant_open(variant *v, const char *fixture)
{
    memset(v, 0, sizeof *v);
    snprintf(v->fixture, sizeof v->fixture, "%s", tu_fixture(fixture));
    assert_int_equal(ms_st_open_dir(v->fixture, &v->src), MS_OK);
    v->n = ms_st_count(v->src);
    v->t = calloc((size_t)v->n + 1, sizeof *v->t);
    for (int i = 0; i < v->n; i++) {
        const ms_st_tensor *s = ms_st_at(v->src, i);
        v->t[i].name = s->name;
        v->t[i].dtype = s->dtype;
        v->t[i].n_dim = s->n_dim;
        memcpy(v->t[i].shape, s->shape, sizeof s->shape);
        v->t[i].data = s->data;
    }
}

static ms_st_out *variant_find(variant *v, const char *name)
{
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->t[i].name, name) == 0) return &v->t[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

static void variant_drop(variant *v, const char *name)
{
    ms_st_out *o = variant_find(v, name);
    *o = v->t[--v->n];
}

/* Re-encode every F32 tensor as dt (F16 or BF16). */
static void variant_convert(variant *v, ms_dtype dt)
{
    for (int i = 0; i < v->n; i++) {
        int64_t n = 1;
        for (int d = 0; d < v->t[i].n_dim; d++) n *= v->t[i].shape[d];
        uint16_t *h = malloc((size_t)n * 2 + 2);
        const float *f = v->t[i].data;
        for (int64_t k = 0; k < n; k++) h[k] = dt == MS_DT_F16 ? f32_to_f16(f[k]) : f32_to_bf16(f[k]);
        v->bufs[v->n_bufs++] = h;
        v->t[i].data = h;
        v->t[i].dtype = dt;
    }
}

/* tu_tmpdir()/name with the fixture's config.json and the variant's tensors. */
static const char *variant_write(variant *v, const char *name)
{
    const char *dir = tmp_sub(name);
    char p[4200], q[4200];
    snprintf(p, sizeof p, "%s/config.json", v->fixture);
    snprintf(q, sizeof q, "%s/config.json", dir);
    copy_file(p, q);
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    assert_int_equal(ms_st_write(q, v->t, v->n), MS_OK);
    return dir;
}

static void variant_close(variant *v)
{
    for (int i = 0; i < v->n_bufs; i++) free(v->bufs[i]);
    free(v->t);
    ms_st_close(v->src);
}

/* Loading dir fails with rc and logs exactly one line holding each of want[]. */
static void expect_load_error(const char *dir, int rc, const char *const *want)
{
    ms_model *m = (ms_model *)1;
    tu_log_capture();
    assert_int_equal(ms_model_load(dir, NULL, &m), rc);
    assert_null(m);
    const char *log = tu_log_text(), *nl = strchr(log, '\n');
    if (!nl || nl[1]) fail_msg("want one log line, got: %s", log);
    for (int i = 0; want[i]; i++)
        if (!strstr(log, want[i])) fail_msg("log lacks \"%s\": %s", want[i], log);
    ms_set_log(NULL, NULL);
}

/* |a - b| <= rel * |b| + abs elementwise. */
static void expect_close(const float *a, const float *b, size_t n, double rel, double abs)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= rel * fabs(b[i]) + abs))
            fail_msg("element %zu: %.9g vs %.9g", i, a[i], b[i]);
}

/* Every weight of a against b (same config) within rel / abs. */
static void expect_same_weights(const ms_model *a, const ms_model *b, double rel, double abs)
{
    const ms_config *c = &b->cfg;
    size_t D = (size_t)c->d_model, V = (size_t)c->n_vocab, E = (size_t)c->d_inner;
    size_t conv = (size_t)ms_conv_dim(c), rows = (size_t)ms_in_proj_rows(c);
    expect_close(a->embedding, b->embedding, V * D, rel, abs);
    expect_close(a->lm_head, b->lm_head, V * D, rel, abs);
    expect_close(a->norm_f_w, b->norm_f_w, D, rel, abs);
    for (int i = 0; i < c->n_layer; i++) {
        const ms_layer_weights *x = &a->layers[i], *y = &b->layers[i];
        expect_close(x->norm_w, y->norm_w, D, rel, abs);
        expect_close(x->in_proj_w, y->in_proj_w, rows * D, rel, abs);
        expect_close(x->conv_w, y->conv_w, conv * (size_t)c->d_conv, rel, abs);
        expect_close(x->conv_b, y->conv_b, conv, rel, abs);
        expect_close(x->out_proj_w, y->out_proj_w, D * E, rel, abs);
        if (c->arch == MS_ARCH_MAMBA1) {
            size_t N = (size_t)c->d_state, R = (size_t)c->dt_rank;
            expect_close(x->x_proj_w, y->x_proj_w, (R + 2 * N) * E, rel, abs);
            expect_close(x->dt_proj_w, y->dt_proj_w, E * R, rel, abs);
            expect_close(x->dt_proj_b, y->dt_proj_b, E, rel, abs);
            expect_close(x->A_log, y->A_log, E * N, rel, abs);
            expect_close(x->D, y->D, E, rel, abs);
        } else {
            size_t H = (size_t)c->n_heads;
            expect_close(x->dt_bias, y->dt_bias, H, rel, abs);
            expect_close(x->A_log, y->A_log, H, rel, abs);
            expect_close(x->D, y->D, H, rel, abs);
            expect_close(x->gnorm_w, y->gnorm_w, E, rel, abs);
        }
    }
}

static ms_model *load_ok(const char *dir)
{
    ms_model *m = NULL;
    int rc = ms_model_load(dir, NULL, &m);
    if (rc != MS_OK) fail_msg("loading %s: %s", dir, ms_status_str(rc));
    return m;
}

/* ------------------------------------------------------------- fixtures */

static void test_fixtures_load(void **state)
{
    (void)state;
    ms_model *hf = load_ok(tu_fixture("hf/mamba1-tiny-hf"));
    const ms_model_info *in = ms_model_info_get(hf);
    assert_int_equal(in->arch, MS_ARCH_MAMBA1);
    assert_int_equal(in->d_model, 64);
    assert_int_equal(in->n_layer, 2);
    assert_int_equal(in->n_vocab, 16);
    assert_int_equal(in->d_inner, 128);
    assert_int_equal(in->d_state, 16);
    assert_int_equal(in->d_conv, 4);
    assert_int_equal(in->dt_rank, 4);
    assert_int_equal(in->has_alphabet, 0);
    assert_string_equal(in->name, tu_fixture("hf/mamba1-tiny-hf"));
    assert_ptr_equal(hf->lm_head, hf->embedding); /* tied, no lm_head.weight in the file */
    assert_int_equal(hf->n_owned, 0);             /* aligned F32: all in place */
    assert_null(hf->layers[0].in_proj_b);
    assert_non_null(hf->layers[1].conv_b);
    assert_null(hf->norm_f_b);

    /* the mamba_ssm copy holds the same weights under its own names */
    ms_model *ssm = load_ok(tu_fixture("hf/mamba1-tiny-ssm"));
    assert_int_equal(ssm->cfg.mamba_ssm_layout, 1);
    assert_ptr_not_equal(ssm->lm_head, ssm->embedding);
    expect_same_weights(ssm, hf, 0, 0);

    ms_model *m2 = load_ok(tu_fixture("hf/mamba2-tiny-hf"));
    in = ms_model_info_get(m2);
    assert_int_equal(in->arch, MS_ARCH_MAMBA2);
    assert_int_equal(in->n_heads, 8);
    assert_int_equal(in->head_dim, 16);
    assert_int_equal(in->n_groups, 1);
    assert_int_equal(in->d_state, 32);
    assert_ptr_not_equal(m2->lm_head, m2->embedding);
    assert_non_null(m2->layers[1].gnorm_w);
    assert_non_null(m2->layers[1].dt_bias);
    assert_null(m2->layers[1].x_proj_w);

    ms_model_free(hf);
    ms_model_free(ssm);
    ms_model_free(m2);
    ms_model_free(NULL);
    assert_null(ms_model_info_get(NULL));
    ms_model_params p = ms_model_default_params();
    assert_int_equal(p.n_threads, 0);
}

/* ------------------------------------------------------------- variants */

static void test_missing_tensor(void **state)
{
    (void)state;
    variant v;
    variant_open(&v, "hf/mamba1-tiny-hf");
    variant_drop(&v, "backbone.norm_f.weight");
    const char *dir = variant_write(&v, "missing");
    expect_load_error(dir, MS_ERR_MODEL,
                      (const char *const[]){"/missing/model.safetensors: missing tensor "
                                            "'backbone.norm_f.weight'",
                                            NULL});
    variant_close(&v);

    /* untied head without lm_head.weight */
    variant_open(&v, "hf/mamba2-tiny-hf");
    variant_drop(&v, "lm_head.weight");
    dir = variant_write(&v, "nohead");
    expect_load_error(dir, MS_ERR_MODEL, (const char *const[]){"model.safetensors", "'lm_head.weight'", NULL});
    variant_close(&v);

    /* a layer's mixer tensor */
    variant_open(&v, "hf/mamba2-tiny-hf");
    variant_drop(&v, "backbone.layers.1.mixer.dt_bias");
    dir = variant_write(&v, "nodtbias");
    expect_load_error(dir, MS_ERR_MODEL,
                      (const char *const[]){"model.safetensors", "'backbone.layers.1.mixer.dt_bias'", NULL});
    variant_close(&v);
}

static void test_wrong_shape_and_dtype(void **state)
{
    (void)state;
    variant v;
    variant_open(&v, "hf/mamba1-tiny-hf");
    variant_find(&v, "backbone.layers.1.mixer.A_log")->shape[1] = 8;
    const char *dir = variant_write(&v, "shape");
    expect_load_error(dir, MS_ERR_MODEL,
                      (const char *const[]){"/shape/model.safetensors: tensor "
                                            "'backbone.layers.1.mixer.A_log' has shape [128, 8], "
                                            "config expects [128, 16]",
                                            NULL});
    variant_close(&v);

    variant_open(&v, "hf/mamba1-tiny-hf");
    ms_st_out *o = variant_find(&v, "backbone.layers.0.mixer.conv1d.weight");
    o->n_dim = 2;
    o->shape[1] = 4; /* [128, 4] instead of [128, 1, 4] */
    dir = variant_write(&v, "rank");
    expect_load_error(dir, MS_ERR_MODEL,
                      (const char *const[]){"'backbone.layers.0.mixer.conv1d.weight' has shape "
                                            "[128, 4], config expects [128, 1, 4]",
                                            NULL});
    variant_close(&v);

    variant_open(&v, "hf/mamba1-tiny-hf");
    variant_find(&v, "backbone.layers.0.mixer.D")->dtype = MS_DT_I32;
    dir = variant_write(&v, "dtype");
    expect_load_error(dir, MS_ERR_MODEL,
                      (const char *const[]){"'backbone.layers.0.mixer.D' has dtype I32", NULL});
    variant_close(&v);
}

static void test_truncated_file(void **state)
{
    (void)state;
    const char *dir = tmp_sub("trunc");
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    copy_file(tu_fixture("hf/mamba2-tiny-hf/config.json"), p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    copy_file(tu_fixture("hf/mamba2-tiny-hf/model.safetensors"), p);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size - 1000), 0);
    /* the last tensor in the file (lm_head.weight) now runs past the end */
    expect_load_error(dir, MS_ERR_FORMAT,
                      (const char *const[]){"/trunc/model.safetensors", "'lm_head.weight'",
                                            "beyond end of file", NULL});
}

static void test_sharded(void **state)
{
    (void)state;
    variant v;
    variant_open(&v, "hf/mamba1-tiny-hf");
    const char *dir = tmp_sub("sharded");
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    copy_file(tu_fixture("hf/mamba1-tiny-hf/config.json"), p);
    int half = v.n / 2;
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    assert_int_equal(ms_st_write(p, v.t, half), MS_OK);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    assert_int_equal(ms_st_write(p, v.t + half, v.n - half), MS_OK);

    cJSON *idx = cJSON_CreateObject(), *wm = cJSON_AddObjectToObject(idx, "weight_map");
    cJSON_AddObjectToObject(idx, "metadata");
    for (int i = 0; i < v.n; i++)
        cJSON_AddStringToObject(wm, v.t[i].name, i < half ? "model-00001-of-00002.safetensors"
                                                          : "model-00002-of-00002.safetensors");
    char *text = cJSON_Print(idx);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
    free(text);

    ms_model *ref = load_ok(tu_fixture("hf/mamba1-tiny-hf"));
    ms_model *m = load_ok(dir);
    assert_int_equal(ms_st_count(m->files), v.n);
    expect_same_weights(m, ref, 0, 0);
    ms_model_free(m);

    /* an index naming the wrong shard for a tensor */
    cJSON_ReplaceItemInObject(wm, v.t[0].name, cJSON_CreateString("model-00002-of-00002.safetensors"));
    text = cJSON_Print(idx);
    assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
    free(text);
    char want[512];
    snprintf(want, sizeof want, "'%s'", v.t[0].name);
    expect_load_error(dir, MS_ERR_FORMAT,
                      (const char *const[]){"model.safetensors.index.json", want, NULL});

    /* an index naming a shard that does not exist */
    cJSON_ReplaceItemInObject(wm, v.t[0].name, cJSON_CreateString("model-00003-of-00002.safetensors"));
    text = cJSON_Print(idx);
    assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
    free(text);
    expect_load_error(dir, MS_ERR_IO, (const char *const[]){"model-00003-of-00002.safetensors", NULL});

    cJSON_Delete(idx);
    ms_model_free(ref);
    variant_close(&v);
}

static void check_converted(const char *fixture, ms_dtype dt, const char *name, double rel, double abs)
{
    variant v;
    variant_open(&v, fixture);
    variant_convert(&v, dt);
    const char *dir = variant_write(&v, name);
    ms_model *ref = load_ok(tu_fixture(fixture));
    ms_model *m = load_ok(dir);
    assert_true(m->n_owned > 0);
    expect_same_weights(m, ref, rel, abs);
    ms_model_free(m);
    ms_model_free(ref);
    variant_close(&v);
}

static void test_bf16_f16(void **state)
{
    (void)state;
    /* round to nearest: at most half an ulp, 2^-8 relative for bf16 (7 mantissa bits) and
     * 2^-11 for f16 (10 bits), whose subnormals below 2^-14 are spaced 2^-24 apart, hence
     * the absolute term */
    const char *fx[3] = {"hf/mamba1-tiny-hf", "hf/mamba1-tiny-ssm", "hf/mamba2-tiny-hf"};
    char name[64];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "bf16-%d", i);
        check_converted(fx[i], MS_DT_BF16, name, ldexp(1, -8), 0);
        snprintf(name, sizeof name, "f16-%d", i);
        check_converted(fx[i], MS_DT_F16, name, ldexp(1, -11), ldexp(1, -25));
    }
}

/* A 1-byte tensor first puts every F32 tensor at an odd offset: copied, not mapped. Also
 * shows that unknown tensors are ignored. */
static void test_misaligned_f32(void **state)
{
    (void)state;
    variant v;
    variant_open(&v, "hf/mamba2-tiny-hf");
    static const uint8_t one = 1;
    memmove(v.t + 1, v.t, (size_t)v.n * sizeof *v.t);
    v.t[0] = (ms_st_out){"aaa.extra", MS_DT_U8, 1, {1}, &one};
    v.n++;
    const char *dir = variant_write(&v, "misaligned");
    ms_model *ref = load_ok(tu_fixture("hf/mamba2-tiny-hf"));
    ms_model *m = load_ok(dir);
    assert_true(m->n_owned > 0);
    assert_int_equal(((uintptr_t)m->embedding) & 3, 0);
    expect_same_weights(m, ref, 0, 0);
    ms_model_free(m);
    ms_model_free(ref);
    variant_close(&v);
}

static void test_bad_directories(void **state)
{
    (void)state;
    expect_load_error("/nonexistent/model-dir", MS_ERR_IO,
                      (const char *const[]){"/nonexistent/model-dir/config.json", NULL});

    /* config but no weights */
    const char *dir = tmp_sub("noweights");
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    copy_file(tu_fixture("hf/mamba1-tiny-hf/config.json"), p);
    expect_load_error(dir, MS_ERR_IO, (const char *const[]){"model.safetensors", NULL});

    /* a config promising far more layers than the file has */
    const char *big = "{\"model_type\": \"mamba\", \"hidden_size\": 64, \"num_hidden_layers\": 100000,"
                      " \"vocab_size\": 16, \"intermediate_size\": 128, \"time_step_rank\": 4}";
    dir = tmp_sub("manylayers");
    snprintf(p, sizeof p, "%s/config.json", dir);
    assert_int_equal(tu_write_file(p, big, strlen(big)), 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    copy_file(tu_fixture("hf/mamba1-tiny-hf/model.safetensors"), p);
    expect_load_error(dir, MS_ERR_MODEL,
                      (const char *const[]){"missing tensor 'backbone.layers.99999.norm.weight'", NULL});

    /* a config whose d_state disagrees with the tensors */
    const char *ds = "{\"model_type\": \"mamba\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                     " \"vocab_size\": 16, \"state_size\": 8, \"time_step_rank\": 4}";
    dir = tmp_sub("dstate");
    snprintf(p, sizeof p, "%s/config.json", dir);
    assert_int_equal(tu_write_file(p, ds, strlen(ds)), 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    copy_file(tu_fixture("hf/mamba1-tiny-hf/model.safetensors"), p);
    expect_load_error(dir, MS_ERR_MODEL, (const char *const[]){"config expects", NULL});

    ms_model *m = (ms_model *)1;
    tu_log_capture();
    assert_int_equal(ms_model_load(NULL, NULL, &m), MS_ERR_ARG);
    ms_set_log(NULL, NULL);
}

static void test_alphabet_in_model(void **state)
{
    (void)state;
    const char *dir = tmp_sub("withvocab");
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    copy_file(tu_fixture("hf/mamba1-tiny-hf/config.json"), p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    copy_file(tu_fixture("hf/mamba1-tiny-hf/model.safetensors"), p);
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    const char *vocab = "<unk>\n<pad>\n<mask>\n<cls>\nA\nT\nC\nG\nN\n<eos>\n<bos>\n";
    assert_int_equal(tu_write_file(p, vocab, strlen(vocab)), 0);
    ms_model *m = load_ok(dir);
    const ms_model_info *in = ms_model_info_get(m);
    assert_int_equal(in->has_alphabet, 1);
    assert_int_equal(in->token_of_char['g'], 7);
    assert_int_equal(in->bos_token, 10);
    assert_int_equal(in->unk_token, 8);
    ms_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_load),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape_and_dtype),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_bf16_f16),
        cmocka_unit_test(test_misaligned_f32),
        cmocka_unit_test(test_bad_directories),
        cmocka_unit_test(test_alphabet_in_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
