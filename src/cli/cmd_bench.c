/* cmd_bench.c - throughput of the engine on the reference workload (BENCHMARKS.md) with
 * random weights it makes itself, or on a given model.
 *
 * Workloads: one long stream scored chunk by chunk (forward + the four base logits +
 * log-softmax on the host), many short reads in batches, and decoding (chunks of one
 * token) at several batch sizes. Prints a Markdown table; numbers, not assertions. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "log.h"
#include "random_model.h"
#include "score.h"

typedef struct {
    ms_cli_common c;
    const char *arch;
    int64_t tokens;
    int reads, read_len, reads_per_call, decode_steps, d_model, n_layer;
    const char *decode_batches;
} bench_opts;

static void machine_name(char *buf, size_t n)
{
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p += 2;
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, n, "%s", p);
            }
            break;
        }
    fclose(f);
}

static void fill_tokens(int32_t *t, size_t n, int vocab, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((seed >> 33) % (uint64_t)vocab);
    }
}

/* One stream of `tokens` tokens in chunks of c.chunk, scored. Returns tokens/s. */
static double bench_stream(const bench_opts *o, ms_ctx *ctx, const ms_model_info *info)
{
    const int chunk = o->c.chunk;
    int32_t *tok = malloc(sizeof(int32_t) * chunk);
    float *lg = malloc(sizeof(float) * chunk * 4);
    ms_score *sc = malloc(sizeof(ms_score) * chunk);
    static const int cols4[4] = {0, 1, 2, 3};
    int cols[4] = {0, 1, 2, 3};
    for (int b = 0; b < 4; b++) if (info->base_token[b] >= 0) cols[b] = info->base_token[b];
    ms_stream *s;
    if (ms_stream_new(ctx, &s) != MS_OK) return 0;
    /* warm-up chunk */
    fill_tokens(tok, chunk, info->n_vocab, 7);
    ms_chunk c = {s, tok, chunk};
    if (ms_forward_cols(ctx, &c, 1, cols, 4, lg, NULL) != MS_OK) return 0;
    ms_stream_reset(s);
    double t0 = ms_now();
    for (int64_t done = 0; done < o->tokens; done += chunk) {
        int n = o->tokens - done < chunk ? (int)(o->tokens - done) : chunk;
        fill_tokens(tok, n, info->n_vocab, (uint64_t)done + 1);
        c.n_tokens = n;
        if (ms_forward_cols(ctx, &c, 1, cols, 4, lg, NULL) != MS_OK) return 0;
        for (int j = 0; j < n; j++) ms_score_from_logits(lg + 4 * j, cols4, "ACGT"[tok[j] & 3], &sc[j]);
    }
    double dt = ms_now() - t0;
    ms_stream_free(s);
    free(tok); free(lg); free(sc);
    return o->tokens / dt;
}

/* `n_reads` reads of `len` tokens, `per_call` at a time (one call each), every read from a
 * fresh state; one warm-up call first. Returns tokens/s. */
static double bench_reads(ms_ctx *ctx, const ms_model_info *info, int n_reads, int len,
                          int per_call)
{
    ms_stream **s = calloc(per_call, sizeof *s);
    ms_chunk *c = calloc(per_call, sizeof *c);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n_reads * len);
    float *lg = malloc(sizeof(float) * (size_t)per_call * len * 4);
    int cols[4] = {0, 1, 2, 3};
    double rate = 0;
    for (int i = 0; i < per_call; i++)
        if (ms_stream_new(ctx, &s[i]) != MS_OK) goto done;
    fill_tokens(tok, (size_t)n_reads * len, info->n_vocab, 5);
    for (int pass = 0; pass < 2; pass++) { /* pass 0: one call of warm-up */
        double t0 = ms_now();
        for (int r0 = 0; r0 < n_reads; r0 += per_call) {
            const int n = n_reads - r0 < per_call ? n_reads - r0 : per_call;
            for (int i = 0; i < n; i++) {
                ms_stream_reset(s[i]);
                c[i] = (ms_chunk){s[i], tok + (size_t)(r0 + i) * len, len};
            }
            if (ms_forward_cols(ctx, c, n, cols, 4, lg, NULL) != MS_OK) goto done;
            if (!pass) break;
        }
        rate = (double)n_reads * len / (ms_now() - t0);
    }
done:
    for (int i = 0; i < per_call; i++) ms_stream_free(s[i]);
    free(s); free(c); free(tok); free(lg);
    return rate;
}

/* `n_streams` streams fed `steps` chunks of `len` tokens each, all in one call per step. */
static double bench_batch(ms_ctx *ctx, const ms_model_info *info, int n_streams, int len, int steps)
{
    ms_stream **s = calloc(n_streams, sizeof *s);
    ms_chunk *c = calloc(n_streams, sizeof *c);
    int32_t *tok = malloc(sizeof(int32_t) * n_streams * len);
    float *lg = malloc(sizeof(float) * n_streams * len * 4);
    int cols[4] = {0, 1, 2, 3};
    double rate = 0;
    for (int i = 0; i < n_streams; i++)
        if (ms_stream_new(ctx, &s[i]) != MS_OK) goto done;
    fill_tokens(tok, (size_t)n_streams * len, info->n_vocab, 3);
    for (int i = 0; i < n_streams; i++) c[i] = (ms_chunk){s[i], tok + (size_t)i * len, len};
    if (ms_forward_cols(ctx, c, n_streams, cols, 4, lg, NULL) != MS_OK) goto done; /* warm-up */
    double t0 = ms_now();
    for (int k = 0; k < steps; k++)
        if (ms_forward_cols(ctx, c, n_streams, cols, 4, lg, NULL) != MS_OK) goto done;
    rate = (double)n_streams * len * steps / (ms_now() - t0);
done:
    for (int i = 0; i < n_streams; i++) ms_stream_free(s[i]);
    free(s); free(c); free(tok); free(lg);
    return rate;
}

static int run_arch(const bench_opts *o, const char *model_dir, const char *label)
{
    ms_cli_common c = o->c;
    c.model_dir = model_dir;
    int max_b = o->reads_per_call;
    const char *p = o->decode_batches;
    while (p && *p) {
        int b = atoi(p);
        if (b > max_b) max_b = b;
        p = strchr(p, ',');
        if (p) p++;
    }
    int64_t max_tokens = (int64_t)o->reads_per_call * o->read_len;
    if (o->c.chunk > max_tokens) max_tokens = o->c.chunk;
    if (max_b > max_tokens) max_tokens = max_b;
    ms_model *model;
    ms_ctx *ctx;
    if (ms_cli_open_model(&c, max_tokens, max_b, &model, &ctx) != 0) return 1;
    const ms_model_info *info = ms_model_info_get(model);
    double r = bench_stream(o, ctx, info);
    printf("| %s | one stream, %lld tokens, chunk %d | %.0f tok/s |\n", label, (long long)o->tokens,
           o->c.chunk, r);
    fflush(stdout);
    r = bench_reads(ctx, info, o->reads, o->read_len, o->reads_per_call);
    printf("| %s | %d reads x %d tokens (%d per call) | %.0f tok/s |\n", label, o->reads,
           o->read_len, o->reads_per_call, r);
    fflush(stdout);
    p = o->decode_batches;
    while (p && *p) {
        int b = atoi(p);
        r = bench_batch(ctx, info, b, 1, o->decode_steps);
        printf("| %s | decode, batch %d | %.0f tok/s (%.3f ms/step) |\n", label, b, r, 1e3 * b / r);
        fflush(stdout);
        p = strchr(p, ',');
        if (p) p++;
    }
    const size_t peak = ms_ctx_peak_device_bytes(ctx);
    if (peak)
        printf("| %s | peak device memory (weights + scratch + states) | %.2f GiB |\n", label,
               peak / 1073741824.0);
    ms_ctx_free(ctx);
    ms_model_free(model);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream bench [options]\n"
"\n"
"Times the engine with random weights in the shape of BENCHMARKS.md's reference workload\n"
"(d_model 768, 24 layers, vocabulary 16; Mamba-1 d_state 16, Mamba-2 d_state 128 and\n"
"head_dim 64) or on --model DIR, and prints a table of tokens/s.\n"
"\n"
"  --arch A            mamba1 | mamba2 | both [both]\n"
"  --model DIR         time this model instead of random weights\n"
"  --d-model N         width of the random model [768]\n"
"  --n-layer N         layers of the random model [24]\n"
"  --tokens N          length of the long stream [4096 on cpu, 1048576 on cuda]\n"
"  --chunk N           chunk length for the long stream [2048 on cpu, 65536 on cuda]\n"
"  --reads N           reads in the batch workload [16 on cpu, 4096 on cuda]\n"
"  --reads-per-call N  reads batched into one forward call [16 on cpu, 512 on cuda]\n"
"  --read-len N        tokens per read [160]\n"
"  --decode B,B,..     decode batch sizes [1,16 on cpu; 1,64,1024 on cuda]\n"
"  --decode-steps N    decode steps timed [32]\n"
"  --device D          cpu | cuda | cuda:N [cpu]\n"
"  --precision P       fp32 | bf16 | fp16 [fp32 on cpu, bf16 on cuda]\n"
"  --threads N         CPU threads [all cores]\n"
"  --write-model DIR   only write the random model of --arch (mamba1 or mamba2; bf16) to\n"
"                      DIR, for timing other commands on it (DIR must exist)\n");
}

int ms_cmd_bench(int argc, char **argv)
{
    bench_opts o = {0};
    o.arch = "both";
    o.read_len = 160;
    o.decode_steps = 32;
    o.d_model = 768;
    o.n_layer = 24;
    const char *model_dir = NULL, *write_dir = NULL;
    int prec_set = 0;
    enum { O_ARCH = 256, O_MODEL, O_DM, O_NL, O_TOK, O_CHUNK, O_READS, O_RLEN, O_DEC, O_DSTEPS,
           O_DEVICE, O_PREC, O_THREADS, O_RPC, O_WRITE };
    static const struct option opts[] = {
        {"arch", 1, 0, O_ARCH}, {"model", 1, 0, O_MODEL}, {"d-model", 1, 0, O_DM},
        {"n-layer", 1, 0, O_NL}, {"tokens", 1, 0, O_TOK}, {"chunk", 1, 0, O_CHUNK},
        {"reads", 1, 0, O_READS}, {"read-len", 1, 0, O_RLEN}, {"reads-per-call", 1, 0, O_RPC}, {"decode", 1, 0, O_DEC},
        {"decode-steps", 1, 0, O_DSTEPS}, {"device", 1, 0, O_DEVICE}, {"precision", 1, 0, O_PREC},
        {"threads", 1, 0, O_THREADS}, {"write-model", 1, 0, O_WRITE}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int ch, bad = 0;
    int64_t v;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_ARCH: o.arch = optarg; break;
        case O_MODEL: model_dir = optarg; break;
        case O_DM: bad |= (v = ms_cli_parse_int("--d-model", optarg, 16, 16384)) < 0; o.d_model = (int)v; break;
        case O_NL: bad |= (v = ms_cli_parse_int("--n-layer", optarg, 1, 1024)) < 0; o.n_layer = (int)v; break;
        case O_TOK: bad |= (o.tokens = ms_cli_parse_int("--tokens", optarg, 1, 1LL << 40)) < 0; break;
        case O_CHUNK: bad |= (v = ms_cli_parse_int("--chunk", optarg, 1, 1 << 22)) < 0; o.c.chunk = (int)v; break;
        case O_READS: bad |= (v = ms_cli_parse_int("--reads", optarg, 1, 1 << 20)) < 0; o.reads = (int)v; break;
        case O_RLEN: bad |= (v = ms_cli_parse_int("--read-len", optarg, 1, 1 << 20)) < 0; o.read_len = (int)v; break;
        case O_RPC: bad |= (v = ms_cli_parse_int("--reads-per-call", optarg, 1, 1 << 20)) < 0; o.reads_per_call = (int)v; break;
        case O_DEC: o.decode_batches = optarg; break;
        case O_DSTEPS: bad |= (v = ms_cli_parse_int("--decode-steps", optarg, 1, 1 << 20)) < 0; o.decode_steps = (int)v; break;
        case O_DEVICE: bad |= ms_cli_parse_device(optarg, &o.c) != 0; break;
        case O_PREC: bad |= ms_cli_parse_precision(optarg, &o.c) != 0; prec_set = 1; break;
        case O_THREADS: bad |= (v = ms_cli_parse_int("--threads", optarg, 1, 4096)) < 0; o.c.n_threads = (int)v; break;
        case O_WRITE: write_dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad) return 2;
    if (write_dir) {
        if (strcmp(o.arch, "mamba1") && strcmp(o.arch, "mamba2")) {
            fprintf(stderr, "mamba-stream bench: --write-model needs --arch mamba1 or mamba2\n");
            return 2;
        }
        ms_random_spec s = ms_random_spec_reference(strcmp(o.arch, "mamba1") ? MS_ARCH_MAMBA2 : MS_ARCH_MAMBA1);
        s.d_model = o.d_model;
        s.n_layer = o.n_layer;
        return ms_random_model_write(&s, write_dir) == MS_OK ? 0 : 1;
    }
    const int gpu = o.c.device == MS_DEVICE_CUDA;
    if (!o.tokens) o.tokens = gpu ? 1048576 : 4096;
    if (!o.c.chunk) o.c.chunk = gpu ? 65536 : 2048;
    if (!o.reads) o.reads = gpu ? 4096 : 16;
    if (!o.reads_per_call) o.reads_per_call = gpu ? 512 : 16;
    if (o.reads_per_call > o.reads) o.reads_per_call = o.reads;
    if (!o.decode_batches) o.decode_batches = gpu ? "1,64,1024" : "1,16";
    if (!prec_set && gpu) o.c.precision = MS_PREC_BF16;

    char cpu[256];
    machine_name(cpu, sizeof cpu);
    printf("mamba-stream %s bench: device %s, precision %s, %s, %ld threads\n\n", MS_VERSION,
           gpu ? "cuda" : "cpu", o.c.precision == MS_PREC_FP32 ? "fp32" : o.c.precision == MS_PREC_BF16 ? "bf16" : "fp16",
           cpu, sysconf(_SC_NPROCESSORS_ONLN));
    printf("| model | workload | throughput |\n|---|---|---|\n");
    fflush(stdout);
    int rc = 0;
    if (model_dir) return run_arch(&o, model_dir, model_dir);
    char tmpl[] = "/tmp/mamba-stream-bench-XXXXXX";
    if (!mkdtemp(tmpl)) { perror("mkdtemp"); return 1; }
    for (int a = 1; a <= 2 && rc == 0; a++) {
        if (strcmp(o.arch, "both") && strcmp(o.arch, a == 1 ? "mamba1" : "mamba2")) continue;
        ms_random_spec s = ms_random_spec_reference(a == 1 ? MS_ARCH_MAMBA1 : MS_ARCH_MAMBA2);
        s.d_model = o.d_model;
        s.n_layer = o.n_layer;
        if (!gpu) s.dtype = MS_DT_F32;
        if (ms_random_model_write(&s, tmpl) != MS_OK) { rc = 1; break; }
        char label[64];
        snprintf(label, sizeof label, "%s %dx%d", a == 1 ? "Mamba-1" : "Mamba-2", s.d_model, s.n_layer);
        rc = run_arch(&o, tmpl, label);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0) { /* leftover temp dir is harmless */ }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\npeak RSS %.1f MiB\n", ru.ru_maxrss / 1024.0);
    return rc;
}
