/* test_config.c - config.json layouts, JSON non-finite literals, and input alphabets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "mamba_stream.h"
#include "test_util.h"

/* A fresh directory tu_tmpdir()/name holding config.json = json (and nothing else). */
static const char *cfg_dir(const char *name, const char *json)
{
    static char buf[8][4096];
    static int next;
    char *d = buf[next++ & 7], path[4200];
    snprintf(d, 4096, "%s/%s", tu_tmpdir(), name);
    mkdir(d, 0755);
    if (json) {
        snprintf(path, sizeof path, "%s/config.json", d);
        assert_int_equal(tu_write_file(path, json, strlen(json)), 0);
    }
    return d;
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
}

/* Loading must fail with rc and log one line containing want. */
static void expect_cfg_error(const char *dir, int rc, const char *want)
{
    ms_config c;
    tu_log_capture();
    assert_int_equal(ms_config_load(dir, &c, NULL), rc);
    if (!strstr(tu_log_text(), want)) fail_msg("log lacks \"%s\": %s", want, tu_log_text());
    if (!strstr(tu_log_text(), "config.json")) fail_msg("log names no file: %s", tu_log_text());
    assert_string_equal(strchr(tu_log_text(), '\n'), "\n");
    ms_set_log(NULL, NULL);
}

static void test_fixture_configs(void **state)
{
    (void)state;
    ms_config c;
    cJSON *root = NULL;
    assert_int_equal(ms_config_load(tu_fixture("hf/mamba1-tiny-hf"), &c, &root), MS_OK);
    assert_non_null(root);
    cJSON_Delete(root);
    assert_int_equal(c.arch, MS_ARCH_MAMBA1);
    assert_int_equal(c.d_model, 64);
    assert_int_equal(c.n_layer, 2);
    assert_int_equal(c.vocab_size, 16);
    assert_int_equal(c.n_vocab, 16);
    assert_int_equal(c.d_inner, 128);
    assert_int_equal(c.d_state, 16);
    assert_int_equal(c.d_conv, 4);
    assert_int_equal(c.dt_rank, 4);
    assert_int_equal(c.use_bias, 0);
    assert_int_equal(c.use_conv_bias, 1);
    assert_int_equal(c.rms_norm, 1);
    assert_int_equal(c.tie_embeddings, 1);
    assert_int_equal(c.residual_in_fp32, 1);
    assert_int_equal(c.mamba_ssm_layout, 0);
    assert_int_equal(c.falcon, 0);
    assert_true(fabsf(c.norm_eps - 1e-5f) < 1e-12f);

    assert_int_equal(ms_config_load(tu_fixture("hf/mamba1-tiny-ssm"), &c, NULL), MS_OK);
    assert_int_equal(c.arch, MS_ARCH_MAMBA1);
    assert_int_equal(c.mamba_ssm_layout, 1);
    assert_int_equal(c.d_model, 64);
    assert_int_equal(c.n_layer, 2);
    assert_int_equal(c.n_vocab, 16);
    assert_int_equal(c.d_inner, 128);
    assert_int_equal(c.d_state, 16);
    assert_int_equal(c.dt_rank, 4);
    assert_int_equal(c.use_conv_bias, 1);
    assert_int_equal(c.tie_embeddings, 1);

    assert_int_equal(ms_config_load(tu_fixture("hf/mamba2-tiny-hf"), &c, NULL), MS_OK);
    assert_int_equal(c.arch, MS_ARCH_MAMBA2);
    assert_int_equal(c.d_model, 64);
    assert_int_equal(c.n_layer, 2);
    assert_int_equal(c.n_vocab, 16);
    assert_int_equal(c.d_inner, 128);
    assert_int_equal(c.d_state, 32);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.n_groups, 1);
    assert_int_equal(c.tie_embeddings, 0);
    assert_true(c.dt_min == 0.0f && isinf(c.dt_max) && c.dt_max > 0);
    assert_int_equal(ms_in_proj_rows(&c), 328);
    assert_int_equal(ms_conv_dim(&c), 192);
}

static void test_json_nonfinite(void **state)
{
    (void)state;
    const char *dir = cfg_dir("json", NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/x.json", dir);
    const char *text = "{\"a\": Infinity, \"b\": -Infinity,\n \"c\": NaN, \"d\": {\"__float__\": "
                       "\"Infinity\"},\n \"e\": [1.5, -Infinity], \"s\": \"NaN and Infinity\","
                       " \"f\": {\"__float__\": \"-Infinity\"}, \"g\": \"text\", \"n\": null}";
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    cJSON *j = ms_json_parse_file(path);
    assert_non_null(j);
    double v = 0;
    assert_int_equal(ms_json_number(j, "a", &v), 1);
    assert_true(isinf(v) && v > 0);
    assert_int_equal(ms_json_number(j, "b", &v), 1);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(ms_json_number(j, "c", &v), 1);
    assert_true(isnan(v));
    assert_int_equal(ms_json_number(j, "d", &v), 1);
    assert_true(isinf(v) && v > 0);
    assert_int_equal(ms_json_number(j, "f", &v), 1);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(ms_json_number(j, "missing", &v), 0);
    assert_int_equal(ms_json_number(j, "n", &v), 0);
    assert_int_equal(ms_json_number(j, "g", &v), -1);
    assert_string_equal(cJSON_GetObjectItem(j, "s")->valuestring, "NaN and Infinity");
    cJSON *e = cJSON_GetObjectItem(j, "e");
    assert_true(cJSON_GetArrayItem(e, 0)->valuedouble == 1.5);
    assert_true(isinf(cJSON_GetArrayItem(e, 1)->valuedouble));
    cJSON_Delete(j);

    /* syntax errors name the file and the line */
    const char *bad = "{\n  \"a\": 1,\n  \"b\": ,\n  \"c\": 3\n}\n";
    assert_int_equal(tu_write_file(path, bad, strlen(bad)), 0);
    tu_log_capture();
    assert_null(ms_json_parse_file(path));
    assert_non_null(strstr(tu_log_text(), "x.json: JSON syntax error near line 3"));
    const char *trailing = "{\"a\": 1}\n\n garbage";
    assert_int_equal(tu_write_file(path, trailing, strlen(trailing)), 0);
    assert_null(ms_json_parse_file(path));
    assert_non_null(strstr(tu_log_text(), "near line 3"));
    ms_set_log(NULL, NULL);
}

#define M2_HEAD "{\"model_type\": \"mamba2\", \"hidden_size\": 64, \"num_hidden_layers\": 2, " \
                "\"vocab_size\": 16, \"state_size\": 32, \"expand\": 2, \"head_dim\": 16, "     \
                "\"num_heads\": 8, \"n_groups\": 2, "

static void test_time_step_limit(void **state)
{
    (void)state;
    ms_config c;
    const char *d = cfg_dir("m2inf", M2_HEAD "\"time_step_limit\": [0.001, Infinity]}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_true(c.dt_min == 0.001f && isinf(c.dt_max));
    assert_int_equal(c.n_groups, 2);
    assert_int_equal(c.tie_embeddings, 1);

    d = cfg_dir("m2float", M2_HEAD "\"time_step_limit\": [0.0, {\"__float__\": \"Infinity\"}]}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_true(c.dt_min == 0.0f && isinf(c.dt_max));

    d = cfg_dir("m2fin", M2_HEAD "\"time_step_limit\": [0.01, 0.5]}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_true(c.dt_min == 0.01f && c.dt_max == 0.5f);

    d = cfg_dir("m2none", M2_HEAD "\"chunk_size\": 256}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_true(c.dt_min == 0.0f && isinf(c.dt_max));

    expect_cfg_error(cfg_dir("m2bad", M2_HEAD "\"time_step_limit\": [1, 2, 3]}"), MS_ERR_MODEL,
                     "'time_step_limit'");
    expect_cfg_error(cfg_dir("m2heads", "{\"model_type\": \"mamba2\", \"hidden_size\": 64, "
                                        "\"num_hidden_layers\": 2, \"vocab_size\": 16, "
                                        "\"head_dim\": 16, \"num_heads\": 4}"),
                     MS_ERR_MODEL, "num_heads");
}

static void test_hf_mamba_variants(void **state)
{
    (void)state;
    ms_config c;
    const char *d = cfg_dir("auto", "{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 100,"
                                    " \"num_hidden_layers\": 3, \"vocab_size\": 50280,"
                                    " \"time_step_rank\": \"auto\", \"some_new_field\": [1, 2]}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_int_equal(c.arch, MS_ARCH_MAMBA1);
    assert_int_equal(c.dt_rank, 7);
    assert_int_equal(c.d_inner, 200);
    assert_int_equal(c.d_state, 16);
    assert_int_equal(c.n_vocab, 50280);

    d = cfg_dir("falcon", "{\"model_type\": \"falcon_mamba\", \"hidden_size\": 64,"
                          " \"num_hidden_layers\": 2, \"vocab_size\": 65024,"
                          " \"intermediate_size\": 256, \"time_step_rank\": 4, \"use_bias\": false,"
                          " \"tie_word_embeddings\": false}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_int_equal(c.falcon, 1);
    assert_int_equal(c.d_inner, 256);
    assert_int_equal(c.tie_embeddings, 0);
    assert_true(fabsf(c.mixer_rms_eps - 1e-6f) < 1e-12f);

    expect_cfg_error(cfg_dir("nohidden", "{\"model_type\": \"mamba\", \"num_hidden_layers\": 2,"
                                         " \"vocab_size\": 16}"),
                     MS_ERR_MODEL, "config.json: missing field 'hidden_size'");
    expect_cfg_error(cfg_dir("wrongtype", "{\"model_type\": \"mamba\", \"hidden_size\": \"64\","
                                          " \"num_hidden_layers\": 2, \"vocab_size\": 16}"),
                     MS_ERR_MODEL, "'hidden_size'");
    expect_cfg_error(cfg_dir("wrongbool", "{\"model_type\": \"mamba\", \"hidden_size\": 64,"
                                          " \"num_hidden_layers\": 2, \"vocab_size\": 16,"
                                          " \"use_bias\": \"no\"}"),
                     MS_ERR_MODEL, "'use_bias'");
    expect_cfg_error(cfg_dir("zero", "{\"model_type\": \"mamba\", \"hidden_size\": 0,"
                                     " \"num_hidden_layers\": 2, \"vocab_size\": 16}"),
                     MS_ERR_MODEL, "'hidden_size'");
    expect_cfg_error(cfg_dir("llama", "{\"model_type\": \"llama\", \"hidden_size\": 64}"),
                     MS_ERR_UNSUPPORTED, "llama");
    expect_cfg_error(cfg_dir("nothing", "{\"foo\": 1}"), MS_ERR_MODEL, "model_type");
    expect_cfg_error(cfg_dir("syntax", "{\"model_type\": \"mamba\",\n\"hidden_size\": 64,,\n}"),
                     MS_ERR_FORMAT, "JSON syntax error near line 2");
    expect_cfg_error(cfg_dir("noconfig", NULL), MS_ERR_IO, "config.json");
}

static void test_mamba_ssm_layout(void **state)
{
    (void)state;
    ms_config c;
    const char *d = cfg_dir("ssm1", "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 50277,"
                                    " \"ssm_cfg\": {}}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_int_equal(c.arch, MS_ARCH_MAMBA1);
    assert_int_equal(c.mamba_ssm_layout, 1);
    assert_int_equal(c.vocab_size, 50277);
    assert_int_equal(c.n_vocab, 50280);
    assert_int_equal(c.d_state, 16);
    assert_int_equal(c.d_conv, 4);
    assert_int_equal(c.d_inner, 128);
    assert_int_equal(c.dt_rank, 4);
    assert_int_equal(c.use_bias, 0);
    assert_int_equal(c.use_conv_bias, 1);
    assert_int_equal(c.rms_norm, 1);
    assert_int_equal(c.tie_embeddings, 1);
    assert_int_equal(c.residual_in_fp32, 1);
    assert_true(fabsf(c.norm_eps - 1e-5f) < 1e-12f);

    d = cfg_dir("ssmarch", "{\"architectures\": [\"MambaLMHeadModel\"], \"d_model\": 64,"
                           " \"n_layer\": 2, \"vocab_size\": 16, \"ssm_cfg\": {}}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_int_equal(c.mamba_ssm_layout, 1);

    d = cfg_dir("ssm1b", "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 10,"
                         " \"pad_vocab_size_multiple\": 16, \"rms_norm\": false,"
                         " \"norm_epsilon\": 1e-6, \"tie_embeddings\": false,"
                         " \"ssm_cfg\": {\"layer\": \"Mamba1\", \"d_state\": 8, \"dt_rank\": 2,"
                         " \"bias\": true, \"conv_bias\": false}}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_int_equal(c.n_vocab, 16);
    assert_int_equal(c.rms_norm, 0);
    assert_int_equal(c.tie_embeddings, 0);
    assert_int_equal(c.d_state, 8);
    assert_int_equal(c.dt_rank, 2);
    assert_int_equal(c.use_bias, 1);
    assert_int_equal(c.use_conv_bias, 0);

    d = cfg_dir("ssm2", "{\"d_model\": 256, \"n_layer\": 4, \"vocab_size\": 16,"
                        " \"ssm_cfg\": {\"layer\": \"Mamba2\"}, \"attn_layer_idx\": []}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_int_equal(c.arch, MS_ARCH_MAMBA2);
    assert_int_equal(c.d_inner, 512);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.d_state, 128);
    assert_int_equal(c.n_groups, 1);
    assert_int_equal(c.d_conv, 4);
    assert_true(c.dt_min == 0.0f && isinf(c.dt_max));

    d = cfg_dir("ssm2lim", "{\"d_model\": 256, \"n_layer\": 4, \"vocab_size\": 16,"
                           " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"dt_limit\": [0.0, Infinity],"
                           " \"headdim\": 32, \"ngroups\": 4}}");
    assert_int_equal(ms_config_load(d, &c, NULL), MS_OK);
    assert_int_equal(c.n_heads, 16);
    assert_int_equal(c.n_groups, 4);
    assert_true(isinf(c.dt_max));

    expect_cfg_error(cfg_dir("dint", "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 16,"
                                     " \"d_intermediate\": 256, \"ssm_cfg\": {}}"),
                     MS_ERR_UNSUPPORTED, "'d_intermediate'");
    expect_cfg_error(cfg_dir("attn", "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 16,"
                                     " \"attn_layer_idx\": [1], \"ssm_cfg\": {}}"),
                     MS_ERR_UNSUPPORTED, "'attn_layer_idx'");
    expect_cfg_error(cfg_dir("nbg", "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 16,"
                                    " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"norm_before_gate\": true}}"),
                     MS_ERR_UNSUPPORTED, "'ssm_cfg.norm_before_gate'");
    expect_cfg_error(cfg_dir("hdim", "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 16,"
                                     " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"D_has_hdim\": true}}"),
                     MS_ERR_UNSUPPORTED, "'ssm_cfg.D_has_hdim'");
    expect_cfg_error(cfg_dir("layer3", "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 16,"
                                       " \"ssm_cfg\": {\"layer\": \"Mamba3\"}}"),
                     MS_ERR_UNSUPPORTED, "'ssm_cfg.layer'");
    expect_cfg_error(cfg_dir("nlayer", "{\"d_model\": 64, \"vocab_size\": 16, \"ssm_cfg\": {}}"),
                     MS_ERR_MODEL, "missing field 'n_layer'");
}

/* ----------------------------------------------------------------- alphabets */

#define TINY_CFG(v) "{\"model_type\": \"mamba\", \"hidden_size\": 64, \"num_hidden_layers\": 2, " \
                    "\"vocab_size\": " #v

static int alpha_load(const char *dir, ms_model_info *info)
{
    ms_config c;
    cJSON *root;
    assert_int_equal(ms_config_load(dir, &c, &root), MS_OK);
    memset(info, 0x55, sizeof *info);
    int rc = ms_alphabet_load(dir, root, &c, info);
    cJSON_Delete(root);
    return rc;
}

static void check_acgt(const ms_model_info *in, int a, int c, int g, int t)
{
    assert_int_equal(in->has_alphabet, 1);
    assert_int_equal(in->base_token[0], a);
    assert_int_equal(in->base_token[1], c);
    assert_int_equal(in->base_token[2], g);
    assert_int_equal(in->base_token[3], t);
    const char *s = "ACGTacgt";
    const int want[8] = {a, c, g, t, a, c, g, t};
    for (int i = 0; i < 8; i++) assert_int_equal(in->token_of_char[(unsigned char)s[i]], want[i]);
}

static void test_alphabet_vocab_txt(void **state)
{
    (void)state;
    ms_model_info in;
    const char *d = cfg_dir("plant", TINY_CFG(11) "}");
    put_file(d, "vocab.txt", "<unk>\n<pad>\n<mask>\n<cls>\nA\nT\nC\nG\nN\n<eos>\n<bos>\n");
    assert_int_equal(alpha_load(d, &in), MS_OK);
    check_acgt(&in, 4, 6, 7, 5);
    assert_int_equal(in.token_of_char['N'], 8);
    assert_int_equal(in.token_of_char['n'], 8);
    assert_int_equal(in.unk_token, 8);
    assert_int_equal(in.bos_token, 10);
    assert_int_equal(in.token_of_char['X'], -1);
    assert_int_equal(in.token_of_char['<'], -1);
    assert_int_equal(in.token_of_char[0], -1);
    assert_int_equal(in.token_of_char[255], -1);

    /* CRLF lines, no N: unk is the UNK token */
    d = cfg_dir("crlf", TINY_CFG(16) "}");
    put_file(d, "vocab.txt", "[PAD]\r\n[UNK]\r\n[BOS]\r\nA\r\nC\r\nG\r\nT\r\n");
    assert_int_equal(alpha_load(d, &in), MS_OK);
    check_acgt(&in, 3, 4, 5, 6);
    assert_int_equal(in.unk_token, 1);
    assert_int_equal(in.bos_token, 2);

    /* a letter beyond the model's vocabulary */
    d = cfg_dir("big", TINY_CFG(4) "}");
    put_file(d, "vocab.txt", "[PAD]\n[UNK]\n[BOS]\nA\nC\nG\nT\n");
    tu_log_capture();
    assert_int_equal(alpha_load(d, &in), MS_ERR_MODEL);
    assert_non_null(strstr(tu_log_text(), "vocab.txt"));
    assert_non_null(strstr(tu_log_text(), "'C'"));
    ms_set_log(NULL, NULL);

    /* no tokenizer files: no alphabet */
    d = cfg_dir("none", TINY_CFG(16) "}");
    assert_int_equal(alpha_load(d, &in), MS_OK);
    assert_int_equal(in.has_alphabet, 0);
    assert_int_equal(in.bos_token, -1);
    assert_int_equal(in.unk_token, -1);
    assert_int_equal(in.base_token[0], -1);
    assert_int_equal(in.token_of_char['A'], -1);
}

static void test_alphabet_tokenizer_json(void **state)
{
    (void)state;
    ms_model_info in;
    const char *d = cfg_dir("cad", TINY_CFG(16) "}");
    put_file(d, "tokenizer.json",
             "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 12, \"content\": \"[EXTRA]\"}],"
             " \"model\": {\"type\": \"WordLevel\", \"vocab\": {\"[CLS]\": 0, \"[SEP]\": 1,"
             " \"[BOS]\": 2, \"[MASK]\": 3, \"[PAD]\": 4, \"[RESERVED]\": 5, \"[UNK]\": 6,"
             " \"A\": 7, \"C\": 8, \"G\": 9, \"T\": 10, \"N\": 11}}}");
    assert_int_equal(alpha_load(d, &in), MS_OK);
    check_acgt(&in, 7, 8, 9, 10);
    assert_int_equal(in.unk_token, 11);
    assert_int_equal(in.bos_token, 2);

    /* BOS named only by tokenizer_config.json; added_tokens carry the specials */
    d = cfg_dir("tc", TINY_CFG(16) "}");
    put_file(d, "tokenizer.json",
             "{\"added_tokens\": [{\"id\": 0, \"content\": \"<start>\"}, {\"id\": 1, \"content\": "
             "\"<unk>\"}], \"model\": {\"vocab\": {\"a\": 2, \"c\": 3, \"g\": 4, \"t\": 5}}}");
    put_file(d, "tokenizer_config.json", "{\"bos_token\": {\"content\": \"<start>\"}}");
    assert_int_equal(alpha_load(d, &in), MS_OK);
    check_acgt(&in, 2, 3, 4, 5);
    assert_int_equal(in.bos_token, 0);
    assert_int_equal(in.unk_token, 1);
}

static void test_alphabet_config_section(void **state)
{
    (void)state;
    ms_model_info in;
    const char *d = cfg_dir("sec", TINY_CFG(16) ", \"mamba_stream\": {\"alphabet\": {\"A\": 7,"
                                               " \"C\": 8, \"G\": 9, \"T\": 10}, \"bos\": 2, \"unk\": 6}}");
    /* the section wins over a vocab.txt in the same directory */
    put_file(d, "vocab.txt", "A\nC\nG\nT\n");
    assert_int_equal(alpha_load(d, &in), MS_OK);
    check_acgt(&in, 7, 8, 9, 10);
    assert_int_equal(in.bos_token, 2);
    assert_int_equal(in.unk_token, 6);
    assert_int_equal(in.token_of_char['N'], -1);

    d = cfg_dir("sec2", TINY_CFG(16) ", \"mamba_stream\": {\"alphabet\": {\"a\": 1, \"c\": 2,"
                                     " \"g\": 3, \"t\": 4, \"n\": 5}}}");
    assert_int_equal(alpha_load(d, &in), MS_OK);
    check_acgt(&in, 1, 2, 3, 4);
    assert_int_equal(in.unk_token, 5);
    assert_int_equal(in.bos_token, -1);

    d = cfg_dir("sec3", TINY_CFG(16) ", \"mamba_stream\": {\"alphabet\": {\"A\": 16}}}");
    tu_log_capture();
    assert_int_equal(alpha_load(d, &in), MS_ERR_MODEL);
    assert_non_null(strstr(tu_log_text(), "config.json"));
    d = cfg_dir("sec4", TINY_CFG(16) ", \"mamba_stream\": {\"alphabet\": {\"AC\": 1}}}");
    assert_int_equal(alpha_load(d, &in), MS_ERR_MODEL);
    assert_non_null(strstr(tu_log_text(), "mamba_stream.alphabet.AC"));
    ms_set_log(NULL, NULL);
}

static void test_alphabet_builtin(void **state)
{
    (void)state;
    ms_model_info in;
    assert_int_equal(ms_alphabet_builtin("caduceus", 16, &in), MS_OK);
    check_acgt(&in, 7, 8, 9, 10);
    assert_int_equal(in.bos_token, 2);
    assert_int_equal(in.unk_token, 11);

    assert_int_equal(ms_alphabet_builtin("plant-dnamamba", 11, &in), MS_OK);
    check_acgt(&in, 4, 6, 7, 5);
    assert_int_equal(in.bos_token, 10);
    assert_int_equal(in.unk_token, 8);

    /* GPN has only lower-case letters: upper case maps to them */
    assert_int_equal(ms_alphabet_builtin("gpn", 8, &in), MS_OK);
    check_acgt(&in, 3, 4, 5, 6);
    assert_int_equal(in.bos_token, -1);
    assert_int_equal(in.unk_token, 2);
    assert_int_equal(in.token_of_char['N'], -1);

    tu_log_capture();
    assert_int_equal(ms_alphabet_builtin("caduceus", 8, &in), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "caduceus"));
    assert_int_equal(in.has_alphabet, 0);
    assert_int_equal(ms_alphabet_builtin("dnabert", 100, &in), MS_ERR_ARG);
    assert_non_null(strstr(tu_log_text(), "dnabert"));
    ms_set_log(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_configs),
        cmocka_unit_test(test_json_nonfinite),
        cmocka_unit_test(test_time_step_limit),
        cmocka_unit_test(test_hf_mamba_variants),
        cmocka_unit_test(test_mamba_ssm_layout),
        cmocka_unit_test(test_alphabet_vocab_txt),
        cmocka_unit_test(test_alphabet_tokenizer_json),
        cmocka_unit_test(test_alphabet_config_section),
        cmocka_unit_test(test_alphabet_builtin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
