/* cmd_bench.c - throughput of the engine on the reference workload (BENCHMARKS.md) with
 * random weights it makes itself, or on a given model, optionally beside mamba_ssm.
 *
 * Workloads: one long stream scored chunk by chunk (forward + the four base logits +
 * log-softmax on the host), many short reads in batches, and decoding (chunks of one
 * token) at several batch sizes. Each time is the median of --repeats runs after a
 * warm-up call, host wall clock around synchronous ms_forward calls (results on the host).
 * Prints a Markdown table; numbers, not assertions.
 *
 * The model is loaded once; each workload gets a context of its own, sized for it (the
 * stream: one chunk, one stream; reads: reads_per_call x read_len tokens in reads_per_call
 * streams; decode: b one-token chunks), so each row's peak device memory (weights +
 * scratch + states) is that workload's, not the largest one's.
 *
 * The floor, from BENCHMARKS.md "The floor" (an H100: 3.0 TB/s device copy, 777 TFLOP/s
 * bf16), as a rate to divide ours by ("floor %", --device cuda only):
 *   - scoring (stream, reads): ~0.3 s per million tokens, 3.5 M tok/s, for the 90.5 M-
 *     parameter reference (2 x 85 M FLOP of matrix work and ~0.5 MB of traffic per token);
 *     other shapes scale it by 90.5 M / their parameter count (the matrix work, the
 *     larger part, is 2 FLOP per parameter and token);
 *   - decode at batch b: a step reads the weights once and every stream's float32 state
 *     once and writes it once, at 3.0 TB/s:
 *         (P x w + b x S x 4 bytes x 2) / 3.0 TB/s per step,
 *     P = parameters (elements of the safetensors), w = 2 bytes (bf16, fp16) or 4 (fp32),
 *     S = n_layer x (SSM state + conv_dim x (d_conv - 1)) floats per stream (SSM state:
 *     d_inner x d_state for Mamba-1, n_heads x head_dim x d_state for Mamba-2). Reference
 *     Mamba-1 at batch 1: 62 us (BENCHMARKS.md's 57 us rounds the weights to 170 MB and
 *     leaves out the 5.6 MB of state); at batch 1024 the states dominate: 2.0 ms per step.
 * With --peer DIR, each workload is also run through mamba_ssm (bench_peer.h) right
 * after ours, once our context is freed, and the row gets its tokens/s, its peak memory
 * and the ratio ours / mamba_ssm. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backend.h"
#include "bench_peer.h"
#include "cli.h"
#include "log.h"
#include "random_model.h"
#include "score.h"

#define FLOOR_SCORE_TOK_S 3.5e6   /* scoring floor of the reference model, tokens/s */
#define FLOOR_REF_PARAMS 90.5e6   /* its parameters (Mamba-1; Mamba-2 has 90.4 M) */
#define FLOOR_BYTES_S 3.0e12      /* H100 device copy, bytes read + written per second */

typedef struct {
    ms_cli_common c;
    const char *arch;
    int64_t tokens;
    int reads, read_len, reads_per_call, decode_steps, d_model, n_layer, repeats;
    const char *decode_batches;
    const ms_peer *peer;   /* NULL: no --peer */
} bench_opts;

/* One workload's result. */
typedef struct {
    double tok_s;   /* tokens per second (decode: streams x steps per second); 0 = failed */
    size_t peak;    /* peak device bytes of its context; 0 = not tracked (CPU) */
} bench_result;

/* What the floor needs of a model. */
typedef struct {
    double params;        /* parameters: elements of every tensor in the weight files */
    double weight_bytes;  /* as the engine holds them: params x 2 (bf16/fp16) or x 4 */
    double state_bytes;   /* one stream's float32 state (conv + SSM, all layers) */
} floor_model;

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

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One stream of `tokens` tokens in chunks of c.chunk, scored; one warm-up chunk, then
 * o->repeats passes from a fresh state. Returns tokens/s of the median pass, 0 on error. */
static double bench_stream(const bench_opts *o, ms_ctx *ctx, const ms_model_info *info)
{
    const int chunk = o->c.chunk;
    int32_t *tok = malloc(sizeof(int32_t) * chunk);
    float *lg = malloc(sizeof(float) * chunk * 4);
    ms_score *sc = malloc(sizeof(ms_score) * chunk);
    double *secs = calloc(o->repeats, sizeof *secs);
    static const int cols4[4] = {0, 1, 2, 3};
    int cols[4] = {0, 1, 2, 3};
    for (int b = 0; b < 4; b++) if (info->base_token[b] >= 0) cols[b] = info->base_token[b];
    double rate = 0;
    ms_stream *s = NULL;
    if (!tok || !lg || !sc || !secs || ms_stream_new(ctx, &s) != MS_OK) goto done;
    fill_tokens(tok, chunk, info->n_vocab, 7);
    ms_chunk c = {s, tok, chunk};
    if (ms_forward_cols(ctx, &c, 1, cols, 4, lg, NULL) != MS_OK) goto done; /* warm-up */
    for (int r = 0; r < o->repeats; r++) {
        ms_stream_reset(s);
        double t0 = ms_now();
        for (int64_t done = 0; done < o->tokens; done += chunk) {
            int n = o->tokens - done < chunk ? (int)(o->tokens - done) : chunk;
            fill_tokens(tok, n, info->n_vocab, (uint64_t)done + 1);
            c.n_tokens = n;
            if (ms_forward_cols(ctx, &c, 1, cols, 4, lg, NULL) != MS_OK) goto done;
            for (int j = 0; j < n; j++) ms_score_from_logits(lg + 4 * j, cols4, "ACGT"[tok[j] & 3], &sc[j]);
        }
        secs[r] = ms_now() - t0;
    }
    rate = o->tokens / median(secs, o->repeats);
done:
    ms_stream_free(s);
    free(tok); free(lg); free(sc); free(secs);
    return rate;
}

/* `n_reads` reads of `len` tokens, `per_call` at a time (one call each), every read from a
 * fresh state and ending there (ms_chunk.last, as `mamba-stream reads` runs them: the final
 * states are not kept); one warm-up call, then `repeats` passes over all reads. Returns tokens/s of
 * the median pass, 0 on error. */
static double bench_reads(ms_ctx *ctx, const ms_model_info *info, int n_reads, int len,
                          int per_call, int repeats)
{
    ms_stream **s = calloc(per_call, sizeof *s);
    ms_chunk *c = calloc(per_call, sizeof *c);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n_reads * len);
    float *lg = malloc(sizeof(float) * (size_t)per_call * len * 4);
    double *secs = calloc(repeats + 1, sizeof *secs);
    int cols[4] = {0, 1, 2, 3};
    double rate = 0;
    if (!s || !c || !tok || !lg || !secs) goto done;
    for (int i = 0; i < per_call; i++)
        if (ms_stream_new(ctx, &s[i]) != MS_OK) goto done;
    fill_tokens(tok, (size_t)n_reads * len, info->n_vocab, 5);
    for (int pass = 0; pass <= repeats; pass++) { /* pass 0: one call of warm-up */
        double t0 = ms_now();
        for (int r0 = 0; r0 < n_reads; r0 += per_call) {
            const int n = n_reads - r0 < per_call ? n_reads - r0 : per_call;
            for (int i = 0; i < n; i++) {
                ms_stream_reset(s[i]);
                /* a whole read: the stream ends with it (its final state is not kept) */
                c[i] = (ms_chunk){s[i], tok + (size_t)(r0 + i) * len, len, .last = 1};
            }
            if (ms_forward_cols(ctx, c, n, cols, 4, lg, NULL) != MS_OK) goto done;
            if (!pass) break;
        }
        secs[pass] = ms_now() - t0;
    }
    rate = (double)n_reads * len / median(secs + 1, repeats);
done:
    for (int i = 0; s && i < per_call; i++) ms_stream_free(s[i]);
    free(s); free(c); free(tok); free(lg); free(secs);
    return rate;
}

/* `n_streams` streams fed `steps` chunks of `len` tokens each, all in one call per step;
 * one warm-up step (the state is not zero when timing starts), then `repeats` runs of
 * `steps` steps. Returns tokens/s of the median run, 0 on error. */
static double bench_batch(ms_ctx *ctx, const ms_model_info *info, int n_streams, int len, int steps,
                          int repeats)
{
    ms_stream **s = calloc(n_streams, sizeof *s);
    ms_chunk *c = calloc(n_streams, sizeof *c);
    int32_t *tok = malloc(sizeof(int32_t) * n_streams * len);
    float *lg = malloc(sizeof(float) * n_streams * len * 4);
    double *secs = calloc(repeats, sizeof *secs);
    int cols[4] = {0, 1, 2, 3};
    double rate = 0;
    if (!s || !c || !tok || !lg || !secs) goto done;
    for (int i = 0; i < n_streams; i++)
        if (ms_stream_new(ctx, &s[i]) != MS_OK) goto done;
    fill_tokens(tok, (size_t)n_streams * len, info->n_vocab, 3);
    for (int i = 0; i < n_streams; i++) c[i] = (ms_chunk){s[i], tok + (size_t)i * len, len};
    if (ms_forward_cols(ctx, c, n_streams, cols, 4, lg, NULL) != MS_OK) goto done; /* warm-up */
    for (int r = 0; r < repeats; r++) {
        double t0 = ms_now();
        for (int k = 0; k < steps; k++)
            if (ms_forward_cols(ctx, c, n_streams, cols, 4, lg, NULL) != MS_OK) goto done;
        secs[r] = ms_now() - t0;
    }
    rate = (double)n_streams * len * steps / median(secs, repeats);
done:
    for (int i = 0; s && i < n_streams; i++) ms_stream_free(s[i]);
    free(s); free(c); free(tok); free(lg); free(secs);
    return rate;
}

static floor_model floor_of(const ms_model *m, ms_precision precision)
{
    floor_model f = {0};
    for (int i = 0; i < ms_st_count(m->files); i++) f.params += (double)ms_st_at(m->files, i)->n_elem;
    f.weight_bytes = f.params * (precision == MS_PREC_FP32 ? 4 : 2);
    f.state_bytes = (double)ms_state_floats(&m->cfg) * sizeof(float);
    return f;
}

/* The floor's tokens/s (see the top of the file); decode_batch 0 = scoring. */
static double floor_tok_s(const floor_model *f, int decode_batch)
{
    if (!decode_batch) return FLOOR_SCORE_TOK_S * FLOOR_REF_PARAMS / f->params;
    const double step_s = (f->weight_bytes + decode_batch * f->state_bytes * 2) / FLOOR_BYTES_S;
    return decode_batch / step_s;
}

/* A context for one workload: up to max_tokens tokens in up to max_streams chunks per
 * call. NULL after the error line. */
static ms_ctx *open_ctx(const ms_model *model, const bench_opts *o, int64_t max_tokens, int max_streams)
{
    if (max_tokens > (1LL << 28)) {
        fprintf(stderr, "mamba-stream bench: %lld tokens per forward call is too many (lower "
                        "--chunk or --reads-per-call)\n", (long long)max_tokens);
        return NULL;
    }
    ms_ctx_params cp = ms_ctx_default_params();
    cp.device = o->c.device;
    cp.device_index = o->c.device_index;
    cp.precision = o->c.precision;
    cp.max_tokens = (int)max_tokens;
    cp.max_streams = max_streams;
    ms_ctx *ctx;
    return ms_ctx_new(model, &cp, &ctx) == MS_OK ? ctx : NULL;
}

/* One row: ours, the floor's fraction (GPU only) and, with --peer, mamba_ssm's tokens/s,
 * peak memory and the ratio. decode_batch 0 = a scoring row (ms per token), else ms per
 * decode step. */
static void print_row(const bench_opts *o, const char *label, const char *workload,
                      const bench_result *r, int decode_batch, const floor_model *f,
                      const ms_peer_result *p)
{
    const int gpu = o->c.device == MS_DEVICE_CUDA;
    char rate[32] = "fails", ms[32] = "-", peak[32] = "-", frac[32] = "-";
    if (r->tok_s > 0) {
        snprintf(rate, sizeof rate, "%.0f", r->tok_s);
        const double m = 1e3 * (decode_batch ? decode_batch : 1) / r->tok_s;
        snprintf(ms, sizeof ms, m < 1000 ? "%.3g" : "%.0f", m); /* 3 digits, no exponent */
        if (gpu) snprintf(frac, sizeof frac, "%.1f%%", 100 * r->tok_s / floor_tok_s(f, decode_batch));
    }
    if (r->peak) snprintf(peak, sizeof peak, "%.2f", r->peak / 1073741824.0);
    printf("| %s | %s | %s | %s | %s | %s |", label, workload, rate, ms, peak, frac);
    if (p && p->tok_s > 0) {
        char ratio[32] = "-";
        if (r->tok_s > 0) snprintf(ratio, sizeof ratio, "%.3gx", r->tok_s / p->tok_s);
        printf(" %.0f | %.2f | %s |", p->tok_s, p->peak_gib, ratio);
    } else if (p) {
        printf(" fails: %s | - | - |", p->error);
    }
    printf("\n");
    fflush(stdout);
}

/* mamba_ssm's result for one workload ("stream", "reads" or "decode:B") in our shapes. */
static void run_peer(const bench_opts *o, const ms_model_info *info, const char *workload,
                     ms_peer_result *p)
{
    const ms_peer_shapes s = {.arch = info->arch == MS_ARCH_MAMBA1 ? "mamba1" : "mamba2",
                              .d_model = info->d_model, .n_layer = info->n_layer,
                              .tokens = o->tokens, .reads = o->reads, .read_len = o->read_len,
                              .reads_per_call = o->reads_per_call,
                              .decode_steps = o->decode_steps, .repeats = o->repeats};
    ms_peer_run(o->peer, &s, workload, p);
}

static int run_arch(const bench_opts *o, const char *model_dir, const char *label)
{
    ms_model_params mp = ms_model_default_params();
    mp.n_threads = o->c.n_threads;
    ms_model *model;
    if (ms_model_load(model_dir, &mp, &model) != MS_OK) return 1;
    const ms_model_info *info = ms_model_info_get(model);
    const floor_model f = floor_of(model, o->c.precision);
    ms_peer_result peer, *pp = o->peer ? &peer : NULL;
    char what[128];

    bench_result r = {0};
    ms_ctx *ctx = open_ctx(model, o, o->c.chunk, 1);
    if (ctx) {
        r.tok_s = bench_stream(o, ctx, info);
        r.peak = ms_ctx_peak_device_bytes(ctx);
        ms_ctx_free(ctx); /* before the peer runs: the GPU is all its own */
    }
    if (pp) run_peer(o, info, "stream", pp);
    snprintf(what, sizeof what, "one stream, %lld tokens, chunk %d", (long long)o->tokens, o->c.chunk);
    print_row(o, label, what, &r, 0, &f, pp);

    r = (bench_result){0};
    ctx = open_ctx(model, o, (int64_t)o->reads_per_call * o->read_len, o->reads_per_call);
    if (ctx) {
        r.tok_s = bench_reads(ctx, info, o->reads, o->read_len, o->reads_per_call, o->repeats);
        r.peak = ms_ctx_peak_device_bytes(ctx);
        ms_ctx_free(ctx);
    }
    if (pp) run_peer(o, info, "reads", pp);
    snprintf(what, sizeof what, "%d reads x %d tokens (%d per call)", o->reads, o->read_len,
             o->reads_per_call);
    print_row(o, label, what, &r, 0, &f, pp);

    for (const char *p = o->decode_batches; p && *p;) {
        const int b = atoi(p);
        r = (bench_result){0};
        ctx = open_ctx(model, o, b, b);
        if (ctx) {
            r.tok_s = bench_batch(ctx, info, b, 1, o->decode_steps, o->repeats);
            r.peak = ms_ctx_peak_device_bytes(ctx);
            ms_ctx_free(ctx);
        }
        snprintf(what, sizeof what, "decode:%d", b);
        if (pp) run_peer(o, info, what, pp);
        snprintf(what, sizeof what, "decode, batch %d", b);
        print_row(o, label, what, &r, b, &f, pp);
        p = strchr(p, ',');
        if (p) p++;
    }
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
"head_dim 64) or on --model DIR, and prints a table per workload: tokens/s, ms per token\n"
"(decode: per step), peak device memory of the workload's own context (CUDA), and the\n"
"fraction of the floor reached (CUDA). Times are medians of --repeats runs after a warm-up.\n"
"\n"
"  --arch A            mamba1 | mamba2 | both [both]\n"
"  --model DIR         time this model instead of random weights\n"
"  --d-model N         width of the random model [768]\n"
"  --n-layer N         layers of the random model [24]\n"
"  --tokens N          length of the long stream [4096 on cpu, 1048576 on cuda]\n"
"  --chunk N           chunk length for the long stream [2048 on cpu, 65536 on cuda]\n"
"  --reads N           reads in the batch workload [16 on cpu, 4096 on cuda]; each read\n"
"                      a whole stream, its final state not kept (as the reads command)\n"
"  --reads-per-call N  reads batched into one forward call [16 on cpu, 512 on cuda]\n"
"  --read-len N        tokens per read [160]\n"
"  --decode B,B,..     decode batch sizes [1,16 on cpu; 1,64,1024 on cuda]\n"
"  --decode-steps N    decode steps per timed run [32]\n"
"  --repeats N         timed runs per workload, the median reported [1 on cpu, 3 on cuda]\n"
"  --device D          cpu | cuda | cuda:N [cpu]\n"
"  --precision P       fp32 | bf16 | fp16 [fp32 on cpu, bf16 on cuda]\n"
"  --threads N         CPU threads [all cores]\n"
"  --peer DIR          also run every workload through mamba_ssm installed in DIR (e.g. by\n"
"                      pip install --target DIR) on the GPU, in the same shapes, dtype and\n"
"                      random-weight models, and print its tokens/s, its peak memory and\n"
"                      the ratio ours / mamba_ssm. mamba_ssm takes the long stream whole\n"
"                      (it cannot carry state between chunks); what it cannot run reads\n"
"                      \"fails\". Runs bench/peer_mamba_ssm.py with python3 and DIR first in\n"
"                      PYTHONPATH ($MAMBA_STREAM_PEER_SCRIPT, $MAMBA_STREAM_PEER_PYTHON\n"
"                      override the script and the interpreter); random models only\n"
"  --write-model DIR   only write the random model of --arch (mamba1 or mamba2; bf16) to\n"
"                      DIR, for timing other commands on it (DIR must exist)\n"
"\n"
"The floor (BENCHMARKS.md, an H100: 3.0 TB/s device copy, 777 TFLOP/s bf16):\n"
"  scoring (stream, reads)  3.5 M tok/s (~0.3 s per million tokens) for the 90.5 M-\n"
"                           parameter reference, x 90.5 M / parameters for other shapes\n"
"  decode, batch b          the weights read once and b float32 states read and written\n"
"                           once per step: (P x 2 bytes + b x S x 4 bytes x 2) / 3.0 TB/s\n"
"                           per step, P parameters (4 bytes each in fp32), S = n_layer x\n"
"                           (SSM state + conv_dim x (d_conv - 1)) floats per stream;\n"
"                           reference Mamba-1: 62 us at batch 1 (BENCHMARKS.md's 57 us\n"
"                           counts 170 MB of weights and no state), 2.0 ms at 1024\n"
"\"floor %%\" = our tokens/s / the floor's (on an H200, at 4.8 TB/s, 100%% is not the limit).\n");
}

/* "B,B,..": every B a whole number in [1, 1 << 20]. 0, or -1 after the error line. */
static int check_batches(const char *list)
{
    char item[32];
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item - 1 ? n : sizeof item - 1), p);
        if (ms_cli_parse_int("--decode", item, 1, 1 << 20) < 0) return -1;
        p += n;
        if (*p) p++;
    }
    return 0;
}

int ms_cmd_bench(int argc, char **argv)
{
    bench_opts o = {0};
    o.arch = "both";
    o.read_len = 160;
    o.decode_steps = 32;
    o.d_model = 768;
    o.n_layer = 24;
    const char *model_dir = NULL, *write_dir = NULL, *peer_dir = NULL;
    int prec_set = 0;
    enum { O_ARCH = 256, O_MODEL, O_DM, O_NL, O_TOK, O_CHUNK, O_READS, O_RLEN, O_DEC, O_DSTEPS,
           O_DEVICE, O_PREC, O_THREADS, O_RPC, O_WRITE, O_REPEATS, O_PEER };
    static const struct option opts[] = {
        {"arch", 1, 0, O_ARCH}, {"model", 1, 0, O_MODEL}, {"d-model", 1, 0, O_DM},
        {"n-layer", 1, 0, O_NL}, {"tokens", 1, 0, O_TOK}, {"chunk", 1, 0, O_CHUNK},
        {"reads", 1, 0, O_READS}, {"read-len", 1, 0, O_RLEN}, {"reads-per-call", 1, 0, O_RPC}, {"decode", 1, 0, O_DEC},
        {"decode-steps", 1, 0, O_DSTEPS}, {"device", 1, 0, O_DEVICE}, {"precision", 1, 0, O_PREC},
        {"threads", 1, 0, O_THREADS}, {"write-model", 1, 0, O_WRITE}, {"repeats", 1, 0, O_REPEATS},
        {"peer", 1, 0, O_PEER}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
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
        case O_DEC: bad |= check_batches(optarg) != 0; o.decode_batches = optarg; break;
        case O_DSTEPS: bad |= (v = ms_cli_parse_int("--decode-steps", optarg, 1, 1 << 20)) < 0; o.decode_steps = (int)v; break;
        case O_REPEATS: bad |= (v = ms_cli_parse_int("--repeats", optarg, 1, 1000)) < 0; o.repeats = (int)v; break;
        case O_DEVICE: bad |= ms_cli_parse_device(optarg, &o.c) != 0; break;
        case O_PREC: bad |= ms_cli_parse_precision(optarg, &o.c) != 0; prec_set = 1; break;
        case O_THREADS: bad |= (v = ms_cli_parse_int("--threads", optarg, 1, 4096)) < 0; o.c.n_threads = (int)v; break;
        case O_WRITE: write_dir = optarg; break;
        case O_PEER: peer_dir = optarg; break;
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
    if (peer_dir && model_dir) {
        /* the peer builds its models from the reference shapes, not from a model folder */
        fprintf(stderr, "mamba-stream bench: --peer times the random reference-shaped models; "
                        "drop --model\n");
        return 2;
    }
    const int gpu = o.c.device == MS_DEVICE_CUDA;
    if (!o.tokens) o.tokens = gpu ? 1048576 : 4096;
    if (!o.c.chunk) o.c.chunk = gpu ? 65536 : 2048;
    if (!o.reads) o.reads = gpu ? 4096 : 16;
    if (!o.reads_per_call) o.reads_per_call = gpu ? 512 : 16;
    if (o.reads_per_call > o.reads) o.reads_per_call = o.reads;
    if (!o.decode_batches) o.decode_batches = gpu ? "1,64,1024" : "1,16";
    if (!o.repeats) o.repeats = gpu ? 3 : 1;
    if (!prec_set && gpu) o.c.precision = MS_PREC_BF16;

    /* the peer is checked before anything is timed: a wrong DIR costs seconds, not a run */
    static ms_peer peer;
    if (peer_dir) {
        if (ms_peer_open(&peer, peer_dir, o.c.device_index, o.c.precision) != 0) return 1;
        o.peer = &peer;
    }
    char cpu[256];
    machine_name(cpu, sizeof cpu);
    printf("mamba-stream %s bench: device %s, precision %s, %s, %ld threads\n", MS_VERSION,
           gpu ? "cuda" : "cpu", o.c.precision == MS_PREC_FP32 ? "fp32" : o.c.precision == MS_PREC_BF16 ? "bf16" : "fp16",
           cpu, sysconf(_SC_NPROCESSORS_ONLN));
    if (o.peer) printf("peer: %s, from %s\n", peer.about, peer.dir);
    if (gpu)
        printf("floor %%: of BENCHMARKS.md's floor on an H100 (scoring 3.5 M tok/s for 90.5 M "
               "parameters; decode: weights + float32 states once per step at 3.0 TB/s)\n");
    printf("\n| model | workload | tok/s | ms/token (decode: ms/step) | peak GiB | floor %% |%s\n"
           "|---|---|---|---|---|---|%s\n",
           o.peer ? " mamba_ssm tok/s | mamba_ssm peak GiB | ours / mamba_ssm |" : "",
           o.peer ? "---|---|---|" : "");
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
