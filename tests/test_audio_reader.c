/* test_audio_reader.c - audio files written here with libsndfile, read back through the
 * audio source and the reader thread.
 *
 * Sample formats (8/16/24-bit PCM, float) come back at their quantisation step; stereo is
 * averaged to mono; float samples beyond full scale are not clipped; headerless PCM read
 * with --raw equals the same samples in a WAV; a 1 kHz tone resampled from 8, 22.05, 44.1
 * and 48 kHz to 16 kHz keeps its frequency within 0.1 % and its RMS level within 0.05 dB
 * (libsamplerate's sinc passband; the edges of the clip are left out); bad files fail
 * with one line; the reader thread's chunks cover each clip once, in order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <samplerate.h>
#include <sndfile.h>

#include "audio_reader.h"
#include "frontend_logmel.h"
#include "audio_config.h"
#include "test_util.h"

static const char *tmp_path(const char *name)
{
    static char buf[8][4200];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 4200, "%s/%s", tu_tmpdir(), name);
    return b;
}

/* A tone of `seconds` written as `format` with `ch` channels; channel c has amplitude
 * amp / (c + 1) and sign (-1)^c. Returns the path. */
static const char *write_tone(const char *name, int format, int rate, int ch, double hz,
                              double amp, double seconds)
{
    const char *path = tmp_path(name);
    SF_INFO info = {.samplerate = rate, .channels = ch, .format = format};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    assert_non_null(sf);
    const long n = (long)(seconds * rate);
    float *x = malloc(sizeof(float) * n * ch);
    for (long i = 0; i < n; i++)
        for (int c = 0; c < ch; c++)
            x[i * ch + c] = (float)((c % 2 ? -1 : 1) * amp / (c + 1) * sin(2 * M_PI * hz * i / rate));
    if (format & SF_FORMAT_FLOAT) sf_command(sf, SFC_SET_CLIPPING, NULL, SF_FALSE);
    assert_int_equal(sf_writef_float(sf, x, n), n);
    sf_close(sf);
    free(x);
    return path;
}

/* All mono samples of path at out_rate (0 = own rate). */
static float *read_all(const char *path, const ms_raw_format *raw, int out_rate, long *n)
{
    ms_audio_src *s;
    assert_int_equal(ms_audio_src_open(path, raw, out_rate, SRC_SINC_MEDIUM_QUALITY, 1000, &s), MS_OK);
    long cap = 1 << 16, len = 0;
    float *x = malloc(sizeof(float) * cap);
    int got;
    while ((got = ms_audio_src_read(s, x + len, (int)(cap - len < 777 ? cap - len : 777))) > 0) {
        len += got;
        if (cap - len < 1000) x = realloc(x, sizeof(float) * (cap *= 2));
    }
    assert_int_equal(got, 0);
    ms_audio_src_close(s);
    *n = len;
    return x;
}

static void test_sample_formats(void **st)
{
    (void)st;
    const struct { int fmt; double step; } fmts[] = {
        {SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1.0 / 128}, {SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1.0 / 32768},
        {SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1.0 / 8388608}, {SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1e-7},
        {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1.0 / 32768}, {SF_FORMAT_OGG | SF_FORMAT_VORBIS, 0.05},
    };
    for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++) {
        char name[32];
        snprintf(name, sizeof name, "fmt%zu.%s", f, f == 4 ? "flac" : f == 5 ? "ogg" : "wav");
        const char *p = write_tone(name, fmts[f].fmt, 16000, 1, 440, 0.5, 0.5);
        long n;
        float *x = read_all(p, NULL, 16000, &n);
        assert_int_equal(n, 8000);
        double max_err = 0;
        for (long i = 0; i < n; i++) {
            double e = fabs(x[i] - 0.5 * sin(2 * M_PI * 440 * i / 16000));
            max_err = e > max_err ? e : max_err;
        }
        assert_true(max_err <= fmts[f].step * 1.01 + 1e-7);
        free(x);
    }
}

static void test_stereo_downmix_and_no_clipping(void **st)
{
    (void)st;
    /* left 0.8 sin, right -0.4 sin: mono = 0.2 sin */
    const char *p = write_tone("st.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, 500, 0.8, 0.25);
    long n;
    float *x = read_all(p, NULL, 16000, &n);
    assert_int_equal(n, 4000);
    for (long i = 0; i < n; i++) assert_float_equal(x[i], 0.2 * sin(2 * M_PI * 500 * i / 16000), 1e-6);
    free(x);
    /* float beyond full scale comes through unclipped */
    p = write_tone("loud.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, 500, 2.0, 0.1);
    x = read_all(p, NULL, 16000, &n);
    float mx = 0;
    for (long i = 0; i < n; i++) mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    assert_float_equal(mx, 2.0f, 1e-3);
    free(x);
}

/* Frequency from rising zero crossings (to a sample: 1 kHz over 0.8 s at 16 kHz is exact
 * to ~1e-4) and RMS over the middle 80 % of the signal. */
static void measure(const float *x, long n, int rate, double *hz, double *rms)
{
    long a = n / 10, b = n - n / 10, cross = 0, first = -1, last = -1;
    double ss = 0;
    for (long i = a; i < b; i++) {
        ss += (double)x[i] * x[i];
        if (x[i - 1] < 0 && x[i] >= 0) { /* rising zero crossing */
            if (first < 0) first = i;
            last = i;
            cross++;
        }
    }
    *hz = (double)(cross - 1) * rate / (double)(last - first);
    *rms = sqrt(ss / (b - a));
}

static void test_resampling(void **st)
{
    (void)st;
    const int rates[] = {8000, 22050, 44100, 48000, 16000};
    for (size_t r = 0; r < sizeof rates / sizeof *rates; r++) {
        char name[32];
        snprintf(name, sizeof name, "r%d.wav", rates[r]);
        const char *p = write_tone(name, SF_FORMAT_WAV | SF_FORMAT_FLOAT, rates[r], 1, 1000, 0.5, 1.0);
        long n;
        float *x = read_all(p, NULL, 16000, &n);
        assert_true(labs(n - 16000) <= 2);
        double hz, rms;
        measure(x, n, 16000, &hz, &rms);
        assert_true(fabs(hz - 1000) / 1000 < 1e-3);
        assert_true(fabs(20 * log10(rms / (0.5 / sqrt(2)))) < 0.05);
        free(x);
    }
}

static void test_raw_equals_wav(void **st)
{
    (void)st;
    const char *wav = write_tone("w.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 2, 700, 0.5, 0.3);
    const char *raw = write_tone("w.raw", SF_FORMAT_RAW | SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE, 16000, 2,
                                 700, 0.5, 0.3);
    ms_raw_format rf;
    assert_int_equal(ms_raw_format_parse("s16le:16000:2", &rf), 0);
    long n1, n2;
    float *a = read_all(wav, NULL, 16000, &n1), *b = read_all(raw, &rf, 16000, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, sizeof(float) * n1);
    free(a);
    free(b);
    tu_log_capture();
    assert_int_equal(ms_raw_format_parse("s17le:16000:1", &rf), -1);
    assert_int_equal(ms_raw_format_parse("s16le:16000", &rf), -1);
    assert_int_equal(ms_raw_format_parse("s16le:0:1", &rf), -1);
    assert_non_null(strstr(tu_log_text(), "--raw: 's17le:16000:1'"));
}

static void expect_fail(const char *path, const ms_raw_format *raw, int rate, const char *msg)
{
    ms_audio_src *s = NULL;
    tu_log_capture();
    assert_true(ms_audio_src_open(path, raw, rate, SRC_SINC_MEDIUM_QUALITY, 0, &s) < 0);
    assert_null(s);
    const char *log = tu_log_text();
    if (!strstr(log, msg)) fail_msg("expected '%s' in '%s'", msg, log);
    /* one line */
    assert_true(strchr(log, '\n') == NULL || strchr(log, '\n') == log + strlen(log) - 1);
}

static void test_bad_input(void **st)
{
    (void)st;
    const char *txt = tmp_path("text.wav");
    assert_int_equal(tu_write_file(txt, "hello, not audio\n", 17), 0);
    expect_fail(txt, NULL, 16000, "not audio that libsndfile can read");
    const char *empty = tmp_path("empty.wav");
    assert_int_equal(tu_write_file(empty, "", 0), 0);
    expect_fail(empty, NULL, 16000, "empty file");
    expect_fail(tmp_path("missing.wav"), NULL, 16000, "cannot open");
    /* a WAV cut in its data */
    const char *full = write_tone("full.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 440, 0.5, 1.0);
    FILE *f = fopen(full, "rb");
    char *buf = malloc(40000);
    size_t got = fread(buf, 1, 40000, f);
    fclose(f);
    assert_true(got > 20000);
    const char *cut = tmp_path("cut.wav");
    assert_int_equal(tu_write_file(cut, buf, 20000), 0);
    expect_fail(cut, NULL, 16000, "truncated");
    free(buf);
    /* 20 Hz -> 16 kHz is beyond libsamplerate's ratio range */
    ms_raw_format rf;
    assert_int_equal(ms_raw_format_parse("s16le:20:1", &rf), 0);
    expect_fail(full, &rf, 16000, "sample rate 20 Hz is unsupported");
}

/* Reader thread: two clips, small chunks; chunks in order, positions contiguous, frames
 * equal the front end run directly. */
static void test_reader_thread(void **st)
{
    (void)st;
    const char *a = write_tone("ra.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 300, 0.4, 0.7);
    const char *b = write_tone("rb.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 48000, 2, 2000, 0.4, 0.5);
    const char *paths[2] = {a, b};
    ms_frontend_params fp = ms_frontend_logmel_defaults();
    ms_audio_reader_opts o = {.paths = paths, .n_paths = 2, .frontend = fp, .chunk = 7};
    ms_ring *ring = ms_ring_new(4);
    ms_audio_reader r;
    assert_int_equal(ms_audio_reader_start(&r, &o, ring), MS_OK);
    int64_t expect_t = 0, clip = 0, frames[2] = {0, 0};
    float *got = malloc(sizeof(float) * 40 * 200);
    ms_audio_chunk *c;
    while ((c = ms_ring_pop(ring))) {
        if (c->clip != clip) { assert_int_equal(c->clip, clip + 1); clip = c->clip; expect_t = 0; }
        assert_int_equal(c->t0, expect_t);
        assert_int_equal(c->first, c->t0 == 0);
        assert_true(c->n <= 7);
        if (clip == 0) memcpy(got + (size_t)c->t0 * 40, c->features, sizeof(float) * 40 * c->n);
        expect_t += c->n;
        frames[clip] += c->n;
        if (c->last) assert_float_equal(c->seconds, clip == 0 ? 0.7 : 0.5, 1e-9);
        ms_audio_chunk_free(c);
    }
    assert_int_equal(ms_audio_reader_join(&r), MS_OK);
    assert_int_equal(frames[0], 1 + (11200 - 400) / 160);
    assert_true(llabs(frames[1] - (1 + (8000 - 400) / 160)) <= 1);
    /* clip 0 at its own rate: the frames are the front end's, bit for bit */
    long n;
    float *x = read_all(a, NULL, 16000, &n);
    ms_logmel *lm;
    assert_int_equal(ms_logmel_new(&fp, &lm), MS_OK);
    float *want = malloc(sizeof(float) * 40 * 200);
    int nf = ms_logmel_push(lm, x, (int)n, want);
    assert_int_equal(nf, frames[0]);
    assert_memory_equal(want, got, sizeof(float) * 40 * nf);
    ms_logmel_free(lm);
    ms_ring_free(ring);
    free(x); free(want); free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_formats), cmocka_unit_test(test_stereo_downmix_and_no_clipping),
        cmocka_unit_test(test_resampling),     cmocka_unit_test(test_raw_equals_wav),
        cmocka_unit_test(test_bad_input),      cmocka_unit_test(test_reader_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
