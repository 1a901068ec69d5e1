/* common.c - option parsing and model opening shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "log.h"

int64_t ms_cli_parse_int(const char *opt, const char *s, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "mamba-stream: %s: '%s' is not a whole number in [%lld, %lld]\n", opt, s,
                (long long)min, (long long)max);
        return -1;
    }
    return v;
}

int ms_cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "mamba-stream: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int ms_cli_parse_device(const char *s, ms_cli_common *c)
{
    if (!strcmp(s, "cpu")) {
        c->device = MS_DEVICE_CPU;
        return 0;
    }
    if (!strcmp(s, "cuda")) {
        c->device = MS_DEVICE_CUDA;
        c->device_index = 0;
        return 0;
    }
    if (!strncmp(s, "cuda:", 5)) {
        int64_t i = ms_cli_parse_int("--device", s + 5, 0, 1023);
        if (i < 0) return -1;
        c->device = MS_DEVICE_CUDA;
        c->device_index = (int)i;
        return 0;
    }
    fprintf(stderr, "mamba-stream: --device: '%s' is not cpu, cuda or cuda:N\n", s);
    return -1;
}

int ms_cli_parse_precision(const char *s, ms_cli_common *c)
{
    static const char *names[] = {"fp32", "bf16", "fp16"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            c->precision = (ms_precision)i;
            return 0;
        }
    fprintf(stderr, "mamba-stream: --precision: '%s' is not fp32, bf16 or fp16\n", s);
    return -1;
}

int ms_cli_open_model(const ms_cli_common *c, int64_t max_tokens, int max_streams, ms_model **model,
                      ms_ctx **ctx)
{
    *model = NULL;
    *ctx = NULL;
    ms_model_params mp = ms_model_default_params();
    mp.n_threads = c->n_threads;
    if (ms_model_load(c->model_dir, &mp, model) != MS_OK) return -1;
    ms_ctx_params cp = ms_ctx_default_params();
    cp.device = c->device;
    cp.device_index = c->device_index;
    cp.precision = c->precision;
    cp.max_streams = max_streams;
    cp.max_tokens = (int)max_tokens;
    if (max_tokens > (1LL << 28)) {
        fprintf(stderr, "mamba-stream: %lld tokens per forward call is too many (lower --chunk or --batch)\n",
                (long long)max_tokens);
        ms_model_free(*model);
        *model = NULL;
        return -1;
    }
    if (ms_ctx_new(*model, &cp, ctx) != MS_OK) {
        ms_model_free(*model);
        *model = NULL;
        return -1;
    }
    return 0;
}

int ms_cli_dna_alphabet(const ms_model *model, const char *model_dir, const char *alphabet,
                        ms_model_info *info)
{
    *info = *ms_model_info_get(model);
    if (alphabet && ms_alphabet_builtin(alphabet, info->n_vocab, info) != MS_OK) return -1;
    if (!info->has_alphabet) {
        ms_error("%s: the model names no input alphabet (no vocab.txt, tokenizer.json or "
                 "\"mamba_stream\" section in config.json); pass --alphabet", model_dir);
        return -1;
    }
    for (int b = 0; b < 4; b++)
        if (info->base_token[b] < 0) {
            ms_error("%s: the model's alphabet has no token for '%c'", model_dir, "ACGT"[b]);
            return -1;
        }
    return 0;
}

int ms_cli_engine_option(int code, const char *arg, ms_cli_common *c)
{
    int64_t v;
    switch (code) {
    case MS_OPT_CHUNK:
        if ((v = ms_cli_parse_int("--chunk", arg, 1, 1 << 24)) < 0) return -1;
        c->chunk = (int)v;
        return 0;
    case MS_OPT_BATCH:
        if ((v = ms_cli_parse_int("--batch", arg, 1, 1 << 16)) < 0) return -1;
        c->batch = (int)v;
        return 0;
    case MS_OPT_THREADS:
        if ((v = ms_cli_parse_int("--threads", arg, 1, 4096)) < 0) return -1;
        c->n_threads = (int)v;
        return 0;
    case MS_OPT_DEVICE: return ms_cli_parse_device(arg, c);
    case MS_OPT_PREC: return ms_cli_parse_precision(arg, c);
    default: return -1;
    }
}
