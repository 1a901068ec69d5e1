/* cuda_backend.c - the CUDA backend: the engine's backend table on one GPU.
 *
 * The same forward pass as cpu_backend.c, with the matrix work through cuBLAS and the rest
 * through the kernels of the src/cuda .cu files (cuda_ops.h). Precision (ctx->params.precision):
 *   MS_PREC_FP32  weights and activations float32, cuBLAS compute 32F, TF32 off: check mode
 *   MS_PREC_BF16  weights and activations bf16, float32 accumulation
 *   MS_PREC_FP16  likewise in fp16
 * In every mode the residual stream, norms, conv and scan arithmetic, the recurrent state and
 * the outputs (logits, hidden) are float32, and so is the input end: the token embedding, or
 * for an audio model (feature input) frontend.proj and its product with the features.
 *
 * Audio models as on the CPU (docs/model-format.md): h_0 = features @ frontend.proj^T + b
 * (one cuBLAS product over the batch's T rows; the bias joins the residual in the first
 * norm, like an out_proj bias), the layers, the final norm, then the head, which is
 * classifier.weight (+ classifier.bias) for a classifier instead of lm_head.
 *
 * Memory: weights uploaded once at init; scratch sized by params.max_tokens / max_streams
 * only (never by sequence length); each stream's state is one device block of
 * ms_state_floats() floats in the CPU's layout, so state_get/set are plain copies.
 *
 * Per forward call the host packs the batch (chunk and segment tables, tokens or features,
 * selected head columns, state pointers) into one pinned buffer and sends it with one copy. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "backend.h"
#include "cuda_ops.h"
#include "log.h"

typedef struct {
    float *norm_w, *norm_b;          /* [D] */
    void *in_proj_w;                 /* [in_proj_rows][D] act */
    float *in_proj_b;                /* [in_proj_rows] */
    float *conv_w, *conv_b;          /* [conv_dim][K], [conv_dim] */
    void *x_proj_w;                  /* M1 [R + 2N][E] act */
    void *dt_proj_w;                 /* M1 [E][R] act */
    float *dt_bias;                  /* M1 dt_proj bias [E]; M2 dt_bias [H] */
    float *A;                        /* -exp(A_log): M1 [E][N]; M2 [H] */
    float *D;                        /* M1 [E]; M2 [H] */
    float *gnorm_w;                  /* M2 [E] */
    void *out_proj_w;                /* [D][E] act */
    float *out_proj_b;               /* [D] */
} cu_layer;

/* How Mamba-2's SSD runs and where its buffers live (scratch_plan): stages 3, 4 and 9 in
 * one kernel (fused: ssd_out.cu; then m and yi are not allocated, and hin lives in xs's
 * bytes, hin_xs, where it fits); else xs / hin / ys in m (alias), yi in proj's xBC columns
 * (yi_p); cb in S (cb_s) either way. */
typedef struct { int alias, yi_p, cb_s, fused, hin_xs; } scratch_place;

typedef struct {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    int have_blas;
    ms_cu_dtype dt;
    cudaDataType_t cdt;              /* cuBLAS type of the activations / matrix weights */
    size_t esz;                      /* bytes per activation element */

    cu_layer *layers;                /* [n_layer] */
    int n_emb;                       /* embedding rows: n_vocab, 0 for feature input */
    int d_input;                     /* F: features per position, 0 for token input */
    int n_out;                       /* head rows: n_vocab (LM) or n_labels (classifier) */
    float *emb;                      /* [n_emb][D] float32 */
    float *feat_w, *feat_b;          /* frontend.proj [D][F], [D] float32 */
    float *norm_f_w, *norm_f_b;      /* [D] */
    void *head;                      /* [n_out][D] act: lm_head or classifier.weight */
    float *head_b;                   /* [n_out] classifier.bias, or NULL */

    int cap_tokens, cap_streams, cap_seg, cap_slots, seg_len;
    int call_seg_len;                /* this call's segment length (call_seg_len_for) */
    int ssd_direct;                  /* this call's SSD product 6 writes the states (all
                                      * chunks fresh, one segment each: "Fresh streams") */
    int seg_adapt;                   /* Mamba-2 calls of short chunks may take longer segments */
    float *resid;                    /* [T][D] residual stream, float32 */
    void *hs;                        /* [T][D] act: normed mixer input / final norm */
    void *proj;                      /* [T][in_proj_rows] act */
    void *xc;                        /* [T][conv_dim] act: conv + SiLU output */
    void *xdbl;                      /* M1 [T][R + 2N] act */
    void *dtb;                       /* M1 [T][E] act: dt_proj output (raw dt) */
    void *y;                         /* [T][E] act: scan output */
    float *logits;                   /* [T][n_out] */
    float *hidden;                   /* [T][D] */
    void *head_sel;                  /* [n_out][D] act: the head's selected rows */
    float *head_sel_b;               /* [n_out] their biases (classifier with a bias) */
    float *ws_h;                     /* [cap_slots][E][N] scan workspace */
    float *ws_dtsum;                 /* [cap_slots][E] */
    /* Mamba-2 SSD scan (ssd_scan.cu), Q = cap_seg segments of L = seg_len rows */
    float *ssd_dt, *ssd_cum;         /* [Q][H][L] */
    float *ssd_cb;                   /* [Q][G][L][L] */
    void *ssd_m;                     /* [Q][H][L][L] act */
    void *ssd_xs, *ssd_yi, *ssd_ys;  /* [Q][L][E] act (yi: rows of ssd_ldyi) */
    int ssd_ldyi;
    float *ssd_S;                    /* [Q][H][P][N] */
    void *ssd_hin;                   /* [Q][H][P][N] act */
    void **ssd_ptrs;                 /* [9 Q G + 3 Q H] batched-product pointer tables */
    void *blas_ws;                   /* cuBLAS workspace (fixed: graph capture safe) */

    unsigned char *batch_dev, *batch_host; /* packed batch, device and pinned host */
    size_t batch_cap;

    void **allocs;                   /* every cudaMalloc, for free */
    int n_allocs, cap_allocs;
    size_t weight_bytes, scratch_bytes;
    struct scratch_buf *plan;        /* the allocated scratch, as scratch_plan listed it */
    scratch_place place;             /* its placements that depend on Q and L (place_for) */
    /* the last forward's work as a CUDA graph, replayed while the batch's shape repeats
     * (decode: one token per stream per call) */
    cudaGraphExec_t graph;
    int graph_key[13];
    int use_graphs;
    int fused_decode;                /* one-token chunks through decode_m1.cu */
    int dec_wide;                    /* Mamba-1 decode of at least this many streams: the
                                      * wide scan kernel (0: never) */
    int gemv;                        /* one-token products through gemv.cu */
    int gemm_few;                    /* 16-bit products of 2-32 tokens through gemm_few.cu */
    int pdl;                         /* decode calls' kernels by programmatic dependent launch */
    int lazy_reset;                  /* resets mark streams fresh instead of zeroing them */
    int step;                        /* Mamba-1 decode of one stream in one launch
                                      * (decode_step_m1.cu): 0 off, 1 where it fits, 2 required */
    ms_cu_step_layer *step_host;     /* [n_layer] its weight table, host copy (NULL: none) */
    ms_cu_step_layer *step_dev;      /* the same in device memory */
    unsigned *step_bar;              /* its barrier counters [2] */
    long long *step_xacc;            /* its sums of x_proj (zero between launches) */
    int n_states;                    /* live stream states */
    size_t peak_bytes;               /* most of weights + scratch + states held at once */
} cu_ctx;

#define CU_TRY(call, what)                                                                 \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            ms_error("cuda backend: %s failed: %s", what, cudaGetErrorString(e_));         \
            return MS_ERR_BACKEND;                                                         \
        }                                                                                  \
    } while (0)

#define BLAS_TRY(call, what)                                                               \
    do {                                                                                   \
        cublasStatus_t s_ = (call);                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                 \
            ms_error("cuda backend: %s failed: cuBLAS status %d", what, (int)s_);          \
            return MS_ERR_BACKEND;                                                         \
        }                                                                                  \
    } while (0)

static const char *prec_name(ms_precision p)
{
    return p == MS_PREC_BF16 ? "bf16" : p == MS_PREC_FP16 ? "fp16" : "fp32";
}

/* cudaMalloc recorded for cu_free; NULL for n == 0. On failure *p is NULL and the caller
 * reports the sizes. */
static int dev_alloc(cu_ctx *g, void **p, size_t n)
{
    *p = NULL;
    if (!n) return MS_OK;
    if (g->n_allocs == g->cap_allocs) {
        int cap = g->cap_allocs ? 2 * g->cap_allocs : 64;
        void **a = realloc(g->allocs, sizeof *a * cap);
        if (!a) return MS_ERR_NOMEM;
        g->allocs = a;
        g->cap_allocs = cap;
    }
    if (cudaMalloc(p, n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky-free allocation error */
        *p = NULL;
        return MS_ERR_BACKEND;
    }
    g->allocs[g->n_allocs++] = *p;
    return MS_OK;
}

/* ------------------------------------------------------------------ sizes */

static int seg_len_for(const ms_config *c)
{
    const char *env = getenv("MS_CUDA_SEG_LEN"); /* test knob: force multi-segment scans */
    if (env && atoi(env) > 0) return atoi(env);
    return c->arch == MS_ARCH_MAMBA2 ? 128 : 256; /* M2: the SSD chunk length */
}

/* The longest segment a Mamba-2 call may take (call_seg_len_for); xc keeps this many rows
 * past the batch for the SSD products. */
#define SSD_SEG_MAX 256

/* Mamba-1 decode calls of this many streams or more take dt_proj as a product and the wide
 * scan kernel (decode_m1.cu); fewer run the per-lane one, which fuses dt_proj. H200, the
 * reference model, ms per step per-lane / wide: batch 32 0.70 / 0.71, 64 0.79 / 0.78, 128
 * 0.99 / 0.92, 1024 4.33 / 2.90; since x_proj of 33-64 streams runs in gemm_few.cu (round
 * 12, two runs each): 64 0.743-0.744 / 0.758, 96 0.923-0.926 / 0.850-0.856, 128 1.02 /
 * 0.927-0.935. */
#define DEC_WIDE_MIN 65

/* Mamba-2 batches whose longest chunk is shorter than this take the recurrent scan (decode,
 * short pieces); longer ones the SSD form, whose cost per segment is set by L, not n. */
#define SSD_MIN_LEN 32

static size_t weights_bytes(const cu_ctx *g, const ms_config *c, size_t esz)
{
    const size_t D = c->d_model, E = c->d_inner, N = c->d_state, K = c->d_conv;
    const size_t cd = ms_conv_dim(c), ip = ms_in_proj_rows(c), R = c->dt_rank, H = c->n_heads;
    size_t f = 2 * D + ip + cd * K + cd + D;  /* float32 per layer */
    size_t a = ip * D + D * E;                /* act per layer */
    if (c->arch == MS_ARCH_MAMBA1) {
        f += E + E * N + E;
        a += (R + 2 * N) * E + E * R;
    } else {
        f += 3 * H + E;
    }
    return c->n_layer * (f * 4 + a * esz) + (size_t)g->n_emb * D * 4 +
           (size_t)g->n_out * (D * esz + 4) + (size_t)g->d_input * D * 4 + 3 * D * 4;
}

/* ------------------------------------------------------------------ init */

/* Every copy goes through g->stream and waits for it. g->stream is a non-blocking stream,
 * which does not order itself after the legacy default stream; and a plain cudaMemcpy from
 * pageable memory may return before its DMA has landed. Together they let a conversion
 * kernel read a staging buffer while the next weight was still being copied into it
 * (bf16/fp16 weights came out different from run to run: found on the H200, 2026-11-29). */
static cudaError_t copy_sync(cu_ctx *g, void *dst, const void *src, size_t bytes,
                             enum cudaMemcpyKind kind)
{
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, g->stream);
    return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

/* cudaMemset likewise: on the legacy stream it is asynchronous and unordered with g->stream
 * (a reset state could still be zeroing when the next forward read it). */
static cudaError_t zero_sync(cu_ctx *g, void *dst, size_t bytes)
{
    cudaError_t e = cudaMemsetAsync(dst, 0, bytes, g->stream);
    return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

static int upload_f32(cu_ctx *g, float **dst, const float *src, size_t n)
{
    *dst = NULL;
    if (!src) return MS_OK;
    int rc = dev_alloc(g, (void **)dst, n * sizeof(float));
    if (rc != MS_OK) return rc;
    CU_TRY(copy_sync(g, *dst, src, n * sizeof(float), cudaMemcpyHostToDevice), "weight upload");
    return MS_OK;
}

/* A matrix in the activation dtype; tmp: a float32 device buffer of >= n floats. */
static int upload_act(cu_ctx *g, void **dst, const float *src, size_t n, float *tmp)
{
    *dst = NULL;
    if (!src) return MS_OK;
    int rc = dev_alloc(g, dst, n * g->esz);
    if (rc != MS_OK) return rc;
    if (g->dt == MS_CU_F32) {
        CU_TRY(copy_sync(g, *dst, src, n * sizeof(float), cudaMemcpyHostToDevice), "weight upload");
        return MS_OK;
    }
    CU_TRY(copy_sync(g, tmp, src, n * sizeof(float), cudaMemcpyHostToDevice), "weight upload");
    CU_TRY(ms_cu_convert(*dst, g->dt, tmp, n, g->stream), "weight conversion kernel");
    CU_TRY(cudaStreamSynchronize(g->stream), "weight conversion");
    return MS_OK;
}

static int upload_weights(cu_ctx *g, const ms_model *m)
{
    const ms_config *c = &m->cfg;
    const size_t D = c->d_model, E = c->d_inner, N = c->d_state, K = c->d_conv;
    const size_t cd = ms_conv_dim(c), ip = ms_in_proj_rows(c), R = c->dt_rank, H = c->n_heads;
    const size_t n_out = g->n_out;
    size_t tmp_n = n_out * D;
    if (ip * D > tmp_n) tmp_n = ip * D;
    if (D * E > tmp_n) tmp_n = D * E;
    if (c->arch == MS_ARCH_MAMBA1 && (R + 2 * N) * E > tmp_n) tmp_n = (R + 2 * N) * E;
    float *tmp = NULL;
    if (g->dt != MS_CU_F32) CU_TRY(cudaMalloc((void **)&tmp, tmp_n * sizeof(float)), "cudaMalloc");
    int rc = MS_OK;
    size_t an = (c->arch == MS_ARCH_MAMBA1 ? E * N : H);
    float *A = malloc(sizeof(float) * an);
    g->layers = calloc(c->n_layer, sizeof *g->layers);
    if (!A || !g->layers) { rc = MS_ERR_NOMEM; goto done; }
#define UP(x) do { if ((rc = (x)) != MS_OK) goto done; } while (0)
    const int classify = m->info.task == MS_TASK_CLASSIFY;
    if (g->d_input > 0) {
        UP(upload_f32(g, &g->feat_w, m->feat_proj_w, D * g->d_input));
        UP(upload_f32(g, &g->feat_b, m->feat_proj_b, D));
    } else {
        UP(upload_f32(g, &g->emb, m->embedding, (size_t)g->n_emb * D));
    }
    UP(upload_f32(g, &g->norm_f_w, m->norm_f_w, D));
    UP(upload_f32(g, &g->norm_f_b, m->norm_f_b, D));
    UP(upload_act(g, &g->head, classify ? m->classifier_w : m->lm_head, n_out * D, tmp));
    UP(upload_f32(g, &g->head_b, classify ? m->classifier_b : NULL, n_out));
    for (int l = 0; l < c->n_layer; l++) {
        const ms_layer_weights *w = &m->layers[l];
        cu_layer *L = &g->layers[l];
        UP(upload_f32(g, &L->norm_w, w->norm_w, D));
        UP(upload_f32(g, &L->norm_b, w->norm_b, D));
        UP(upload_act(g, &L->in_proj_w, w->in_proj_w, ip * D, tmp));
        UP(upload_f32(g, &L->in_proj_b, w->in_proj_b, ip));
        UP(upload_f32(g, &L->conv_w, w->conv_w, cd * K));
        UP(upload_f32(g, &L->conv_b, w->conv_b, cd));
        UP(upload_act(g, &L->out_proj_w, w->out_proj_w, D * E, tmp));
        UP(upload_f32(g, &L->out_proj_b, w->out_proj_b, D));
        UP(upload_f32(g, &L->D, w->D, c->arch == MS_ARCH_MAMBA1 ? E : H));
        for (size_t i = 0; i < an; i++) A[i] = -expf(w->A_log[i]);
        UP(upload_f32(g, &L->A, A, an));
        if (c->arch == MS_ARCH_MAMBA1) {
            UP(upload_act(g, &L->x_proj_w, w->x_proj_w, (R + 2 * N) * E, tmp));
            UP(upload_act(g, &L->dt_proj_w, w->dt_proj_w, E * R, tmp));
            UP(upload_f32(g, &L->dt_bias, w->dt_proj_b, E));
        } else {
            UP(upload_f32(g, &L->dt_bias, w->dt_bias, H));
            UP(upload_f32(g, &L->gnorm_w, w->gnorm_w, E));
        }
    }
#undef UP
done:
    free(A);
    if (tmp) cudaFree(tmp);
    return rc;
}

/* The packed batch (pack_batch): state pointers [n_chunks], then int32 tables (chunks
 * 3 n_chunks + 1, segments 4 n_seg, tokens n_tok, cols n_cols), then, 16-byte aligned for
 * cuBLAS, the features float [n_feat]. Byte offset of the features: */
static size_t batch_feat_off(int n_chunks, int n_seg, int n_tok, int n_cols)
{
    size_t b = sizeof(float *) * (size_t)n_chunks +
               sizeof(int32_t) * ((size_t)4 * n_chunks + 1 + 4 * (size_t)n_seg + n_tok + n_cols);
    return (b + 15) & ~(size_t)15;
}

/* Bytes of the packed batch. */
static size_t batch_bytes(int n_chunks, int n_seg, int n_tok, int n_cols, size_t n_feat)
{
    return batch_feat_off(n_chunks, n_seg, n_tok, n_cols) + sizeof(float) * n_feat;
}

/* Mamba-2's SSD buffers m, xs, hin and ys are live one after another within a layer (m:
 * stage 3 to product 4; xs: 5 to 6; hin and ys: 7 to 9, together), so xs, then hin and ys
 * side by side, can live in m's bytes when they fit: P (N + L) <= L L, true of the usual
 * head_dim 64, d_state 128, L 128 (saves xs, ys and hin: 0.6 GB at 65,536 tokens for the
 * reference Mamba-2, whose one-stream peak fell from 3.06 to 2.49 GiB). */
static int ssd_alias(const ms_config *c, size_t L)
{
    return (size_t)c->head_dim * ((size_t)c->d_state + L) <= L * L;
}

/* Two more buffers that live in others' bytes when they fit (one stream at 65,536 tokens
 * of the reference models: 0.3 GB): hs, a layer's normed input, read only by in_proj and
 * the head, in y, which the layer writes later (the scan) and the next norm finds consumed
 * by out_proj; hidden, the final norm's float32 output read back after the forward, in
 * proj, which nothing reads after the last layer. */
static int hs_in_y(const ms_config *c)
{
    return c->d_inner >= c->d_model; /* same element type: [T][D] in [T][E] */
}
static int hidden_in_proj(const ms_config *c, size_t esz)
{
    return (size_t)ms_in_proj_rows(c) * esz >= (size_t)c->d_model * sizeof(float);
}

/* Mamba-2's SSD: yi (stage 4 to 9) in in_proj's xBC columns, which the conv has consumed
 * by then (z before them and dt after them stay live), as rows of in_proj's width; proj
 * then needs Q L rows instead of T. Taken where that costs less than yi's own [Q L][E]
 * (one long stream: 0.2 GB less at 65,536 tokens; not many short reads). cb (stage 2 to
 * 3) in S's bytes (stage 6 to 7) where it fits. */
static int yi_in_proj(const ms_config *c, size_t T, size_t QL)
{
    return QL >= T && (QL - T) * (size_t)ms_in_proj_rows(c) < QL * (size_t)c->d_inner &&
           ms_conv_dim(c) >= c->d_inner;
}
static int cb_in_S(const ms_config *c, size_t L)
{
    return (size_t)c->d_inner * c->d_state >= (size_t)c->n_groups * L * L;
}

/* The placements that depend on a call's segments: decided for the context when its
 * scratch is allocated, then kept for each of its calls, whose buffers are sized under them
 * (call_seg_len_for). */
static scratch_place place_for(const cu_ctx *g, const ms_config *c, size_t T, size_t Q,
                               size_t L)
{
    const int m2 = c->arch == MS_ARCH_MAMBA2;
    const int fused = m2 && ms_cu_ssd_out_ok(g->dt, c->head_dim, (int)L, c->d_inner,
                                             ms_conv_dim(c));
    const scratch_place pl = {m2 && !fused && ssd_alias(c, L),
                              m2 && !fused && yi_in_proj(c, T, Q * L), m2 && cb_in_S(c, L),
                              fused, fused && (size_t)c->d_state <= L};
    return pl;
}

/* One scratch buffer: where its device pointer goes, the bytes it needs, and, when it is
 * placed in another buffer, that buffer (in, a pointer set earlier in the list's
 * allocation) and the byte offset there (it then spans need bytes from off). Only a buffer
 * with no host is allocated (need 0: none). Each placement is decided once, in
 * scratch_plan's list. */
typedef struct scratch_buf {
    void **p;
    size_t need;
    void **in;
    size_t off;
} scratch_buf;

/* bytes a plan entry allocates of its own */
static size_t scratch_own(const scratch_buf *b) { return b->in ? 0 : b->need; }
#define SCRATCH_MAX 32

/* The scratch of a context of T tokens and Q SSD segments of L rows per call (the other
 * batch caps in g already set), with the placements keep (NULL: those place_for decides
 * for T, Q, L): the buffers into b[SCRATCH_MAX], their count returned, their bytes summed
 * into *total, yi's row stride (which follows its placement) into *ldyi. The fit check
 * (before the weights are up: classifier.bias's V floats then count as 0), alloc_scratch
 * (Q = cap_seg, L = seg_len) and call_seg_len_for (a call's own Q and L under the
 * allocated placements) read the same list. */
static int scratch_plan(const cu_ctx *g, const ms_config *c, size_t T, size_t Q, size_t L,
                        const scratch_place *keep, scratch_buf *b, size_t *total, int *ldyi)
{
    const size_t D = c->d_model, E = c->d_inner, N = c->d_state, V = g->n_out;
    const size_t e = g->esz;
    const int m2 = c->arch == MS_ARCH_MAMBA2;
    if (!m2) Q = 0;
    const size_t H = c->n_heads, G = c->n_groups;
    const size_t W = (size_t)ms_in_proj_rows(c);
    const scratch_place pl = keep ? *keep : place_for(g, c, T, Q, L);
    const int alias = pl.alias, yi_p = pl.yi_p, cb_s = pl.cb_s, fu = pl.fused;
    if (ldyi) *ldyi = yi_p ? (int)W : c->d_inner;
    /* {pointer, own bytes} or {pointer, bytes spanned, lives in, at byte offset} */
#define OWN(ptr, bytes) {(void **)(ptr), (bytes), NULL, 0}
#define IN(ptr, host, off, need) {(void **)(ptr), (need), (void **)(host), (off)}
#define OWN_OR_IN(cond, ptr, bytes, host, off) \
    ((cond) ? (scratch_buf)IN(ptr, host, off, bytes) : (scratch_buf)OWN(ptr, bytes))
    const scratch_buf list[] = {
        OWN(&g->resid, T * D * 4),
        OWN(&g->y, T * E * e),
        OWN_OR_IN(hs_in_y(c), &g->hs, T * D * e, &g->y, 0),
        OWN(&g->proj, (yi_p ? Q * L : T) * W * e),
        /* + L rows: the SSD products read up to L - 1 rows past a segment (zeroed when allocated) */
        OWN(&g->xc, (T + (m2 ? SSD_SEG_MAX : 0)) * (size_t)ms_conv_dim(c) * e),
        OWN(&g->xdbl, c->arch == MS_ARCH_MAMBA1 ? T * (size_t)(c->dt_rank + 2 * N) * e : 0),
        OWN(&g->dtb, c->arch == MS_ARCH_MAMBA1 ? T * E * e : 0),
        OWN(&g->logits, T * V * 4),
        OWN_OR_IN(hidden_in_proj(c, e), &g->hidden, T * D * 4, &g->proj, 0),
        OWN(&g->head_sel, V * D * e),
        OWN(&g->head_sel_b, g->head_b ? V * 4 : 0),
        OWN(&g->ws_h, (size_t)g->cap_slots * E * N * 4),
        OWN(&g->ws_dtsum, (size_t)g->cap_slots * E * 4),
        OWN(&g->blas_ws, (size_t)32 << 20),
        OWN(&g->batch_dev, g->batch_cap),
        OWN(&g->ssd_dt, Q * H * L * 4),
        OWN(&g->ssd_cum, Q * H * L * 4),
        OWN(&g->ssd_S, Q * E * N * 4),
        OWN_OR_IN(cb_s, &g->ssd_cb, Q * G * L * L * 4, &g->ssd_S, 0),
        OWN(&g->ssd_m, fu ? 0 : Q * H * L * L * e),
        OWN_OR_IN(alias, &g->ssd_xs, Q * L * E * e, &g->ssd_m, 0),
        /* fused: xs (stage 5 to 6), then hin (7 to the output kernel) */
        fu ? OWN_OR_IN(pl.hin_xs, &g->ssd_hin, Q * E * N * e, &g->ssd_xs, 0)
           : OWN_OR_IN(alias, &g->ssd_hin, Q * E * N * e, &g->ssd_m, 0),
        OWN_OR_IN(alias, &g->ssd_ys, Q * L * E * e, &g->ssd_m, Q * E * N * e),
        /* in proj: from xBC's first column, Q L rows of proj's width */
        yi_p ? (scratch_buf)IN(&g->ssd_yi, &g->proj, E * e, Q * L * W * e - E * e)
             : (scratch_buf)OWN(&g->ssd_yi, fu ? 0 : Q * L * E * e),
        OWN(&g->ssd_ptrs, (9 * Q * G + 3 * Q * H) * sizeof(void *)),
    };
#undef OWN
#undef IN
#undef OWN_OR_IN
    const int n = (int)(sizeof list / sizeof list[0]);
    _Static_assert(sizeof list / sizeof list[0] <= SCRATCH_MAX, "SCRATCH_MAX too small");
    *total = 0;
    for (int i = 0; i < n; i++) {
        b[i] = list[i];
        *total += scratch_own(&list[i]);
    }
    return n;
}

/* Allocates the plan's own buffers (zeroed), then points each placed one into its host;
 * the plan stays in g (call_seg_len_for). */
static int alloc_scratch(cu_ctx *g, const ms_config *c, int T)
{
    scratch_buf *b = calloc(SCRATCH_MAX, sizeof *b);
    if (!b) return MS_ERR_NOMEM;
    g->plan = b;
    g->place = place_for(g, c, (size_t)T, (size_t)g->cap_seg, (size_t)g->seg_len);
    const int n = scratch_plan(g, c, (size_t)T, (size_t)g->cap_seg, (size_t)g->seg_len,
                               &g->place, b, &g->scratch_bytes, &g->ssd_ldyi);
    for (int i = 0; i < n; i++) {
        if (b[i].in) continue;
        if (dev_alloc(g, b[i].p, b[i].need) != MS_OK) return MS_ERR_BACKEND;
        /* finite contents everywhere: rows past the batch are read (and multiplied by 0) */
        if (b[i].need) CU_TRY(zero_sync(g, *b[i].p, b[i].need), "cudaMemset (scratch)");
    }
    for (int i = 0; i < n; i++)
        if (b[i].in) *b[i].p = (char *)*b[i].in + b[i].off;
    return MS_OK;
}

/* The segment length of a Mamba-2 call: the context's (seg_len), or, where every chunk
 * fits one segment of up to SSD_SEG_MAX rows but not one of seg_len (reads of 150-250
 * tokens), one that holds the longest chunk (rounded up to 32 rows), if the allocated
 * scratch holds the call's buffers at that length with each buffer placed as allocated.
 * Reads of 160 tokens fill 62.5% of 128-row segments' rows; in 160-row segments the
 * H200 ran the reference Mamba-2's reads workload 11% faster (0.673-0.679 -> 0.749 M
 * tok/s, bf16; the bundled DNA model within its run-to-run spread). One long stream keeps
 * 128 (1.00 M; 0.95 M with every segment 160 long). */
static int call_seg_len_for(const cu_ctx *g, const ms_config *c, const ms_chunk *chunks,
                            int n_chunks)
{
    const int L = g->seg_len;
    if (c->arch != MS_ARCH_MAMBA2 || !g->seg_adapt || n_chunks > g->cap_seg) return L;
    int max_n = 0;
    for (int i = 0; i < n_chunks; i++)
        if (chunks[i].n_tokens > max_n) max_n = chunks[i].n_tokens;
    if (max_n <= L || max_n > SSD_SEG_MAX) return L;
    const int L2 = (max_n + 31) / 32 * 32;
    scratch_buf b[SCRATCH_MAX];
    size_t total;
    /* the same list as allocated, each buffer in the same place (placements kept), so
     * entry i is g->plan[i]'s; n_chunks <= cap_seg keeps hin clear of ys's offset in m */
    const int n = scratch_plan(g, c, (size_t)g->cap_tokens, (size_t)n_chunks, (size_t)L2,
                               &g->place, b, &total, NULL);
    for (int i = 0; i < n; i++) {
        const scratch_buf *a = &g->plan[i];
        size_t room = a->need;
        if (a->in) { /* from the allocated offset to the end of its host */
            room = 0;
            for (int j = 0; j < n; j++)
                if (g->plan[j].p == a->in) room = g->plan[j].need - a->off;
        }
        if (b[i].need > room) return L;
    }
    return L2;
}

static void cu_free(ms_ctx *ctx);

/* The one-launch Mamba-1 decode step's weight table and barrier counters (decode_step_m1.cu),
 * for token-input Mamba-1 models without FalconMamba's norms. */
static int step_table(cu_ctx *g, const ms_config *c)
{
    if (!g->step || c->arch != MS_ARCH_MAMBA1 || c->falcon || g->d_input > 0) return MS_OK;
    const size_t n = (size_t)c->n_layer;
    if (!(g->step_host = calloc(n, sizeof *g->step_host))) return MS_ERR_NOMEM;
    for (size_t l = 0; l < n; l++) {
        const cu_layer *w = &g->layers[l];
        g->step_host[l] = (ms_cu_step_layer){
            .in_w = w->in_proj_w, .x_w = w->x_proj_w, .dt_w = w->dt_proj_w, .out_w = w->out_proj_w,
            .norm_w = w->norm_w, .norm_b = w->norm_b, .in_b = w->in_proj_b, .conv_w = w->conv_w,
            .conv_b = w->conv_b, .dt_b = w->dt_bias, .A = w->A, .Dv = w->D, .out_b = w->out_proj_b,
        };
    }
    int rc;
    const size_t acc_bytes = sizeof(long long) * ms_cu_step_m1_acc_count(c->n_layer, c->dt_rank,
                                                                         c->d_state);
    if ((rc = dev_alloc(g, (void **)&g->step_dev, n * sizeof *g->step_dev)) ||
        (rc = dev_alloc(g, (void **)&g->step_bar, 2 * sizeof(unsigned))) ||
        (rc = dev_alloc(g, (void **)&g->step_xacc, acc_bytes)))
        return rc;
    CU_TRY(cudaMemset(g->step_xacc, 0, acc_bytes), "cudaMemset (step sums)");
    CU_TRY(cudaMemcpy(g->step_dev, g->step_host, n * sizeof *g->step_dev, cudaMemcpyHostToDevice),
           "step table upload");
    CU_TRY(cudaMemset(g->step_bar, 0, 2 * sizeof(unsigned)), "cudaMemset (step barrier)");
    return MS_OK;
}

static int cu_init(ms_ctx *ctx)
{
    const ms_config *c = &ctx->model->cfg;
    const ms_ctx_params *p = &ctx->params;
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0) {
        if (e != cudaSuccess) cudaGetLastError();
        ms_error("CUDA requested, but no CUDA device is usable: %s",
                 e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
        return MS_ERR_BACKEND;
    }
    if (p->device_index < 0 || p->device_index >= n_dev) {
        ms_error("CUDA device %d requested, but this machine has %d (0..%d)", p->device_index,
                 n_dev, n_dev - 1);
        return MS_ERR_BACKEND;
    }
    if (c->arch == MS_ARCH_MAMBA2 && (c->n_groups < 1 || c->n_heads % c->n_groups)) {
        ms_error("cuda backend: n_heads %d is not a multiple of n_groups %d", c->n_heads,
                 c->n_groups);
        return MS_ERR_UNSUPPORTED;
    }
    if (c->d_state > 256 || c->d_conv > 8 || c->d_conv < 1) {
        ms_error("cuda backend: d_state %d (at most 256) or d_conv %d (1..8) not supported",
                 c->d_state, c->d_conv);
        return MS_ERR_UNSUPPORTED;
    }
    cu_ctx *g = calloc(1, sizeof *g);
    if (!g) return MS_ERR_NOMEM;
    ctx->impl = g;
    g->device = p->device_index;
    CU_TRY(cudaSetDevice(g->device), "cudaSetDevice");
    g->dt = p->precision == MS_PREC_BF16 ? MS_CU_BF16 : p->precision == MS_PREC_FP16 ? MS_CU_F16
                                                                                      : MS_CU_F32;
    g->cdt = g->dt == MS_CU_BF16 ? CUDA_R_16BF : g->dt == MS_CU_F16 ? CUDA_R_16F : CUDA_R_32F;
    g->esz = g->dt == MS_CU_F32 ? 4 : 2;
    const ms_model_info *mi = &ctx->model->info;
    g->d_input = mi->d_input > 0 ? mi->d_input : 0;
    g->n_emb = g->d_input > 0 ? 0 : c->n_vocab;
    g->n_out = mi->task == MS_TASK_CLASSIFY ? mi->n_labels : c->n_vocab;

    const char *genv = getenv("MS_CUDA_GRAPHS"); /* 0: no graphs (debugging, comparison) */
    g->use_graphs = !(genv && !strcmp(genv, "0"));
    /* 0: one-token chunks take the general path (comparison, debugging) */
    const char *fenv = getenv("MS_CUDA_FUSED_DECODE");
    g->fused_decode = !(fenv && !strcmp(fenv, "0"));
    /* MS_CUDA_DEC_WIDE=N: Mamba-1 decode calls of N or more streams take dt_proj as a
     * product and the wide scan kernel (0: never; comparison, tests) */
    const char *wenv = getenv("MS_CUDA_DEC_WIDE");
    g->dec_wide = wenv ? atoi(wenv) : DEC_WIDE_MIN;
    const char *venv = getenv("MS_CUDA_GEMV"); /* 0: cuBLAS for every product (comparison) */
    g->gemv = !(venv && !strcmp(venv, "0"));
    const char *fwenv = getenv("MS_CUDA_GEMM_FEW"); /* 0: cuBLAS for 2-32 tokens (comparison) */
    g->gemm_few = !(fwenv && !strcmp(fwenv, "0"));
    const char *penv = getenv("MS_CUDA_PDL"); /* 0: decode kernels launched plainly (comparison) */
    g->pdl = !(penv && !strcmp(penv, "0")) && ms_cu_pdl_supported();
    /* 0: one-stream Mamba-1 decode by separate kernels (comparison); require: fail a
     * one-stream decode call that cannot take the one-launch step (tests) */
    const char *senv = getenv("MS_CUDA_STEP");
    g->step = senv && !strcmp(senv, "0") ? 0 : senv && !strcmp(senv, "require") ? 2 : 1;
    const char *renv = getenv("MS_CUDA_FRESH"); /* 0: a reset zeros the state at once (comparison) */
    g->lazy_reset = !(renv && !strcmp(renv, "0"));
    g->cap_tokens = p->max_tokens;
    g->cap_streams = p->max_streams;
    g->seg_len = g->call_seg_len = seg_len_for(c);
    /* 0: every call takes seg_len (comparison); a forced MS_CUDA_SEG_LEN is kept too */
    const char *aenv = getenv("MS_CUDA_SEG_ADAPT");
    g->seg_adapt = !(aenv && !strcmp(aenv, "0")) && !getenv("MS_CUDA_SEG_LEN");
    g->cap_seg = p->max_tokens / g->seg_len + p->max_streams + 1;
    /* a chunk of n > seg_len tokens has ceil(n / seg_len) <= 2 n / seg_len segments */
    g->cap_slots = 2 * (p->max_tokens / g->seg_len) + 2;
    /* Mamba-2 runs the recurrent scan only for chunks shorter than SSD_MIN_LEN: one
     * segment each unless the segment length was forced below that */
    if (c->arch == MS_ARCH_MAMBA2 && g->seg_len >= SSD_MIN_LEN) g->cap_slots = 0;
    g->batch_cap = batch_bytes(g->cap_streams, g->cap_seg, g->d_input ? 0 : g->cap_tokens,
                               g->n_out, (size_t)g->cap_tokens * g->d_input) + 64;

    /* Does it fit? Weights plus scratch against the device's free memory. */
    const size_t wb = weights_bytes(g, c, g->esz);
    size_t free_b = 0, total_b = 0;
    CU_TRY(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    scratch_buf plan[SCRATCH_MAX];
    size_t sb = 0;
    scratch_plan(g, c, (size_t)g->cap_tokens, (size_t)g->cap_seg, (size_t)g->seg_len, NULL, plan,
                 &sb, NULL);
    if (wb + sb > free_b) {
        ms_error("model does not fit on CUDA device %d: needs %.1f MiB (weights %.1f MiB in %s + "
                 "scratch %.1f MiB for max_tokens %d), %.1f MiB free of %.1f MiB",
                 g->device, (wb + sb) / 1048576.0, wb / 1048576.0, prec_name(p->precision),
                 sb / 1048576.0, p->max_tokens, free_b / 1048576.0, total_b / 1048576.0);
        return MS_ERR_BACKEND;
    }

    /* (after the memory check, so a context too large for both says "does not fit")
     * Kernels index activations with 32-bit ints: [max_tokens][widest row] must stay
     * below 2^31 elements (the widest row is in_proj's output). */
    const int64_t widest = ms_in_proj_rows(c) > c->d_inner * 2 ? ms_in_proj_rows(c) : c->d_inner * 2;
    if ((int64_t)p->max_tokens * widest >= INT32_MAX) {
        ms_error("cuda backend: %d tokens per forward call is too many for this model "
                 "(at most %lld); lower --chunk or --batch", p->max_tokens,
                 (long long)((INT32_MAX - 1) / widest));
        return MS_ERR_ARG;
    }
    CU_TRY(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    BLAS_TRY(cublasCreate(&g->blas), "cublasCreate");
    g->have_blas = 1;
    BLAS_TRY(cublasSetStream(g->blas, g->stream), "cublasSetStream");
    /* fp32 is the check mode: no TF32 (default math with compute type 32F) */
    BLAS_TRY(cublasSetMathMode(g->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    CU_TRY(cudaMallocHost((void **)&g->batch_host, g->batch_cap), "cudaMallocHost (batch)");

    int rc = upload_weights(g, ctx->model);
    if (rc == MS_OK) rc = alloc_scratch(g, c, g->cap_tokens);
    if (rc != MS_OK) {
        if (rc == MS_ERR_BACKEND) {
            size_t f2 = 0, t2 = 0;
            cudaMemGetInfo(&f2, &t2);
            ms_error("model does not fit on CUDA device %d: weights %.1f MiB (%s) + scratch "
                     "%.1f MiB for max_tokens %d, %.1f MiB were free",
                     g->device, wb / 1048576.0, prec_name(p->precision),
                     g->scratch_bytes / 1048576.0, p->max_tokens, free_b / 1048576.0);
        }
        return rc;
    }
    if ((rc = step_table(g, c)) != MS_OK) return rc;
    g->weight_bytes = wb;
    g->peak_bytes = wb + g->scratch_bytes;
    BLAS_TRY(cublasSetWorkspace(g->blas, g->blas_ws, (size_t)32 << 20), "cublasSetWorkspace");
    return MS_OK;
}

static void cu_free(ms_ctx *ctx)
{
    cu_ctx *g = ctx->impl;
    if (!g) return;
    cudaSetDevice(g->device);
    if (g->stream) cudaStreamSynchronize(g->stream);
    if (g->graph) cudaGraphExecDestroy(g->graph);
    for (int i = 0; i < g->n_allocs; i++) cudaFree(g->allocs[i]);
    free(g->allocs);
    if (g->batch_host) cudaFreeHost(g->batch_host);
    if (g->have_blas) cublasDestroy(g->blas);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g->layers);
    free(g->step_host);
    free(g->plan);
    free(g);
    ctx->impl = NULL;
}

/* ------------------------------------------------------------------ state */

static size_t state_bytes(ms_ctx *ctx) { return ms_state_floats(&ctx->model->cfg) * sizeof(float); }

static int cu_state_alloc(ms_ctx *ctx, ms_stream *s)
{
    cu_ctx *g = ctx->impl;
    CU_TRY(cudaSetDevice(g->device), "cudaSetDevice");
    void *p = NULL;
    if (cudaMalloc(&p, state_bytes(ctx)) != cudaSuccess) {
        cudaGetLastError();
        ms_error("cuda backend: no device memory for a stream state of %zu bytes", state_bytes(ctx));
        return MS_ERR_NOMEM;
    }
    s->state = p;
    CU_TRY(zero_sync(g, p, state_bytes(ctx)), "cudaMemset (state)");
    s->fresh = g->lazy_reset;
    g->n_states++;
    const size_t held = g->weight_bytes + g->scratch_bytes + g->n_states * state_bytes(ctx);
    if (held > g->peak_bytes) g->peak_bytes = held;
    return MS_OK;
}

static void cu_state_free(ms_ctx *ctx, ms_stream *s)
{
    cu_ctx *g = ctx->impl;
    cudaSetDevice(g->device);
    if (s->state) g->n_states--;
    cudaFree(s->state);
    s->state = NULL;
}

static size_t cu_peak_device_bytes(const ms_ctx *ctx)
{
    const cu_ctx *g = ctx->impl;
    return g ? g->peak_bytes : 0;
}

/* Fresh streams. A reset only marks the stream fresh (ms_stream.fresh): its state reads as
 * zeros until a forward writes it, and the device is not touched (a reset had been a
 * cudaMemset and a synchronisation per stream: 512 of them before each call of bench's
 * reads, and 9.9 GB of zeros for the reference Mamba-2 there). In a forward, chunk i's
 * flag travels in ms_cu_batch.fresh: scoring calls ask it (conv1d_silu.cu reads no conv
 * state; selective_scan.cu and ssd_scan.cu's stage 7 no SSM state; a Mamba-2 call of fresh
 * one-segment chunks takes the direct form there); decode calls zero the fresh chunks'
 * states first (ms_cu_zero_states). A forward leaves every chunk's state written, so it clears the
 * flag; a chunk that ends its stream (ms_chunk.last) is reset by the engine right after,
 * so a call of such chunks only may leave the states unwritten (ms_cu_batch.drop_states). */
static void cu_state_reset(ms_ctx *ctx, ms_stream *s)
{
    cu_ctx *g = ctx->impl;
    if (g->lazy_reset) {
        s->fresh = 1;
        return;
    }
    cudaSetDevice(g->device);
    if (zero_sync(g, s->state, state_bytes(ctx)) != cudaSuccess)
        ms_error("cuda backend: cudaMemset (state reset) failed: %s",
                 cudaGetErrorString(cudaGetLastError()));
}

static int cu_state_get(ms_ctx *ctx, const ms_stream *s, float *dst)
{
    cu_ctx *g = ctx->impl;
    if (s->fresh) {
        memset(dst, 0, state_bytes(ctx));
        return MS_OK;
    }
    CU_TRY(cudaSetDevice(g->device), "cudaSetDevice");
    CU_TRY(copy_sync(g, dst, s->state, state_bytes(ctx), cudaMemcpyDeviceToHost), "state_get copy");
    return MS_OK;
}

static int cu_state_set(ms_ctx *ctx, ms_stream *s, const float *src)
{
    cu_ctx *g = ctx->impl;
    CU_TRY(cudaSetDevice(g->device), "cudaSetDevice");
    CU_TRY(copy_sync(g, s->state, src, state_bytes(ctx), cudaMemcpyHostToDevice), "state_set copy");
    s->fresh = 0;
    return MS_OK;
}

/* ------------------------------------------------------------------ forward */

/* Whether gemm_typed takes this product of T tokens (2-32, 16-bit; up to 64 for W of at
 * most 256 rows: x_proj, the head) to gemm_few.cu, which can also run decode's conv step
 * on in_proj's output for up to 32 (in_proj asks the same question). */
static int takes_few(const cu_ctx *g, cudaDataType_t ot, const void *x, int ldx,
                     const void *W, cudaDataType_t it, int T, int n_in, int n_out)
{
    return g->gemm_few && it == g->cdt && (ot == g->cdt || ot == CUDA_R_32F) &&
           ms_cu_gemm_few_ok(W, x, ldx, T, n_in, n_out, g->dt);
}

/* out[T][n_out] (ld ldo, type ot) = beta * out + x[T][n_in] (ld ldx) @ W[n_out][n_in]^T,
 * x and W of type it. */
static int gemm_typed(cu_ctx *g, void *out, cudaDataType_t ot, int ldo, const void *x, int ldx,
                      const void *W, cudaDataType_t it, int T, int n_in, int n_out, float beta,
                      const char *what)
{
    const float alpha = 1.f;
    /* one token (decode of one stream): our GEMV, a few us under cuBLAS's (gemv.cu) */
    if (g->gemv && it == g->cdt && (ot == g->cdt || ot == CUDA_R_32F) &&
        ms_cu_gemv_ok(W, x, T, n_in, g->esz)) {
        CU_TRY(ms_cu_gemv(out, ot == CUDA_R_32F, x, W, g->dt, n_in, n_out, beta, g->stream),
               what);
        return MS_OK;
    }
    /* 2-32 tokens (decode of a few streams; up to 64 for short W), 16-bit: ours, which reads
     * its weights under PDL */
    if (takes_few(g, ot, x, ldx, W, it, T, n_in, n_out)) {
        CU_TRY(ms_cu_gemm_few(out, ot == CUDA_R_32F, ldo, x, ldx, W, g->dt, T, n_in, n_out, beta,
                              NULL, g->stream),
               what);
        return MS_OK;
    }
    BLAS_TRY(cublasGemmEx(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, T, n_in, &alpha, W, it, n_in,
                          x, it, ldx, &beta, out, ot, ldo, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             what);
    return MS_OK;
}

/* The same with x and W in the activation type. */
static int gemm(cu_ctx *g, void *out, cudaDataType_t ot, int ldo, const void *x, int ldx,
                const void *W, int T, int n_in, int n_out, float beta, const char *what)
{
    return gemm_typed(g, out, ot, ldo, x, ldx, W, g->cdt, T, n_in, n_out, beta, what);
}

#define ACT(p, off) ((void *)((char *)(p) + (size_t)(off) * g->esz))

/* Pack the batch into batch_host and describe it in *bt; the caller copies nb_out bytes
 * to batch_dev. The input is tokens (*tokens_dev [T]) or, for a feature-input model
 * (every chunk then carries features), features (*feat_dev [T][F]); the other is NULL. */
static int pack_batch(cu_ctx *g, const ms_config *c, const ms_chunk *chunks, int n_chunks,
                      const int *cols, int n_cols, ms_cu_batch *bt, int32_t **tokens_dev,
                      float **feat_dev, int32_t **cols_dev, int *T_out, int *use_ssd,
                      size_t *nb_out)
{
    const int L = g->call_seg_len, F = g->d_input;
    int n_seg = 0, T = 0, max_n = 0;
    for (int i = 0; i < n_chunks; i++) {
        n_seg += (chunks[i].n_tokens + L - 1) / L;
        T += chunks[i].n_tokens;
        if (chunks[i].n_tokens > max_n) max_n = chunks[i].n_tokens;
    }
    *use_ssd = c->arch == MS_ARCH_MAMBA2 && max_n >= SSD_MIN_LEN;
    const int n_tok = F ? 0 : T, n_cl = cols ? n_cols : 0;
    const size_t nb = batch_bytes(n_chunks, n_seg, n_tok, n_cl, (size_t)T * F);
    if (nb > g->batch_cap || n_seg > g->cap_seg) {
        ms_error("cuda backend: batch of %d chunks / %d tokens exceeds the context", n_chunks, T);
        return MS_ERR_ARG;
    }
    unsigned char *h = g->batch_host;
    float **st = (float **)h;
    int32_t *ip = (int32_t *)(h + sizeof(float *) * n_chunks);
    int32_t *cstart = ip, *clen = cstart + n_chunks, *cseg = clen + n_chunks;
    int32_t *schunk = cseg + n_chunks + 1, *sstart = schunk + n_seg, *sn = sstart + n_seg;
    int32_t *sslot = sn + n_seg, *fr = sslot + n_seg, *tok = fr + n_chunks, *cl = tok + n_tok;
    float *feat = (float *)(h + batch_feat_off(n_chunks, n_seg, n_tok, n_cl)); /* [T][F] */
    int t = 0, s = 0, slot = 0, multi = 0, drop = 1;
    for (int i = 0; i < n_chunks; i++) {
        const int n = chunks[i].n_tokens, ns = (n + L - 1) / L;
        st[i] = chunks[i].stream->state;
        fr[i] = chunks[i].stream->fresh;
        drop &= chunks[i].last != 0;
        cstart[i] = t;
        clen[i] = n;
        cseg[i] = s;
        if (ns > 1) multi = 1;
        for (int k = 0; k < ns; k++, s++) {
            schunk[s] = i;
            sstart[s] = t + k * L;
            sn[s] = (k + 1) * L <= n ? L : n - k * L;
            sslot[s] = ns > 1 ? slot++ : -1;
        }
        if (F) memcpy(feat + (size_t)t * F, chunks[i].features, sizeof(float) * n * F);
        else memcpy(tok + t, chunks[i].tokens, sizeof(int32_t) * n);
        t += n;
    }
    cseg[n_chunks] = s;
    if (cols) for (int i = 0; i < n_cols; i++) cl[i] = cols[i];
    if (!*use_ssd && slot > g->cap_slots) {
        ms_error("cuda backend: %d scan workspace slots needed, %d allocated", slot, g->cap_slots);
        return MS_ERR_BACKEND;
    }
    *nb_out = nb; /* the caller copies batch_host to batch_dev */
    const ptrdiff_t d = (unsigned char *)g->batch_dev - g->batch_host;
#define DEV(p) ((void *)((unsigned char *)(p) + d))
    bt->state = DEV(st);
    bt->chunk_start = DEV(cstart);
    bt->chunk_len = DEV(clen);
    bt->chunk_seg = DEV(cseg);
    bt->seg_chunk = DEV(schunk);
    bt->seg_start = DEV(sstart);
    bt->seg_n = DEV(sn);
    bt->seg_slot = DEV(sslot);
    bt->fresh = DEV(fr);
    *tokens_dev = F ? NULL : DEV(tok);
    *feat_dev = F ? DEV(feat) : NULL;
    *cols_dev = DEV(cl);
#undef DEV
    bt->n_chunks = n_chunks;
    bt->n_seg = n_seg;
    bt->n_slots = slot;
    bt->multi = multi;
    bt->drop_states = drop;
    *T_out = T;
    return MS_OK;
}

static size_t layer_state_off(const ms_config *c, int l)
{
    return (size_t)l * (ms_conv_state_floats(c) + ms_ssm_state_floats(c));
}

/* Decode of one stream (one token per call) with the fused GEMVs of gemv.cu: a layer's
 * norm, in_proj and conv step in one kernel, out_proj taking its bias (and Mamba-2's gated
 * norm), the final norm in the head's. A Mamba-1 step is then 4 launches (in_proj, x_proj,
 * scan, out_proj), a Mamba-2 step 3. */
static int one_token(const cu_ctx *g, const ms_config *c, int T, const ms_cu_batch *bt)
{
    return g->fused_decode && g->gemv && T == 1 && bt->n_chunks == 1 && !c->falcon;
}

/* The layer's input norm fused into in_proj (the mixers then skip it)? */
static int norm_in_proj(const cu_ctx *g, const ms_config *c, const cu_layer *w, int T,
                        const ms_cu_batch *bt)
{
    return one_token(g, c, T, bt) && ms_cu_gemv_ok(w->in_proj_w, NULL, T, c->d_model, g->esz);
}

/* proj = in_proj(hs) (+ bias); or, where fused_in (norm_in_proj), in_proj(norm(resid))
 * (+ bias). conv_n > 0 (decode): the caller would run ms_cu_decode_conv on proj's rows
 * conv_lo .. conv_lo + conv_n - 1; where one kernel can do both (one stream: gemv.cu with
 * the norm; 2-32 streams: gemm_few.cu), it does, and *conv_done says so. */
static int in_proj(cu_ctx *g, const ms_config *c, int l, const ms_cu_batch *bt, int T,
                   int fused_in, int conv_lo, int conv_n, int *conv_done)
{
    const cu_layer *w = &g->layers[l];
    const int D = c->d_model, ldp = ms_in_proj_rows(c);
    const ms_cu_gemv_fuse cf = {
        .conv_lo = conv_lo, .conv_n = conv_n, .conv_k = c->d_conv, .conv_w = w->conv_w,
        .conv_b = w->conv_b, .bt = bt, .conv_off = layer_state_off(c, l), .xc = g->xc,
    };
    *conv_done = conv_n > 0 && (fused_in || (!w->in_proj_b && T <= MS_CU_FEW_MAX_T &&
                                             takes_few(g, g->cdt, g->hs, D, w->in_proj_w, g->cdt,
                                                       T, D, ldp)));
    if (!fused_in && *conv_done) {
        CU_TRY(ms_cu_gemm_few(g->proj, 0, ldp, g->hs, D, w->in_proj_w, g->dt, T, D, ldp, 0.f, &cf,
                              g->stream),
               "in_proj kernel (conv fused)");
        return MS_OK;
    }
    if (!fused_in) {
        int rc;
        if ((rc = gemm(g, g->proj, g->cdt, ldp, g->hs, D, w->in_proj_w, T, D, ldp, 0.f,
                       "in_proj")))
            return rc;
        if (w->in_proj_b)
            CU_TRY(ms_cu_bias_add(g->proj, g->dt, ldp, w->in_proj_b, T, ldp, g->stream),
                   "in_proj bias kernel");
        return MS_OK;
    }
    ms_cu_gemv_fuse f = cf;
    f.resid = g->resid;
    f.norm_w = w->norm_w;
    f.norm_b = w->norm_b;
    f.eps = c->norm_eps;
    f.rms = c->rms_norm;
    f.bias = w->in_proj_b;
    CU_TRY(ms_cu_gemv_fused(g->proj, 0, NULL, w->in_proj_w, g->dt, D, ldp, 0.f, &f, g->stream),
           "in_proj kernel (norm, conv fused)");
    return MS_OK;
}

/* Layer l's resid += out_proj(y) + bias in one kernel (Mamba-2: y through the gated norm
 * first, when gz is set), where a one-token call allows; *bias_pending says whether the
 * bias is still to add (by the next norm). */
static int out_proj(cu_ctx *g, const ms_config *c, int l, int T, const ms_cu_batch *bt,
                    const ms_cu_gemv_fuse *gated, const float **bias_pending)
{
    const cu_layer *w = &g->layers[l];
    const int D = c->d_model, E = c->d_inner;
    ms_cu_gemv_fuse f = gated ? *gated : (ms_cu_gemv_fuse){0};
    f.bias = w->out_proj_b;
    if (one_token(g, c, T, bt) && ms_cu_gemv_ok(w->out_proj_w, g->y, T, E, g->esz) &&
        ms_cu_gemv_fuse_ok(&f, E)) {
        CU_TRY(ms_cu_gemv_fused(g->resid, 1, g->y, w->out_proj_w, g->dt, E, D, 1.f, &f, g->stream),
               "out_proj kernel (fused)");
        *bias_pending = NULL;
        return MS_OK;
    }
    if (gated)
        CU_TRY(ms_cu_gated_rmsnorm(g->y, E, gated->gz, ms_in_proj_rows(c), g->dt, gated->gnorm_w,
                                   gated->eps, T, E, c->n_groups, g->stream),
               "gated rmsnorm kernel");
    *bias_pending = w->out_proj_b;
    return gemm(g, g->resid, CUDA_R_32F, D, g->y, E, w->out_proj_w, T, E, D, 1.f, "out_proj");
}

/* resid += bias (float32), where the next norm is fused into a product and cannot add it */
static int resid_bias(cu_ctx *g, const ms_config *c, const float *bias, int T)
{
    if (bias)
        CU_TRY(ms_cu_bias_add(g->resid, MS_CU_F32, c->d_model, bias, T, c->d_model, g->stream),
               "residual bias kernel");
    return MS_OK;
}

/* A layer's mixer: resid += mixer(norm(resid)), the norm already in hs or, where fused_in
 * (norm_in_proj), in in_proj's kernel; the out_proj bias left to the next norm in
 * *bias_pending. */
static int mixer_mamba1(cu_ctx *g, const ms_config *c, int l, const ms_cu_batch *bt, int T,
                        int fused_in, const float **bias_pending)
{
    const cu_layer *w = &g->layers[l];
    const int E = c->d_inner, N = c->d_state, R = c->dt_rank, K = c->d_conv;
    const int ldp = 2 * E, ldx = R + 2 * N;
    const size_t conv_off = layer_state_off(c, l), ssm_off = conv_off + ms_conv_state_floats(c);
    int rc, conv_done;
    /* every chunk is one token (decode): conv + state shift in one kernel (or in
     * in_proj's), x_proj, then dt_proj + scan + gate in one kernel (decode_m1.cu) */
    const int dec = g->fused_decode && T == bt->n_chunks && !c->falcon;
    if ((rc = in_proj(g, c, l, bt, T, fused_in, 0, dec ? E : 0, &conv_done))) return rc;
    if (dec) {
        if (!conv_done)
            CU_TRY(ms_cu_decode_conv(g->xc, E, g->proj, ldp, g->dt, bt, conv_off, w->conv_w,
                                     w->conv_b, E, K, g->stream),
                   "decode conv kernel");
        if ((rc = gemm(g, g->xdbl, g->cdt, ldx, g->xc, E, w->x_proj_w, T, E, ldx, 0.f, "x_proj")))
            return rc;
        /* many streams: dt_proj as a product, then the wide scan kernel */
        const int wide = g->dec_wide > 0 && bt->n_chunks >= g->dec_wide &&
                         ms_cu_decode_m1_wide_ok(N, ssm_off);
        if (wide && (rc = gemm(g, g->dtb, g->cdt, E, g->xdbl, ldx, w->dt_proj_w, T, R, E, 0.f,
                               "dt_proj")))
            return rc;
        ms_cu_decode_m1_args da = {
            .y = g->y, .xc = g->xc, .xdbl = g->xdbl, .xz = g->proj, .ldp = ldp,
            .dt_proj_w = w->dt_proj_w, .dt_bias = w->dt_bias, .A = w->A, .D = w->D,
            .E = E, .N = N, .R = R, .ssm_off = ssm_off, .dt_raw = wide ? g->dtb : NULL,
        };
        CU_TRY(ms_cu_decode_m1_scan(&da, g->dt, bt, g->stream), "decode scan kernel");
        return out_proj(g, c, l, T, bt, NULL, bias_pending);
    }
    CU_TRY(ms_cu_conv1d_silu(g->xc, E, g->proj, ldp, g->dt, bt, conv_off, w->conv_w, w->conv_b, E,
                             K, g->stream),
           "conv1d kernel");
    if ((rc = gemm(g, g->xdbl, g->cdt, ldx, g->xc, E, w->x_proj_w, T, E, ldx, 0.f, "x_proj")))
        return rc;
    if (c->falcon)
        CU_TRY(ms_cu_rms3(g->xdbl, g->dt, ldx, R, N, c->mixer_rms_eps, T, g->stream),
               "falcon rms kernel");
    if ((rc = gemm(g, g->dtb, g->cdt, E, g->xdbl, ldx, w->dt_proj_w, T, R, E, 0.f, "dt_proj")))
        return rc;
    ms_cu_scan_args a = {
        .x = g->xc, .ldx = E, .dt = g->dtb, .lddt = E, .dt_bias = w->dt_bias, .A = w->A,
        .B = ACT(g->xdbl, R), .C = ACT(g->xdbl, R + N), .ldbc = ldx, .D = w->D,
        .z = ACT(g->proj, E), .ldz = ldp, .y = g->y, .ldy = E, .E = E, .N = N, .P = 1,
        .heads_per_group = E, .mamba2 = 0, .dt_min = 0.f, .dt_max = INFINITY,
        .state_off = ssm_off, .ws_h = g->ws_h, .ws_dtsum = g->ws_dtsum,
    };
    CU_TRY(ms_cu_selective_scan(&a, g->dt, bt, g->stream), "selective scan kernel");
    return out_proj(g, c, l, T, bt, NULL, bias_pending);
}

/* C[i] (ldc) = op(A[i]) op(B[i]) for i < batch: A, B in the activation type, C in ct. */
static int gemm_batched(cu_ctx *g, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                        int k, void **A, int lda, void **B, int ldb, void **C, cudaDataType_t ct,
                        int ldc, int batch, const char *what)
{
    const float alpha = 1.f, beta = 0.f;
    BLAS_TRY(cublasGemmBatchedEx(g->blas, ta, tb, m, n, k, &alpha, (const void *const *)A, g->cdt,
                                 lda, (const void *const *)B, g->cdt, ldb, &beta, C, ct, ldc, batch,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             what);
    return MS_OK;
}

/* The SSD arguments of layer l (buffers as in ssd_scan.cu). */
static ms_cu_ssd_args ssd_args(cu_ctx *g, const ms_config *c, int l)
{
    const cu_layer *w = &g->layers[l];
    const int E = c->d_inner, N = c->d_state, G = c->n_groups, cd = ms_conv_dim(c);
    return (ms_cu_ssd_args){
        .x = g->xc, .ldx = cd, .B = ACT(g->xc, E), .C = ACT(g->xc, E + G * N), .ldbc = cd,
        .dt_raw = ACT(g->proj, E + cd), .lddt = ms_in_proj_rows(c), .dt_bias = w->dt_bias,
        .A = w->A, .D = w->D, .y = g->y, .ldy = E, .E = E, .N = N, .H = c->n_heads,
        .P = c->head_dim, .G = G, .heads_per_group = c->n_heads / G, .L = g->call_seg_len,
        .dt_min = c->dt_min, .dt_max = c->dt_max,
        .state_off = layer_state_off(c, l) + ms_conv_state_floats(c),
        .dt = g->ssd_dt, .cum = g->ssd_cum, .cb = g->ssd_cb, .S = g->ssd_S, .m = g->ssd_m,
        .xs = g->ssd_xs, .yi = g->ssd_yi, .ys = g->ssd_ys, .hin = g->ssd_hin,
        .ldyi = g->ssd_ldyi,
    };
}

/* Stages 5 to 7 of ssd_scan.cu: the segments' states, and each segment's start state
 * (hin); in the direct form (g->ssd_direct) stage 6 leaves the streams' final states and
 * stage 7 does not run, and where those states are dropped too (every chunk a whole read:
 * bt->drop_states) nothing runs. p3: stage 6's pointer tables. */
static int ssd_states(cu_ctx *g, const ms_cu_ssd_args *a, const ms_cu_batch *bt, void **p3)
{
    const int QG = bt->n_seg * a->G, EG = a->E / a->G;
    int rc;
    if (g->ssd_direct && bt->drop_states) return MS_OK;
    CU_TRY(ms_cu_ssd_stage(5, a, g->dt, bt, g->stream), "ssd decayed x kernel");
    if (g->ssd_direct)
        CU_TRY(ms_cu_ssd_ptrs_direct(a, bt, g->ssd_ptrs, g->stream), "ssd state pointer kernel");
    /* stages 6 and 8 per (segment, group): its heads' E / G channels in one product */
    if ((rc = gemm_batched(g, CUBLAS_OP_N, CUBLAS_OP_T, a->N, EG, a->L, p3, a->ldx, p3 + QG,
                           a->E, p3 + 2 * QG, CUDA_R_32F, a->N, QG, "ssd chunk states")))
        return rc;
    if (!g->ssd_direct)
        CU_TRY(ms_cu_ssd_stage(7, a, g->dt, bt, g->stream), "ssd state passing kernel");
    return MS_OK;
}

/* Stage 8 of ssd_scan.cu: ys = C hin^T per (segment, group). p4: its pointer tables. */
static int ssd_state_out(cu_ctx *g, const ms_cu_ssd_args *a, const ms_cu_batch *bt, void **p4)
{
    const int QG = bt->n_seg * a->G, EG = a->E / a->G;
    return gemm_batched(g, CUBLAS_OP_T, CUBLAS_OP_N, EG, a->L, a->N, p4, a->N, p4 + QG, a->ldx,
                        p4 + 2 * QG, g->cdt, a->E, QG, "ssd state output");
}

/* Mamba-2's scan in the SSD form: elementwise stages of ssd_scan.cu around four batched
 * products (stage numbers as there), or, fused (g->place.fused), stages 1 and 5-8, the cb
 * product, then ssd_out.cu's kernel for the rest. */
static int ssd_scan(cu_ctx *g, const ms_config *c, int l, const ms_cu_batch *bt)
{
    const ms_cu_ssd_args a = ssd_args(g, c, l);
    const int Q = bt->n_seg, L = a.L, N = a.N, P = a.P, ld = a.ldx;
    const int QG = Q * a.G, QH = Q * a.H;
    void **p = g->ssd_ptrs, **p2 = p + 3 * (size_t)QG, **p3 = p2 + 3 * (size_t)QH;
    void **p4 = p3 + 3 * (size_t)QG;
    int rc;
    const int fused = g->place.fused;
    CU_TRY(ms_cu_ssd_stage(1, &a, g->dt, bt, g->stream), "ssd dt/cumsum kernel");
    if (fused) { /* cb is taken last: it may live in S's bytes (cb_s) */
        if ((rc = ssd_states(g, &a, bt, p3))) return rc;
        if (!g->ssd_direct && (rc = ssd_state_out(g, &a, bt, p4))) return rc;
        if ((rc = gemm_batched(g, CUBLAS_OP_T, CUBLAS_OP_N, L, L, N, p, ld, p + QG, ld,
                               p + 2 * QG, CUDA_R_32F, L, QG, "ssd C B^T")))
            return rc;
        ms_cu_ssd_args ao = a;
        if (g->ssd_direct) ao.ys = NULL; /* every start state zero: so is C hin^T */
        CU_TRY(ms_cu_ssd_out(&ao, g->dt, bt, g->stream), "ssd output kernel");
        return MS_OK;
    }
    if ((rc = gemm_batched(g, CUBLAS_OP_T, CUBLAS_OP_N, L, L, N, p, ld, p + QG, ld, p + 2 * QG,
                           CUDA_R_32F, L, QG, "ssd C B^T")))
        return rc;
    CU_TRY(ms_cu_ssd_stage(3, &a, g->dt, bt, g->stream), "ssd mask kernel");
    if ((rc = gemm_batched(g, CUBLAS_OP_N, CUBLAS_OP_N, P, L, L, p2, ld, p2 + QH, L, p2 + 2 * QH,
                           g->cdt, a.ldyi, QH, "ssd intra-chunk x")))
        return rc;
    if ((rc = ssd_states(g, &a, bt, p3)) || (rc = ssd_state_out(g, &a, bt, p4))) return rc;
    CU_TRY(ms_cu_ssd_stage(9, &a, g->dt, bt, g->stream), "ssd combine kernel");
    return MS_OK;
}

/* The shapes decode_m2.cu's one-token scan takes (its launcher's checks, on the host). */
static int m2_decode_ok(const ms_cu_scan_args *a)
{
    const int Q = a->N / 16;
    return a->N % 16 == 0 && Q >= 1 && Q <= 16 && !(Q & (Q - 1)) && a->P * Q <= 1024 &&
           a->state_off % 4 == 0;
}

static int mixer_mamba2(cu_ctx *g, const ms_config *c, int l, const ms_cu_batch *bt, int T,
                        int use_ssd, int fused_in, const float **bias_pending)
{
    const cu_layer *w = &g->layers[l];
    const int E = c->d_inner, N = c->d_state, G = c->n_groups;
    const int ldp = ms_in_proj_rows(c), cd = ms_conv_dim(c);
    const size_t conv_off = layer_state_off(c, l), ssm_off = conv_off + ms_conv_state_floats(c);
    int rc, conv_done;
    const int dec = g->fused_decode && T == bt->n_chunks; /* one token per chunk */
    if ((rc = in_proj(g, c, l, bt, T, fused_in, E, dec ? cd : 0, &conv_done))) return rc;
    if (!conv_done) {
        if (dec) /* conv + shift in one kernel */
            CU_TRY(ms_cu_decode_conv(g->xc, cd, ACT(g->proj, E), ldp, g->dt, bt, conv_off,
                                     w->conv_w, w->conv_b, cd, c->d_conv, g->stream),
                   "decode conv kernel");
        else
            CU_TRY(ms_cu_conv1d_silu(g->xc, cd, ACT(g->proj, E), ldp, g->dt, bt, conv_off,
                                     w->conv_w, w->conv_b, cd, c->d_conv, g->stream),
                   "conv1d kernel");
    }
    if (use_ssd) {
        if ((rc = ssd_scan(g, c, l, bt))) return rc;
    } else { /* short chunks (decode): the recurrent form */
        ms_cu_scan_args a = {
            .x = g->xc, .ldx = cd, .dt = ACT(g->proj, E + cd), .lddt = ldp, .dt_bias = w->dt_bias,
            .A = w->A, .B = ACT(g->xc, E), .C = ACT(g->xc, E + G * N), .ldbc = cd, .D = w->D,
            .z = NULL, .ldz = 0, .y = g->y, .ldy = E, .E = E, .N = N, .P = c->head_dim,
            .heads_per_group = c->n_heads / G, .mamba2 = 1, .dt_min = c->dt_min, .dt_max = c->dt_max,
            .state_off = ssm_off, .ws_h = g->ws_h, .ws_dtsum = g->ws_dtsum,
        };
        if (g->fused_decode && T == bt->n_chunks && m2_decode_ok(&a))
            CU_TRY(ms_cu_decode_m2_scan(&a, g->dt, bt, g->stream), "decode scan kernel (m2)");
        else
            CU_TRY(ms_cu_selective_scan(&a, g->dt, bt, g->stream), "selective scan kernel");
    }
    /* y's gated norm by z (proj's first E columns), in out_proj's kernel where it can be */
    const ms_cu_gemv_fuse gated = {.gz = g->proj, .gnorm_w = w->gnorm_w, .gs = E / G,
                                   .eps = c->norm_eps};
    return out_proj(g, c, l, T, bt, &gated, bias_pending);
}

/* A one-token call of one Mamba-1 stream as one launch (decode_step_m1.cu), where the
 * table exists (step_table) and the shapes fit: *stepped 1 when it ran the layers (resid
 * holds their output), 2 when the head too (head_whole: logits of every head row wanted). */
static int step_kernel(cu_ctx *g, const ms_config *c, const ms_cu_batch *bt, int T,
                       const int32_t *tokens_dev, int head_whole, int *stepped)
{
    *stepped = 0;
    if (!g->step || !one_token(g, c, T, bt) || c->arch != MS_ARCH_MAMBA1) return MS_OK;
    const int E = c->d_inner, N = c->d_state, R = c->dt_rank, D = c->d_model;
    const ms_cu_step_m1 p = {
        .layers = g->step_dev, .n_layer = c->n_layer, .D = D, .E = E, .N = N, .R = R,
        .K = c->d_conv, .eps = c->norm_eps, .rms = c->rms_norm, .emb = g->emb,
        .tokens = tokens_dev, .state = bt->state, .resid = g->resid, .y = g->y,
        .xacc = g->step_xacc, .head = g->head,
        .head_b = g->head_b, .norm_f_w = g->norm_f_w, .norm_f_b = g->norm_f_b,
        .logits = g->logits, .n_out = head_whole ? g->n_out : 0, .bar = g->step_bar,
    };
    if (!g->step_host || !tokens_dev || !ms_cu_step_m1_ok(&p, g->step_host, g->dt)) {
        if (g->step == 2) {
            ms_error("cuda backend: MS_CUDA_STEP=require, but this model's decode step does not "
                     "fit the one-launch kernel");
            return MS_ERR_BACKEND;
        }
        return MS_OK;
    }
    CU_TRY(ms_cu_decode_step_m1(&p, g->dt, g->stream), "decode step kernel");
    *stepped = p.n_out > 0 ? 2 : 1;
    return MS_OK;
}

/* Enqueue one forward's device work: batch upload, input end (embedding gather, or the
 * features' product with frontend.proj), layers, head. Outputs stay on the device
 * (g->logits [T][n_out], g->hidden). Everything enqueued here may be captured. */
static int enqueue_forward(cu_ctx *g, const ms_config *c, const ms_cu_batch *bt_in, size_t nb,
                           const int32_t *tokens_dev, const float *feat_dev,
                           const int32_t *cols_dev, int T, int use_ssd, int has_cols, int n_cols,
                           int want_logits, int want_hidden)
{
    const int D = c->d_model;
    const ms_cu_batch bt = *bt_in;
    int rc;
    CU_TRY(cudaMemcpyAsync(g->batch_dev, g->batch_host, nb, cudaMemcpyHostToDevice, g->stream),
           "batch upload");
    if (use_ssd) { /* the products' pointer tables: same buffers in every layer */
        const ms_cu_ssd_args a = ssd_args(g, c, 0);
        CU_TRY(ms_cu_ssd_ptrs(&a, g->dt, &bt, g->ssd_ptrs, g->stream), "ssd pointer kernel");
    }

    /* one stream's Mamba-1 decode step in one launch, the head too where it can */
    const int head_whole = want_logits && !want_hidden && !has_cols;
    int stepped = 0;
    if ((rc = step_kernel(g, c, &bt, T, tokens_dev, head_whole, &stepped))) return rc;
    if (stepped == 2) return MS_OK;

    /* the bias of the previous product into resid (out_proj, or frontend.proj), added by the
     * next norm */
    const float *pending_bias = NULL;
    if (stepped) {
        /* resid is the last layer's output, its bias added */
    } else if (feat_dev) { /* resid [T][D] = features [T][F] @ frontend.proj [D][F]^T, float32 */
        if ((rc = gemm_typed(g, g->resid, CUDA_R_32F, D, feat_dev, g->d_input, g->feat_w,
                             CUDA_R_32F, T, g->d_input, D, 0.f, "frontend.proj")))
            return rc;
        pending_bias = g->feat_b;
    } else {
        CU_TRY(ms_cu_embed(g->resid, g->emb, tokens_dev, T, D, g->stream), "embedding kernel");
    }
    for (int l = 0; l < (stepped ? 0 : c->n_layer); l++) {
        const cu_layer *w = &g->layers[l];
        const int fused_in = norm_in_proj(g, c, w, T, &bt);
        if (!fused_in)
            CU_TRY(ms_cu_add_norm(g->hs, g->dt, NULL, g->resid, pending_bias, w->norm_w,
                                  w->norm_b, c->norm_eps, c->rms_norm, T, D, g->stream),
                   "norm kernel");
        else if ((rc = resid_bias(g, c, pending_bias, T)))
            return rc;
        rc = c->arch == MS_ARCH_MAMBA1
                 ? mixer_mamba1(g, c, l, &bt, T, fused_in, &pending_bias)
                 : mixer_mamba2(g, c, l, &bt, T, use_ssd, fused_in, &pending_bias);
        if (rc) return rc;
    }
    /* one token, logits of the whole head: the final norm in the head's kernel */
    if (head_whole && one_token(g, c, T, &bt) &&
        ms_cu_gemv_ok(g->head, NULL, T, D, g->esz)) {
        if ((rc = resid_bias(g, c, pending_bias, T))) return rc;
        const ms_cu_gemv_fuse f = {.resid = g->resid, .norm_w = g->norm_f_w, .norm_b = g->norm_f_b,
                                   .eps = c->norm_eps, .rms = c->rms_norm, .bias = g->head_b};
        CU_TRY(ms_cu_gemv_fused(g->logits, 1, NULL, g->head, g->dt, D, g->n_out, 0.f, &f,
                                g->stream),
               "head kernel (final norm fused)");
        return MS_OK;
    }
    CU_TRY(ms_cu_add_norm(g->hs, g->dt, want_hidden ? g->hidden : NULL, g->resid, pending_bias,
                          g->norm_f_w, g->norm_f_b, c->norm_eps, c->rms_norm, T, D, g->stream),
           "final norm kernel");
    if (want_logits) {
        const void *head = g->head;
        const float *head_b = g->head_b;
        int n_out = g->n_out;
        if (has_cols) {
            CU_TRY(ms_cu_gather_rows(g->head_sel, g->head, g->dt, cols_dev, n_cols, D, g->stream),
                   "head row gather kernel");
            if (head_b) {
                CU_TRY(ms_cu_gather_rows(g->head_sel_b, head_b, MS_CU_F32, cols_dev, n_cols, 1,
                                         g->stream),
                       "head bias gather kernel");
                head_b = g->head_sel_b;
            }
            head = g->head_sel;
            n_out = n_cols;
        }
        if ((rc = gemm(g, g->logits, CUDA_R_32F, n_out, g->hs, D, head, T, D, n_out, 0.f, "head")))
            return rc;
        if (head_b) /* classifier.bias */
            CU_TRY(ms_cu_bias_add(g->logits, MS_CU_F32, n_out, head_b, T, n_out, g->stream),
                   "head bias kernel");
    }
    return MS_OK;
}

/* This call's fresh chunks ("Fresh streams"): a scoring call honours ms_cu_batch.fresh
 * (conv1d_silu.cu, selective_scan.cu, ssd_scan.cu), and an SSD call takes the direct form
 * where every chunk is fresh and one segment (its fused output kernel needed: the staged
 * combine reads ys); a decode call (one token a chunk: decode_m1.cu, decode_m2.cu and the
 * conv steps fused into gemm_few.cu and gemv.cu read the state) zeros their states first. */
static int fresh_states(cu_ctx *g, const ms_config *c, const ms_chunk *chunks, int n_chunks,
                        const ms_cu_batch *bt, int T, int use_ssd)
{
    int n_fresh = 0;
    for (int i = 0; i < n_chunks; i++) n_fresh += chunks[i].stream->fresh != 0;
    g->ssd_direct = use_ssd && n_fresh == n_chunks && !bt->multi && bt->n_seg == n_chunks &&
                    g->place.fused;
    if (!n_fresh || !(g->fused_decode && T == n_chunks)) return MS_OK;
    float *st[32];
    const size_t floats = ms_state_floats(c);
    for (int i = 0, k = 0; i < n_chunks; i++) {
        if (chunks[i].stream->fresh) st[k++] = chunks[i].stream->state;
        if (k == 32 || (k && i == n_chunks - 1)) {
            CU_TRY(ms_cu_zero_states(st, k, floats, g->stream), "state zeroing kernel");
            k = 0;
        }
    }
    return MS_OK;
}

/* Graphs only for small batches (launch-bound); large ones gain nothing from a replay. */
#define GRAPH_MAX_TOKENS 4096

/* Enqueue the forward: directly, or as a replay of the graph captured for the batch's
 * shape (captured again when the shape changes). */
static int launch_forward(cu_ctx *g, const ms_config *c, const ms_cu_batch *bt, size_t nb,
                          const int32_t *tokens_dev, const float *feat_dev,
                          const int32_t *cols_dev, int T, int use_ssd, int has_cols, int n_cols,
                          int want_logits, int want_hidden)
{
    if (!g->use_graphs || T > GRAPH_MAX_TOKENS)
        return enqueue_forward(g, c, bt, nb, tokens_dev, feat_dev, cols_dev, T, use_ssd, has_cols,
                               n_cols, want_logits, want_hidden);
    /* everything a kernel argument or the batch layout depends on */
    const int key[13] = {bt->n_chunks, T, bt->n_seg, bt->n_slots, bt->multi, use_ssd,
                         has_cols, n_cols, want_logits, want_hidden, g->call_seg_len,
                         g->ssd_direct, bt->drop_states};
    if (!g->graph || memcmp(key, g->graph_key, sizeof key)) {
        if (g->graph) {
            cudaGraphExecDestroy(g->graph);
            g->graph = NULL;
        }
        cudaGraph_t graph = NULL;
        CU_TRY(cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal),
               "cudaStreamBeginCapture");
        const int rc = enqueue_forward(g, c, bt, nb, tokens_dev, feat_dev, cols_dev, T, use_ssd,
                                       has_cols, n_cols, want_logits, want_hidden);
        cudaError_t e = cudaStreamEndCapture(g->stream, &graph);
        if (rc || e != cudaSuccess) {
            if (graph) cudaGraphDestroy(graph);
            cudaGetLastError();
            if (!rc) ms_error("cuda backend: graph capture failed: %s", cudaGetErrorString(e));
            return rc ? rc : MS_ERR_BACKEND;
        }
        e = cudaGraphInstantiate(&g->graph, graph, 0);
        cudaGraphDestroy(graph);
        if (e != cudaSuccess) {
            g->graph = NULL;
            ms_error("cuda backend: cudaGraphInstantiate failed: %s", cudaGetErrorString(e));
            return MS_ERR_BACKEND;
        }
        memcpy(g->graph_key, key, sizeof key);
    }
    CU_TRY(cudaGraphLaunch(g->graph, g->stream), "cudaGraphLaunch");
    return MS_OK;
}

static int cu_forward(ms_ctx *ctx, const ms_chunk *chunks, int n_chunks, const int *cols,
                      int n_cols, float *logits, float *hidden)
{
    const ms_config *c = &ctx->model->cfg;
    cu_ctx *g = ctx->impl;
    const int D = c->d_model;
    CU_TRY(cudaSetDevice(g->device), "cudaSetDevice");
    ms_cu_batch bt;
    int32_t *tokens_dev, *cols_dev;
    float *feat_dev;
    int T, rc, use_ssd;
    size_t nb;
    g->call_seg_len = call_seg_len_for(g, c, chunks, n_chunks);
    if ((rc = pack_batch(g, c, chunks, n_chunks, cols, n_cols, &bt, &tokens_dev, &feat_dev,
                         &cols_dev, &T, &use_ssd, &nb)))
        return rc;
    const int has_cols = cols != NULL, n_out = cols ? n_cols : g->n_out;
    if ((rc = fresh_states(g, c, chunks, n_chunks, &bt, T, use_ssd))) return rc;
    /* decode (one token per chunk): each kernel may start while the one before it ends
     * (cuda_dtype.cuh's ms_launch; recorded into the graph as programmatic edges) */
    const int pdl_prev = ms_cu_set_pdl(g->pdl && T == n_chunks);
    rc = launch_forward(g, c, &bt, nb, tokens_dev, feat_dev, cols_dev, T, use_ssd, has_cols,
                        n_cols, logits != NULL, hidden != NULL);
    ms_cu_set_pdl(pdl_prev);
    if (rc) return rc;
    for (int i = 0; i < n_chunks; i++)
        if (chunks[i].n_tokens > 0) chunks[i].stream->fresh = 0;
    if (logits)
        CU_TRY(cudaMemcpyAsync(logits, g->logits, sizeof(float) * T * n_out,
                               cudaMemcpyDeviceToHost, g->stream),
               "logits download");
    if (hidden)
        CU_TRY(cudaMemcpyAsync(hidden, g->hidden, sizeof(float) * T * D, cudaMemcpyDeviceToHost,
                               g->stream),
               "hidden download");
    CU_TRY(cudaStreamSynchronize(g->stream), "forward");
    return MS_OK;
}

static const ms_backend_ops cuda_ops = {
    .name = "cuda",
    .init = cu_init,
    .free = cu_free,
    .state_alloc = cu_state_alloc,
    .state_free = cu_state_free,
    .state_reset = cu_state_reset,
    .state_get = cu_state_get,
    .state_set = cu_state_set,
    .forward = cu_forward,
    .peak_device_bytes = cu_peak_device_bytes,
    .supports_features = 1,
    .supports_classifier = 1,
};

const ms_backend_ops *ms_cuda_backend(void) { return &cuda_ops; }
