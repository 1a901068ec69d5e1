/* test_cuda_backend.c - the CUDA backend against the float64 fixtures and the CPU backend.
 *
 * Label gpu: exits 77 (skipped, with the reason on stderr) where cudaGetDeviceCount finds
 * no device. Checks, in fp32 mode (TF32 off):
 *  - every fixture of test_engine.c within 1e-5 relative of its float64 reference, run
 *    whole, in chunks of 1 (the decode path), 7 and 64, and batched with unequal cuts; with
 *    the scan's segment length at its default and forced to 5 tokens (MS_CUDA_SEG_LEN), so
 *    the time-parallel (multi-segment) scan is exercised on every fixture;
 *  - random models (Mamba-1 and Mamba-2, d_state 16/64/128, n_groups > 1, odd widths,
 *    biases) against the CPU backend on random tokens, outputs and final states within
 *    1e-5 relative; ms_forward_cols equal to the selected columns;
 *  - chunk invariance and stream independence on the GPU, state get/set round trip;
 *  - bf16 mode against the CPU within the bound derived in test_bf16 (printed with the
 *    measured error);
 *  - audio classifiers (feature input through frontend.proj, classifier head with bias):
 *    random keyword spotters (random_model.h; Mamba-1 and Mamba-2 log-mel, Mamba-1 mu-law)
 *    against the CPU on a batch of unequal clips cut unevenly, fp32 within 1e-5 relative,
 *    bf16 / fp16 within the bound of test_bf16; ms_forward_cols over labels; on the GPU
 *    alone, chunks of 1 (decode, graph replay) / 7 / 100 and graphs off equal the whole
 *    clip, and unequal clips batched equal each clip alone; the shipped
 *    models/kws-mamba2-small reproduces its export-time logits (reference.safetensors) in
 *    fp32 within test_models.c's tolerance, bf16 within the bound;
 *  - decode (one token per stream per call, the fused step of decode_m1.cu, graphs on and
 *    off, the general path, and Mamba-1's wide scan kernel for many streams): 6 unequal
 *    streams over 400 steps; Mamba-1 d_state 16 and 64, odd d_inner, K 2/3/4; Mamba-2
 *    (fused conv step) d_state 64/128, n_groups 1/3; every step's logits within 1e-5
 *    relative of the CPU decoding
 *    the same way and of each stream run whole on the GPU; final states likewise; in bf16
 *    (gemm_few.cu's products of 2-6 streams, with in_proj's conv step, and cuBLAS's)
 *    within test_bf16's bound of the CPU;
 *  - a bad device index is refused with MS_ERR_BACKEND and one clear line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "mamba_stream.h"
#include "random_model.h"
#include "safetensors.h"
#include "test_cuda_util.h"
#include "test_util.h"

/* ------------------------------------------------------------------ fixtures */

typedef tu_ref_fixture fixture;

static ms_ctx *gpu_ctx(const ms_model *m, int max_tokens, int max_streams, ms_precision prec)
{
    ms_ctx_params cp = ms_ctx_default_params();
    cp.device = MS_DEVICE_CUDA;
    cp.precision = prec;
    cp.max_tokens = max_tokens;
    cp.max_streams = max_streams;
    ms_ctx *ctx = NULL;
    assert_int_equal(ms_ctx_new(m, &cp, &ctx), MS_OK);
    assert_string_equal(ms_ctx_backend_name(ctx), "cuda");
    return ctx;
}

/* Rows of ids [B][L] through ctx, each its own stream, in chunks of `chunk` (0 = whole). */
static void run_rows(ms_ctx *ctx, const int32_t *ids, int B, int L, int V, int D, int chunk,
                     float *logits, float *hidden)
{
    for (int b = 0; b < B; b++) {
        ms_stream *s;
        assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
        int step = chunk ? chunk : L;
        for (int t = 0; t < L; t += step) {
            int n = t + step <= L ? step : L - t;
            ms_chunk c = {s, ids + (size_t)b * L + t, n};
            size_t row = (size_t)b * L + t;
            assert_int_equal(ms_forward(ctx, &c, 1, logits ? logits + row * V : NULL,
                                        hidden ? hidden + row * D : NULL),
                             MS_OK);
        }
        ms_stream_free(s);
    }
}

/* All rows at once, cut unevenly (lengths 3..31 varying by step and row). */
static void run_batched(ms_ctx *ctx, const int32_t *ids, int B, int L, int V, int D,
                        float *logits, float *hidden)
{
    ms_stream **s = calloc(B, sizeof *s);
    int *done = calloc(B, sizeof *done), *from = calloc(B, sizeof *from);
    ms_chunk *c = calloc(B, sizeof *c);
    float *olg = malloc(sizeof(float) * B * L * V), *ohd = malloc(sizeof(float) * B * L * D);
    for (int b = 0; b < B; b++) assert_int_equal(ms_stream_new(ctx, &s[b]), MS_OK);
    for (int step = 0;; step++) {
        int n = 0;
        for (int b = 0; b < B; b++) {
            if (done[b] == L) continue;
            int len = 3 + (step * 5 + b * 11) % 29;
            if (done[b] + len > L) len = L - done[b];
            c[n] = (ms_chunk){s[b], ids + (size_t)b * L + done[b], len};
            from[n++] = b;
        }
        if (!n) break;
        assert_int_equal(ms_forward(ctx, c, n, olg, ohd), MS_OK);
        for (int k = 0, t = 0; k < n; t += c[k].n_tokens, k++) {
            size_t row = (size_t)from[k] * L + done[from[k]];
            memcpy(logits + row * V, olg + (size_t)t * V, sizeof(float) * c[k].n_tokens * V);
            memcpy(hidden + row * D, ohd + (size_t)t * D, sizeof(float) * c[k].n_tokens * D);
            done[from[k]] += c[k].n_tokens;
        }
    }
    for (int b = 0; b < B; b++) ms_stream_free(s[b]);
    free(s); free(done); free(from); free(c); free(olg); free(ohd);
}

static void poison(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static double worst_fixture_err;

static void check_fixture(const fixture *f, const float *lg, const float *hd, const char *what,
                          const char *name)
{
    double el = tu_rel_err(lg, f->logits, (size_t)f->B * f->L * f->V);
    double eh = tu_rel_err(hd, f->hidden, (size_t)f->B * f->L * f->D);
    print_message("  %-18s %-30s logits %.2e hidden %.2e\n", name, what, el, eh);
    if (el > worst_fixture_err) worst_fixture_err = el;
    if (eh > worst_fixture_err) worst_fixture_err = eh;
    assert_true(el <= 1e-5);
    assert_true(eh <= 1e-5);
}

static void test_fixtures(void **st)
{
    const char *segs[] = {NULL, "5"};
    for (int sg = 0; sg < 2; sg++) {
        if (segs[sg]) setenv("MS_CUDA_SEG_LEN", segs[sg], 1);
        else unsetenv("MS_CUDA_SEG_LEN");
        for (int i = 0; i < tu_n_fixtures; i++) {
            fixture f;
            tu_ref_fixture_load(tu_fixture_names[i], &f);
            size_t nl = (size_t)f.B * f.L * f.V, nh = (size_t)f.B * f.L * f.D;
            float *lg = malloc(sizeof(float) * nl), *hd = malloc(sizeof(float) * nh);
            ms_ctx *ctx = gpu_ctx(f.model, f.B * f.L, f.B, MS_PREC_FP32);
            int chunks[] = {0, 1, 7, 64};
            for (int k = 0; k < 4; k++) {
                poison(lg, nl); poison(hd, nh);
                run_rows(ctx, f.ids, f.B, f.L, f.V, f.D, chunks[k], lg, hd);
                char what[64];
                snprintf(what, sizeof what, "chunk %d seg %s", chunks[k], segs[sg] ? segs[sg] : "dflt");
                check_fixture(&f, lg, hd, what, tu_fixture_names[i]);
            }
            poison(lg, nl); poison(hd, nh);
            run_batched(ctx, f.ids, f.B, f.L, f.V, f.D, lg, hd);
            char what[64];
            snprintf(what, sizeof what, "batched uneven, seg %s", segs[sg] ? segs[sg] : "dflt");
            check_fixture(&f, lg, hd, what, tu_fixture_names[i]);
            ms_ctx_free(ctx);
            free(lg); free(hd);
            tu_ref_fixture_free(&f);
        }
    }
    unsetenv("MS_CUDA_SEG_LEN");
    print_message("  worst fixture error (fp32 on GPU vs float64): %.2e\n", worst_fixture_err);
}

/* ------------------------------------------------------------------ random models */

typedef struct {
    int mamba2, d_model, n_layer, vocab, d_state, d_conv;
    int d_inner, dt_rank;             /* M1 */
    int n_heads, head_dim, n_groups;  /* M2: d_inner = n_heads * head_dim = 2 * d_model */
    int use_bias, tie;
} shape;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.f;
}

typedef struct {
    ms_st_out t[512];
    float *bufs[512];
    char names[512][96];
    int n;
} tensor_list;

static float *add_tensor(tensor_list *tl, const char *name, int n_dim, int64_t d0, int64_t d1,
                         int64_t d2)
{
    int64_t n = d0 * (n_dim > 1 ? d1 : 1) * (n_dim > 2 ? d2 : 1);
    float *b = malloc(sizeof(float) * n);
    int i = tl->n++;
    assert_true(i < 512);
    snprintf(tl->names[i], sizeof tl->names[i], "%s", name);
    tl->bufs[i] = b;
    tl->t[i] = (ms_st_out){.name = tl->names[i], .dtype = MS_DT_F32, .n_dim = n_dim,
                           .shape = {d0, d1, d2}, .data = b};
    return b;
}

static void fill(float *x, size_t n, float scale, float offset)
{
    for (size_t i = 0; i < n; i++) x[i] = offset + scale * frand();
}

/* Write a HF-layout model directory with random weights; returns its path. */
static const char *make_model(const shape *s, const char *name)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), name);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    const int D = s->d_model, N = s->d_state, K = s->d_conv, V = s->vocab;
    const int E = s->mamba2 ? s->n_heads * s->head_dim : s->d_inner;
    const int H = s->n_heads, G = s->n_groups, R = s->dt_rank;
    const int cd = s->mamba2 ? E + 2 * G * N : E;
    const int ip = s->mamba2 ? 2 * E + 2 * G * N + H : 2 * E;
    char cfg[2048];
    if (!s->mamba2)
        snprintf(cfg, sizeof cfg,
                 "{\"model_type\": \"mamba\", \"hidden_size\": %d, \"num_hidden_layers\": %d, "
                 "\"vocab_size\": %d, \"state_size\": %d, \"conv_kernel\": %d, "
                 "\"intermediate_size\": %d, \"time_step_rank\": %d, \"use_bias\": %s, "
                 "\"use_conv_bias\": true, \"layer_norm_epsilon\": 1e-5, "
                 "\"tie_word_embeddings\": %s}",
                 D, s->n_layer, V, N, K, E, R, s->use_bias ? "true" : "false",
                 s->tie ? "true" : "false");
    else
        snprintf(cfg, sizeof cfg,
                 "{\"model_type\": \"mamba2\", \"hidden_size\": %d, \"num_hidden_layers\": %d, "
                 "\"vocab_size\": %d, \"state_size\": %d, \"conv_kernel\": %d, \"expand\": %d, "
                 "\"head_dim\": %d, \"num_heads\": %d, \"n_groups\": %d, \"use_bias\": %s, "
                 "\"use_conv_bias\": true, \"layer_norm_epsilon\": 1e-5, "
                 "\"time_step_limit\": [0.0, 1e9], \"tie_word_embeddings\": %s}",
                 D, s->n_layer, V, N, K, E / D, s->head_dim, H, G, s->use_bias ? "true" : "false",
                 s->tie ? "true" : "false");
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(tu_write_file(path, cfg, strlen(cfg)), 0);

    tensor_list *tl = calloc(1, sizeof *tl);
    char nm[96];
    fill(add_tensor(tl, "backbone.embeddings.weight", 2, V, D, 0), (size_t)V * D, 1.f, 0.f);
    fill(add_tensor(tl, "backbone.norm_f.weight", 1, D, 0, 0), D, 0.2f, 1.f);
    if (!s->tie) fill(add_tensor(tl, "lm_head.weight", 2, V, D, 0), (size_t)V * D, 0.3f, 0.f);
    const float si = 1.f / sqrtf((float)D), se = 1.f / sqrtf((float)E);
    for (int l = 0; l < s->n_layer; l++) {
#define T_(suffix) (snprintf(nm, sizeof nm, "backbone.layers.%d.%s", l, suffix), nm)
        fill(add_tensor(tl, T_("norm.weight"), 1, D, 0, 0), D, 0.2f, 1.f);
        fill(add_tensor(tl, T_("mixer.in_proj.weight"), 2, ip, D, 0), (size_t)ip * D, si, 0.f);
        if (s->use_bias) fill(add_tensor(tl, T_("mixer.in_proj.bias"), 1, ip, 0, 0), ip, 0.1f, 0.f);
        fill(add_tensor(tl, T_("mixer.conv1d.weight"), 3, cd, 1, K), (size_t)cd * K, 0.5f, 0.f);
        fill(add_tensor(tl, T_("mixer.conv1d.bias"), 1, cd, 0, 0), cd, 0.1f, 0.f);
        fill(add_tensor(tl, T_("mixer.out_proj.weight"), 2, D, E, 0), (size_t)D * E, se, 0.f);
        if (s->use_bias) fill(add_tensor(tl, T_("mixer.out_proj.bias"), 1, D, 0, 0), D, 0.1f, 0.f);
        if (!s->mamba2) {
            float *al = add_tensor(tl, T_("mixer.A_log"), 2, E, N, 0);
            for (int i = 0; i < E * N; i++) al[i] = logf(1.f + (i % N)) + 0.1f * frand();
            fill(add_tensor(tl, T_("mixer.D"), 1, E, 0, 0), E, 0.5f, 1.f);
            fill(add_tensor(tl, T_("mixer.x_proj.weight"), 2, R + 2 * N, E, 0),
                 (size_t)(R + 2 * N) * E, se, 0.f);
            fill(add_tensor(tl, T_("mixer.dt_proj.weight"), 2, E, R, 0), (size_t)E * R,
                 1.f / sqrtf((float)R), 0.f);
            fill(add_tensor(tl, T_("mixer.dt_proj.bias"), 1, E, 0, 0), E, 1.5f, -3.f);
        } else {
            fill(add_tensor(tl, T_("mixer.A_log"), 1, H, 0, 0), H, 1.f, 0.5f);
            fill(add_tensor(tl, T_("mixer.D"), 1, H, 0, 0), H, 0.5f, 1.f);
            fill(add_tensor(tl, T_("mixer.dt_bias"), 1, H, 0, 0), H, 1.5f, -3.f);
            fill(add_tensor(tl, T_("mixer.norm.weight"), 1, E, 0, 0), E, 0.2f, 1.f);
        }
#undef T_
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(ms_st_write(path, tl->t, tl->n), 0);
    for (int i = 0; i < tl->n; i++) free(tl->bufs[i]);
    free(tl);
    return dir;
}

static const shape shapes[] = {
    /* mamba2 d_model layers vocab N K  d_inner R  H  P  G  bias tie */
    {0, 64, 2, 16, 16, 4, 128, 4, 0, 0, 0, 0, 1},
    {0, 37, 3, 11, 64, 3, 75, 3, 0, 0, 0, 1, 0},   /* odd widths, biases, K 3 */
    {0, 48, 2, 16, 128, 4, 96, 5, 0, 0, 0, 0, 1},
    {1, 64, 2, 16, 64, 4, 0, 0, 8, 16, 1, 0, 0},
    {1, 36, 2, 13, 128, 4, 0, 0, 6, 12, 3, 1, 0},  /* n_groups 3, biases */
    {1, 40, 2, 16, 16, 4, 0, 0, 10, 8, 2, 0, 1},
    {1, 64, 2, 16, 32, 2, 0, 0, 4, 32, 4, 0, 1},   /* K 2, heads per group 1 */
    /* the reference Mamba-2's head: head_dim 64, d_state 128, one group (in 16-bit
     * precisions, ssd_out.cu's fused output at every segment length) */
    {1, 64, 2, 16, 128, 4, 0, 0, 2, 64, 1, 0, 0},
    /* the bundled model's head: head_dim 32, d_state 64, one group */
    {1, 64, 2, 16, 64, 4, 0, 0, 4, 32, 1, 0, 0},
    /* Mamba-1 d_state 16, biases, 136 channels: the staged scan's last 128-channel block
     * partly live, its copies past E reading nothing (x_proj rows 16-byte aligned in bf16
     * too, as the reference model's) */
    {0, 64, 2, 16, 16, 4, 136, 8, 0, 0, 0, 1, 0},
    /* Mamba-1 d_state 16, 81 channels: rows not 16-byte aligned, so the tiled scan runs in
     * place of the staged one (selective_scan.cu) */
    {0, 40, 2, 16, 16, 4, 81, 3, 0, 0, 0, 0, 0},
    /* the reference Mamba-2's widths in one layer: d_model 768 and a gated norm over 1,536
     * channels (the norms' block forms; shorter rows take their warp-row forms) */
    {1, 768, 1, 16, 16, 4, 0, 0, 24, 64, 1, 0, 0},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static void shape_name(const shape *s, char *buf, size_t n)
{
    if (s->mamba2)
        snprintf(buf, n, "m2 D%d N%d H%dxP%d G%d K%d%s", s->d_model, s->d_state, s->n_heads,
                 s->head_dim, s->n_groups, s->d_conv, s->use_bias ? " bias" : "");
    else
        snprintf(buf, n, "m1 D%d E%d N%d R%d K%d%s", s->d_model, s->d_inner, s->d_state,
                 s->dt_rank, s->d_conv, s->use_bias ? " bias" : "");
}

/* Streams of lengths lens[] run batched on ctx (same uneven cuts on both backends);
 * returns outputs in row order and each stream's final state. Input: ids [B][maxlen], or
 * for a feature model (ids NULL) feat [B][maxlen][F]. */
static void run_streams(ms_ctx *ctx, const int32_t *ids, const float *feat, int F,
                        const int *lens, int B, int maxlen, int V, int D, float *lg, float *hd,
                        float *states)
{
    ms_stream **s = calloc(B, sizeof *s);
    int *done = calloc(B, sizeof *done), *from = calloc(B, sizeof *from);
    ms_chunk *c = calloc(B, sizeof *c);
    int tot = 0;
    for (int b = 0; b < B; b++) tot += lens[b];
    float *olg = malloc(sizeof(float) * tot * V), *ohd = malloc(sizeof(float) * tot * D);
    for (int b = 0; b < B; b++) assert_int_equal(ms_stream_new(ctx, &s[b]), MS_OK);
    for (int step = 0;; step++) {
        int n = 0;
        for (int b = 0; b < B; b++) {
            if (done[b] == lens[b]) continue;
            int len = 1 + (step * 37 + b * 101) % 150;
            if (done[b] + len > lens[b]) len = lens[b] - done[b];
            const size_t row = (size_t)b * maxlen + done[b];
            c[n] = ids ? (ms_chunk){.stream = s[b], .tokens = ids + row, .n_tokens = len}
                       : (ms_chunk){.stream = s[b], .n_tokens = len, .features = feat + row * F};
            from[n++] = b;
        }
        if (!n) break;
        assert_int_equal(ms_forward(ctx, c, n, olg, ohd), MS_OK);
        for (int k = 0, t = 0; k < n; t += c[k].n_tokens, k++) {
            size_t row = (size_t)from[k] * maxlen + done[from[k]];
            memcpy(lg + row * V, olg + (size_t)t * V, sizeof(float) * c[k].n_tokens * V);
            memcpy(hd + row * D, ohd + (size_t)t * D, sizeof(float) * c[k].n_tokens * D);
            done[from[k]] += c[k].n_tokens;
        }
    }
    size_t ns = ms_stream_state_size(ctx);
    for (int b = 0; b < B; b++) {
        assert_int_equal(ms_stream_state_get(s[b], states + (size_t)b * ns), MS_OK);
        ms_stream_free(s[b]);
    }
    free(s); free(done); free(from); free(c); free(olg); free(ohd);
}

/* rel err over the rows actually produced (streams shorter than maxlen leave gaps) */
static double rows_err(const float *a, const float *b, const int *lens, int B, int maxlen, int w)
{
    double num = 0, den = 0;
    for (int r = 0; r < B; r++)
        for (size_t i = 0; i < (size_t)lens[r] * w; i++) {
            size_t k = (size_t)r * maxlen * w + i;
            double d = (double)a[k] - b[k];
            num += d * d;
            den += (double)b[k] * b[k];
        }
    return sqrt(num / den);
}

static int n_over_bound;

#define RB 4
#define RMAX 700

static void compare_shape(const shape *sh, int idx, ms_precision prec, double tol, double *worst)
{
    char nm[32], desc[96];
    snprintf(nm, sizeof nm, "rand%d", idx);
    shape_name(sh, desc, sizeof desc);
    ms_model *m;
    assert_int_equal(ms_model_load(make_model(sh, nm), NULL, &m), MS_OK);
    const int V = ms_model_info_get(m)->n_vocab, D = sh->d_model;
    const int lens[RB] = {RMAX, 333, 1, 129};
    int32_t *ids = malloc(sizeof(int32_t) * RB * RMAX);
    for (int i = 0; i < RB * RMAX; i++) ids[i] = (int32_t)((frand() + 1.f) * 0.5f * V) % V;
    size_t nl = (size_t)RB * RMAX * V, nh = (size_t)RB * RMAX * D;
    float *lc = calloc(nl, 4), *hc = calloc(nh, 4), *lg = calloc(nl, 4), *hg = calloc(nh, 4);

    ms_ctx_params cp = ms_ctx_default_params();
    cp.max_tokens = 4 * 150;
    cp.max_streams = RB;
    ms_ctx *cpu;
    assert_int_equal(ms_ctx_new(m, &cp, &cpu), MS_OK);
    size_t ns = ms_stream_state_size(cpu);
    float *sc = malloc(sizeof(float) * ns * RB), *sg = malloc(sizeof(float) * ns * RB);
    run_streams(cpu, ids, NULL, 0, lens, RB, RMAX, V, D, lc, hc, sc);
    ms_ctx_free(cpu);

    const char *segs[] = {NULL, "16"};
    for (int k = 0; k < 2; k++) {
        if (segs[k]) setenv("MS_CUDA_SEG_LEN", segs[k], 1);
        else unsetenv("MS_CUDA_SEG_LEN");
        ms_ctx *gpu = gpu_ctx(m, 4 * 150, RB, prec);
        poison(lg, nl); poison(hg, nh);
        run_streams(gpu, ids, NULL, 0, lens, RB, RMAX, V, D, lg, hg, sg);
        double el = rows_err(lg, lc, lens, RB, RMAX, V), eh = rows_err(hg, hc, lens, RB, RMAX, D);
        double es = tu_rel_err(sg, sc, ns * RB);
        print_message("  %-34s %s seg %-4s logits %.2e hidden %.2e state %.2e\n", desc,
                      prec == MS_PREC_FP32 ? "fp32" : "bf16", segs[k] ? segs[k] : "dflt", el, eh,
                      es);
        if (el > *worst) *worst = el;
        if (eh > *worst) *worst = eh;
        if (es > *worst) *worst = es;
        if (prec == MS_PREC_FP32) assert_true(el <= tol && eh <= tol && es <= tol);
        else if (!(el <= tol && eh <= tol && es <= tol)) n_over_bound++; /* all printed first */

        if (prec == MS_PREC_FP32 && k == 0) {
            /* ms_forward_cols: the selected columns of the full logits */
            int cols[3] = {V - 1, 0, V / 2};
            ms_stream *s;
            assert_int_equal(ms_stream_new(gpu, &s), MS_OK);
            float *sel = malloc(sizeof(float) * 150 * 3);
            ms_chunk c = {s, ids, 150};
            assert_int_equal(ms_forward_cols(gpu, &c, 1, cols, 3, sel, NULL), MS_OK);
            for (int t = 0; t < 150; t++)
                for (int j = 0; j < 3; j++) {
                    float ref = lg[(size_t)t * V + cols[j]];
                    assert_true(fabsf(sel[t * 3 + j] - ref) <= 1e-5f * (1.f + fabsf(ref)));
                }
            free(sel);
            ms_stream_free(s);
        }
        ms_ctx_free(gpu);
    }
    unsetenv("MS_CUDA_SEG_LEN");
    free(ids); free(lc); free(hc); free(lg); free(hg); free(sc); free(sg);
    ms_model_free(m);
}

static void test_random_vs_cpu(void **st)
{
    double worst = 0;
    for (int i = 0; i < N_SHAPES; i++) compare_shape(&shapes[i], i, MS_PREC_FP32, 1e-5, &worst);
    print_message("  worst GPU fp32 vs CPU error: %.2e\n", worst);
}

/* bf16: weights and activations rounded to 8 significant bits, unit roundoff
 * u = 2^-8 = 3.9e-3. A rounding's relative error is roughly uniform on [-u/2, u/2]
 * (rms u / sqrt(12) = 1.1e-3) and about k = 6 roundings lie on each layer's path (norm
 * output, in_proj output, conv output, x_proj / dt (M1) or scan output, out_proj input)
 * plus 2 at the head. Independent errors add in quadrature: expected relative error
 * ~ 1.1e-3 * sqrt(6 L + 2) (4.1e-3 for L = 2, 4.7e-3 for L = 3); the bound allows 4x that
 * for the amplification through the network (decays, softplus, norms). */
static void test_bf16(void **st)
{
    double worst = 0;
    for (int i = 0; i < N_SHAPES; i++) {
        const double expect = ldexp(1.0, -8) / sqrt(12.0) * sqrt(6.0 * shapes[i].n_layer + 2);
        double w = 0;
        compare_shape(&shapes[i], 100 + i, MS_PREC_BF16, 4 * expect, &w);
        print_message("    bound %.2e (expected ~%.2e)\n", 4 * expect, expect);
        if (w > worst) worst = w;
    }
    print_message("  worst GPU bf16 vs CPU fp32 error: %.2e\n", worst);
    assert_int_equal(n_over_bound, 0);
}

/* Chunk invariance, stream independence and state round trip, on the GPU alone. */
static void test_gpu_invariants(void **st)
{
    const shape sh = {1, 64, 2, 16, 64, 4, 0, 0, 8, 16, 2, 0, 1};
    ms_model *m;
    assert_int_equal(ms_model_load(make_model(&sh, "inv"), NULL, &m), MS_OK);
    const int V = 16, L = 500;
    int32_t ids[2 * 500];
    for (int i = 0; i < 2 * L; i++) ids[i] = (int32_t)((frand() + 1.f) * 8.f) % V;
    ms_ctx *ctx = gpu_ctx(m, 2 * L, 4, MS_PREC_FP32);
    float *whole = malloc(sizeof(float) * L * V), *part = malloc(sizeof(float) * L * V);
    float *two = malloc(sizeof(float) * 2 * L * V);
    run_rows(ctx, ids, 1, L, V, 64, 0, whole, NULL);
    int chunks[] = {1, 7, 64, 333};
    for (int k = 0; k < 4; k++) {
        poison(part, (size_t)L * V);
        run_rows(ctx, ids, 1, L, V, 64, chunks[k], part, NULL);
        double e = tu_rel_err(part, whole, (size_t)L * V);
        print_message("  chunk %3d vs whole: %.2e\n", chunks[k], e);
        assert_true(e <= 1e-5);
    }
    /* stream independence: stream 0 beside another stream equals stream 0 alone */
    ms_stream *a, *b;
    assert_int_equal(ms_stream_new(ctx, &a), MS_OK);
    assert_int_equal(ms_stream_new(ctx, &b), MS_OK);
    ms_chunk c2[2] = {{b, ids + L, L}, {a, ids, L}};
    assert_int_equal(ms_forward(ctx, c2, 2, two, NULL), MS_OK);
    double e = tu_rel_err(two + (size_t)L * V, whole, (size_t)L * V);
    print_message("  beside another stream: %.2e\n", e);
    assert_true(e <= 1e-5); /* cuBLAS may order sums differently for another T */
    /* state round trip: get mid-way, set into a fresh stream, continue */
    ms_stream_reset(a);
    ms_chunk c = {a, ids, 200};
    assert_int_equal(ms_forward(ctx, &c, 1, part, NULL), MS_OK);
    size_t ns = ms_stream_state_size(ctx);
    float *s1 = malloc(sizeof(float) * ns), *s2 = malloc(sizeof(float) * ns);
    assert_int_equal(ms_stream_state_get(a, s1), MS_OK);
    ms_stream_reset(b);
    assert_int_equal(ms_stream_state_set(b, s1), MS_OK);
    assert_int_equal(ms_stream_state_get(b, s2), MS_OK);
    assert_memory_equal(s1, s2, sizeof(float) * ns);
    c = (ms_chunk){b, ids + 200, L - 200};
    assert_int_equal(ms_forward(ctx, &c, 1, part + 200 * V, NULL), MS_OK);
    e = tu_rel_err(part, whole, (size_t)L * V);
    print_message("  state get/set round trip: %.2e\n", e);
    assert_true(e <= 1e-5);
    ms_stream_free(a); ms_stream_free(b);
    free(whole); free(part); free(two); free(s1); free(s2);
    ms_ctx_free(ctx);
    ms_model_free(m);
}

/* ------------------------------------------------------------------ fresh streams */

/* Logit rows fresh_sequence writes */
#define FR_ROWS (900 + 360 + 240 + 240 + 2 + 50 + 2)

/* One fixed sequence of calls on three streams of ctx: resets between calls, calls mixing
 * reset and continuing streams, a call of reset one-segment chunks only, a reset chunk
 * shorter than the conv window, a decode step. Logits of every call in out [FR_ROWS][V],
 * the streams' final states in states [3][state size]. */
static void fresh_sequence(ms_ctx *ctx, const int32_t *ids, int V, float *out, float *states)
{
    ms_stream *s[3];
    for (int i = 0; i < 3; i++) assert_int_equal(ms_stream_new(ctx, &s[i]), MS_OK);
    const size_t ns = ms_stream_state_size(ctx);
    float *o = out, *got = malloc(sizeof(float) * ns);
    /* three new streams, 300 tokens each (more than one segment) */
    ms_chunk c[3] = {{s[0], ids, 300}, {s[1], ids + 300, 300}, {s[2], ids + 600, 300}};
    assert_int_equal(ms_forward(ctx, c, 3, o, NULL), MS_OK);
    o += 900 * V;
    /* a reset state reads as zeros (its device memory still holds the 300 tokens' state) */
    ms_stream_reset(s[0]);
    assert_int_equal(ms_stream_state_get(s[0], got), MS_OK);
    for (size_t i = 0; i < ns; i++) assert_true(got[i] == 0.f);
    /* one reset stream beside two continuing ones */
    c[0] = (ms_chunk){s[0], ids + 900, 120};
    c[1] = (ms_chunk){s[1], ids + 1020, 120};
    c[2] = (ms_chunk){s[2], ids + 1140, 120};
    assert_int_equal(ms_forward(ctx, c, 3, o, NULL), MS_OK);
    o += 360 * V;
    /* reset streams only, one segment each (Mamba-2 in 16 bits: the direct SSD form) */
    ms_stream_reset(s[0]);
    ms_stream_reset(s[1]);
    c[0] = (ms_chunk){s[0], ids + 1260, 120};
    c[1] = (ms_chunk){s[1], ids + 1380, 120};
    assert_int_equal(ms_forward(ctx, c, 2, o, NULL), MS_OK);
    o += 240 * V;
    /* the same chunks again as their streams' last (ms_chunk.last: the states need not be
     * written, and the streams end reset): the same logits, zero states after */
    ms_stream_reset(s[0]);
    ms_stream_reset(s[1]);
    c[0].last = c[1].last = 1;
    assert_int_equal(ms_forward(ctx, c, 2, o, NULL), MS_OK);
    for (size_t i = 0; i < (size_t)240 * V; i++) assert_true(o[i] == o[i - (size_t)240 * V]);
    o += 240 * V;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ms_stream_pos(s[i]), 0);
        assert_int_equal(ms_stream_state_get(s[i], got), MS_OK);
        for (size_t j = 0; j < ns; j++) assert_true(got[j] == 0.f);
    }
    c[0].last = c[1].last = 0;
    /* a reset chunk shorter than the conv window (old state entries would shift in), then more */
    ms_stream_reset(s[2]);
    c[0] = (ms_chunk){s[2], ids + 1500, 2};
    assert_int_equal(ms_forward(ctx, c, 1, o, NULL), MS_OK);
    o += 2 * V;
    c[0] = (ms_chunk){s[2], ids + 1502, 50};
    assert_int_equal(ms_forward(ctx, c, 1, o, NULL), MS_OK);
    o += 50 * V;
    /* a decode step: one reset stream, one continuing */
    ms_stream_reset(s[0]);
    c[0] = (ms_chunk){s[0], ids + 1552, 1};
    c[1] = (ms_chunk){s[1], ids + 1553, 1};
    assert_int_equal(ms_forward(ctx, c, 2, o, NULL), MS_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms_stream_state_get(s[i], states + i * ns), MS_OK);
        ms_stream_free(s[i]);
    }
    free(got);
}

/* Fresh streams (cuda_backend.c): a reset marks the stream and leaves its device memory as
 * it was; forwards read the state as zeros (Mamba-2's SSD calls without reading it, and a
 * call of reset one-segment chunks writes the states from the chunk-state product
 * directly, or, where they all end their streams, writes none; other calls zero the
 * marked states first). fresh_sequence with that and with
 * MS_CUDA_FRESH=0 (each reset zeros the state at once, the path the CPU comparisons
 * check) must agree: reading a stale state would move outputs by O(1). float32: the same
 * arithmetic, so within 1e-6; bf16: the same except where cuBLAS takes another kernel for
 * the product's other output address, so within a tenth of bf16's unit roundoff. */
static void test_fresh_streams(void **st)
{
    const shape shapes_fr[2] = {{1, 64, 2, 16, 64, 4, 0, 0, 8, 16, 2, 0, 1},
                                {0, 64, 2, 16, 16, 4, 128, 4, 0, 0, 0, 1, 0}};
    for (int k = 0; k < 2; k++) {
        ms_model *m;
        assert_int_equal(ms_model_load(make_model(&shapes_fr[k], k ? "fr1" : "fr2"), NULL, &m),
                         MS_OK);
        const int V = ms_model_info_get(m)->n_vocab;
        int32_t ids[1554];
        for (int i = 0; i < 1554; i++) ids[i] = (int32_t)((frand() + 1.f) * 0.5f * V) % V;
        for (int p = 0; p < 2; p++) {
            const ms_precision prec = p ? MS_PREC_BF16 : MS_PREC_FP32;
            float *out[2], *sts[2];
            size_t ns = 0;
            for (int lazy = 0; lazy < 2; lazy++) {
                if (lazy) unsetenv("MS_CUDA_FRESH");
                else setenv("MS_CUDA_FRESH", "0", 1);
                ms_ctx *ctx = gpu_ctx(m, 900, 3, prec);
                ns = ms_stream_state_size(ctx);
                out[lazy] = malloc(sizeof(float) * FR_ROWS * V);
                sts[lazy] = malloc(sizeof(float) * 3 * ns);
                poison(out[lazy], (size_t)FR_ROWS * V);
                fresh_sequence(ctx, ids, V, out[lazy], sts[lazy]);
                ms_ctx_free(ctx);
            }
            unsetenv("MS_CUDA_FRESH");
            const double el = tu_rel_err(out[1], out[0], (size_t)FR_ROWS * V);
            const double es = tu_rel_err(sts[1], sts[0], 3 * ns);
            const double tol = p ? ldexp(1.0, -8) / 10 : 1e-6;
            print_message("  %s %s: fresh vs zeroed at reset: logits %.2e state %.2e (bound %.1e)\n",
                          k ? "m1" : "m2", p ? "bf16" : "fp32", el, es, tol);
            assert_true(el <= tol && es <= tol);
            for (int j = 0; j < 2; j++) { free(out[j]); free(sts[j]); }
        }
        ms_model_free(m);
    }
}

/* ------------------------------------------------------------------ audio models */

/* Audio classifiers (docs/model-format.md, "Tensors of an audio classifier"): features
 * [n][F] @ frontend.proj^T + bias in, the final norm, classifier.weight (+ bias) out at
 * every position. Random keyword-spotter shapes from random_model.h. */
static const char *const kws_names[] = {"kws m1 log-mel 40", "kws m2 log-mel 40 G2",
                                        "kws m1 mu-law 256"};
#define N_KWS 3

static ms_model *kws_model(int variant, const char *name)
{
    ms_random_spec sp = ms_random_spec_kws(); /* Mamba-1 64 x 2, log-mel 40, 12 labels */
    if (variant == 1) { /* Mamba-2: 8 heads of 16 in 2 groups, d_state 64 */
        sp.arch = MS_ARCH_MAMBA2;
        sp.d_state = 64;
        sp.head_dim = 16;
        sp.n_groups = 2;
        sp.seed = 11;
    } else if (variant == 2) { /* mu-law: token input, classifier head */
        sp.frontend = MS_FRONTEND_MULAW;
        sp.vocab = 256;
        sp.seed = 13;
    }
    char dir[4096], cmd[4200];
    snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), name);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ms_random_model_write(&sp, dir), MS_OK);
    ms_model *m;
    assert_int_equal(ms_model_load(dir, NULL, &m), MS_OK);
    assert_int_equal(ms_model_info_get(m)->task, MS_TASK_CLASSIFY);
    return m;
}

/* Random inputs for B rows of `len` positions: standardised-log-mel-like features
 * [B][len][F] (F > 0), else tokens [B][len] below V. One of the two is set. */
static void kws_inputs(const ms_model_info *in, int B, int len, float **feat, int32_t **ids)
{
    *feat = NULL;
    *ids = NULL;
    const size_t n = (size_t)B * len;
    if (in->d_input > 0) {
        *feat = malloc(sizeof(float) * n * in->d_input);
        for (size_t i = 0; i < n * in->d_input; i++) (*feat)[i] = 1.5f * frand();
    } else {
        *ids = malloc(sizeof(int32_t) * n);
        const int V = in->n_vocab;
        for (size_t i = 0; i < n; i++) (*ids)[i] = (int32_t)((frand() + 1.f) * 0.5f * V) % V;
    }
}

static const char *prec_str(ms_precision p)
{
    return p == MS_PREC_BF16 ? "bf16" : p == MS_PREC_FP16 ? "fp16" : "fp32";
}

#define AMAX 400

/* CPU vs GPU on a batch of unequal clips cut unevenly (state carried between calls), with
 * the scan's segment length at its default and forced to 16. Returns the worst relative
 * error of logits, hidden and final states; fp32 asserts it is within tol. */
static double compare_audio(int variant, ms_precision prec, double tol)
{
    char nm[32];
    snprintf(nm, sizeof nm, "kws%d%s", variant, prec_str(prec));
    ms_model *m = kws_model(variant, nm);
    const ms_model_info *in = ms_model_info_get(m);
    const int F = in->d_input, L = in->n_labels, D = in->d_model;
    const int lens[RB] = {AMAX, 157, 1, 64};
    float *feat;
    int32_t *ids;
    kws_inputs(in, RB, AMAX, &feat, &ids);
    size_t nl = (size_t)RB * AMAX * L, nh = (size_t)RB * AMAX * D;
    float *lc = calloc(nl, 4), *hc = calloc(nh, 4), *lg = calloc(nl, 4), *hg = calloc(nh, 4);

    ms_ctx_params cp = ms_ctx_default_params();
    cp.max_tokens = RB * 150;
    cp.max_streams = RB;
    ms_ctx *cpu;
    assert_int_equal(ms_ctx_new(m, &cp, &cpu), MS_OK);
    size_t ns = ms_stream_state_size(cpu);
    float *sc = malloc(sizeof(float) * ns * RB), *sg = malloc(sizeof(float) * ns * RB);
    run_streams(cpu, ids, feat, F, lens, RB, AMAX, L, D, lc, hc, sc);
    ms_ctx_free(cpu);

    double worst = 0;
    const char *segs[] = {NULL, "16"};
    for (int k = 0; k < 2; k++) {
        if (segs[k]) setenv("MS_CUDA_SEG_LEN", segs[k], 1);
        else unsetenv("MS_CUDA_SEG_LEN");
        ms_ctx *gpu = gpu_ctx(m, RB * 150, RB, prec);
        poison(lg, nl); poison(hg, nh);
        run_streams(gpu, ids, feat, F, lens, RB, AMAX, L, D, lg, hg, sg);
        double el = rows_err(lg, lc, lens, RB, AMAX, L), eh = rows_err(hg, hc, lens, RB, AMAX, D);
        double es = tu_rel_err(sg, sc, ns * RB);
        print_message("  %-22s %s seg %-4s logits %.2e hidden %.2e state %.2e\n",
                      kws_names[variant], prec_str(prec), segs[k] ? segs[k] : "dflt", el, eh, es);
        worst = fmax(worst, fmax(el, fmax(eh, es)));
        if (prec == MS_PREC_FP32) assert_true(el <= tol && eh <= tol && es <= tol);

        if (prec == MS_PREC_FP32 && k == 0) {
            /* ms_forward_cols: selected labels, with their biases, = those columns of the
             * full logits */
            const int cols[3] = {L - 1, 0, 5};
            ms_stream *s;
            assert_int_equal(ms_stream_new(gpu, &s), MS_OK);
            float sel[150 * 3];
            ms_chunk c = {.stream = s, .n_tokens = 150};
            if (F) c.features = feat;
            else c.tokens = ids;
            assert_int_equal(ms_forward_cols(gpu, &c, 1, cols, 3, sel, NULL), MS_OK);
            for (int t = 0; t < 150; t++)
                for (int j = 0; j < 3; j++) {
                    float ref = lg[(size_t)t * L + cols[j]];
                    assert_true(fabsf(sel[t * 3 + j] - ref) <= 1e-5f * (1.f + fabsf(ref)));
                }
            ms_stream_free(s);
        }
        ms_ctx_free(gpu);
    }
    unsetenv("MS_CUDA_SEG_LEN");
    free(feat); free(ids); free(lc); free(hc); free(lg); free(hg); free(sc); free(sg);
    ms_model_free(m);
    return worst;
}

static void test_audio_vs_cpu(void **st)
{
    double worst = 0;
    for (int v = 0; v < N_KWS; v++) worst = fmax(worst, compare_audio(v, MS_PREC_FP32, 1e-5));
    print_message("  worst audio GPU fp32 vs CPU error: %.2e\n", worst);
}

/* bf16 / fp16 audio models against the CPU: the bound of test_bf16 (unit roundoff u over
 * sqrt(12), ~6 roundings a layer plus 2 at the head, added in quadrature, times 4), with
 * u = 2^-8 (bf16) or 2^-11 (fp16). The input end (frontend.proj) is float32 in every mode,
 * so these models round less than the bound counts. */
static void test_audio_low_precision(void **st)
{
    const ms_precision precs[2] = {MS_PREC_BF16, MS_PREC_FP16};
    int over = 0;
    for (int p = 0; p < 2; p++) {
        double worst = 0;
        for (int v = 0; v < N_KWS; v++) {
            const double u = ldexp(1.0, precs[p] == MS_PREC_BF16 ? -8 : -11);
            const double expect = u / sqrt(12.0) * sqrt(6.0 * 2 + 2), bound = 4 * expect;
            const double w = compare_audio(v, precs[p], bound);
            print_message("    bound %.2e (expected ~%.2e)\n", bound, expect);
            if (!(w <= bound)) over++;
            worst = fmax(worst, w);
        }
        print_message("  worst audio GPU %s vs CPU fp32 error: %.2e\n", prec_str(precs[p]), worst);
    }
    assert_int_equal(over, 0);
}

/* One clip: whole, in chunks of 1 (decode path, replayed CUDA graph; for Mamba-2 the
 * recurrent scan), 7 and 100, and in chunks of 1 without graphs; a batch of unequal clips
 * in one call equals each clip run alone. GPU only, fp32. */
static void test_audio_gpu_invariants(void **st)
{
    for (int v = 0; v < 2; v++) {
        char nm[32];
        snprintf(nm, sizeof nm, "kwsinv%d", v);
        ms_model *m = kws_model(v, nm);
        const ms_model_info *in = ms_model_info_get(m);
        const int F = in->d_input, L = in->n_labels, T = 300;
        float *feat;
        int32_t *ids;
        kws_inputs(in, 4, T, &feat, &ids);
        float *whole = malloc(sizeof(float) * T * L), *part = malloc(sizeof(float) * T * L);
        float *one = malloc(sizeof(float) * T * L);
        const char *graphs[2] = {NULL, "0"};
        for (int gr = 0; gr < 2; gr++) {
            if (graphs[gr]) setenv("MS_CUDA_GRAPHS", graphs[gr], 1);
            else unsetenv("MS_CUDA_GRAPHS");
            ms_ctx *ctx = gpu_ctx(m, 4 * T, 4, MS_PREC_FP32);
            ms_stream *s;
            assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
            if (gr == 0) {
                ms_chunk c = {.stream = s, .n_tokens = T, .features = feat};
                assert_int_equal(ms_forward(ctx, &c, 1, whole, NULL), MS_OK);
            }
            const int sizes[3] = {1, 7, 100};
            for (int k = 0; k < (gr == 0 ? 3 : 1); k++) {
                ms_stream_reset(s);
                poison(part, (size_t)T * L);
                for (int t = 0; t < T; t += sizes[k]) {
                    int n = T - t < sizes[k] ? T - t : sizes[k];
                    ms_chunk c = {.stream = s, .n_tokens = n, .features = feat + (size_t)t * F};
                    assert_int_equal(ms_forward(ctx, &c, 1, part + (size_t)t * L, NULL), MS_OK);
                }
                double e = tu_rel_err(part, whole, (size_t)T * L);
                print_message("  %-22s chunk %3d%s vs whole: %.2e\n", kws_names[v], sizes[k],
                              graphs[gr] ? " (no graphs)" : "", e);
                assert_true(e <= 1e-5);
            }
            if (gr == 0) {
                /* unequal clips in one call: clip b is rows [0, lens[b]) of input b */
                const int lens[4] = {T, 37, 1, 120};
                ms_stream *ss[4];
                ms_chunk c[4];
                float *batch = malloc(sizeof(float) * (T + 37 + 1 + 120) * L);
                for (int b = 0; b < 4; b++) {
                    assert_int_equal(ms_stream_new(ctx, &ss[b]), MS_OK);
                    c[b] = (ms_chunk){.stream = ss[b], .n_tokens = lens[b],
                                      .features = feat + (size_t)b * T * F};
                }
                assert_int_equal(ms_forward(ctx, c, 4, batch, NULL), MS_OK);
                double worst = 0;
                for (int b = 0, r = 0; b < 4; r += lens[b], b++) {
                    ms_stream_reset(s);
                    ms_chunk a = {.stream = s, .n_tokens = lens[b], .features = c[b].features};
                    assert_int_equal(ms_forward(ctx, &a, 1, one, NULL), MS_OK);
                    const double e = tu_rel_err(batch + (size_t)r * L, one, (size_t)lens[b] * L);
                    worst = fmax(worst, e);
                    ms_stream_free(ss[b]);
                }
                print_message("  %-22s unequal clips batched vs alone: %.2e\n", kws_names[v],
                              worst);
                assert_true(worst <= 1e-5);
                free(batch);
            }
            ms_stream_free(s);
            ms_ctx_free(ctx);
        }
        unsetenv("MS_CUDA_GRAPHS");
        free(feat); free(ids); free(whole); free(part); free(one);
        ms_model_free(m);
    }
}

/* The shipped keyword model reproduces its export-time PyTorch logits (reference.safetensors,
 * as test_models.c checks on the CPU): fp32 on the GPU within the same 1e-4 of the
 * reference's largest magnitude, all clips batched in chunks of 37 frames carrying state
 * and whole; bf16 printed and held to test_audio_low_precision's bound for 4 layers. */
static void test_shipped_kws(void **st)
{
    const char *dir = tu_model_dir("kws-mamba2-small");
    tu_feat_ref r;
    tu_feat_ref_load(dir, &r);
    ms_model *m = r.model;
    const int B = r.B, T = r.L, F = r.F, L = r.V;
    const size_t n_out = (size_t)B * T * L;
    float *feat = r.features, *want = r.logits;
    float *got = malloc(sizeof(float) * n_out), *out = malloc(sizeof(float) * n_out);
    double big = 1;
    for (int64_t i = 0; i < (int64_t)n_out; i++) big = fmax(big, fabs(want[i]));
    const ms_precision precs[2] = {MS_PREC_FP32, MS_PREC_BF16};
    const int steps[2] = {37, 0}; /* 0: whole clips */
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            ms_ctx *ctx = gpu_ctx(m, B * T, B, precs[p]);
            ms_stream *s[16];
            assert_true(B <= 16);
            for (int b = 0; b < B; b++) assert_int_equal(ms_stream_new(ctx, &s[b]), MS_OK);
            const int step = steps[k] ? steps[k] : T;
            poison(got, (int64_t)n_out);
            for (int t = 0; t < T; t += step) {
                const int n = T - t < step ? T - t : step;
                ms_chunk c[16];
                for (int b = 0; b < B; b++)
                    c[b] = (ms_chunk){.stream = s[b], .n_tokens = n,
                                      .features = feat + ((size_t)b * T + t) * F};
                assert_int_equal(ms_forward(ctx, c, B, out, NULL), MS_OK);
                for (int b = 0; b < B; b++)
                    memcpy(got + ((size_t)b * T + t) * L, out + (size_t)b * n * L,
                           sizeof(float) * n * L);
            }
            double md = 0;
            for (int64_t i = 0; i < (int64_t)n_out; i++) {
                double d = fabs((double)got[i] - want[i]);
                if (!(d <= md)) md = d;
            }
            const double rel = tu_rel_err(got, want, (int64_t)n_out);
            print_message("  %s %s %d clips x %d frames, %s: max |diff| %.3g (of max |logit| "
                          "%.3g), relative %.2e\n", dir, prec_str(precs[p]), B, T,
                          steps[k] ? "chunks of 37" : "whole", md, big, rel);
            if (precs[p] == MS_PREC_FP32) {
                assert_true(md <= 1e-4 * big);
            } else {
                const double bound = 4 * ldexp(1.0, -8) / sqrt(12.0) * sqrt(6.0 * 4 + 2);
                print_message("    bound (relative) %.2e\n", bound);
                assert_true(rel <= bound);
            }
            for (int b = 0; b < B; b++) ms_stream_free(s[b]);
            ms_ctx_free(ctx);
        }
    free(got); free(out);
    tu_feat_ref_free(&r);
}

/* ------------------------------------------------------------------ fused decode */

/* Streams of lengths lens[] decoded one token per stream per call (all live streams in one
 * call); logits into lg [B][maxlen][V], final states into states [B][ns]. */
static void decode_streams(ms_ctx *ctx, const int32_t *ids, const int *lens, int B, int maxlen,
                           int V, float *lg, float *states)
{
    ms_stream **s = calloc(B, sizeof *s);
    ms_chunk *c = calloc(B, sizeof *c);
    int *from = calloc(B, sizeof *from);
    float *olg = malloc(sizeof(float) * B * V);
    for (int b = 0; b < B; b++) assert_int_equal(ms_stream_new(ctx, &s[b]), MS_OK);
    for (int t = 0; t < maxlen; t++) {
        int n = 0;
        for (int b = 0; b < B; b++)
            if (t < lens[b]) {
                c[n] = (ms_chunk){s[b], ids + (size_t)b * maxlen + t, 1};
                from[n++] = b;
            }
        if (!n) break;
        assert_int_equal(ms_forward(ctx, c, n, olg, NULL), MS_OK);
        for (int k = 0; k < n; k++)
            memcpy(lg + ((size_t)from[k] * maxlen + t) * V, olg + (size_t)k * V, sizeof(float) * V);
    }
    size_t ns = ms_stream_state_size(ctx);
    for (int b = 0; b < B; b++) {
        assert_int_equal(ms_stream_state_get(s[b], states + (size_t)b * ns), MS_OK);
        ms_stream_free(s[b]);
    }
    free(s); free(c); free(from); free(olg);
}

/* The same streams each in one call (the long-chunk path). */
static void whole_streams(ms_ctx *ctx, const int32_t *ids, const int *lens, int B, int maxlen,
                          int V, float *lg)
{
    for (int b = 0; b < B; b++) {
        ms_stream *s;
        assert_int_equal(ms_stream_new(ctx, &s), MS_OK);
        ms_chunk c = {s, ids + (size_t)b * maxlen, lens[b]};
        assert_int_equal(ms_forward(ctx, &c, 1, lg + (size_t)b * maxlen * V, NULL), MS_OK);
        ms_stream_free(s);
    }
}

/* Worst over steps t of the relative error of step t's logits (all streams live at t). */
static double worst_step_err(const float *a, const float *ref, const int *lens, int B,
                             int maxlen, int V)
{
    double worst = 0;
    for (int t = 0; t < maxlen; t++) {
        double num = 0, den = 0;
        for (int b = 0; b < B; b++) {
            if (t >= lens[b]) continue;
            for (int v = 0; v < V; v++) {
                size_t k = ((size_t)b * maxlen + t) * V + v;
                double d = (double)a[k] - ref[k];
                num += d * d;
                den += (double)ref[k] * ref[k];
            }
        }
        if (den == 0) continue;
        double e = isnan(num) ? INFINITY : sqrt(num / den);
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

/* The same over all steps together (one norm, as test_bf16 measures) */
static double run_err(const float *a, const float *ref, const int *lens, int B, int maxlen, int V)
{
    double num = 0, den = 0;
    for (int b = 0; b < B; b++)
        for (size_t k = (size_t)b * maxlen * V; k < ((size_t)b * maxlen + lens[b]) * V; k++) {
            const double d = (double)a[k] - ref[k];
            num += d * d;
            den += (double)ref[k] * ref[k];
        }
    return isnan(num) ? INFINITY : sqrt(num / den);
}

/* Decode (chunks of one token: the fused step of decode_m1.cu, and for one stream gemv.cu's
 * fused products; graphs on and off; and the general path with MS_CUDA_FUSED_DECODE=0)
 * against the CPU backend decoding the same way, step by step, and against each stream run
 * whole on the GPU (long-chunk path). */
static void test_fused_decode(void **st)
{
    (void)st;
    static const shape dshapes[] = {
        /* mamba2 d_model layers vocab N K  d_inner R  H  P  G  bias tie */
        {0, 64, 2, 16, 16, 4, 128, 4, 0, 0, 0, 0, 1},
        {0, 37, 3, 11, 64, 3, 75, 3, 0, 0, 0, 1, 0},  /* d_state 64, odd widths, biases */
        {0, 40, 2, 16, 16, 4, 81, 3, 0, 0, 0, 0, 0},  /* d_state 16, odd d_inner */
        {0, 48, 2, 16, 16, 2, 96, 6, 0, 0, 0, 1, 1},  /* K 2 */
        {0, 64, 3, 16, 64, 3, 192, 5, 0, 0, 0, 1, 0}, /* d_state 64, biases */
        {1, 64, 2, 16, 64, 4, 0, 0, 8, 16, 1, 0, 0},  /* Mamba-2: the fused conv step only */
        {1, 36, 2, 13, 128, 3, 0, 0, 6, 12, 3, 1, 0},
    };
    enum { DB = 6, DLMAX = 400 };
    /* MS_TEST_DECODE_STEPS shortens the run (under compute-sanitizer) */
    const char *env = getenv("MS_TEST_DECODE_STEPS");
    const int DL = env && atoi(env) > 1 && atoi(env) < DLMAX ? atoi(env) : DLMAX;
    /* the last 100 steps (at least the last one, when shortened) decode stream 0 alone:
     * one-token calls, gemv.cu's fused kernels */
    int lens[DB] = {DLMAX, 257, 1, 129, 64, 300};
    lens[0] = DL;
    for (int b = 1; b < DB; b++) if (lens[b] > DL - 1) lens[b] = DL - 1;
    double worst_cpu = 0, worst_long = 0, worst_state = 0;
    for (int si = 0; si < (int)(sizeof dshapes / sizeof dshapes[0]); si++) {
        const shape *sh = &dshapes[si];
        char nm[32], desc[96];
        snprintf(nm, sizeof nm, "dec%d", si);
        shape_name(sh, desc, sizeof desc);
        ms_model *m;
        assert_int_equal(ms_model_load(make_model(sh, nm), NULL, &m), MS_OK);
        const int V = ms_model_info_get(m)->n_vocab;
        int32_t *ids = malloc(sizeof(int32_t) * DB * DL);
        for (int i = 0; i < DB * DL; i++) ids[i] = (int32_t)((frand() + 1.f) * 0.5f * V) % V;
        const size_t nl = (size_t)DB * DL * V;
        float *lc = calloc(nl, 4), *lg = calloc(nl, 4), *ll = calloc(nl, 4);

        ms_ctx_params cp = ms_ctx_default_params();
        cp.max_tokens = DL > DB ? DL : DB; /* a step takes DB tokens, a whole stream DL */
        cp.max_streams = DB;
        ms_ctx *cpu;
        assert_int_equal(ms_ctx_new(m, &cp, &cpu), MS_OK);
        const size_t ns = ms_stream_state_size(cpu);
        float *sc = malloc(sizeof(float) * ns * DB), *sg = malloc(sizeof(float) * ns * DB);
        decode_streams(cpu, ids, lens, DB, DL, V, lc, sc);
        ms_ctx_free(cpu);

        ms_ctx *gpu = gpu_ctx(m, cp.max_tokens, DB, MS_PREC_FP32);
        poison(ll, nl);
        whole_streams(gpu, ids, lens, DB, DL, V, ll);
        ms_ctx_free(gpu);

        /* fused, graphs, the streams from which Mamba-1 takes the wide scan kernel (2:
         * every call here but the one-stream tail), and the one-stream tail's whole step in
         * one launch (decode_step_m1.cu: required where the widths fit it, 16-byte rows; off
         * for the per-kernel path) */
        const int step_fits = !sh->mamba2 && sh->d_model % 8 == 0 && sh->d_inner % 8 == 0;
        const char *step_on = step_fits ? "require" : "1";
        const char *modes[][4] = {{"1", "1", "0", step_on}, {"1", "0", "0", step_on},
                                  {"0", "1", "0", "1"},     {"1", "1", "0", "0"},
                                  {"1", "1", "2", step_on}};
        for (int k = 0; k < 5; k++) {
            if (sh->mamba2 && k >= 3) break;
            setenv("MS_CUDA_FUSED_DECODE", modes[k][0], 1);
            setenv("MS_CUDA_GRAPHS", modes[k][1], 1);
            setenv("MS_CUDA_DEC_WIDE", modes[k][2], 1);
            setenv("MS_CUDA_STEP", modes[k][3], 1);
            gpu = gpu_ctx(m, cp.max_tokens, DB, MS_PREC_FP32);
            poison(lg, nl);
            decode_streams(gpu, ids, lens, DB, DL, V, lg, sg);
            ms_ctx_free(gpu);
            const double ec = worst_step_err(lg, lc, lens, DB, DL, V);
            const double el = worst_step_err(lg, ll, lens, DB, DL, V);
            const double es = tu_rel_err(sg, sc, ns * DB);
            print_message("  %-30s fused %s graphs %s wide %s step %s: worst step vs cpu %.2e, "
                          "vs long chunk %.2e, states %.2e\n",
                          desc, modes[k][0], modes[k][1], modes[k][2], modes[k][3], ec, el, es);
            if (ec > worst_cpu) worst_cpu = ec;
            if (el > worst_long) worst_long = el;
            if (es > worst_state) worst_state = es;
            assert_true(ec <= 1e-5 && el <= 1e-5 && es <= 1e-5);
        }
        unsetenv("MS_CUDA_FUSED_DECODE");
        unsetenv("MS_CUDA_GRAPHS");
        unsetenv("MS_CUDA_DEC_WIDE");
        /* bf16, with gemm_few.cu's products of 2-6 streams (and in_proj's conv step fused
         * into them) where n_in % 32 == 0, and with cuBLAS's: within test_bf16's bound; the
         * one-stream tail in one launch where it fits */
        const double bound = 4 * ldexp(1.0, -8) / sqrt(12.0) * sqrt(6.0 * sh->n_layer + 2);
        setenv("MS_CUDA_STEP", step_on, 1);
        for (int k = 0; k < 2; k++) {
            setenv("MS_CUDA_GEMM_FEW", k ? "1" : "0", 1);
            gpu = gpu_ctx(m, cp.max_tokens, DB, MS_PREC_BF16);
            poison(lg, nl);
            decode_streams(gpu, ids, lens, DB, DL, V, lg, sg);
            ms_ctx_free(gpu);
            const double eb = run_err(lg, lc, lens, DB, DL, V);
            print_message("  %-30s bf16, gemm_few %d: vs cpu %.2e (bound %.2e)\n", desc, k, eb,
                          bound);
            assert_true(eb <= bound);
        }
        unsetenv("MS_CUDA_GEMM_FEW");
        unsetenv("MS_CUDA_STEP");
        free(ids); free(lc); free(lg); free(ll); free(sc); free(sg);
        ms_model_free(m);
    }
    print_message("  fused decode worst: vs cpu %.2e, vs long chunk %.2e, states %.2e\n",
                  worst_cpu, worst_long, worst_state);
}

static void test_bad_device(void **st)
{
    fixture f;
    tu_ref_fixture_load("hf/mamba1-tiny-hf", &f);
    ms_ctx_params cp = ms_ctx_default_params();
    cp.device = MS_DEVICE_CUDA;
    cp.device_index = 99;
    ms_ctx *ctx = NULL;
    tu_log_capture();
    assert_int_equal(ms_ctx_new(f.model, &cp, &ctx), MS_ERR_BACKEND);
    assert_non_null(strstr(tu_log_text(), "CUDA device 99"));
    cp.device_index = 0;
    cp.max_tokens = 1 << 30; /* scratch for a billion tokens: does not fit */
    assert_int_equal(ms_ctx_new(f.model, &cp, &ctx), MS_ERR_BACKEND);
    assert_non_null(strstr(tu_log_text(), "does not fit"));
    ms_set_log(NULL, NULL);
    tu_ref_fixture_free(&f);
}

int main(void)
{
    if (!tu_cuda_device("test_cuda_backend")) return 77;
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        fprintf(stderr, "test_cuda_backend: device 0 = %s\n", prop.name);
    /* MS_TEST_FILTER=test_gpu_invariants runs one test (e.g. under compute-sanitizer) */
    if (getenv("MS_TEST_FILTER")) cmocka_set_test_filter(getenv("MS_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_device),
        cmocka_unit_test(test_fused_decode),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_random_vs_cpu),
        cmocka_unit_test(test_gpu_invariants),
        cmocka_unit_test(test_fresh_streams),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_audio_vs_cpu),
        cmocka_unit_test(test_audio_low_precision),
        cmocka_unit_test(test_audio_gpu_invariants),
        cmocka_unit_test(test_shipped_kws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
