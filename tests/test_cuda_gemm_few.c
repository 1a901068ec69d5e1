/* test_cuda_gemm_few.c - gemm_few.cu's products of 2-32 tokens (and of up to 64 where W has
 * at most 256 rows) against a float64 product on the host.
 *
 * Label gpu: exits 77 (skipped, with the reason on stderr) where cudaGetDeviceCount finds no
 * device. Inputs are multiples of 1/64 below 4 in magnitude, exact in bf16 and fp16, so
 * every product and every partial sum of float32 accumulation is exact: with float32 output
 * the result must equal the float64 one whatever the order of the sum (checked within 1e-6
 * of the sum of |terms|, far below any misplaced term's 1/4096); with 16-bit output within
 * half a unit in the last place of the type, plus that. Shapes cover one to four token
 * tiles with partial last tiles, eighths of n_in longer than the prefetch and eighths of
 * unequal length, row counts that are not multiples of 8, strides wider than the rows, beta
 * 0 and 1; rows past T and columns past n_out must be left untouched. Decode's in_proj with
 * the conv step fused: test_fused_conv. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda/cuda_ops.h"
#include "test_cuda_util.h"
#include "test_util.h"

typedef struct {
    int T, n_in, n_out, ldx_pad, ldo_pad;
} shape;

static void check_one(const shape *sh, ms_cu_dtype dt, int out_f32, float beta, unsigned seed,
                      double *worst)
{
    const int T = sh->T, K = sh->n_in, N = sh->n_out, ldx = K + sh->ldx_pad, ldo = N + sh->ldo_pad;
    const size_t esz_o = out_f32 ? 4 : 2;
    unsigned s = seed;
    uint16_t *W = malloc(sizeof(uint16_t) * (size_t)N * K), *x = malloc(sizeof(uint16_t) * (size_t)T * ldx);
    float *Wf = malloc(sizeof(float) * (size_t)N * K), *xf = malloc(sizeof(float) * (size_t)T * ldx);
    /* out has one row more than the call's tokens: it must stay as it was */
    const size_t n_o = (size_t)(T + 1) * ldo;
    float *o0 = malloc(sizeof(float) * n_o);
    unsigned char *ob = malloc(esz_o * n_o), *og = malloc(esz_o * n_o);
    uint16_t (*enc)(float) = dt == MS_CU_BF16 ? tu_bf16_bits : tu_f16_bits;
    float (*dec)(uint16_t) = dt == MS_CU_BF16 ? tu_bf16_value : tu_f16_value;
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = enc(Wf[i] = tu_rand_q(&s));
    for (size_t i = 0; i < (size_t)T * ldx; i++) x[i] = enc(xf[i] = tu_rand_q(&s));
    for (size_t i = 0; i < n_o; i++) {
        o0[i] = tu_rand_q(&s);
        if (out_f32) memcpy(ob + 4 * i, &o0[i], 4);
        else {
            const uint16_t h = enc(o0[i]);
            memcpy(ob + 2 * i, &h, 2);
        }
    }
    void *dW, *dx, *dout;
    assert_int_equal(cudaMalloc(&dW, sizeof(uint16_t) * (size_t)N * K), cudaSuccess);
    assert_int_equal(cudaMalloc(&dx, sizeof(uint16_t) * (size_t)T * ldx), cudaSuccess);
    assert_int_equal(cudaMalloc(&dout, esz_o * n_o), cudaSuccess);
    assert_int_equal(cudaMemcpy(dW, W, sizeof(uint16_t) * (size_t)N * K, cudaMemcpyHostToDevice), cudaSuccess);
    assert_int_equal(cudaMemcpy(dx, x, sizeof(uint16_t) * (size_t)T * ldx, cudaMemcpyHostToDevice), cudaSuccess);
    assert_int_equal(cudaMemcpy(dout, ob, esz_o * n_o, cudaMemcpyHostToDevice), cudaSuccess);
    assert_true(ms_cu_gemm_few_ok(dW, dx, ldx, T, K, N, dt));
    assert_int_equal(ms_cu_gemm_few(dout, out_f32, ldo, dx, ldx, dW, dt, T, K, N, beta, NULL, 0),
                     cudaSuccess);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(cudaMemcpy(og, dout, esz_o * n_o, cudaMemcpyDeviceToHost), cudaSuccess);
    double err = 0;
    for (int t = 0; t <= T; t++)
        for (int j = 0; j < ldo; j++) {
            const size_t i = (size_t)t * ldo + j;
            float got;
            if (out_f32) memcpy(&got, og + 4 * i, 4);
            else {
                uint16_t h;
                memcpy(&h, og + 2 * i, 2);
                got = dec(h);
            }
            if (t == T || j >= N) { /* outside the product: untouched */
                if (memcmp(og + esz_o * i, ob + esz_o * i, esz_o)) {
                    print_message("  T %d n_in %d n_out %d: wrote outside at t %d j %d\n", T, K, N, t, j);
                    fail();
                }
                continue;
            }
            double ref = beta != 0.f ? (double)beta * o0[i] : 0.0, mag = fabs(ref);
            for (int k = 0; k < K; k++) {
                const double p = (double)Wf[(size_t)j * K + k] * xf[(size_t)t * ldx + k];
                ref += p;
                mag += fabs(p);
            }
            /* 16-bit output: half an ulp of the type at ref (8 or 11 significant bits) */
            const double ulp = out_f32 ? 0 : ldexp(fabs(ref), dt == MS_CU_BF16 ? -8 : -11);
            const double bound = 1e-6 * mag + ulp + 1e-30, e = fabs(got - ref);
            if (e / (mag + 1e-30) > err) err = e / (mag + 1e-30);
            if (e > bound) {
                print_message("  T %d n_in %d n_out %d %s out %s beta %g: t %d j %d got %.9g want %.9g\n",
                              T, K, N, dt == MS_CU_BF16 ? "bf16" : "fp16", out_f32 ? "f32" : "16-bit",
                              beta, t, j, got, ref);
                fail();
            }
        }
    if (err > *worst) *worst = err;
    cudaFree(dW); cudaFree(dx); cudaFree(dout);
    free(W); free(x); free(Wf); free(xf); free(o0); free(ob); free(og);
}

static void test_products(void **st)
{
    (void)st;
    static const shape shapes[] = {
        /* T  n_in  n_out  ldx+  ldo+ */
        {2, 32, 8, 0, 0},       /* eighths of n_in of 0 and 1 steps of 32 */
        {7, 96, 100, 8, 3},     /* rows not a multiple of 8, wider strides */
        {16, 768, 3072, 0, 0},  /* a Mamba-1 in_proj */
        {17, 1536, 80, 0, 5},   /* x_proj, a partial second token tile */
        {32, 1536, 768, 16, 0}, /* out_proj */
        {24, 2048, 40, 0, 0},   /* eighths of 8 steps: past the prefetch */
        {32, 64, 20000, 0, 0},  /* many rows */
        {31, 4096 + 96, 264, 0, 0}, /* eighths of 16 and 17 steps */
        {64, 1536, 80, 0, 3},   /* x_proj of 64 streams: four token tiles */
        {33, 768, 16, 8, 0},    /* the head of 33: a third tile of one token */
        {48, 96, 256, 0, 0},    /* the widest W past 32 tokens: three tiles */
        {57, 2048, 100, 0, 0},  /* a partial fourth tile, rows not a multiple of 8 */
    };
    double worst = 0;
    unsigned seed = 1;
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++)
        for (int d = 0; d < 2; d++)
            for (int of = 0; of < 2; of++)
                for (int b = 0; b < 2; b++)
                    check_one(&shapes[i], d ? MS_CU_F16 : MS_CU_BF16, of, (float)b, seed++, &worst);
    print_message("  gemm_few: %d cases, worst |error| / sum |terms| %.2e\n",
                  (int)(sizeof shapes / sizeof shapes[0]) * 8, worst);
}

static double silu_d(double v) { return v / (1.0 + exp(-v)); }

/* Decode's in_proj of T one-token streams with the conv step fused (bf16): rows conv_lo ..
 * conv_lo + conv_n - 1 of the product run through each stream's conv state. Inputs exact in
 * bf16 as above, so the stored product is the float64 one rounded to bf16 (within half its
 * spacing); the conv output, from the kernel's own stored product, within bf16's half
 * spacing of float64; the shifted state exactly; the rest of the state block untouched. */
static void test_fused_conv(void **st)
{
    (void)st;
    enum { T = 5, D = 96, NO = 80, LO = 16, CN = 40, K = 4, OFF = 3 };
    const size_t sb = OFF + (size_t)CN * (K - 1); /* one stream's state block */
    unsigned s = 77;
    float xf[T * D], Wf[NO * D], cw[CN * K], cb[CN], st0[T * sb];
    uint16_t xb[T * D], Wb[NO * D];
    for (int i = 0; i < T * D; i++) xb[i] = tu_bf16_bits(xf[i] = tu_rand_q(&s));
    for (int i = 0; i < NO * D; i++) Wb[i] = tu_bf16_bits(Wf[i] = tu_rand_q(&s) / 4);
    for (int i = 0; i < CN * K; i++) cw[i] = tu_rand_q(&s) / 4;
    for (int i = 0; i < CN; i++) cb[i] = tu_rand_q(&s) / 8;
    for (size_t i = 0; i < T * sb; i++) st0[i] = tu_rand_q(&s);
    float *dcw, *dcb, *dst, **dptr;
    void *dx, *dW, *dout, *dxc;
    assert_int_equal(cudaMalloc(&dx, sizeof xb), cudaSuccess);
    assert_int_equal(cudaMalloc(&dW, sizeof Wb), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dcw, sizeof cw), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dcb, sizeof cb), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dst, sizeof st0), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dptr, sizeof(float *) * T), cudaSuccess);
    assert_int_equal(cudaMalloc(&dout, 2 * T * NO), cudaSuccess);
    assert_int_equal(cudaMalloc(&dxc, 2 * T * CN), cudaSuccess);
    float *ptrs[T];
    for (int t = 0; t < T; t++) ptrs[t] = dst + t * sb;
    cudaMemcpy(dx, xb, sizeof xb, cudaMemcpyHostToDevice);
    cudaMemcpy(dW, Wb, sizeof Wb, cudaMemcpyHostToDevice);
    cudaMemcpy(dcw, cw, sizeof cw, cudaMemcpyHostToDevice);
    cudaMemcpy(dcb, cb, sizeof cb, cudaMemcpyHostToDevice);
    cudaMemcpy(dst, st0, sizeof st0, cudaMemcpyHostToDevice);
    cudaMemcpy(dptr, ptrs, sizeof ptrs, cudaMemcpyHostToDevice);
    const ms_cu_batch bt = {.state = dptr, .n_chunks = T};
    const ms_cu_gemv_fuse f = {.conv_lo = LO, .conv_n = CN, .conv_k = K, .conv_w = dcw,
                               .conv_b = dcb, .bt = &bt, .conv_off = OFF, .xc = dxc};
    assert_int_equal(ms_cu_gemm_few(dout, 0, NO, dx, D, dW, MS_CU_BF16, T, D, NO, 0.f, &f, 0),
                     cudaSuccess);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    uint16_t ob[T * NO], xcb[T * CN];
    float st1[T * sb];
    cudaMemcpy(ob, dout, sizeof ob, cudaMemcpyDeviceToHost);
    cudaMemcpy(xcb, dxc, sizeof xcb, cudaMemcpyDeviceToHost);
    cudaMemcpy(st1, dst, sizeof st1, cudaMemcpyDeviceToHost);
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < NO; j++) {
            double ref = 0;
            for (int k = 0; k < D; k++) ref += (double)Wf[j * D + k] * xf[t * D + k];
            assert_true(fabs(tu_bf16_value(ob[t * NO + j]) - ref) <= ldexp(fabs(ref), -8) + 1e-9);
        }
        for (int c = 0; c < CN; c++) {
            const float *o = st0 + t * sb + OFF + c * (K - 1), *n = st1 + t * sb + OFF + c * (K - 1);
            const float v = tu_bf16_value(ob[t * NO + LO + c]);
            double a = cb[c];
            for (int k = 0; k < K - 1; k++) a += (double)cw[c * K + k] * o[k];
            a += (double)cw[c * K + K - 1] * v;
            const double want = silu_d(a), got = tu_bf16_value(xcb[t * CN + c]);
            if (fabs(got - want) > ldexp(fabs(want), -8) + 1e-6) {
                print_message("  stream %d channel %d: conv %.6g want %.6g\n", t, c, got, want);
                fail();
            }
            for (int k = 0; k < K - 1; k++) assert_true(n[k] == (k + 1 < K - 1 ? o[k + 1] : v));
        }
        assert_memory_equal(st1 + t * sb, st0 + t * sb, OFF * sizeof(float)); /* not its rows */
    }
    /* refused: a float32 output, a bias, a batch that is not one token per stream */
    assert_int_equal(ms_cu_gemm_few(dout, 1, NO, dx, D, dW, MS_CU_BF16, T, D, NO, 0.f, &f, 0),
                     cudaErrorInvalidValue);
    ms_cu_gemv_fuse fb = f;
    fb.bias = dcb;
    assert_int_equal(ms_cu_gemm_few(dout, 0, NO, dx, D, dW, MS_CU_BF16, T, D, NO, 0.f, &fb, 0),
                     cudaErrorInvalidValue);
    assert_int_equal(ms_cu_gemm_few(dout, 0, NO, dx, D, dW, MS_CU_BF16, T - 1, D, NO, 0.f, &f, 0),
                     cudaErrorInvalidValue);
    cudaFree(dx); cudaFree(dW); cudaFree(dcw); cudaFree(dcb); cudaFree(dst); cudaFree(dptr);
    cudaFree(dout); cudaFree(dxc);
}

/* The calls it refuses (the backend then keeps cuBLAS). */
static void test_refused(void **st)
{
    (void)st;
    void *p;
    assert_int_equal(cudaMalloc(&p, 1 << 20), cudaSuccess);
    assert_true(ms_cu_gemm_few_ok(p, p, 64, 2, 64, 512, MS_CU_BF16));
    assert_false(ms_cu_gemm_few_ok(p, p, 64, 1, 64, 512, MS_CU_BF16));   /* one token: gemv.cu */
    assert_true(ms_cu_gemm_few_ok(p, p, 64, 32, 64, 512, MS_CU_BF16));
    assert_false(ms_cu_gemm_few_ok(p, p, 64, 33, 64, 512, MS_CU_BF16));  /* past 32 tokens */
    assert_true(ms_cu_gemm_few_ok(p, p, 64, 64, 64, 256, MS_CU_BF16));   /* short W: 64 */
    assert_false(ms_cu_gemm_few_ok(p, p, 64, 65, 64, 256, MS_CU_BF16));
    assert_false(ms_cu_gemm_few_ok(p, p, 48, 8, 48, 64, MS_CU_BF16));    /* n_in % 32 */
    assert_false(ms_cu_gemm_few_ok(p, p, 68, 8, 64, 64, MS_CU_F16));     /* ldx % 8 */
    assert_false(ms_cu_gemm_few_ok((char *)p + 2, p, 64, 8, 64, 64, MS_CU_F16)); /* alignment */
    assert_false(ms_cu_gemm_few_ok(p, p, 64, 8, 64, 64, MS_CU_F32));     /* float32: cuBLAS */
    assert_int_equal(ms_cu_gemm_few(p, 1, 64, p, 64, p, MS_CU_F32, 8, 64, 64, 0.f, NULL, 0),
                     cudaErrorInvalidValue);
    cudaFree(p);
}

int main(void)
{
    if (!tu_cuda_device("test_cuda_gemm_few")) return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_fused_conv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
