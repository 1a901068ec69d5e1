/* cuda_ops.h - C-callable launchers of the CUDA backend's kernels (internal).
 *
 * Each launcher lives in its own .cu file, whose opening comment gives the math and the
 * grid. Activations are token-major [T][width] with explicit row strides, as in
 * cpu_ops.h; their element type is the context's activation type (ms_cu_dtype: float32,
 * bf16 or fp16), passed as void * plus the dtype. Weights of norms, conv, A, D and biases,
 * the residual stream and all recurrent state are float32. Every launcher enqueues on
 * `stream` and returns the cudaError_t of the launch (cudaSuccess = 0). */
#ifndef MS_CUDA_OPS_H
#define MS_CUDA_OPS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_CU_F32 = 0, MS_CU_BF16 = 1, MS_CU_F16 = 2 } ms_cu_dtype;

/* The batch of one forward call, in device memory (built by the host per call).
 * Chunk i covers global tokens [chunk_start[i], chunk_start[i] + chunk_len[i]) and owns
 * the state block state[i] (the stream's state, all layers). Chunks are cut into segments
 * of at most seg_len tokens (the unit of time-parallel work); segment s belongs to chunk
 * seg_chunk[s], covers [seg_start[s], seg_start[s] + seg_n[s]) and, when its chunk has
 * more than one segment, owns workspace slot seg_slot[s] (else -1). Chunk i's segments are
 * chunk_seg[i] .. chunk_seg[i+1]-1. fresh[i] != 0 (fresh may be NULL: none): chunk i's
 * stream starts from zeros, whatever state[i] holds (a reset stream, never zeroed on the
 * device: ms_cu_fresh); the kernels that honour it are named where the backend relies on
 * them (cuda_backend.c, "Fresh streams"). */
typedef struct {
    const int32_t *chunk_start, *chunk_len, *chunk_seg; /* [n_chunks], [n_chunks], [n_chunks+1] */
    const int32_t *seg_chunk, *seg_start, *seg_n, *seg_slot; /* [n_seg] each */
    const int32_t *fresh; /* [n_chunks], or NULL */
    float *const *state;  /* [n_chunks] stream state bases (all layers) */
    int n_chunks, n_seg, n_slots;
    int multi;            /* some chunk has more than one segment */
    int drop_states;      /* every chunk ends its stream (ms_chunk.last; the engine resets
                           * them after the call): final states need not be written */
} ms_cu_batch;

/* States[i][0, floats) = 0 for i < n (host array of device pointers; no batch upload, so
 * it runs outside a captured graph): fresh streams before kernels that do not honour
 * ms_cu_batch.fresh. */
cudaError_t ms_cu_zero_states(float *const *states, int n, size_t floats, cudaStream_t stream);

/* Programmatic dependent launch for this thread's launches (cuda_dtype.cuh's ms_launch):
 * on (1) or off (0); returns the previous setting. ms_cu_pdl_supported: whether this build's
 * kernels wait for their predecessor (compiled for sm_90 or newer) on the current device
 * (compute capability 9.0 or newer); only then may the switch go on. */
int ms_cu_set_pdl(int on);
int ms_cu_pdl_supported(void);

/* resid[t][:] = emb[tokens[t]][:] (float32). Grid (T). */
cudaError_t ms_cu_embed(float *resid, const float *emb, const int32_t *tokens, int T, int D,
                        cudaStream_t stream);

/* Fused residual add + norm, per token t:
 *   if (delta_bias) resid[t] += delta_bias      (the previous out_proj's bias)
 *   out[t] = norm(resid[t]) * w (+ b)            rms=1 RMSNorm, rms=0 LayerNorm
 * out in dtype (GEMM input); out_f32 (may be NULL) gets the same values in float32. */
cudaError_t ms_cu_add_norm(void *out, ms_cu_dtype dt, float *out_f32, float *resid,
                           const float *delta_bias, const float *w, const float *b, float eps,
                           int rms, int T, int D, cudaStream_t stream);

/* x[t][0:n] += bias (dtype rows with stride ldx). */
cudaError_t ms_cu_bias_add(void *x, ms_cu_dtype dt, int ldx, const float *bias, int T, int n,
                           cudaStream_t stream);

/* Causal depthwise conv1d + SiLU continuing from each chunk's conv state (layer offset
 * state_off floats into the chunk's state block, layout [C][K-1] oldest first):
 *   out[t][c] = silu(b[c] + sum_k w[c][k] * x_ext[j + k][c]),  j = t - chunk start,
 * x_ext = the chunk's state then its inputs x (ld ldx). out [T][C] (ld ldo). Then the
 * state is left holding the chunk's last K-1 inputs. */
cudaError_t ms_cu_conv1d_silu(void *out, int ldo, const void *x, int ldx, ms_cu_dtype dt,
                              const ms_cu_batch *bt, size_t state_off, const float *w,
                              const float *b, int C, int K, cudaStream_t stream);

/* FalconMamba: weightless RMSNorm in place of each token's three segments
 * x[t][0:R], x[t][R:R+N], x[t][R+N:R+2N] (ld ldx). */
cudaError_t ms_cu_rms3(void *x, ms_cu_dtype dt, int ldx, int R, int N, float eps, int T,
                       cudaStream_t stream);

/* Selective scan, Mamba-1 and Mamba-2 (see selective_scan.cu). */
typedef struct {
    const void *x; int ldx;       /* [T][E] */
    const void *dt; int lddt;     /* raw dt (before bias + softplus): M1 [T][E], M2 [T][H] */
    const float *dt_bias;         /* M1 [E] (dt_proj bias, may be NULL), M2 [H] */
    const float *A;               /* -exp(A_log): M1 [E][N], M2 [H] */
    const void *B, *C; int ldbc;  /* M1 [T][N], M2 [T][G*N] */
    const float *D;               /* M1 [E], M2 [H] */
    const void *z; int ldz;       /* M1 gate [T][E] (may be NULL); M2 NULL */
    void *y; int ldy;             /* [T][E] */
    int E, N;
    int P;                        /* channels per head: 1 for Mamba-1, head_dim for Mamba-2 */
    int heads_per_group;          /* M2 n_heads / n_groups; M1 E */
    int mamba2;
    float dt_min, dt_max;         /* M2 clamp after softplus */
    size_t state_off;             /* layer offset (floats) of the SSM state in a state block */
    float *ws_h;                  /* [n_slots][E][N] workspace (multi-segment chunks) */
    float *ws_dtsum;              /* [n_slots][E] */
} ms_cu_scan_args;
cudaError_t ms_cu_selective_scan(const ms_cu_scan_args *a, ms_cu_dtype dt, const ms_cu_batch *bt,
                                 cudaStream_t stream);

/* Chunks of one token (decode_m1.cu). Conv + SiLU + conv-state shift in one kernel (any
 * arch; arguments as ms_cu_conv1d_silu, every chunk one token). */
cudaError_t ms_cu_decode_conv(void *out, int ldo, const void *x, int ldx, ms_cu_dtype dt,
                              const ms_cu_batch *bt, size_t state_off, const float *w,
                              const float *b, int C, int K, cudaStream_t stream);
/* Mamba-1: dt_proj + softplus + scan state update + D skip + SiLU(z) gate, SSM state updated
 * in place. Reads xz (in_proj output [T][ldp], z at column E), xc [T][E] (conv output),
 * xdbl [T][R + 2N] (x_proj output); writes y [T][E] (act). N <= 256. */
typedef struct {
    void *y;
    const void *xc, *xdbl, *xz; int ldp;
    const void *dt_proj_w;                 /* [E][R] act */
    const float *dt_bias, *A, *D;          /* [E] (may be NULL), [E][N] = -exp(A_log), [E] */
    int E, N, R;
    size_t ssm_off;                        /* layer offset (floats) in a state block */
    const void *dt_raw;                    /* NULL, or dt_proj's output [T][E] (act, before
                                            * the bias): then the wide form, for many streams
                                            * (needs ms_cu_decode_m1_wide_ok(N, ssm_off)) */
} ms_cu_decode_m1_args;
cudaError_t ms_cu_decode_m1_scan(const ms_cu_decode_m1_args *a, ms_cu_dtype dt,
                                 const ms_cu_batch *bt, cudaStream_t stream);
int ms_cu_decode_m1_wide_ok(int N, size_t ssm_off);

/* Mamba-2's scan for chunks of one token (decode_m2.cu): arguments as ms_cu_selective_scan
 * (mamba2 = 1, z NULL). Needs N % 16 == 0 with N / 16 a power of two <= 16, P N / 16 <=
 * 1024 and state_off % 4 == 0; else cudaErrorInvalidValue (use ms_cu_selective_scan). */
cudaError_t ms_cu_decode_m2_scan(const ms_cu_scan_args *a, ms_cu_dtype dt, const ms_cu_batch *bt,
                                 cudaStream_t stream);

/* Mamba-2's scan in the SSD chunked form (ssd_scan.cu): segments of the batch are the SSD
 * chunks, L = the segment length. Buffers (act = the activation dtype, Q = bt->n_seg; m
 * and yi unused where ms_cu_ssd_out runs stages 3, 4 and 9):
 *   dt, cum float [Q][H][L];  cb float [Q][G][L][L];  m act [Q][H][L][L];
 *   xs, ys act [Q][L][E];  yi act [Q][L] rows of ldyi;  S float [Q][H][P][N];
 *   hin act [Q][H][P][N].
 * x, B, C are read up to L - 1 rows past a segment's end (rows that must hold finite
 * values: the caller keeps L spare rows, zeroed once, after its token rows). */
typedef struct {
    const void *x; int ldx;       /* [T][E] (conv output) */
    const void *B, *C; int ldbc;  /* [T][G*N] */
    const void *dt_raw; int lddt; /* [T][H] before bias + softplus */
    const float *dt_bias, *A, *D; /* [H] each; A = -exp(A_log) */
    void *y; int ldy;             /* [T][E] */
    int E, N, H, P, G, heads_per_group, L;
    float dt_min, dt_max;
    size_t state_off;             /* layer offset (floats) of the SSM state in a state block */
    float *dt, *cum, *cb, *S;
    void *m, *xs, *yi, *ys, *hin;
    int ldyi;                     /* yi's row stride (E, or in_proj's width where yi lives there) */
} ms_cu_ssd_args;
/* Elementwise stage 1, 3, 5, 7 or 9 of ssd_scan.cu (the even stages are cuBLAS products). */
cudaError_t ms_cu_ssd_stage(int stage, const ms_cu_ssd_args *a, ms_cu_dtype dt,
                            const ms_cu_batch *bt, cudaStream_t stream);
/* Stages 3, 4 and 9 of ssd_scan.cu in one kernel (ssd_out.cu), for 16-bit activations:
 * reads dt, cum, cb, ys (a->ys NULL: zeros, not read), x; writes y (m and yi are not used). Run after stage 8's product
 * and stage 2's. ms_cu_ssd_out_ok: whether the shapes and type take it (else the staged
 * form; MS_CUDA_SSD_FUSED=0 turns it off). */
int ms_cu_ssd_out_ok(ms_cu_dtype dt, int P, int L, int E, int ldx);
cudaError_t ms_cu_ssd_out(const ms_cu_ssd_args *a, ms_cu_dtype dt, const ms_cu_batch *bt,
                          cudaStream_t stream);
/* The pointer tables of the batched products, ptrs [9 Q G + 3 Q H]:
 *   [0, 3QG): stage 2's B, C, cb per (q, g), batch index q * G + g;
 *   [3QG, 3QG + 3QH): stage 4's x, m, yi per (q, h), batch index q * H + h;
 *   then stage 6's B, xs, S and stage 8's hin, C, ys per (q, g), three tables of QG each:
 *   those two products take all E / G channels of a group's heads at once. */
cudaError_t ms_cu_ssd_ptrs(const ms_cu_ssd_args *a, ms_cu_dtype dt, const ms_cu_batch *bt,
                           void **ptrs, cudaStream_t stream);
/* For a call whose chunks are all fresh and one segment each (bt->multi == 0): stage 6's
 * output pointers (S, the third table of that product in ptrs) into each chunk's stream
 * state at a->state_off, so the product leaves the final states and stages 7 and 8 are
 * skipped (h_in = 0, ys = 0). Per layer, after ms_cu_ssd_ptrs. */
cudaError_t ms_cu_ssd_ptrs_direct(const ms_cu_ssd_args *a, const ms_cu_batch *bt, void **ptrs,
                                  cudaStream_t stream);

/* Mamba-2 gated RMSNorm per group of E/G channels, in place on y (ld ldy):
 *   y = y * silu(z);  y = y / sqrt(mean_group(y^2) + eps) * w. */
cudaError_t ms_cu_gated_rmsnorm(void *y, int ldy, const void *z, int ldz, ms_cu_dtype dt,
                                const float *w, float eps, int T, int E, int G,
                                cudaStream_t stream);

/* Products of one-token calls (gemv.cu): out[j] = sum_k W[j][k] x[k] (+ beta out[j]); W
 * [n_out][n_in] and x in dtype, out float32 when out_f32, else dtype. ms_cu_gemv_ok says
 * whether the call (T tokens) and W's and x's shape and alignment suit it (x may be NULL:
 * a fusion's prologue makes it). */
int ms_cu_gemv_ok(const void *W, const void *x, int T, int n_in, size_t esz);
cudaError_t ms_cu_gemv(void *out, int out_f32, const void *x, const void *W, ms_cu_dtype dt,
                       int n_in, int n_out, float beta, cudaStream_t stream);

/* What a one-token product of decode also does in the same kernel (ms_cu_gemv_fused), so
 * a step takes fewer dependent launches. Zeroed members do nothing. Each part rounds
 * where the separate kernel it replaces stores, so results match the unfused path within
 * float32 rounding (the sums of the norms run in another order). */
typedef struct {
    /* x := norm(resid [n_in], float32) as ms_cu_add_norm computes it (rms: RMSNorm, else
     * LayerNorm with norm_b), rounded to dtype; the x argument is not read */
    const float *resid, *norm_w, *norm_b;
    float eps;
    int rms;
    /* or x := ms_cu_gated_rmsnorm(x, gz) over groups of gs channels (at most 64 groups),
     * rounded to dtype, without writing x back */
    const void *gz;
    const float *gnorm_w;
    int gs;
    /* out[j] += bias[j] (float32) after out's rounding, as ms_cu_bias_add adds it */
    const float *bias;
    /* rows conv_lo .. conv_lo + conv_n - 1 are channels c = j - conv_lo of ms_cu_decode_conv
     * (state block bt->state[t] + conv_off of token t's stream, window conv_k), run on the
     * row's stored output and written to xc[t][c] (ld conv_n) */
    int conv_lo, conv_n, conv_k;
    const float *conv_w, *conv_b;
    const ms_cu_batch *bt;
    size_t conv_off;
    void *xc;
} ms_cu_gemv_fuse;
/* whether the fusion's vectors are 16-byte aligned and its groups fit */
int ms_cu_gemv_fuse_ok(const ms_cu_gemv_fuse *f, int n_in);
cudaError_t ms_cu_gemv_fused(void *out, int out_f32, const void *x, const void *W,
                             ms_cu_dtype dt, int n_in, int n_out, float beta,
                             const ms_cu_gemv_fuse *f, cudaStream_t stream);

/* Products of calls of 2-32 tokens in bf16 / fp16 on the tensor cores (gemm_few.cu), and
 * of up to MS_CU_FEW_WIDE_T tokens where W has at most MS_CU_FEW_WIDE_ROWS rows:
 * out[t][j] (ld ldo) = sum_k W[j][k] x[t][k] (x ld ldx) (+ beta out[t][j]), t < T; out
 * float32 when out_f32, else dtype. ms_cu_gemm_few_ok says whether the call suits it.
 * conv (or NULL): of its members only the conv step's, for decode (bt: T <= 32 chunks of
 * one token, token t stream t's; out in dtype): xc [T][conv_n]. */
#define MS_CU_FEW_MAX_T 32
#define MS_CU_FEW_WIDE_T 64
#define MS_CU_FEW_WIDE_ROWS 256
int ms_cu_gemm_few_ok(const void *W, const void *x, int ldx, int T, int n_in, int n_out,
                      ms_cu_dtype dt);
cudaError_t ms_cu_gemm_few(void *out, int out_f32, int ldo, const void *x, int ldx,
                           const void *W, ms_cu_dtype dt, int T, int n_in, int n_out,
                           float beta, const ms_cu_gemv_fuse *conv, cudaStream_t stream);

/* A whole Mamba-1 decode step of one stream in one launch (decode_step_m1.cu): one-token
 * calls of one stream, token input, no FalconMamba norms. Per layer its weights as uploaded
 * (act: the activation dtype). */
typedef struct {
    const void *in_w, *x_w, *dt_w, *out_w;       /* [2E][D], [R + 2N][E], [E][R], [D][E] act */
    const float *norm_w, *norm_b, *in_b;         /* [D], [D] or NULL, [2E] or NULL */
    const float *conv_w, *conv_b;                /* [E][K], [E] or NULL */
    const float *dt_b, *A, *Dv, *out_b;          /* [E] or NULL, [E][N] = -exp(A_log), [E], [D] or NULL */
} ms_cu_step_layer;
typedef struct {
    const ms_cu_step_layer *layers;              /* device [n_layer] */
    int n_layer, D, E, N, R, K;
    float eps;
    int rms;                                     /* RMSNorm, else LayerNorm (norm_b) */
    const float *emb;                            /* [n_vocab][D] */
    const int32_t *tokens;                       /* [1], device */
    float *const *state;                         /* the batch's state pointers (device), [0] */
    float *resid;                                /* [D]: the residual stream after the step */
    void *y;                                     /* scratch act [E] */
    long long *xacc;                             /* [n_layer][R + 2N], zero between launches
                                                  * (ms_cu_step_m1_acc_count) */
    /* n_out > 0: logits [n_out] = head(norm_f(resid)) (+ head_b); else resid is left for the
     * caller's final norm */
    const void *head;
    const float *head_b, *norm_f_w, *norm_f_b;
    float *logits;
    int n_out;
    unsigned *bar;                               /* 2 counters, zero between launches */
} ms_cu_step_m1;
/* The launch's shared-memory layout (decode_step_m1.cu's step_geometry) */
typedef struct {
    int S, rb;                                   /* channels a block, weight-row buffer bytes */
    int o_xs, o_xf, o_xd, o_nw, o_red, o_xcl, o_wxc, o_wb;
    size_t smem;
} ms_cu_step_geo;
/* entries of ms_cu_step_m1.xacc */
size_t ms_cu_step_m1_acc_count(int n_layer, int R, int N);
/* whether the shapes, alignment and device take it (host_layers: the host copy of layers) */
int ms_cu_step_m1_ok(const ms_cu_step_m1 *p, const ms_cu_step_layer *host_layers, ms_cu_dtype dt);
cudaError_t ms_cu_decode_step_m1(const ms_cu_step_m1 *p, ms_cu_dtype dt, cudaStream_t stream);

/* dst[i][:] = src[rows[i]][:] for i < n (dtype, rows of D). */
cudaError_t ms_cu_gather_rows(void *dst, const void *src, ms_cu_dtype dt, const int32_t *rows,
                              int n, int D, cudaStream_t stream);

/* Convert n float32 values to dtype (weights at upload). */
cudaError_t ms_cu_convert(void *dst, ms_cu_dtype dt, const float *src, size_t n,
                          cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
