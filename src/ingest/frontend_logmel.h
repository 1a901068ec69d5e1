/* frontend_logmel.h - streaming log-mel filterbank frames (the "logmel" front end).
 *
 * Definition (docs/model-format.md; scripts/logmel.py is the numpy twin):
 *   y[n]      = x[n] - preemphasis * x[n-1] over the whole stream, x[-1] = 0
 *   frame t   = y[t*hop .. t*hop + win), only once all win samples have arrived
 *   spectrum  = |rfft(frame * window, n_fft)|^2     (zero-padded to n_fft, bins 0..n_fft/2)
 *   mel[m]    = sum_k fb[m][k] * spectrum[k]        (triangles in Hz, torchaudio's
 *               melscale_fbanks with norm=None, htk or slaney mel scale)
 *   out[m]    = (ln(max(mel[m], log_floor)) - mean[m]) / std[m]   (normalise if given)
 * The FFT is kissfft's float real transform. Frames do not depend on how the samples are
 * cut into pushes (bit for bit). */
#ifndef MS_FRONTEND_LOGMEL_H
#define MS_FRONTEND_LOGMEL_H

#include "mamba_stream.h"

typedef struct ms_logmel ms_logmel;

/* p->type must be MS_FRONTEND_LOGMEL; the params (and normalisation arrays) are copied.
 * Returns MS_OK or MS_ERR_ARG / MS_ERR_NOMEM after logging. */
int ms_logmel_new(const ms_frontend_params *p, ms_logmel **out);
void ms_logmel_free(ms_logmel *lm);
/* Back to the start of a stream (no samples seen). */
void ms_logmel_reset(ms_logmel *lm);
/* Most frames one push of n samples can complete (size of out for ms_logmel_push). */
int ms_logmel_max_frames(const ms_logmel *lm, int n);
/* Feed n samples; the frames they complete are written to out [frames][n_mels]. Returns
 * the number of frames written (>= 0). */
int ms_logmel_push(ms_logmel *lm, const float *x, int n, float *out);
/* Frames completed so far since the last reset. */
long long ms_logmel_frames(const ms_logmel *lm);

/* The filterbank fb [n_mels][n_fft/2 + 1] (double), for tests and documentation. Returns
 * NULL on a bad parameter set or out of memory; free() it. */
double *ms_mel_filterbank(const ms_frontend_params *p);

#endif
