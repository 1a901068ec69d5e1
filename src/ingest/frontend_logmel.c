/* frontend_logmel.c - streaming log-mel frames over kissfft (definition in the header). */
#include "frontend_logmel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <kiss_fftr.h>

#include "log.h"

struct ms_logmel {
    ms_frontend_params p;
    float *norm;          /* [2][n_mels] copy of mean / std, or NULL */
    float *window;        /* [win] */
    float *fb;            /* [n_mels][n_bins] filter weights, nonzero in [lo, hi) */
    int *lo, *hi;         /* [n_mels] */
    int n_bins;           /* n_fft / 2 + 1 */
    kiss_fftr_cfg fft;
    float *frame;         /* [n_fft] windowed, zero-padded */
    kiss_fft_cpx *spec;   /* [n_bins] */
    float *buf;           /* [cap] pre-emphasised samples; buf[0] is the next frame's start */
    int len, cap;
    long long skip;       /* samples still to drop before the next frame (hop > win) */
    float prev;           /* last raw sample, for pre-emphasis */
    long long frames;
};

static double hz_to_mel(double f, ms_mel_scale s)
{
    if (s == MS_MEL_HTK) return 2595.0 * log10(1.0 + f / 700.0);
    const double f_sp = 200.0 / 3, logstep = log(6.4) / 27.0;
    return f < 1000.0 ? f / f_sp : 15.0 + log(f / 1000.0) / logstep;
}

static double mel_to_hz(double m, ms_mel_scale s)
{
    if (s == MS_MEL_HTK) return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3, logstep = log(6.4) / 27.0;
    return m < 15.0 ? m * f_sp : 1000.0 * exp(logstep * (m - 15.0));
}

double *ms_mel_filterbank(const ms_frontend_params *p)
{
    const int n_bins = p->n_fft / 2 + 1, M = p->n_mels;
    if (M < 1 || p->n_fft < 2 || !(p->fmin < p->fmax)) return NULL;
    double *fb = calloc((size_t)M * n_bins, sizeof *fb);
    double *f_pts = malloc(sizeof *f_pts * (M + 2));
    if (!fb || !f_pts) {
        free(fb);
        free(f_pts);
        return NULL;
    }
    const double m0 = hz_to_mel(p->fmin, p->mel_scale), m1 = hz_to_mel(p->fmax, p->mel_scale);
    for (int i = 0; i < M + 2; i++) f_pts[i] = mel_to_hz(m0 + (m1 - m0) * i / (M + 1), p->mel_scale);
    for (int m = 0; m < M; m++)
        for (int k = 0; k < n_bins; k++) {
            const double f = (double)k * p->sample_rate / p->n_fft;
            const double up = (f - f_pts[m]) / (f_pts[m + 1] - f_pts[m]);
            const double down = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
            const double w = up < down ? up : down;
            fb[(size_t)m * n_bins + k] = w > 0 ? w : 0;
        }
    free(f_pts);
    return fb;
}

int ms_logmel_new(const ms_frontend_params *p, ms_logmel **out)
{
    *out = NULL;
    if (p->type != MS_FRONTEND_LOGMEL || p->win_length < 1 || p->win_length > p->n_fft ||
        p->hop_length < 1 || p->n_fft % 2 || p->n_mels < 1 || !(p->log_floor > 0)) {
        ms_error("log-mel front end: inconsistent parameters (win %d, hop %d, n_fft %d, n_mels %d)",
                 p->win_length, p->hop_length, p->n_fft, p->n_mels);
        return MS_ERR_ARG;
    }
    ms_logmel *lm = calloc(1, sizeof *lm);
    double *fbd = NULL;
    if (!lm) return MS_ERR_NOMEM;
    lm->p = *p;
    const int W = p->win_length, M = p->n_mels;
    lm->n_bins = p->n_fft / 2 + 1;
    lm->cap = 2 * (W + p->hop_length);
    lm->window = malloc(sizeof(float) * W);
    lm->fb = malloc(sizeof(float) * M * lm->n_bins);
    lm->lo = malloc(sizeof(int) * M);
    lm->hi = malloc(sizeof(int) * M);
    lm->frame = calloc((size_t)p->n_fft, sizeof(float));
    lm->spec = malloc(sizeof(kiss_fft_cpx) * lm->n_bins);
    lm->buf = malloc(sizeof(float) * lm->cap);
    lm->fft = kiss_fftr_alloc(p->n_fft, 0, NULL, NULL);
    fbd = ms_mel_filterbank(p);
    if (!lm->window || !lm->fb || !lm->lo || !lm->hi || !lm->frame || !lm->spec || !lm->buf ||
        !lm->fft || !fbd)
        goto nomem;
    if (p->norm_mean && p->norm_std) {
        if (!(lm->norm = malloc(sizeof(float) * 2 * M))) goto nomem;
        memcpy(lm->norm, p->norm_mean, sizeof(float) * M);
        memcpy(lm->norm + M, p->norm_std, sizeof(float) * M);
    }
    lm->p.norm_mean = lm->p.norm_std = NULL; /* the caller's arrays may go away */
    /* periodic windows (torch.hann_window's default): cos(2 pi i / W) */
    const double a = p->window == MS_WINDOW_HANN ? 0.5 : 0.54;
    for (int i = 0; i < W; i++) lm->window[i] = (float)(a - (1 - a) * cos(2 * M_PI * i / W));
    for (int m = 0; m < M; m++) {
        const double *row = fbd + (size_t)m * lm->n_bins;
        int lo = 0, hi = lm->n_bins;
        while (lo < hi && row[lo] == 0) lo++;
        while (hi > lo && row[hi - 1] == 0) hi--;
        lm->lo[m] = lo;
        lm->hi[m] = hi;
        for (int k = 0; k < lm->n_bins; k++) lm->fb[(size_t)m * lm->n_bins + k] = (float)row[k];
    }
    free(fbd);
    *out = lm;
    return MS_OK;
nomem:
    free(fbd);
    ms_logmel_free(lm);
    ms_error("log-mel front end: out of memory");
    return MS_ERR_NOMEM;
}

void ms_logmel_free(ms_logmel *lm)
{
    if (!lm) return;
    free(lm->norm); free(lm->window); free(lm->fb); free(lm->lo); free(lm->hi);
    free(lm->frame); free(lm->spec); free(lm->buf);
    kiss_fftr_free(lm->fft);
    free(lm);
}

void ms_logmel_reset(ms_logmel *lm)
{
    lm->len = 0;
    lm->skip = 0;
    lm->prev = 0;
    lm->frames = 0;
}

long long ms_logmel_frames(const ms_logmel *lm) { return lm->frames; }

int ms_logmel_max_frames(const ms_logmel *lm, int n)
{
    return (lm->len + n) / lm->p.hop_length + 1;
}

/* One frame from buf[0 .. win) into out [n_mels]. */
static void compute_frame(ms_logmel *lm, float *out)
{
    const ms_frontend_params *p = &lm->p;
    const int W = p->win_length, M = p->n_mels;
    for (int i = 0; i < W; i++) lm->frame[i] = lm->buf[i] * lm->window[i];
    /* frame[W .. n_fft) stays zero */
    kiss_fftr(lm->fft, lm->frame, lm->spec);
    float *power = lm->frame; /* reuse: n_bins <= n_fft */
    for (int k = 0; k < lm->n_bins; k++)
        power[k] = lm->spec[k].r * lm->spec[k].r + lm->spec[k].i * lm->spec[k].i;
    for (int m = 0; m < M; m++) {
        const float *w = lm->fb + (size_t)m * lm->n_bins;
        double e = 0;
        for (int k = lm->lo[m]; k < lm->hi[m]; k++) e += (double)w[k] * power[k];
        float v = logf((float)(e > p->log_floor ? e : p->log_floor));
        if (lm->norm) v = (v - lm->norm[m]) / lm->norm[M + m];
        out[m] = v;
    }
    memset(lm->frame, 0, sizeof(float) * p->n_fft);
}

int ms_logmel_push(ms_logmel *lm, const float *x, int n, float *out)
{
    const int W = lm->p.win_length, H = lm->p.hop_length;
    const float a = lm->p.preemphasis;
    int produced = 0;
    while (n > 0) {
        /* take what fits, pre-emphasised; samples in a hop gap (hop > win) are dropped */
        int take = lm->cap - lm->len < n ? lm->cap - lm->len : n;
        for (int i = 0; i < take; i++) {
            float y = x[i] - a * lm->prev;
            lm->prev = x[i];
            if (lm->skip > 0) lm->skip--;
            else lm->buf[lm->len++] = y;
        }
        x += take;
        n -= take;
        int off = 0;
        while (lm->len - off >= W) {
            float *save = lm->buf;
            lm->buf += off; /* compute_frame reads buf[0 .. W) */
            compute_frame(lm, out + (size_t)produced * lm->p.n_mels);
            lm->buf = save;
            produced++;
            lm->frames++;
            if (H <= lm->len - off) off += H;
            else { lm->skip = H - (lm->len - off); off = lm->len; }
        }
        memmove(lm->buf, lm->buf + off, sizeof(float) * (lm->len - off));
        lm->len -= off;
    }
    return produced;
}
