/* cmd_audio.c - audio classification and live keyword spotting: reader thread (files or
 * stdin -> mono -> resample -> front end) -> ring -> engine (this thread) -> label sink.
 *
 * Clip mode: one stream per input; chunks of different clips are batched on the engine,
 * as genome segments are. The reader reads inputs one after another, so clips finish in
 * input order and their lines come out in that order. Live mode: one stream; each chunk
 * (one read block's frames) is run as it arrives and its posteriors go through the
 * RecognizeCommands-style detector (recognize.h).
 *
 * The sink is called from the engine thread rather than a thread of its own: a clip or a
 * detection is one short line, and a hand-off would only add latency to detections. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_config.h"
#include "audio_reader.h"
#include "cli.h"
#include "label_sink.h"
#include "log.h"
#include "recognize.h"

#define RING_CHUNKS 8 /* files: chunks in flight between reader and engine */

typedef struct {
    ms_cli_common common;
    const char **inputs;
    int n_inputs, cap_inputs;
    const char *out, *raw_spec;
    ms_raw_format raw;
    int format, top_k, live, posteriors, drop, queue, resample_fast;
    ms_recognize_params rec;
} audio_opts;

static int add_input(audio_opts *o, const char *path)
{
    if (o->n_inputs == o->cap_inputs) {
        int cap = o->cap_inputs ? 2 * o->cap_inputs : 16;
        const char **g = realloc(o->inputs, sizeof *g * cap);
        if (!g) return -1;
        o->inputs = g;
        o->cap_inputs = cap;
    }
    o->inputs[o->n_inputs++] = path;
    return 0;
}

/* Paths from a list file, one per line ('#' comments and blank lines skipped). The
 * strings are kept in *store (freed by the caller). */
static int read_list(audio_opts *o, const char *list, char ***store, int *n_store)
{
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "mamba-stream: %s: cannot open the audio list\n", list);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0 || line[0] == '#') continue;
        char **g = realloc(*store, sizeof *g * (*n_store + 1));
        char *copy = strdup(line);
        if (!g || !copy) { free(copy); if (g) *store = g; rc = -1; break; }
        *store = g;
        (*store)[(*n_store)++] = copy;
        if (add_input(o, copy) != 0) { rc = -1; break; }
    }
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------ helpers */

/* The model's audio section, refused unless it declares a front end and labels: one line
 * naming the model. */
static int load_audio_section(const char *dir, ms_audio_config *ac)
{
    if (ms_audio_config_load(dir, ac) != MS_OK) return MS_ERR_MODEL;
    if (ac->frontend.type == MS_FRONTEND_NONE || ac->task != MS_TASK_CLASSIFY) {
        ms_error("%s: not an audio classifier: config.json needs \"mamba_stream\": {\"task\": "
                 "\"classify\", \"labels\": [...], \"frontend\": {...}} (docs/model-format.md)", dir);
        ms_audio_config_free(ac);
        return MS_ERR_MODEL;
    }
    return MS_OK;
}

static void softmax(const float *x, int n, float *p)
{
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++) s += (p[i] = expf(x[i] - m));
    for (int i = 0; i < n; i++) p[i] = (float)(p[i] / s);
}

/* Time in seconds at which position t of a stream is complete: the end of its window. */
static double position_time(const ms_frontend_params *f, int64_t t)
{
    if (f->type == MS_FRONTEND_LOGMEL)
        return ((double)t * f->hop_length + f->win_length) / f->sample_rate;
    return (double)(t + 1) / f->sample_rate;
}

/* Top k of p[n] (descending) into idx[k]. */
static void top_k(const float *p, int n, int k, int *idx)
{
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int j = 0; j < n; j++) {
            int used = 0;
            for (int u = 0; u < i; u++) used |= idx[u] == j;
            if (!used && (best < 0 || p[j] > p[best])) best = j;
        }
        idx[i] = best;
    }
}

/* ------------------------------------------------------------ clip mode */

typedef struct {
    ms_stream *s;
    int64_t clip;       /* -1 = free */
    int64_t n;          /* positions seen */
    double *sum;        /* [n_labels] logits summed (mean pooling) */
    float *last;        /* [n_labels] logits of the latest position (last pooling) */
} clip_slot;

static clip_slot *slot_get(clip_slot *pool, int n, int64_t clip, int L)
{
    for (int i = 0; i < n; i++)
        if (pool[i].clip == clip) return &pool[i];
    for (int i = 0; i < n; i++)
        if (pool[i].clip < 0) {
            clip_slot *s = &pool[i];
            s->clip = clip;
            s->n = 0;
            memset(s->sum, 0, sizeof(double) * L);
            /* reset already where the last clip's final chunk ran, marked last */
            if (ms_stream_pos(s->s) != 0) ms_stream_reset(s->s);
            return s;
        }
    return NULL;
}

/* Finish a clip: pool, softmax, top k, one line. */
static int clip_done(const audio_opts *o, const ms_model_info *info, clip_slot *s,
                     const ms_audio_chunk *c, ms_label_sink *sink)
{
    const int L = info->n_labels, k = o->top_k < L ? o->top_k : L;
    const ms_frontend_params *f = &info->frontend;
    float logit[L], p[L], pk[L];
    int idx[L];
    const char *names[L];
    if (s->n == 0) {
        ms_error("%s: %.3f s of audio is shorter than one frame of the model's front end "
                 "(%.3f s)", c->name, c->seconds,
                 f->type == MS_FRONTEND_LOGMEL ? (double)f->win_length / f->sample_rate : 1.0 / f->sample_rate);
        return MS_ERR_FORMAT;
    }
    for (int i = 0; i < L; i++)
        logit[i] = info->pooling == MS_POOL_MEAN ? (float)(s->sum[i] / s->n) : s->last[i];
    softmax(logit, L, p);
    top_k(p, L, k, idx);
    for (int i = 0; i < k; i++) {
        names[i] = info->labels[idx[i]];
        pk[i] = p[idx[i]];
    }
    return ms_label_sink_clip(sink, c->name, s->n, c->seconds, names, pk, k);
}

static int run_clips(const audio_opts *o, ms_ctx *ctx, const ms_model_info *info, ms_ring *in,
                     ms_label_sink *sink)
{
    const int B = o->common.batch, L = info->n_labels, max_tokens = o->common.chunk * B;
    const ms_frontend_params *f = &info->frontend;
    clip_slot *pool = calloc(B, sizeof *pool);
    ms_audio_chunk **batch = calloc(B, sizeof *batch);
    ms_chunk *fw = calloc(B, sizeof *fw);
    float *logits = malloc(sizeof(float) * (size_t)max_tokens * L);
    float *post = malloc(sizeof(float) * L);
    int rc = pool && batch && fw && logits && post ? MS_OK : MS_ERR_NOMEM;
    for (int i = 0; rc == MS_OK && i < B; i++) {
        pool[i].clip = -1;
        pool[i].sum = malloc(sizeof(double) * L);
        pool[i].last = calloc(L, sizeof(float));
        if (!pool[i].sum || !pool[i].last) rc = MS_ERR_NOMEM;
        else rc = ms_stream_new(ctx, &pool[i].s);
    }
    ms_audio_chunk *held = NULL;
    while (rc == MS_OK) {
        int nb = 0, ntok = 0;
        if (held) { batch[nb++] = held; ntok += held->n; held = NULL; }
        while (nb < B) {
            /* fill the batch up to a clash: composition must not depend on thread timing */
            ms_audio_chunk *c = ms_ring_pop(in);
            if (!c) break;
            int clash = 0;
            for (int i = 0; i < nb; i++) clash |= batch[i]->clip == c->clip;
            if (clash || ntok + c->n > max_tokens) { held = c; break; }
            batch[nb++] = c;
            ntok += c->n;
        }
        if (nb == 0) break;
        int nf = 0;
        clip_slot *slot[B];
        for (int i = 0; i < nb; i++) {
            ms_audio_chunk *c = batch[i];
            /* never NULL: a batch holds at most B clips, and only its first can have begun
             * in an earlier batch (inputs are read one after another) */
            slot[i] = slot_get(pool, B, c->clip, L);
            if (!slot[i]) {
                ms_error("%s: no free stream for this clip (internal error)", c->name);
                rc = MS_ERR_ARG;
            }
            if (rc == MS_OK && c->n > 0)
                fw[nf++] = (ms_chunk){.stream = slot[i]->s, .tokens = c->tokens, .n_tokens = c->n,
                                      .features = c->features, .last = c->last};
        }
        if (rc == MS_OK && nf > 0) rc = ms_forward(ctx, fw, nf, logits, NULL);
        for (int i = 0, row = 0; i < nb; i++) {
            ms_audio_chunk *c = batch[i];
            clip_slot *s = slot[i];
            if (!s) { ms_audio_chunk_free(c); continue; }
            for (int j = 0; rc == MS_OK && j < c->n; j++, row++) {
                const float *lg = logits + (size_t)row * L;
                for (int l = 0; l < L; l++) s->sum[l] += lg[l];
                memcpy(s->last, lg, sizeof(float) * L);
                s->n++;
                if (o->posteriors) {
                    softmax(lg, L, post);
                    rc = ms_label_sink_posteriors(sink, c->name, c->t0 + j, position_time(f, c->t0 + j),
                                                  info->labels, post, L);
                }
            }
            if (rc == MS_OK && c->last && !o->posteriors) rc = clip_done(o, info, s, c, sink);
            if (rc == MS_OK && c->last && o->posteriors && s->n == 0) rc = clip_done(o, info, s, c, sink);
            if (c->last) s->clip = -1;
            ms_audio_chunk_free(c);
        }
    }
    ms_audio_chunk_free(held);
    for (int i = 0; pool && i < B; i++) {
        ms_stream_free(pool[i].s);
        free(pool[i].sum);
        free(pool[i].last);
    }
    free(pool); free(batch); free(fw); free(logits); free(post);
    return rc;
}

/* ------------------------------------------------------------ live mode */

static int run_live(const audio_opts *o, ms_ctx *ctx, const ms_model_info *info, ms_ring *in,
                    ms_label_sink *sink, const ms_audio_reader *reader)
{
    const int L = info->n_labels;
    const ms_frontend_params *f = &info->frontend;
    const double pos_per_s = f->type == MS_FRONTEND_LOGMEL ? (double)f->sample_rate / f->hop_length
                                                           : f->sample_rate;
    ms_stream *s = NULL;
    ms_recognizer *rec = ms_recognizer_new(&o->rec, info->labels, L);
    float *logits = malloc(sizeof(float) * (size_t)o->common.chunk * L);
    float *post = malloc(sizeof(float) * L);
    int rc = rec && logits && post ? ms_stream_new(ctx, &s) : MS_ERR_NOMEM;
    int64_t expect = 0, gap_pending = 0;
    double last_report = 0;
    ms_audio_chunk *c;
    while (rc == MS_OK && (c = ms_ring_pop(in))) {
        if (c->t0 > expect) gap_pending += c->t0 - expect; /* chunks dropped by the reader */
        expect = c->t0 + c->n;
        if (gap_pending > 0 && ms_now() - last_report >= 1.0) {
            ms_warn("live input: %lld frames (%.2f s) dropped: the engine is behind "
                    "(--on-overrun drop); times stay true", (long long)gap_pending,
                    gap_pending / pos_per_s);
            gap_pending = 0;
            last_report = ms_now();
        }
        if (c->n > 0) {
            ms_chunk fw = {.stream = s, .tokens = c->tokens, .n_tokens = c->n, .features = c->features};
            rc = ms_forward(ctx, &fw, 1, logits, NULL);
        }
        for (int j = 0; rc == MS_OK && j < c->n; j++) {
            const double t = position_time(f, c->t0 + j);
            int label;
            float score;
            softmax(logits + (size_t)j * L, L, post);
            if (o->posteriors)
                rc = ms_label_sink_posteriors(sink, c->name, c->t0 + j, t, info->labels, post, L);
            else if (ms_recognizer_push(rec, t * 1000.0, post, &label, &score) &&
                     info->labels[label][0] != '_')
                rc = ms_label_sink_detection(sink, t, info->labels[label], score);
        }
        if (rc == MS_OK && o->posteriors && c->n > 0) rc = ms_label_sink_flush(sink);
        ms_audio_chunk_free(c);
    }
    int64_t dropped = __atomic_load_n(&reader->dropped_positions, __ATOMIC_RELAXED);
    if (dropped > 0)
        ms_warn("live input: %lld frames (%.2f s) dropped in all (%lld chunks) because the "
                "engine fell behind (--on-overrun drop)", (long long)dropped, dropped / pos_per_s,
                (long long)__atomic_load_n(&reader->dropped_chunks, __ATOMIC_RELAXED));
    ms_stream_free(s);
    ms_recognizer_free(rec);
    free(logits);
    free(post);
    return rc;
}

/* ------------------------------------------------------------ command */

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream [--model DIR] --audio FILE... [options]\n"
"       mamba-stream --model DIR --audio-list LIST [-o labels.tsv]\n"
"       mamba-stream --model DIR --audio - [--raw s16le:16000:1]      (live)\n"
"\n"
"Classifies audio clips with a Mamba audio model (one result per input, top-k labels),\n"
"or spots keywords live in a stream on stdin (one line per detection, as it happens).\n"
"\n"
"Without --model: the bundled keyword spotter models/kws-mamba2-small.\n"
"Input:\n"
"  --audio FILE...     audio files libsndfile reads (WAV, FLAC, Ogg/Vorbis, AIFF, ...);\n"
"                      '-' reads stdin (WAV, Ogg or raw PCM; not FLAC). Down-mixed to mono,\n"
"                      resampled to the model's rate\n"
"  --audio-list LIST   more inputs, one path per line\n"
"  --raw F:RATE:CH     headerless PCM: F = s8 u8 s16le s16be s24le s24be s32le s32be\n"
"                      f32le f32be f64le f64be (e.g. s16le:16000:1)\n"
"  --resample Q        medium | fast (libsamplerate sinc converters) [medium]\n"
"Mode:\n"
"  --mode M            clip | live [live for '-', else clip]\n"
"  --posteriors        one line per frame: the posteriors of every label (both modes)\n"
"Output:\n"
"  -o, --output FILE   [stdout]; clip mode: written under a temporary name, renamed when\n"
"                      complete; live mode: written in place, line by line\n"
"  --format F          tsv | jsonl [from -o's extension, else tsv]\n"
"  --top-k K           labels per clip [3]\n"
"Live detection (TensorFlow RecognizeCommands semantics; a model's config.json may set its\n"
"own defaults in \"mamba_stream\".detector, which these flags override):\n"
"  --average-window-ms N  posteriors averaged over the last N ms [1000]\n"
"  --threshold X       a detection when the averaged top score exceeds X [0.7]\n"
"  --suppression-ms N  no new detection within N ms of the previous one [1500]\n"
"  --min-count N       at least N results in the window before deciding [3]\n"
"  --on-overrun P      block | drop: when the engine falls behind live input, block the\n"
"                      reader (input backs up in the pipe) or drop the oldest chunks,\n"
"                      counted and reported on stderr; times stay true [block]\n"
"  --queue N           chunks buffered between reader and engine in live mode [100]\n"
"Engine:\n"
"  --device D          cpu | cuda | cuda:N [cpu]\n"
"  --precision P       fp32 | bf16 | fp16 (bf16/fp16 on CUDA) [fp32]\n"
"  --chunk N           frames (tokens for mu-law) per chunk of one clip [100; mu-law 4000]\n"
"  --batch N           clips per forward call [16]\n"
"  --threads N         CPU threads [all cores]\n"
"  -q, --quiet         (accepted; audio prints no progress line)\n"
"\n"
"Clip TSV: file, frames, seconds, then label/p pairs; live TSV: time_s, label, score.\n"
"Times are the end of the frame's window from the start of the stream.\n");
}

int ms_cmd_audio(int argc, char **argv)
{
    audio_opts o = {0};
    char **list_store = NULL;
    int n_store = 0, mode = -1;
    unsigned rec_set = 0; /* detector flags the user gave (bits: window, threshold, suppression, count) */
    o.common.batch = 16;
    o.format = -1;
    o.top_k = 3;
    o.queue = 100;
    o.rec = ms_recognize_default_params();
    enum { O_MODEL = 256, O_AUDIO, O_LIST, O_RAW, O_FORMAT, O_TOPK, O_MODE, O_POST, O_WIN,
           O_THR, O_SUP, O_MINC, O_OVERRUN, O_QUEUE, O_CHUNK, O_BATCH, O_THREADS, O_DEVICE,
           O_RESAMPLE, O_PRECISION };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"audio", 1, 0, O_AUDIO}, {"audio-list", 1, 0, O_LIST},
        {"raw", 1, 0, O_RAW}, {"output", 1, 0, 'o'}, {"format", 1, 0, O_FORMAT},
        {"top-k", 1, 0, O_TOPK}, {"mode", 1, 0, O_MODE}, {"posteriors", 0, 0, O_POST},
        {"average-window-ms", 1, 0, O_WIN}, {"threshold", 1, 0, O_THR},
        {"suppression-ms", 1, 0, O_SUP}, {"min-count", 1, 0, O_MINC},
        {"on-overrun", 1, 0, O_OVERRUN}, {"queue", 1, 0, O_QUEUE}, {"chunk", 1, 0, O_CHUNK},
        {"batch", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS}, {"device", 1, 0, O_DEVICE},
        {"precision", 1, 0, O_PRECISION}, {"resample", 1, 0, O_RESAMPLE}, {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0, seen_audio = 0;
    int64_t v;
    double d = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: o.common.model_dir = optarg; break;
        case O_AUDIO: bad |= add_input(&o, optarg); seen_audio = 1; break;
        case O_LIST: bad |= read_list(&o, optarg, &list_store, &n_store); seen_audio = 1; break;
        case O_RAW: o.raw_spec = optarg; bad |= ms_raw_format_parse(optarg, &o.raw); break;
        case 'o': o.out = optarg; break;
        case O_FORMAT:
            if ((o.format = ms_label_format_parse(optarg)) < 0) {
                fprintf(stderr, "mamba-stream: --format: unknown format '%s' (tsv, jsonl)\n", optarg);
                bad = 1;
            }
            break;
        case O_TOPK: bad |= (v = ms_cli_parse_int("--top-k", optarg, 1, 1 << 20)) < 0; o.top_k = (int)v; break;
        case O_MODE:
            if (!strcmp(optarg, "clip")) mode = 0;
            else if (!strcmp(optarg, "live")) mode = 1;
            else { fprintf(stderr, "mamba-stream: --mode: '%s' is not clip or live\n", optarg); bad = 1; }
            break;
        case O_POST: o.posteriors = 1; break;
        case O_WIN: rec_set |= 1; bad |= ms_cli_parse_double("--average-window-ms", optarg, 0, 1e9, &o.rec.average_window_ms); break;
        case O_THR: rec_set |= 2; bad |= ms_cli_parse_double("--threshold", optarg, 0, 1, &d); o.rec.threshold = (float)d; break;
        case O_SUP: rec_set |= 4; bad |= ms_cli_parse_double("--suppression-ms", optarg, 0, 1e9, &o.rec.suppression_ms); break;
        case O_MINC: rec_set |= 8; bad |= (v = ms_cli_parse_int("--min-count", optarg, 1, 1 << 20)) < 0; o.rec.minimum_count = (int)v; break;
        case O_OVERRUN:
            if (!strcmp(optarg, "block")) o.drop = 0;
            else if (!strcmp(optarg, "drop")) o.drop = 1;
            else { fprintf(stderr, "mamba-stream: --on-overrun: '%s' is not block or drop\n", optarg); bad = 1; }
            break;
        case O_QUEUE: bad |= (v = ms_cli_parse_int("--queue", optarg, 1, 1 << 20)) < 0; o.queue = (int)v; break;
        case O_CHUNK: bad |= (v = ms_cli_parse_int("--chunk", optarg, 1, 1 << 20)) < 0; o.common.chunk = (int)v; break;
        case O_BATCH: bad |= (v = ms_cli_parse_int("--batch", optarg, 1, 1 << 12)) < 0; o.common.batch = (int)v; break;
        case O_THREADS: bad |= (v = ms_cli_parse_int("--threads", optarg, 1, 4096)) < 0; o.common.n_threads = (int)v; break;
        case O_DEVICE: bad |= ms_cli_parse_device(optarg, &o.common) != 0; break;
        case O_PRECISION: bad |= ms_cli_parse_precision(optarg, &o.common) != 0; break;
        case O_RESAMPLE:
            if (!strcmp(optarg, "fast")) o.resample_fast = 1;
            else if (!strcmp(optarg, "medium")) o.resample_fast = 0;
            else { fprintf(stderr, "mamba-stream: --resample: '%s' is not medium or fast\n", optarg); bad = 1; }
            break;
        case 'q': o.common.quiet = 1; break;
        case 'h': usage(stdout); goto out_ok;
        default: bad = 1;
        }
    }
    /* `--audio a.wav b.wav c.wav`: the words after --audio's argument are inputs too */
    for (; !bad && optind < argc; optind++) bad |= add_input(&o, argv[optind]);
    int n_stdin = 0;
    for (int i = 0; i < o.n_inputs; i++) n_stdin += !strcmp(o.inputs[i], "-");
    /* no --model: the bundled model (default_model.c) */
    if (!bad && !o.common.model_dir && !(o.common.model_dir = ms_cli_default_model(MS_DEFAULT_KWS_MODEL))) bad = 1;
    if (!bad && (!o.common.model_dir || !seen_audio || o.n_inputs == 0)) {
        fprintf(stderr, "mamba-stream: --audio (or --audio-list) is required (see --help)\n");
        bad = 1;
    }
    if (!bad && n_stdin > 1) {
        fprintf(stderr, "mamba-stream: stdin ('-') can be read only once\n");
        bad = 1;
    }
    o.live = mode >= 0 ? mode : (o.n_inputs == 1 && n_stdin == 1);
    if (!bad && o.live && o.n_inputs != 1) {
        fprintf(stderr, "mamba-stream: live mode takes one input (got %d)\n", o.n_inputs);
        bad = 1;
    }
    if (bad) {
        for (int i = 0; i < n_store; i++) free(list_store[i]);
        free(list_store);
        free(o.inputs);
        return 2;
    }
    if (o.format < 0) {
        o.format = o.out ? ms_label_format_from_path(o.out) : MS_LABELS_TSV;
        if (o.format < 0) o.format = MS_LABELS_TSV;
    }

    ms_model *model = NULL;
    ms_ctx *ctx = NULL;
    ms_label_sink *sink = NULL;
    ms_ring *in = NULL;
    ms_audio_reader reader;
    int rc = 1, reader_started = 0;
    ms_audio_config probe;
    /* a model without a front end fails here, before the weights are mapped */
    if (load_audio_section(o.common.model_dir, &probe) != MS_OK) goto done;
    const int mulaw = probe.frontend.type == MS_FRONTEND_MULAW;
    /* The model's own detector settings where the user gave no flag. */
    if (!(rec_set & 1) && probe.det_window_ms >= 0) o.rec.average_window_ms = probe.det_window_ms;
    if (!(rec_set & 2) && probe.det_threshold >= 0) o.rec.threshold = (float)probe.det_threshold;
    if (!(rec_set & 4) && probe.det_suppression_ms >= 0) o.rec.suppression_ms = probe.det_suppression_ms;
    if (!(rec_set & 8) && probe.det_min_count >= 0) o.rec.minimum_count = (int)probe.det_min_count;
    ms_audio_config_free(&probe);
    if (!o.common.chunk) o.common.chunk = o.live ? (mulaw ? 1600 : 10) : (mulaw ? 4000 : 100);
    const int B = o.live ? 1 : o.common.batch;
    if (ms_cli_open_model(&o.common, (int64_t)o.common.chunk * B, B, &model, &ctx) != 0) goto done;
    const ms_model_info *info = ms_model_info_get(model);
    if (ms_label_sink_open(o.out, (ms_label_format)o.format, o.live, &sink) != MS_OK) goto done;
    in = ms_ring_new(o.live ? (size_t)o.queue : RING_CHUNKS);
    if (!in) goto done;
    ms_audio_reader_opts ro = {
        .paths = o.inputs, .n_paths = o.n_inputs, .raw = o.raw, .frontend = info->frontend,
        .chunk = o.common.chunk, .live = o.live, .drop = o.live && o.drop,
        .resample_fast = o.resample_fast,
    };
    if (ms_audio_reader_start(&reader, &ro, in) != MS_OK) goto done;
    reader_started = 1;
    int erc = o.live ? run_live(&o, ctx, info, in, sink, &reader)
                     : run_clips(&o, ctx, info, in, sink);
    if (erc != MS_OK) ms_ring_close(in);
    ms_audio_chunk *c;
    while ((c = ms_ring_pop(in))) ms_audio_chunk_free(c);
    int rrc = ms_audio_reader_join(&reader);
    reader_started = 0;
    int ok = erc == MS_OK && rrc == MS_OK;
    if (ms_label_sink_close(sink, ok) != MS_OK) ok = 0;
    sink = NULL;
    rc = ok ? 0 : 1;
done:
    if (reader_started) {
        ms_ring_close(in);
        while ((c = ms_ring_pop(in))) ms_audio_chunk_free(c);
        ms_audio_reader_join(&reader);
    }
    if (sink) ms_label_sink_close(sink, 0);
    ms_ring_free(in);
    ms_ctx_free(ctx);
    ms_model_free(model);
    for (int i = 0; i < n_store; i++) free(list_store[i]);
    free(list_store);
    free(o.inputs);
    return rc;
out_ok:
    for (int i = 0; i < n_store; i++) free(list_store[i]);
    free(list_store);
    free(o.inputs);
    return 0;
}
