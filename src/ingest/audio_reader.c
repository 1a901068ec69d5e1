/* audio_reader.c - inputs -> mono at the model's rate -> front end -> chunks on the ring. */
#include "audio_reader.h"

#include <samplerate.h>
#include <stdlib.h>
#include <string.h>

#include "frontend_logmel.h"
#include "frontend_mulaw.h"
#include "log.h"

void ms_audio_chunk_free(ms_audio_chunk *c) { free(c); }

/* A chunk with room for cap positions (features or tokens in the same allocation). */
static ms_audio_chunk *chunk_new(const ms_audio_reader *r, int64_t clip, int64_t t0, int cap)
{
    const ms_frontend_params *f = &r->opts.frontend;
    const size_t per = f->type == MS_FRONTEND_LOGMEL ? sizeof(float) * f->n_mels : sizeof(int32_t);
    ms_audio_chunk *c = malloc(sizeof *c + per * (size_t)(cap > 0 ? cap : 1));
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->clip = clip;
    c->name = r->opts.paths[clip];
    c->t0 = t0;
    if (f->type == MS_FRONTEND_LOGMEL) c->features = (float *)(c + 1);
    else c->tokens = (int32_t *)(c + 1);
    return c;
}

/* Push c; in drop mode the oldest queued chunk makes room and is counted. -1 when the
 * consumer has closed the ring (it stopped early). */
static int push(ms_audio_reader *r, ms_audio_chunk *c)
{
    if (!r->opts.drop) {
        if (ms_ring_push(r->out, c) == 0) return 0;
        ms_audio_chunk_free(c);
        return -1;
    }
    void *old = NULL;
    if (ms_ring_push_drop(r->out, c, &old) != 0) {
        ms_audio_chunk_free(c);
        return -1;
    }
    if (old) {
        ms_audio_chunk *o = old;
        __atomic_add_fetch(&r->dropped_chunks, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&r->dropped_positions, o->n, __ATOMIC_RELAXED);
        ms_audio_chunk_free(o);
    }
    return 0;
}

/* One input, clip index k. */
static int read_clip(ms_audio_reader *r, int64_t k, ms_logmel *lm)
{
    const ms_frontend_params *f = &r->opts.frontend;
    const int logmel = f->type == MS_FRONTEND_LOGMEL, M = logmel ? f->n_mels : 1;
    /* live: 10 ms blocks, so a frame is made as soon as its samples are captured */
    const int block_out = r->opts.live ? (f->sample_rate + 99) / 100 : 4096;
    const int cap = r->opts.chunk;
    ms_audio_src *src;
    const int quality = r->opts.resample_fast ? SRC_SINC_FASTEST : SRC_SINC_MEDIUM_QUALITY;
    int rc = ms_audio_src_open(r->opts.paths[k], &r->opts.raw, f->sample_rate, quality,
                               r->opts.live ? 0 : 4096, &src);
    if (rc != MS_OK) return rc;
    if (lm) ms_logmel_reset(lm);
    float *samples = malloc(sizeof(float) * block_out);
    float *frames = logmel ? malloc(sizeof(float) * M * (size_t)ms_logmel_max_frames(lm, block_out) + 1)
                           : NULL;
    int64_t t = 0;
    ms_audio_chunk *c = chunk_new(r, k, 0, cap);
    if (!samples || (logmel && !frames) || !c) { rc = MS_ERR_NOMEM; goto done; }
    c->first = 1;
    for (;;) {
        int n = ms_audio_src_read(src, samples, block_out);
        if (n < 0) { rc = n; goto done; }
        if (n == 0) break;
        int np = n;
        if (logmel) np = ms_logmel_push(lm, samples, n, frames);
        for (int i = 0; i < np;) {
            int take = cap - c->n < np - i ? cap - c->n : np - i;
            if (logmel) memcpy(c->features + (size_t)c->n * M, frames + (size_t)i * M, sizeof(float) * M * take);
            else ms_mulaw_encode(samples + i, take, f->bits, c->tokens + c->n);
            c->n += take;
            i += take;
            t += take;
            if (c->n == cap) {
                if (push(r, c) != 0) { c = NULL; rc = MS_ERR_ARG; goto done; }
                if (!(c = chunk_new(r, k, t, cap))) { rc = MS_ERR_NOMEM; goto done; }
            }
        }
        if (r->opts.live && c->n > 0) {
            if (push(r, c) != 0) { c = NULL; rc = MS_ERR_ARG; goto done; }
            if (!(c = chunk_new(r, k, t, cap))) { rc = MS_ERR_NOMEM; goto done; }
        }
    }
    /* the last chunk always goes out, even empty, so the consumer sees the clip end */
    c->last = 1;
    c->seconds = ms_audio_src_seconds(src);
    rc = push(r, c) == 0 ? MS_OK : MS_ERR_ARG;
    c = NULL;
done:
    ms_audio_chunk_free(c);
    free(samples);
    free(frames);
    ms_audio_src_close(src);
    return rc;
}

static void *reader_main(void *arg)
{
    ms_audio_reader *r = arg;
    ms_logmel *lm = NULL;
    int rc = MS_OK;
    if (r->opts.frontend.type == MS_FRONTEND_LOGMEL) rc = ms_logmel_new(&r->opts.frontend, &lm);
    for (int64_t k = 0; rc == MS_OK && k < r->opts.n_paths; k++) rc = read_clip(r, k, lm);
    ms_logmel_free(lm);
    r->status = rc;
    ms_ring_close(r->out);
    return NULL;
}

int ms_audio_reader_start(ms_audio_reader *r, const ms_audio_reader_opts *opts, ms_ring *out)
{
    memset(r, 0, sizeof *r);
    r->opts = *opts;
    r->out = out;
    if (opts->chunk < 1 || opts->n_paths < 1) {
        ms_error("audio reader: --chunk must be >= 1 and at least one input given");
        return MS_ERR_ARG;
    }
    if (opts->frontend.type != MS_FRONTEND_LOGMEL && opts->frontend.type != MS_FRONTEND_MULAW) {
        ms_error("audio reader: the model declares no audio front end");
        return MS_ERR_ARG;
    }
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        ms_error("cannot start the audio reader thread");
        return MS_ERR_NOMEM;
    }
    return MS_OK;
}

int ms_audio_reader_join(ms_audio_reader *r)
{
    pthread_join(r->thread, NULL);
    return r->status;
}
