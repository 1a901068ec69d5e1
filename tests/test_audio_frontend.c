/* test_audio_frontend.c - the log-mel and mu-law front ends on signals with known answers.
 *
 * Tones put their energy in the mel bin whose centre is nearest their frequency; silence
 * gives ln(log_floor) everywhere; frames do not depend on how samples are pushed (any
 * cut, bit for bit); frame count and timing follow the definition; normalisation is
 * applied per bin; mu-law hits its end points and centre and is monotone. The comparison
 * against the independent numpy twin runs in tests/e2e_audio.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_config.h"
#include "frontend_logmel.h"
#include "frontend_mulaw.h"
#include "test_util.h"

static float *tone(int n, int rate, double hz, double amp)
{
    float *x = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * M_PI * hz * i / rate));
    return x;
}

/* All frames of x pushed in pieces of `piece` samples (0: pseudo-random pieces). */
static float *run_logmel(const ms_frontend_params *p, const float *x, int n, int piece, int *n_frames)
{
    ms_logmel *lm;
    assert_int_equal(ms_logmel_new(p, &lm), MS_OK);
    float *out = malloc(sizeof(float) * p->n_mels * (size_t)(n / p->hop_length + 2));
    int total = 0;
    unsigned seed = 12345;
    for (int i = 0; i < n;) {
        int k = piece;
        if (!k) { seed = seed * 1103515245u + 12345u; k = 1 + (int)((seed >> 16) % 700); }
        if (k > n - i) k = n - i;
        assert_true(ms_logmel_max_frames(lm, k) >= 0);
        total += ms_logmel_push(lm, x + i, k, out + (size_t)total * p->n_mels);
        i += k;
    }
    assert_int_equal(ms_logmel_frames(lm), total);
    ms_logmel_free(lm);
    *n_frames = total;
    return out;
}

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i;
    return b;
}

/* The mel bin whose filter peaks nearest hz. */
static int expected_bin(const ms_frontend_params *p, double hz)
{
    double *fb = ms_mel_filterbank(p);
    const int nb = p->n_fft / 2 + 1;
    int k = (int)lround(hz * p->n_fft / p->sample_rate), best = 0;
    for (int m = 1; m < p->n_mels; m++)
        if (fb[(size_t)m * nb + k] > fb[(size_t)best * nb + k]) best = m;
    free(fb);
    return best;
}

static void test_tone_peaks(void **st)
{
    (void)st;
    ms_frontend_params p = ms_frontend_logmel_defaults();
    const double freqs[] = {250, 440, 1000, 2500, 4000, 7000};
    for (int s = 0; s < 2; s++) {
        p.mel_scale = s ? MS_MEL_SLANEY : MS_MEL_HTK;
        for (size_t i = 0; i < sizeof freqs / sizeof *freqs; i++) {
            const int n = 8000;
            float *x = tone(n, p.sample_rate, freqs[i], 0.5);
            int nf;
            float *f = run_logmel(&p, x, n, 160, &nf);
            assert_int_equal(nf, 1 + (n - p.win_length) / p.hop_length);
            int want = expected_bin(&p, freqs[i]);
            for (int t = 2; t < nf; t++) {
                int got = argmax(f + (size_t)t * p.n_mels, p.n_mels);
                if (abs(got - want) > 0) {
                    /* a tone between two filter centres may land in either neighbour */
                    assert_true(abs(got - want) <= 1);
                }
            }
            free(x);
            free(f);
        }
    }
}

static void test_silence_and_floor(void **st)
{
    (void)st;
    ms_frontend_params p = ms_frontend_logmel_defaults();
    float *x = calloc(4000, sizeof(float));
    int nf;
    float *f = run_logmel(&p, x, 4000, 333, &nf);
    assert_int_equal(nf, 1 + (4000 - 400) / 160);
    for (int i = 0; i < nf * p.n_mels; i++) assert_float_equal(f[i], logf(1e-6f), 1e-6);
    free(f);
    /* fewer samples than a window: no frame yet */
    f = run_logmel(&p, x, 399, 100, &nf);
    assert_int_equal(nf, 0);
    free(f);
    free(x);
}

/* Clipping: a full-scale square-ish wave stays finite; louder means larger energies. */
static void test_clipping_and_level(void **st)
{
    (void)st;
    ms_frontend_params p = ms_frontend_logmel_defaults();
    const int n = 4000;
    float *a = tone(n, 16000, 500, 0.1), *b = tone(n, 16000, 500, 4.0);
    for (int i = 0; i < n; i++) b[i] = b[i] > 1 ? 1 : b[i] < -1 ? -1 : b[i];
    int na, nb;
    float *fa = run_logmel(&p, a, n, 160, &na), *fb = run_logmel(&p, b, n, 160, &nb);
    for (int i = 0; i < nb * p.n_mels; i++) assert_true(isfinite(fb[i]));
    int m = expected_bin(&p, 500);
    /* 0.1 -> clipped full scale: at least 20 dB more energy in the fundamental's bin */
    assert_true(fb[5 * p.n_mels + m] - fa[5 * p.n_mels + m] > logf(100.0f));
    free(a); free(b); free(fa); free(fb);
}

/* Any cut of the stream gives the same frames, bit for bit; also with hop > win. */
static void test_chunk_invariance(void **st)
{
    (void)st;
    ms_frontend_params p = ms_frontend_logmel_defaults();
    const int n = 12345;
    float *x = malloc(sizeof(float) * n);
    unsigned seed = 1;
    for (int i = 0; i < n; i++) { seed = seed * 1103515245u + 12345u; x[i] = ((seed >> 8) & 0xffff) / 32768.0f - 1; }
    for (int variant = 0; variant < 2; variant++) {
        if (variant) { p.hop_length = 500; p.win_length = 300; } /* gaps between frames */
        int n1, n2, n3;
        float *a = run_logmel(&p, x, n, n, &n1), *b = run_logmel(&p, x, n, 1, &n2),
              *c = run_logmel(&p, x, n, 0, &n3);
        assert_int_equal(n1, 1 + (n - p.win_length) / p.hop_length);
        assert_int_equal(n1, n2);
        assert_int_equal(n1, n3);
        assert_memory_equal(a, b, sizeof(float) * n1 * p.n_mels);
        assert_memory_equal(a, c, sizeof(float) * n1 * p.n_mels);
        free(a); free(b); free(c);
    }
    free(x);
}

static void test_normalize(void **st)
{
    (void)st;
    ms_frontend_params p = ms_frontend_logmel_defaults();
    const int n = 2000;
    float *x = tone(n, 16000, 1000, 0.3);
    float mean[40], sd[40];
    for (int i = 0; i < 40; i++) { mean[i] = (float)i * 0.1f; sd[i] = 2.0f + i; }
    int n1, n2;
    float *raw = run_logmel(&p, x, n, 160, &n1);
    p.norm_mean = mean;
    p.norm_std = sd;
    float *nrm = run_logmel(&p, x, n, 160, &n2);
    for (int t = 0; t < n1; t++)
        for (int m = 0; m < 40; m++)
            assert_float_equal(nrm[t * 40 + m], (raw[t * 40 + m] - mean[m]) / sd[m], 1e-5);
    free(x); free(raw); free(nrm);
}

/* Filterbank: triangles of peak 1 inside [fmin, fmax], nothing outside. */
static void test_filterbank(void **st)
{
    (void)st;
    ms_frontend_params p = ms_frontend_logmel_defaults();
    double *fb = ms_mel_filterbank(&p);
    const int nb = p.n_fft / 2 + 1;
    for (int m = 0; m < p.n_mels; m++) {
        double mx = 0;
        for (int k = 0; k < nb; k++) {
            double f = (double)k * p.sample_rate / p.n_fft, w = fb[(size_t)m * nb + k];
            assert_true(w >= 0 && w <= 1);
            if (f <= p.fmin || f >= p.fmax) assert_true(w == 0);
            mx = w > mx ? w : mx;
        }
        assert_true(mx > 0.3); /* every filter covers at least one bin near its centre */
    }
    free(fb);
}

static void test_mulaw(void **st)
{
    (void)st;
    assert_int_equal(ms_mulaw_token(0.0f, 8), 128);
    assert_int_equal(ms_mulaw_token(1.0f, 8), 255);
    assert_int_equal(ms_mulaw_token(-1.0f, 8), 0);
    assert_int_equal(ms_mulaw_token(5.0f, 8), 255);  /* clipped */
    assert_int_equal(ms_mulaw_token(-5.0f, 8), 0);
    assert_int_equal(ms_mulaw_token(NAN, 8), 128);
    int prev = 0;
    for (int i = -1000; i <= 1000; i++) {
        int t = ms_mulaw_token(i / 1000.0f, 8);
        assert_true(t >= prev);
        prev = t;
        /* decode(encode(x)) is within half a step of the companded curve */
        float back = ms_mulaw_decode(t, 8);
        assert_true(fabsf(back - i / 1000.0f) < 0.04f);
    }
    /* small signals get fine steps: 0.001 and -0.001 land on different tokens */
    assert_true(ms_mulaw_token(0.002f, 8) != ms_mulaw_token(-0.002f, 8));
    assert_int_equal(ms_mulaw_token(1.0f, 16), 65535);
}

/* Config: a model's frontend section parses with defaults; bad values name the field. */
static void test_config_section(void **st)
{
    (void)st;
    const char *good = "{\"mamba_stream\": {\"task\": \"classify\", \"labels\": [\"a\", \"b\"],"
                       " \"pooling\": \"mean\", \"frontend\": {\"type\": \"logmel\", \"n_mels\": 20,"
                       " \"mel_scale\": \"slaney\", \"normalize\": {\"mean\": [" 
                       "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], \"std\": ["
                       "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2]}},"
                       " \"detector\": {\"average_window_ms\": 300, \"threshold\": 0.5}}}";
    cJSON *root = cJSON_Parse(good);
    ms_audio_config ac;
    assert_int_equal(ms_audio_config_parse("x/config.json", root, &ac), MS_OK);
    assert_int_equal(ac.task, MS_TASK_CLASSIFY);
    assert_int_equal(ac.n_labels, 2);
    assert_string_equal(ac.labels[1], "b");
    assert_int_equal(ac.pooling, MS_POOL_MEAN);
    assert_int_equal(ac.frontend.n_mels, 20);
    assert_int_equal(ac.frontend.hop_length, 160);
    assert_int_equal(ac.frontend.mel_scale, MS_MEL_SLANEY);
    assert_float_equal(ac.frontend.norm_std[19], 2.0f, 0);
    assert_float_equal(ac.det_window_ms, 300, 0);
    assert_float_equal(ac.det_threshold, 0.5, 0);
    assert_true(ac.det_suppression_ms < 0 && ac.det_min_count < 0); /* not given */
    ms_audio_config_free(&ac);
    cJSON_Delete(root);
    const char *bad[] = {
        "{\"mamba_stream\": {\"task\": \"classify\"}}",
        "{\"mamba_stream\": {\"task\": \"translate\"}}",
        "{\"mamba_stream\": {\"frontend\": {\"type\": \"logmel\", \"n_fft\": 511}}}",
        "{\"mamba_stream\": {\"frontend\": {\"type\": \"logmel\", \"win_length\": 1024}}}",
        "{\"mamba_stream\": {\"frontend\": {\"type\": \"logmel\", \"fmin\": 5000, \"fmax\": 4000}}}",
        "{\"mamba_stream\": {\"frontend\": {\"type\": \"mfcc\"}}}",
        "{\"mamba_stream\": {\"frontend\": {\"type\": \"mulaw\", \"bits\": 40}}}",
        "{\"mamba_stream\": {\"frontend\": {\"type\": \"logmel\", \"normalize\": {\"mean\": [1]}}}}",
        "{\"mamba_stream\": {\"detector\": {\"threshold\": 1.5}}}",
        "{\"mamba_stream\": {\"detector\": {\"minimum_count\": 2.5}}}",
        "{\"mamba_stream\": {\"detector\": [300]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        root = cJSON_Parse(bad[i]);
        tu_log_capture();
        assert_int_equal(ms_audio_config_parse("x/config.json", root, &ac), MS_ERR_MODEL);
        assert_non_null(strstr(tu_log_text(), "x/config.json: field 'mamba_stream."));
        cJSON_Delete(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tone_peaks),       cmocka_unit_test(test_silence_and_floor),
        cmocka_unit_test(test_clipping_and_level), cmocka_unit_test(test_chunk_invariance),
        cmocka_unit_test(test_normalize),        cmocka_unit_test(test_filterbank),
        cmocka_unit_test(test_mulaw),            cmocka_unit_test(test_config_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
