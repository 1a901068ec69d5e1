/* audio_reader.h - the audio ingest stage: files or stdin through libsndfile, down-mixed
 * to mono, resampled to the model's rate (libsamplerate, streaming), through the model's
 * front end, cut into chunks of positions (log-mel frames or mu-law tokens) and pushed on
 * a bounded ring by a thread of its own.
 *
 * Inputs are read one after another; each is one stream (clip). Chunks of a clip arrive
 * in order; its last chunk has last = 1 (and may hold 0 positions). Live input (opts.live)
 * pushes what each read block completes at once instead of filling chunks, and with
 * drop = 1 never blocks: when the ring is full the oldest chunk is dropped and counted
 * (t0 of the chunks then jumps, so positions keep their true time). */
#ifndef MS_AUDIO_READER_H
#define MS_AUDIO_READER_H

#include <pthread.h>
#include <stdint.h>

#include "mamba_stream.h"
#include "ring.h"

typedef struct {
    int64_t clip;        /* index of the input in opts.paths */
    const char *name;    /* opts.paths[clip] ("-" for stdin) */
    int64_t t0;          /* index in the clip of the first position */
    int n;               /* positions in this chunk (>= 0) */
    int first, last;     /* first / last chunk of the clip */
    double seconds;      /* last chunk: duration of the clip's audio as read */
    float *features;     /* [n][d_input] (logmel) or NULL */
    int32_t *tokens;     /* [n] (mulaw) or NULL */
} ms_audio_chunk;

void ms_audio_chunk_free(ms_audio_chunk *c);

/* Raw PCM described by the user: "s16le:16000:1" = sample format : rate : channels.
 * Formats: s8 u8 s16le s16be s24le s24be s32le s32be f32le f32be f64le f64be. */
typedef struct {
    int sf_format;       /* libsndfile SF_FORMAT_RAW | subtype | endianness; 0 = not raw */
    int rate, channels;
} ms_raw_format;

/* 0, or -1 after one line naming what is wrong with s. */
int ms_raw_format_parse(const char *s, ms_raw_format *out);

typedef struct {
    const char *const *paths;   /* inputs; "-" is stdin */
    int n_paths;
    ms_raw_format raw;          /* sf_format 0: detect from the header */
    ms_frontend_params frontend;
    int chunk;                  /* positions per chunk (files) */
    int live;                   /* push each read block's positions at once */
    int drop;                   /* live: drop the oldest chunk when the ring is full */
    int resample_fast;          /* 1: SRC_SINC_FASTEST, 0: SRC_SINC_MEDIUM_QUALITY */
} ms_audio_reader_opts;

typedef struct {
    ms_audio_reader_opts opts;
    ms_ring *out;
    pthread_t thread;
    int status;                 /* MS_OK, or the error that stopped reading */
    int64_t dropped_chunks;     /* live drop: chunks dropped (atomic) */
    int64_t dropped_positions;  /* ... and the positions they held (atomic) */
} ms_audio_reader;

/* Start the reading thread. Returns MS_OK, or an error before any thread started. */
int ms_audio_reader_start(ms_audio_reader *r, const ms_audio_reader_opts *opts, ms_ring *out);
/* Wait for the thread; returns its status. The thread closes the ring when done. */
int ms_audio_reader_join(ms_audio_reader *r);

/* ------------------------------------------------------------ one input */

/* One input opened, decoded to mono float at the model's rate: the reader's inner
 * stage, also used directly by tests and `mamba-stream features`. */
typedef struct ms_audio_src ms_audio_src;

/* Open path ("-" = stdin) for mono samples at out_rate (0 = the input's own rate).
 * quality: a libsamplerate converter (SRC_SINC_MEDIUM_QUALITY, ...). block: input frames
 * per read; 0 = 10 ms at the input's rate (live: samples come out as they are captured).
 * Returns MS_OK or an error after one line naming the input. */
int ms_audio_src_open(const char *path, const ms_raw_format *raw, int out_rate, int quality,
                      int block, ms_audio_src **out);
/* Up to max mono samples into out; returns the count, 0 at the end, or < 0 on error. */
int ms_audio_src_read(ms_audio_src *s, float *out, int max);
/* The input's own rate and channels, and the seconds read so far. */
int ms_audio_src_rate(const ms_audio_src *s);
int ms_audio_src_channels(const ms_audio_src *s);
double ms_audio_src_seconds(const ms_audio_src *s);
void ms_audio_src_close(ms_audio_src *s);

#endif
