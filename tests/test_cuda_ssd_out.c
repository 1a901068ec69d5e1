/* test_cuda_ssd_out.c - ssd_out.cu's fused SSD output (the mask, the intra-segment product
 * and the combine of ssd_scan.cu's stages 3, 4 and 9) against a float64 evaluation of the
 * same formula on the host, element by element.
 *
 * Label gpu: exits 77 (skipped, with the reason on stderr) where cudaGetDeviceCount finds no
 * device. x and ys are multiples of 1/64 below 4 in magnitude (exact in bf16 and fp16), cb,
 * dt, cum and D arbitrary floats. The host rounds each m[t][s] to the type as the kernel
 * does, so what may differ is: y's own rounding (half a unit in the last place), float32
 * accumulation (1e-5 of the sum of |terms|), and an m that the device's exp puts on the other
 * side of a rounding boundary (rare: each such flip moves one term by one unit in the last
 * place; four are allowed per element, at the element's largest |m x|). A misplaced,
 * missing or doubled term, a wrong decay or a wrong row costs far more. Cases: the reference
 * shape (head_dim 64, segments of 128), an odd count of 16-row tiles (L 160),
 * one tile (L 16), groups of two heads, head_dim 16 and 32, segments shorter than L, fp16.
 * Columns past E and rows past the tokens must be left untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda/cuda_ops.h"
#include "test_cuda_util.h"
#include "test_util.h"

static unsigned rng = 12345u;
static float urand(void) /* [0, 1) */
{
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) & 0xffffff) / 16777216.f;
}

/* v rounded to nearest even with `mant` fraction bits, exponent floored at emin (fp16's
 * subnormals); bf16: 7, -126; fp16: 10, -14 */
static double round_to(double v, int mant, int emin)
{
    if (v == 0.0) return 0.0;
    int e;
    frexp(v, &e); /* |v| in [2^(e-1), 2^e) */
    e -= 1;
    if (e < emin) e = emin;
    const double sc = ldexp(1.0, mant - e);
    return nearbyint(v * sc) / sc;
}

static uint16_t bits16(float v, ms_cu_dtype dt) /* v exact in the type */
{
    return dt == MS_CU_BF16 ? tu_bf16_bits(v) : tu_f16_bits(v);
}
static double value16(uint16_t h, ms_cu_dtype dt)
{
    return dt == MS_CU_BF16 ? tu_bf16_value(h) : tu_f16_value(h);
}

typedef struct {
    ms_cu_dtype dt;
    int P, H, G, L;
    int n_seg, seg_n[4];
} tcase;

static void run_case(const tcase *k, double *worst)
{
    const ms_cu_dtype dt = k->dt;
    const int P = k->P, H = k->H, G = k->G, L = k->L, Q = k->n_seg, E = H * P;
    const int ld = E + 2 * G * 32 + 8, ldy = E + 8; /* x | B | C columns, as the conv's output */
    const int mant = dt == MS_CU_BF16 ? 7 : 10, emin = dt == MS_CU_BF16 ? -126 : -14;
    int seg_start[4], T = 0;
    for (int q = 0; q < Q; q++) {
        seg_start[q] = T;
        T += k->seg_n[q];
    }
    const int rows = T + L; /* L rows past the tokens, read by the last segment */
    uint16_t *xc = calloc((size_t)rows * ld, 2), *ys = malloc(sizeof(uint16_t) * Q * L * E);
    uint16_t *y = malloc(sizeof(uint16_t) * (size_t)(T + 1) * ldy);
    float *dtv = calloc((size_t)Q * H * L, 4), *cum = calloc((size_t)Q * H * L, 4);
    float *cb = malloc(sizeof(float) * Q * G * L * L), D[64];
    for (size_t i = 0; i < (size_t)rows * ld; i++) xc[i] = bits16(tu_rand_q(&rng), dt);
    for (size_t i = 0; i < (size_t)Q * L * E; i++) ys[i] = bits16(tu_rand_q(&rng), dt);
    for (size_t i = 0; i < (size_t)(T + 1) * ldy; i++) y[i] = 0x7bcd; /* sentinel */
    for (size_t i = 0; i < (size_t)Q * G * L * L; i++) cb[i] = 2.f * urand() - 1.f;
    for (int h = 0; h < H; h++) D[h] = 2.f * urand() - 1.f;
    for (int q = 0; q < Q; q++)
        for (int h = 0; h < H; h++) {
            const float A = -(0.1f + 2.f * urand());
            float run = 0.f;
            for (int i = 0; i < L; i++) { /* as ssd_prep: dt 0 past the segment */
                const float d = i < k->seg_n[q] ? 0.001f + 0.2f * urand() : 0.f;
                run += d * A;
                dtv[((size_t)q * H + h) * L + i] = d;
                cum[((size_t)q * H + h) * L + i] = run;
            }
        }

    int32_t *dseg_start, *dseg_n;
    uint16_t *dxc, *dys, *dy;
    float *ddt, *dcum, *dcb, *dD;
    assert_int_equal(cudaMalloc((void **)&dseg_start, 4 * Q), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dseg_n, 4 * Q), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dxc, (size_t)rows * ld * 2), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dys, (size_t)Q * L * E * 2), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dy, (size_t)(T + 1) * ldy * 2), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&ddt, (size_t)Q * H * L * 4), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dcum, (size_t)Q * H * L * 4), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dcb, (size_t)Q * G * L * L * 4), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dD, 4 * H), cudaSuccess);
    cudaMemcpy(dseg_start, seg_start, 4 * Q, cudaMemcpyHostToDevice);
    cudaMemcpy(dseg_n, k->seg_n, 4 * Q, cudaMemcpyHostToDevice);
    cudaMemcpy(dxc, xc, (size_t)rows * ld * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dys, ys, (size_t)Q * L * E * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dy, y, (size_t)(T + 1) * ldy * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(ddt, dtv, (size_t)Q * H * L * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dcum, cum, (size_t)Q * H * L * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dcb, cb, (size_t)Q * G * L * L * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dD, D, 4 * H, cudaMemcpyHostToDevice);

    const ms_cu_ssd_args a = {
        .x = dxc, .ldx = ld, .D = dD, .y = dy, .ldy = ldy, .E = E, .N = 32, .H = H, .P = P,
        .G = G, .heads_per_group = H / G, .L = L, .dt = ddt, .cum = dcum, .cb = dcb, .ys = dys,
    };
    const ms_cu_batch bt = {.seg_start = dseg_start, .seg_n = dseg_n, .n_seg = Q};
    assert_true(ms_cu_ssd_out_ok(dt, P, L, E, ld));
    assert_int_equal(ms_cu_ssd_out(&a, dt, &bt, 0), cudaSuccess);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    cudaMemcpy(y, dy, (size_t)(T + 1) * ldy * 2, cudaMemcpyDeviceToHost);

    const double ulp = ldexp(1.0, -mant);
    double err = 0;
    int bad = 0;
    for (int q = 0; q < Q; q++)
        for (int h = 0; h < H; h++) {
            const int g = h / (H / G);
            const float *cq = cum + ((size_t)q * H + h) * L, *dq = dtv + ((size_t)q * H + h) * L;
            for (int t = 0; t < k->seg_n[q]; t++) {
                const size_t row = (size_t)(seg_start[q] + t);
                for (int p = 0; p < P; p++) {
                    const int c = h * P + p;
                    double intra = 0, mag = 0, big = 0;
                    for (int s = 0; s <= t; s++) {
                        const float mf = cb[(((size_t)q * G + g) * L + t) * L + s] *
                                         expf(cq[t] - cq[s]) * dq[s];
                        const double term = round_to(mf, mant, emin) *
                                            value16(xc[(seg_start[q] + s) * (size_t)ld + c], dt);
                        intra += term;
                        mag += fabs(term);
                        if (fabs(term) > big) big = fabs(term);
                    }
                    const double st = value16(ys[((size_t)q * L + t) * E + c], dt);
                    const double e = exp((double)cq[t]), xv = value16(xc[row * ld + c], dt);
                    const double ref = intra + e * st + D[h] * xv;
                    const double got = value16(y[row * ldy + c], dt);
                    const double tol = ulp * fabs(ref) + 4 * ulp * big +
                                       1e-5 * (mag + e * fabs(st) + fabs(D[h] * xv)) + 1e-30;
                    const double d = fabs(got - ref);
                    if (d / tol > err) err = d / tol;
                    if (!(d <= tol) && bad++ < 5)
                        print_message("  q %d h %d t %d p %d: got %.6g want %.6g (tol %.2g)\n", q, h,
                                      t, p, got, ref, tol);
                }
            }
        }
    for (int r = 0; r <= T; r++) /* pad columns, and the row past the tokens */
        for (int c = r < T ? E : 0; c < ldy; c++)
            if (y[(size_t)r * ldy + c] != 0x7bcd && bad++ < 5)
                print_message("  row %d column %d written\n", r, c);
    print_message("  %s P %d H %d G %d L %d segments", dt == MS_CU_BF16 ? "bf16" : "fp16", P, H,
                  G, L);
    for (int q = 0; q < Q; q++) print_message(" %d", k->seg_n[q]);
    print_message(": worst error / tolerance %.3f\n", err);
    if (err > *worst) *worst = err;
    assert_int_equal(bad, 0);
    cudaFree(dseg_start); cudaFree(dseg_n); cudaFree(dxc); cudaFree(dys); cudaFree(dy);
    cudaFree(ddt); cudaFree(dcum); cudaFree(dcb); cudaFree(dD);
    free(xc); free(ys); free(y); free(dtv); free(cum); free(cb);
}

static void test_against_float64(void **st)
{
    (void)st;
    static const tcase cases[] = {
        {MS_CU_BF16, 64, 2, 1, 128, 3, {128, 128, 37}}, /* the reference shape */
        {MS_CU_BF16, 64, 3, 1, 160, 2, {150, 160}},     /* 10 row tiles: 5 warps */
        {MS_CU_BF16, 32, 4, 2, 64, 2, {64, 1}},         /* groups of two heads */
        {MS_CU_BF16, 16, 2, 2, 16, 4, {16, 5, 16, 16}}, /* one row tile */
        {MS_CU_F16, 32, 2, 1, 128, 2, {128, 100}},
        {MS_CU_F16, 64, 1, 1, 256, 1, {256}},           /* the longest segment */
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], &worst);
    print_message("  worst error / tolerance: %.3f\n", worst);
}

static void test_refused(void **st)
{
    (void)st;
    assert_true(ms_cu_ssd_out_ok(MS_CU_BF16, 64, 128, 1536, 1792));
    assert_false(ms_cu_ssd_out_ok(MS_CU_F32, 64, 128, 1536, 1792)); /* float32 */
    assert_false(ms_cu_ssd_out_ok(MS_CU_BF16, 12, 128, 72, 1792));  /* head_dim */
    assert_false(ms_cu_ssd_out_ok(MS_CU_BF16, 64, 100, 1536, 1792)); /* L % 16 */
    assert_false(ms_cu_ssd_out_ok(MS_CU_BF16, 64, 512, 1536, 1792)); /* L > 256 */
    assert_false(ms_cu_ssd_out_ok(MS_CU_BF16, 64, 128, 1536, 1794)); /* x rows % 16 bytes */
    setenv("MS_CUDA_SSD_FUSED", "0", 1);
    assert_false(ms_cu_ssd_out_ok(MS_CU_BF16, 64, 128, 1536, 1792));
    unsetenv("MS_CUDA_SSD_FUSED");
}

int main(void)
{
    if (!tu_cuda_device("test_cuda_ssd_out")) return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_against_float64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
