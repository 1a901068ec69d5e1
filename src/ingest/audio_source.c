/* audio_source.c - one audio input through libsndfile, down-mixed to mono and resampled
 * with libsamplerate (src_process in a loop, so samples come out as input arrives).
 *
 * stdin: a regular file (`< x.flac`) is handed to libsndfile as is (it can seek). A pipe
 * is peeked first, so that FLAC, which libsndfile cannot read from a pipe, is named in
 * one line instead of failing obscurely; the peeked bytes and the rest of stdin are then
 * passed through a pipe of our own by a small pump thread, which libsndfile reads like
 * the original. */
#include "audio_reader.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <samplerate.h>
#include <sndfile.h>

#include "log.h"

struct ms_audio_src {
    char name[1024];   /* for messages: the path, or "stdin" */
    SNDFILE *sf;
    SF_INFO info;
    SRC_STATE *src;    /* NULL when the input is at the output rate */
    double ratio;      /* out_rate / input rate */
    int block;         /* input frames per read */
    float *in;         /* [block][channels] */
    float *mono;       /* [block] down-mixed, awaiting the resampler */
    int mono_len, mono_off;
    int eof;
    int64_t frames;    /* input frames read */
};

int ms_audio_src_rate(const ms_audio_src *s) { return s->info.samplerate; }
int ms_audio_src_channels(const ms_audio_src *s) { return s->info.channels; }
double ms_audio_src_seconds(const ms_audio_src *s)
{
    return (double)s->frames / s->info.samplerate;
}

/* ------------------------------------------------------------ stdin pump */

typedef struct {
    int fd_out;
    unsigned char head[4];
    int n_head;
} pump_arg;

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies head + the rest of stdin into fd_out; ends at EOF or when the reader closed its
 * end (EPIPE: SIGPIPE is blocked in this thread, so write just fails). Detached: a live
 * stdin may never end, and nothing waits for it. */
static void *pump_main(void *arg)
{
    pump_arg *p = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    unsigned char buf[16384];
    if (write_all(p->fd_out, p->head, (size_t)p->n_head) == 0) {
        for (;;) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0 || write_all(p->fd_out, buf, (size_t)n) != 0) break;
        }
    }
    close(p->fd_out);
    free(p);
    return NULL;
}

/* A descriptor libsndfile can read stdin from; -1 after logging. *owned = 1 when the
 * descriptor is ours to close. */
static int stdin_fd(const ms_raw_format *raw, int *owned)
{
    struct stat st;
    *owned = 0;
    if (fstat(0, &st) == 0 && S_ISREG(st.st_mode)) {
        if (st.st_size == 0) {
            ms_error("stdin: empty input (no audio)");
            return -1;
        }
        return 0;
    }
    pump_arg *p = calloc(1, sizeof *p);
    int fds[2] = {-1, -1};
    if (!p) return -1;
    while (p->n_head < 4) {
        ssize_t n = read(0, p->head + p->n_head, (size_t)(4 - p->n_head));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p->n_head += (int)n;
    }
    if (p->n_head == 0) {
        ms_error("stdin: empty input (no audio)");
        goto fail;
    }
    if (!raw->sf_format && p->n_head == 4 && !memcmp(p->head, "fLaC", 4)) {
        ms_error("stdin: FLAC cannot be read from a pipe (a libsndfile limitation); give the "
                 "file's path, or decode first: flac -dc - | mamba-stream ... --audio -");
        goto fail;
    }
    pthread_t t;
    if (pipe(fds) != 0) {
        ms_error("stdin: cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    p->fd_out = fds[1];
    if (pthread_create(&t, NULL, pump_main, p) != 0) {
        ms_error("stdin: cannot start the input thread");
        goto fail;
    }
    pthread_detach(t);
    *owned = 1;
    return fds[0];
fail:
    if (fds[0] >= 0) { close(fds[0]); close(fds[1]); }
    free(p);
    return -1;
}

/* ------------------------------------------------------------ open / read */

int ms_raw_format_parse(const char *s, ms_raw_format *out)
{
    static const struct { const char *name; int fmt; } kinds[] = {
        {"s8", SF_FORMAT_PCM_S8}, {"u8", SF_FORMAT_PCM_U8},
        {"s16le", SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE}, {"s16be", SF_FORMAT_PCM_16 | SF_ENDIAN_BIG},
        {"s24le", SF_FORMAT_PCM_24 | SF_ENDIAN_LITTLE}, {"s24be", SF_FORMAT_PCM_24 | SF_ENDIAN_BIG},
        {"s32le", SF_FORMAT_PCM_32 | SF_ENDIAN_LITTLE}, {"s32be", SF_FORMAT_PCM_32 | SF_ENDIAN_BIG},
        {"f32le", SF_FORMAT_FLOAT | SF_ENDIAN_LITTLE}, {"f32be", SF_FORMAT_FLOAT | SF_ENDIAN_BIG},
        {"f64le", SF_FORMAT_DOUBLE | SF_ENDIAN_LITTLE}, {"f64be", SF_FORMAT_DOUBLE | SF_ENDIAN_BIG},
    };
    char kind[16];
    long rate = 0, ch = 0;
    char *end;
    const char *c1 = strchr(s, ':');
    memset(out, 0, sizeof *out);
    if (!c1 || (size_t)(c1 - s) >= sizeof kind) goto bad;
    memcpy(kind, s, (size_t)(c1 - s));
    kind[c1 - s] = 0;
    rate = strtol(c1 + 1, &end, 10);
    if (end == c1 + 1 || *end != ':') goto bad;
    ch = strtol(end + 1, &end, 10);
    if (*end || rate < 1 || rate > 1000000 || ch < 1 || ch > 64) goto bad;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(kind, kinds[i].name)) {
            out->sf_format = SF_FORMAT_RAW | kinds[i].fmt;
            out->rate = (int)rate;
            out->channels = (int)ch;
            return 0;
        }
bad:
    ms_error("--raw: '%s' is not FORMAT:RATE:CHANNELS (FORMAT s8 u8 s16le s16be s24le s24be "
             "s32le s32be f32le f32be f64le f64be; e.g. s16le:16000:1)", s);
    return -1;
}

/* A WAV/AIFF whose header promises more data than the file holds: libsndfile reads what
 * is there and notes "data : N (should be M)" in its log; a cut file is an error here,
 * not a shorter clip. Sizes from 0x7F000000 up are the "length unknown" placeholders of
 * streamed WAVs (espeak-ng --stdout, sox to a pipe), not promises. */
static int truncated(SNDFILE *sf)
{
    char log[8192];
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    for (const char *p = log; (p = strstr(p, "data")) != NULL; p++) {
        unsigned long long n, m;
        if (sscanf(p, "data : %llu (should be %llu)", &n, &m) == 2 && n > m && n < 0x7F000000ull)
            return 1;
    }
    return 0;
}

int ms_audio_src_open(const char *path, const ms_raw_format *raw, int out_rate, int quality,
                      int block, ms_audio_src **out)
{
    *out = NULL;
    ms_audio_src *s = calloc(1, sizeof *s);
    int owned = 0, fd = -1, err = 0;
    if (!s) return MS_ERR_NOMEM;
    const int is_stdin = !strcmp(path, "-");
    snprintf(s->name, sizeof s->name, "%s", is_stdin ? "stdin" : path);
    if (raw && raw->sf_format) {
        s->info.format = raw->sf_format;
        s->info.samplerate = raw->rate;
        s->info.channels = raw->channels;
    }
    if (is_stdin) {
        if ((fd = stdin_fd(raw ? raw : &(ms_raw_format){0}, &owned)) < 0) goto fail_io;
        s->sf = sf_open_fd(fd, SFM_READ, &s->info, owned);
        if (!s->sf && owned) close(fd);
    } else {
        struct stat st;
        if (stat(path, &st) != 0) {
            ms_error("%s: cannot open: %s", path, strerror(errno));
            goto fail_io;
        }
        if (S_ISREG(st.st_mode) && st.st_size == 0) {
            ms_error("%s: empty file (no audio)", path);
            goto fail_fmt;
        }
        s->sf = sf_open(path, SFM_READ, &s->info);
    }
    if (!s->sf) {
        ms_error("%s: not audio that libsndfile can read (%s)", s->name, sf_strerror(NULL));
        goto fail_fmt;
    }
    if (truncated(s->sf)) {
        ms_error("%s: truncated audio file (its header promises more data than it holds)", s->name);
        goto fail_fmt;
    }
    if (s->info.samplerate < 1 || s->info.channels < 1) {
        ms_error("%s: bad header (rate %d Hz, %d channels)", s->name, s->info.samplerate,
                 s->info.channels);
        goto fail_fmt;
    }
    s->ratio = out_rate > 0 ? (double)out_rate / s->info.samplerate : 1.0;
    if (out_rate > 0 && out_rate != s->info.samplerate) {
        if (!src_is_valid_ratio(s->ratio)) {
            ms_error("%s: sample rate %d Hz is unsupported: the model's %d Hz is more than 256 "
                     "times away", s->name, s->info.samplerate, out_rate);
            goto fail_fmt;
        }
        s->src = src_new(quality, 1, &err);
        if (!s->src) {
            ms_error("%s: cannot create the resampler: %s", s->name, src_strerror(err));
            goto fail_fmt;
        }
    }
    s->block = block > 0 ? block : (s->info.samplerate + 99) / 100;
    s->in = malloc(sizeof(float) * (size_t)s->block * s->info.channels);
    s->mono = malloc(sizeof(float) * (size_t)s->block);
    if (!s->in || !s->mono) {
        ms_audio_src_close(s);
        ms_error("%s: out of memory", s->name);
        return MS_ERR_NOMEM;
    }
    *out = s;
    return MS_OK;
fail_io:
    ms_audio_src_close(s);
    return MS_ERR_IO;
fail_fmt:
    ms_audio_src_close(s);
    return MS_ERR_FORMAT;
}

void ms_audio_src_close(ms_audio_src *s)
{
    if (!s) return;
    if (s->sf) sf_close(s->sf);
    if (s->src) src_delete(s->src);
    free(s->in);
    free(s->mono);
    free(s);
}

/* One block of input, down-mixed into mono[0 .. mono_len). 0 at the end, < 0 on error. */
static int read_block(ms_audio_src *s)
{
    sf_count_t n = sf_readf_float(s->sf, s->in, s->block);
    if (n <= 0) {
        if (sf_error(s->sf) != SF_ERR_NO_ERROR) {
            ms_error("%s: read error: %s", s->name, sf_strerror(s->sf));
            return MS_ERR_IO;
        }
        s->eof = 1;
        return 0;
    }
    const int ch = s->info.channels;
    for (sf_count_t i = 0; i < n; i++) {
        float acc = 0;
        for (int c = 0; c < ch; c++) acc += s->in[i * ch + c];
        s->mono[i] = ch == 1 ? acc : acc / ch;
    }
    s->mono_len = (int)n;
    s->mono_off = 0;
    s->frames += n;
    return (int)n;
}

int ms_audio_src_read(ms_audio_src *s, float *out, int max)
{
    for (;;) {
        if (s->mono_off == s->mono_len && !s->eof) {
            int rc = read_block(s);
            if (rc < 0) return rc;
        }
        const int avail = s->mono_len - s->mono_off;
        if (!s->src) {
            if (avail == 0) return 0; /* eof */
            int n = avail < max ? avail : max;
            memcpy(out, s->mono + s->mono_off, sizeof(float) * n);
            s->mono_off += n;
            return n;
        }
        SRC_DATA d = {
            .data_in = s->mono + s->mono_off, .input_frames = avail, .data_out = out,
            .output_frames = max, .end_of_input = s->eof, .src_ratio = s->ratio,
        };
        int err = src_process(s->src, &d);
        if (err) {
            ms_error("%s: resampling failed: %s", s->name, src_strerror(err));
            return MS_ERR_FORMAT;
        }
        s->mono_off += (int)d.input_frames_used;
        if (d.output_frames_gen > 0) return (int)d.output_frames_gen;
        if (s->eof && d.input_frames_used == 0) return 0; /* flushed */
    }
}
