/* cmd_logits.c - the verification entry point: input_ids in, logits and hidden out.
 *
 *   mamba-stream logits --model DIR --ids IN.safetensors --out OUT.safetensors [--chunk N]
 *
 * IN holds `input_ids` (int64 or int32, [B, L]); OUT gets `logits` float32 [B, L, V] and
 * `hidden` float32 [B, L, D] (backbone output after the final norm). Each row is its own
 * stream; all rows run batched, cut into chunks of N tokens (default: whole rows). Checks
 * outside the project rely on these tensor names. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "safetensors.h"

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream logits --model DIR --ids IN.safetensors --out OUT.safetensors [options]\n"
"\n"
"Reads tensor input_ids (int64 or int32, [B, L]) and writes logits float32 [B, L, V] and\n"
"hidden float32 [B, L, D] (the backbone output after the final norm).\n"
"\n"
"  --chunk N     tokens per forward call of each row [whole rows]\n"
"  --device D    cpu | cuda | cuda:N [cpu]\n"
"  --precision P fp32 | bf16 | fp16 [fp32]\n"
"  --threads N   CPU threads [all cores]\n");
}

int ms_cmd_logits(int argc, char **argv)
{
    ms_cli_common c = {0};
    const char *ids_path = NULL, *out_path = NULL;
    enum { O_MODEL = 256, O_IDS, O_OUT, O_CHUNK, O_DEVICE, O_THREADS, O_PREC };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"ids", 1, 0, O_IDS}, {"out", 1, 0, O_OUT},
        {"chunk", 1, 0, O_CHUNK}, {"device", 1, 0, O_DEVICE}, {"threads", 1, 0, O_THREADS}, {"precision", 1, 0, O_PREC},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    int64_t v;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: c.model_dir = optarg; break;
        case O_IDS: ids_path = optarg; break;
        case O_OUT: out_path = optarg; break;
        case O_CHUNK: bad |= (v = ms_cli_parse_int("--chunk", optarg, 1, 1 << 24)) < 0; c.chunk = (int)v; break;
        case O_DEVICE: bad |= ms_cli_parse_device(optarg, &c) != 0; break;
        case O_THREADS: bad |= (v = ms_cli_parse_int("--threads", optarg, 1, 4096)) < 0; c.n_threads = (int)v; break;
        case O_PREC: bad |= ms_cli_parse_precision(optarg, &c) != 0; break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (!bad && (!c.model_dir || !ids_path || !out_path)) {
        fprintf(stderr, "mamba-stream logits: --model, --ids and --out are required\n");
        bad = 1;
    }
    if (bad) return 2;

    int rc = 1;
    ms_st_set *in = NULL;
    ms_model *model = NULL;
    ms_ctx *ctx = NULL;
    ms_stream **streams = NULL;
    int64_t *ids64 = NULL;
    int32_t *ids = NULL;
    float *logits = NULL, *hidden = NULL, *lg = NULL, *hd = NULL;
    ms_chunk *fw = NULL;

    if (ms_st_open_file(ids_path, &in) != MS_OK) goto done;
    const ms_st_tensor *t = ms_st_find(in, "input_ids");
    if (!t) { ms_error("%s: no tensor 'input_ids'", ids_path); goto done; }
    if (t->n_dim != 2 || (t->dtype != MS_DT_I64 && t->dtype != MS_DT_I32) || t->shape[0] < 1 ||
        t->shape[1] < 1) {
        ms_error("%s: tensor 'input_ids' must be int64 or int32 [B, L] with B, L >= 1", ids_path);
        goto done;
    }
    const int B = (int)t->shape[0], L = (int)t->shape[1];
    c.batch = B;
    if (!c.chunk || c.chunk > L) c.chunk = L;
    if (ms_cli_open_model(&c, (int64_t)c.chunk * B, B, &model, &ctx) != 0) goto done;
    const ms_model_info *info = ms_model_info_get(model);
    const int V = info->n_vocab, D = info->d_model;
    ids64 = malloc(sizeof(int64_t) * B * L);
    ids = malloc(sizeof(int32_t) * B * L);
    logits = malloc(sizeof(float) * (size_t)B * L * V);
    hidden = malloc(sizeof(float) * (size_t)B * L * D);
    lg = malloc(sizeof(float) * (size_t)B * c.chunk * V);
    hd = malloc(sizeof(float) * (size_t)B * c.chunk * D);
    streams = calloc(B, sizeof *streams);
    fw = calloc(B, sizeof *fw);
    if (!ids64 || !ids || !logits || !hidden || !lg || !hd || !streams || !fw) {
        ms_error("logits: out of memory for [%d, %d]", B, L);
        goto done;
    }
    if (ms_st_to_i64(t, ids64) != MS_OK) goto done;
    for (int64_t i = 0; i < (int64_t)B * L; i++) {
        if (ids64[i] < 0 || ids64[i] >= V) {
            ms_error("%s: input_ids[%lld][%lld] = %lld is outside the vocabulary 0..%d", ids_path,
                     (long long)(i / L), (long long)(i % L), (long long)ids64[i], V - 1);
            goto done;
        }
        ids[i] = (int32_t)ids64[i];
    }
    for (int b = 0; b < B; b++)
        if (ms_stream_new(ctx, &streams[b]) != MS_OK) goto done;
    for (int t0 = 0; t0 < L; t0 += c.chunk) {
        int n = t0 + c.chunk <= L ? c.chunk : L - t0;
        for (int b = 0; b < B; b++) fw[b] = (ms_chunk){streams[b], ids + (size_t)b * L + t0, n};
        if (ms_forward(ctx, fw, B, lg, hd) != MS_OK) goto done;
        for (int b = 0; b < B; b++) {
            memcpy(logits + ((size_t)b * L + t0) * V, lg + (size_t)b * n * V, sizeof(float) * n * V);
            memcpy(hidden + ((size_t)b * L + t0) * D, hd + (size_t)b * n * D, sizeof(float) * n * D);
        }
    }
    ms_st_out outs[2] = {
        {"logits", MS_DT_F32, 3, {B, L, V}, logits},
        {"hidden", MS_DT_F32, 3, {B, L, D}, hidden},
    };
    if (ms_st_write(out_path, outs, 2) != MS_OK) goto done;
    rc = 0;
done:
    if (streams) for (int b = 0; b < c.batch; b++) ms_stream_free(streams[b]);
    free(streams); free(fw); free(ids64); free(ids); free(logits); free(hidden); free(lg); free(hd);
    ms_ctx_free(ctx);
    ms_model_free(model);
    ms_st_close(in);
    return rc;
}
