/* cuda_bench.c - the reference workload of ../shared/BENCHMARKS.md on the CUDA backend.
 *
 *   cuda_bench [--quick] [--chunk N] [--device I] [--arch 1|2]   (--arch: that model only)
 *
 * Builds the two reference models with random weights (d_model 768, 24 layers, expand 2,
 * vocab 16; Mamba-1 d_state 16; Mamba-2 d_state 128, head_dim 64), writes each to a
 * temporary model directory (safetensors + config.json) and loads it with ms_model_load,
 * then runs in bf16:
 *   - one stream of 1,048,576 tokens in chunks of --chunk (default 32768), scoring the
 *     four base columns (ms_forward_cols): tok/s and device memory in use;
 *   - 4,096 reads x 160 tokens, 512 reads per call, fresh state per read;
 *   - decode (chunks of one token) at batch 1, 64 and 1024: ms per step and tok/s.
 * Each time is the median of several runs after a warm-up, measured with CUDA events
 * around synchronous ms_forward calls. The floor (BENCHMARKS.md): matrix FLOPs at
 * 777 TFLOP/s vs ~0.5 MB of traffic per token at 3.0 TB/s for scoring; for decode, the
 * weights plus every stream's state read and written once per step at 3.0 TB/s. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "mamba_stream.h"
#include "safetensors.h"

#define CHECK(x)                                                                            \
    do {                                                                                    \
        int rc_ = (x);                                                                      \
        if (rc_ != 0) {                                                                     \
            fprintf(stderr, "cuda_bench: %s failed (%d) at line %d\n", #x, rc_, __LINE__);  \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

static uint64_t rng = 0x1234567887654321ull;
static float frand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.f;
}

typedef struct {
    ms_st_out t[400];
    float *buf[400];
    char name[400][80];
    int n;
} tlist;

static float *add(tlist *l, const char *name, int nd, int64_t a, int64_t b, int64_t c, float scale,
                  float off)
{
    int64_t n = a * (nd > 1 ? b : 1) * (nd > 2 ? c : 1);
    float *x = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) x[i] = off + scale * frand();
    int i = l->n++;
    snprintf(l->name[i], sizeof l->name[i], "%s", name);
    l->buf[i] = x;
    l->t[i] = (ms_st_out){.name = l->name[i], .dtype = MS_DT_F32, .n_dim = nd, .shape = {a, b, c},
                          .data = x};
    return x;
}

/* Random reference model (mamba2 = 0/1) written under dir; returns matrix params. */
static double make_model(const char *dir, int mamba2)
{
    const int D = 768, NL = 24, V = 16, E = 1536, K = 4, R = 48;
    const int N = mamba2 ? 128 : 16, P = 64, H = E / P, G = 1;
    const int cd = mamba2 ? E + 2 * G * N : E, ip = mamba2 ? 2 * E + 2 * G * N + H : 2 * E;
    char path[1024], cfg[1024];
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    CHECK(system(path));
    if (!mamba2)
        snprintf(cfg, sizeof cfg,
                 "{\"model_type\": \"mamba\", \"hidden_size\": %d, \"num_hidden_layers\": %d, "
                 "\"vocab_size\": %d, \"state_size\": %d, \"conv_kernel\": %d, "
                 "\"intermediate_size\": %d, \"time_step_rank\": %d, \"use_bias\": false, "
                 "\"tie_word_embeddings\": true}", D, NL, V, N, K, E, R);
    else
        snprintf(cfg, sizeof cfg,
                 "{\"model_type\": \"mamba2\", \"hidden_size\": %d, \"num_hidden_layers\": %d, "
                 "\"vocab_size\": %d, \"state_size\": %d, \"conv_kernel\": %d, \"expand\": 2, "
                 "\"head_dim\": %d, \"num_heads\": %d, \"n_groups\": %d, \"use_bias\": false, "
                 "\"tie_word_embeddings\": true}", D, NL, V, N, K, P, H, G);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(cfg, f) < 0 || fclose(f)) { perror(path); exit(1); }
    tlist *l = calloc(1, sizeof *l);
    char nm[80];
    add(l, "backbone.embeddings.weight", 2, V, D, 0, 1.f, 0.f);
    add(l, "backbone.norm_f.weight", 1, D, 0, 0, 0.1f, 1.f);
    const float si = 1.f / sqrtf(D), se = 1.f / sqrtf(E);
    double mp = (double)V * D;
    for (int i = 0; i < NL; i++) {
#define NM(s) (snprintf(nm, sizeof nm, "backbone.layers.%d.%s", i, s), nm)
        add(l, NM("norm.weight"), 1, D, 0, 0, 0.1f, 1.f);
        add(l, NM("mixer.in_proj.weight"), 2, ip, D, 0, si, 0.f);
        add(l, NM("mixer.conv1d.weight"), 3, cd, 1, K, 0.5f, 0.f);
        add(l, NM("mixer.conv1d.bias"), 1, cd, 0, 0, 0.1f, 0.f);
        add(l, NM("mixer.out_proj.weight"), 2, D, E, 0, se, 0.f);
        mp += (double)ip * D + (double)D * E;
        if (!mamba2) {
            float *a = add(l, NM("mixer.A_log"), 2, E, N, 0, 0.f, 0.f);
            for (int j = 0; j < E * N; j++) a[j] = logf(1.f + j % N);
            add(l, NM("mixer.D"), 1, E, 0, 0, 0.1f, 1.f);
            add(l, NM("mixer.x_proj.weight"), 2, R + 2 * N, E, 0, se, 0.f);
            add(l, NM("mixer.dt_proj.weight"), 2, E, R, 0, 1.f / sqrtf(R), 0.f);
            add(l, NM("mixer.dt_proj.bias"), 1, E, 0, 0, 1.f, -4.f);
            mp += (double)(R + 2 * N) * E + (double)E * R;
        } else {
            add(l, NM("mixer.A_log"), 1, H, 0, 0, 1.f, 1.f);
            add(l, NM("mixer.D"), 1, H, 0, 0, 0.1f, 1.f);
            add(l, NM("mixer.dt_bias"), 1, H, 0, 0, 1.f, -4.f);
            add(l, NM("mixer.norm.weight"), 1, E, 0, 0, 0.1f, 1.f);
        }
#undef NM
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(ms_st_write(path, l->t, l->n));
    for (int i = 0; i < l->n; i++) free(l->buf[i]);
    free(l);
    return mp;
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}
static float median(float *x, int n)
{
    qsort(x, n, sizeof *x, cmp_f);
    return x[n / 2];
}

static cudaEvent_t ev0, ev1;
static void tic(void) { cudaEventRecord(ev0, 0); }
static float toc(void) /* ms */
{
    float ms = 0;
    cudaEventRecord(ev1, 0);
    cudaEventSynchronize(ev1);
    cudaEventElapsedTime(&ms, ev0, ev1);
    return ms;
}

static double used_mib(void)
{
    size_t fr, tot;
    cudaMemGetInfo(&fr, &tot);
    return (tot - fr) / 1048576.0;
}

typedef struct {
    const char *what;
    double value;   /* tok/s */
    double ms;      /* ms per call / step */
    double mem;     /* MiB in use by the context + states */
    double floor_toks;
} row;

static void print_row(const char *model, const row *r);
static void done_row(int arch, const row *r)
{
    print_row(arch ? "Mamba-2" : "Mamba-1", r);
}

static void print_row(const char *model, const row *r)
{
    printf("| %-8s | %-34s | %10.3f M | %9.3f | %8.0f | %5.1f%% |\n", model, r->what, r->value / 1e6,
           r->ms, r->mem, 100.0 * r->value / r->floor_toks);
}

int main(int argc, char **argv)
{
    int quick = 0, chunk = 32768, dev = 0, only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) chunk = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) dev = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc) only = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: cuda_bench [--quick] [--chunk N] [--device I] [--arch 1|2]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        fprintf(stderr, "cuda_bench: no CUDA device\n");
        return 77;
    }
    struct cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, dev);
    cudaSetDevice(dev);
    cudaEventCreate(&ev0);
    cudaEventCreate(&ev1);
    const long stream_len = quick ? 262144 : 1048576;
    const int n_reads = 4096, read_len = 160, reads_per_call = 512;
    const int dec_batches[3] = {1, 64, 1024};
    char tmpl[] = "/tmp/ms-bench-XXXXXX";
    if (!mkdtemp(tmpl)) { perror("mkdtemp"); return 1; }
    printf("device %s, bf16, chunk %d\n\n", prop.name, chunk);
    row rows[2][8];
    int nrows[2] = {0, 0};

    for (int arch = 0; arch < 2; arch++) {
        if (only && only != arch + 1) continue;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/m%d", tmpl, arch + 1);
        const double mparams = make_model(dir, arch);
        ms_model *m;
        CHECK(ms_model_load(dir, NULL, &m));
        fprintf(stderr, "cuda_bench: Mamba-%d model written and loaded (%.1f M matrix params)\n",
                arch + 1, mparams / 1e6);
        const int N = arch ? 128 : 16, E = 1536, NL = 24, cd = arch ? E + 256 : E;
        const double state_bytes = 4.0 * NL * ((double)cd * 3 + (double)E * N);
        /* scoring floor: matrix FLOPs vs 0.5 MB / token of traffic */
        const double t_tok = fmax(2 * mparams / 777e12, 0.5e6 / 3.0e12);
        const double floor_score = 1.0 / t_tok;
        const double base = used_mib();
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_reads * read_len);
        for (int i = 0; i < n_reads * read_len; i++) ids[i] = (int32_t)(rng = rng * 6364136223846793005ull + 1, (rng >> 33) % 4);
        int32_t *sids = malloc(sizeof(int32_t) * chunk);
        int cols[4] = {0, 1, 2, 3};
        float *out = malloc(sizeof(float) * (size_t)(chunk > 81920 ? chunk : 81920) * 4);

        /* 1. one long stream */
        {
            ms_ctx_params cp = ms_ctx_default_params();
            cp.device = MS_DEVICE_CUDA;
            cp.device_index = dev;
            cp.precision = MS_PREC_BF16;
            cp.max_tokens = chunk;
            cp.max_streams = 1;
            ms_ctx *ctx;
            CHECK(ms_ctx_new(m, &cp, &ctx));
            ms_stream *s;
            CHECK(ms_stream_new(ctx, &s));
            for (int i = 0; i < chunk; i++) sids[i] = ids[i % (n_reads * read_len)];
            ms_chunk c = {s, sids, chunk};
            for (int w = 0; w < 2; w++) CHECK(ms_forward_cols(ctx, &c, 1, cols, 4, out, NULL));
            float t[5];
            const int reps = quick ? 1 : 3;
            for (int r = 0; r < reps; r++) {
                ms_stream_reset(s);
                tic();
                for (long done = 0; done < stream_len; done += chunk)
                    CHECK(ms_forward_cols(ctx, &c, 1, cols, 4, out, NULL));
                t[r] = toc();
            }
            float ms = median(t, reps);
            row *rw = &rows[arch][nrows[arch]++];
            static char what[2][64];
            snprintf(what[arch], sizeof what[arch], "1 stream x %ld tok (chunk %d)", stream_len, chunk);
            *rw = (row){what[arch], stream_len / (ms / 1e3), ms, used_mib() - base, floor_score};
            done_row(arch, rw);
            ms_stream_free(s);
            ms_ctx_free(ctx);
        }
        /* 2. reads */
        {
            ms_ctx_params cp = ms_ctx_default_params();
            cp.device = MS_DEVICE_CUDA;
            cp.device_index = dev;
            cp.precision = MS_PREC_BF16;
            cp.max_tokens = reads_per_call * read_len;
            cp.max_streams = reads_per_call;
            ms_ctx *ctx;
            CHECK(ms_ctx_new(m, &cp, &ctx));
            ms_stream **s = malloc(sizeof *s * reads_per_call);
            ms_chunk *c = malloc(sizeof *c * reads_per_call);
            for (int i = 0; i < reads_per_call; i++) CHECK(ms_stream_new(ctx, &s[i]));
            float t[5];
            const int reps = quick ? 2 : 4;
            for (int r = 0; r < reps + 1; r++) {
                tic();
                for (int b0 = 0; b0 < n_reads; b0 += reads_per_call) {
                    for (int i = 0; i < reads_per_call; i++) {
                        ms_stream_reset(s[i]);
                        c[i] = (ms_chunk){s[i], ids + (size_t)(b0 + i) * read_len, read_len};
                    }
                    CHECK(ms_forward_cols(ctx, c, reads_per_call, cols, 4, out, NULL));
                }
                float v = toc();
                if (r) t[r - 1] = v; /* the first is the warm-up */
            }
            float ms = median(t, reps);
            row *rw = &rows[arch][nrows[arch]++];
            *rw = (row){"4096 reads x 160 tok", (double)n_reads * read_len / (ms / 1e3), ms,
                        used_mib() - base, floor_score};
            done_row(arch, rw);
            for (int i = 0; i < reads_per_call; i++) ms_stream_free(s[i]);
            free(s); free(c);
            ms_ctx_free(ctx);
        }
        /* 3. decode */
        for (int k = 0; k < 3; k++) {
            const int B = dec_batches[k];
            ms_ctx_params cp = ms_ctx_default_params();
            cp.device = MS_DEVICE_CUDA;
            cp.device_index = dev;
            cp.precision = MS_PREC_BF16;
            cp.max_tokens = B;
            cp.max_streams = B;
            ms_ctx *ctx;
            CHECK(ms_ctx_new(m, &cp, &ctx));
            ms_stream **s = malloc(sizeof *s * B);
            ms_chunk *c = malloc(sizeof *c * B);
            for (int i = 0; i < B; i++) CHECK(ms_stream_new(ctx, &s[i]));
            const int steps = quick ? 10 : 30;
            float t[64];
            for (int st = 0; st < steps + 5; st++) {
                for (int i = 0; i < B; i++) c[i] = (ms_chunk){s[i], ids + (size_t)i * 17 + st, 1};
                tic();
                CHECK(ms_forward_cols(ctx, c, B, cols, 4, out, NULL));
                float v = toc();
                if (st >= 5) t[st - 5] = v;
            }
            float ms = median(t, steps);
            const double floor_step = (2 * mparams + B * 2 * state_bytes) / 3.0e12; /* s */
            row *rw = &rows[arch][nrows[arch]++];
            static char what[2][3][48];
            snprintf(what[arch][k], sizeof what[arch][k], "decode batch %d", B);
            *rw = (row){what[arch][k], B / (ms / 1e3), ms, used_mib() - base, B / floor_step};
            done_row(arch, rw);
            for (int i = 0; i < B; i++) ms_stream_free(s[i]);
            free(s); free(c);
            ms_ctx_free(ctx);
        }
        free(ids); free(sids); free(out);
        ms_model_free(m);
    }
    printf("\nsummary\n| model    | workload                           |      tok/s   | ms/call   | MiB used | floor  |\n");
    printf("|----------|------------------------------------|--------------|-----------|----------|--------|\n");
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < nrows[a]; i++) print_row(a ? "Mamba-2" : "Mamba-1", &rows[a][i]);
    printf("\nms/call: one whole workload (stream, reads) or one decode step; MiB used: device\n"
           "memory in use beyond the process's baseline (weights + scratch + states); floor:\n"
           "tok/s as a fraction of the floor of BENCHMARKS.md (see cuda_bench.c).\n");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
    if (system(cmd)) { /* best effort */ }
    return 0;
}
