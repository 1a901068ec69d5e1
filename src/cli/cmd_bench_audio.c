/* cmd_bench_audio.c - real-time factor and per-hop latency of the audio path on the CPU.
 *
 * Workload: synthetic audio (a chirp plus noise, 16 kHz) through a keyword-spotter-sized
 * model with random weights (or --model DIR). Three measurements:
 *   front end   log-mel frames of the whole signal pushed 10 ms at a time;
 *   live        one stream, one hop at a time as live mode runs it: front end push +
 *               forward of the new frame + softmax + detector; the time of each hop gives
 *               the latency from a hop's last sample to its posteriors (median, p99, max);
 *   clips       1 s clips, batched (--batch) in chunks of 100 frames, as clip mode runs.
 * Real-time factor = compute time / audio duration (below 1: faster than real time).
 * Prints a Markdown table; numbers, not assertions. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "frontend_logmel.h"
#include "frontend_mulaw.h"
#include "log.h"
#include "random_model.h"
#include "recognize.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) { p += 2; p[strcspn(p, "\n")] = 0; snprintf(buf, n, "%s", p); }
            break;
        }
    if (f) fclose(f);
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream bench-audio [--model DIR] [--seconds S] [--clips N] [--batch N]\n"
"                                [--threads N] [--d-model D] [--layers L]\n"
"Real-time factor and per-hop latency of the audio path on the CPU. Without --model, a\n"
"random-weight keyword spotter: Mamba-1, d_model 128, 4 layers, 40 log-mel bins, 12 labels.\n"
"  --write-model DIR   write that random model (with --d-model, --layers, --frontend\n"
"                      logmel|mulaw) to DIR in the documented format and exit (test models)\n");
}

int ms_cmd_bench_audio(int argc, char **argv)
{
    ms_cli_common c = {0};
    double seconds = 30;
    int clips = 64, d_model = 128, n_layer = 4, ch, bad = 0;
    int64_t v;
    c.batch = 16;
    const char *write_dir = NULL;
    int mulaw = 0;
    enum { O_MODEL = 256, O_SECONDS, O_CLIPS, O_BATCH, O_THREADS, O_DMODEL, O_LAYERS, O_WRITE,
           O_FRONTEND };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"seconds", 1, 0, O_SECONDS}, {"clips", 1, 0, O_CLIPS},
        {"batch", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS}, {"d-model", 1, 0, O_DMODEL},
        {"layers", 1, 0, O_LAYERS}, {"write-model", 1, 0, O_WRITE}, {"frontend", 1, 0, O_FRONTEND},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: c.model_dir = optarg; break;
        case O_SECONDS: bad |= (v = ms_cli_parse_int("--seconds", optarg, 1, 36000)) < 0; seconds = (double)v; break;
        case O_CLIPS: bad |= (v = ms_cli_parse_int("--clips", optarg, 1, 100000)) < 0; clips = (int)v; break;
        case O_BATCH: bad |= (v = ms_cli_parse_int("--batch", optarg, 1, 4096)) < 0; c.batch = (int)v; break;
        case O_THREADS: bad |= (v = ms_cli_parse_int("--threads", optarg, 1, 4096)) < 0; c.n_threads = (int)v; break;
        case O_DMODEL: bad |= (v = ms_cli_parse_int("--d-model", optarg, 16, 8192)) < 0; d_model = (int)v; break;
        case O_LAYERS: bad |= (v = ms_cli_parse_int("--layers", optarg, 1, 256)) < 0; n_layer = (int)v; break;
        case O_WRITE: write_dir = optarg; break;
        case O_FRONTEND:
            mulaw = !strcmp(optarg, "mulaw");
            if (!mulaw && strcmp(optarg, "logmel")) { fprintf(stderr, "mamba-stream: --frontend: logmel or mulaw\n"); bad = 1; }
            break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad || optind < argc) return 2;
    if (write_dir) {
        ms_random_spec spec = ms_random_spec_kws();
        spec.d_model = d_model;
        spec.n_layer = n_layer;
        if (mulaw) { spec.frontend = MS_FRONTEND_MULAW; spec.vocab = 256; }
        if (mkdir(write_dir, 0777) != 0 && access(write_dir, W_OK) != 0) {
            ms_error("%s: cannot create the model directory", write_dir);
            return 1;
        }
        return ms_random_model_write(&spec, write_dir) == MS_OK ? 0 : 1;
    }
    char tmpdir[] = "/tmp/ms-bench-audio-XXXXXX", path[4200];
    int made = 0, rc = 1;
    const int chunk = 100;
    ms_model *model = NULL;
    ms_ctx *ctx = NULL;
    ms_stream *s = NULL, **ss = NULL;
    ms_logmel *lm = NULL;
    ms_recognizer *rec = NULL;
    float *x = NULL, *frames = NULL, *logits = NULL, *feats = NULL, *post = NULL;
    double *lat = NULL;
    if (!c.model_dir) {
        if (!mkdtemp(tmpdir)) { ms_error("cannot make a temporary directory"); return 1; }
        made = 1;
        ms_random_spec spec = ms_random_spec_kws();
        spec.d_model = d_model;
        spec.n_layer = n_layer;
        if (ms_random_model_write(&spec, tmpdir) != MS_OK) goto out;
        c.model_dir = tmpdir;
    }
    if (ms_cli_open_model(&c, (int64_t)chunk * c.batch, c.batch, &model, &ctx) != 0) goto out;
    const ms_model_info *info = ms_model_info_get(model);
    const ms_frontend_params *f = &info->frontend;
    if (f->type != MS_FRONTEND_LOGMEL || info->task != MS_TASK_CLASSIFY) {
        ms_error("%s: bench-audio needs a log-mel classifier", c.model_dir);
        goto out;
    }
    const int sr = f->sample_rate, M = f->n_mels, L = info->n_labels, hop = f->hop_length;
    const long n = (long)(seconds * sr);
    x = malloc(sizeof(float) * n);
    uint64_t seed = 1;
    for (long i = 0; i < n; i++) { /* a 200 -> 4000 Hz chirp every second, plus noise */
        double t = (double)(i % sr) / sr;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(0.3 * sin(2 * M_PI * (200 * t + 1900 * t * t)) +
                       0.01 * (((seed >> 33) & 0xffff) / 32768.0 - 1));
    }
    const long n_hops = n / hop;
    frames = malloc(sizeof(float) * M * 4);
    feats = malloc(sizeof(float) * M * (size_t)(n_hops + 2));
    logits = malloc(sizeof(float) * (size_t)chunk * c.batch * L);
    lat = malloc(sizeof(double) * n_hops);
    post = malloc(sizeof(float) * L);
    ms_recognize_params rp = ms_recognize_default_params();
    rec = ms_recognizer_new(&rp, info->labels, L);
    if (!x || !frames || !feats || !logits || !lat || !post || !rec) goto out;
    if (ms_logmel_new(f, &lm) != MS_OK) goto out;

    /* front end alone */
    double t0 = ms_now();
    long nf = 0;
    for (long h = 0; h < n_hops; h++) nf += ms_logmel_push(lm, x + h * hop, hop, feats + (size_t)nf * M);
    const double t_fe = ms_now() - t0;

    /* live: one hop at a time */
    ms_logmel_reset(lm);
    if (ms_stream_new(ctx, &s) != MS_OK) goto out;
    long frames_run = 0;
    t0 = ms_now();
    for (long h = 0; h < n_hops; h++) {
        double a = ms_now();
        int k = ms_logmel_push(lm, x + h * hop, hop, frames);
        if (k > 0) {
            ms_chunk ck = {.stream = s, .n_tokens = k, .features = frames};
            if (ms_forward(ctx, &ck, 1, logits, NULL) != MS_OK) goto out;
            for (int j = 0; j < k; j++) {
                int lab;
                float sc;
                float mx = logits[j * L];
                double sum = 0;
                for (int l = 1; l < L; l++) mx = logits[j * L + l] > mx ? logits[j * L + l] : mx;
                for (int l = 0; l < L; l++) sum += post[l] = expf(logits[j * L + l] - mx);
                for (int l = 0; l < L; l++) post[l] = (float)(post[l] / sum);
                ms_recognizer_push(rec, (frames_run + j) * 1000.0 * hop / sr, post, &lab, &sc);
            }
            frames_run += k;
        }
        lat[h] = ms_now() - a;
    }
    const double t_live = ms_now() - t0;
    qsort(lat, (size_t)n_hops, sizeof *lat, cmp_double);

    /* clips: 1 s each, batched, chunks of 100 frames (features precomputed above) */
    ss = calloc((size_t)c.batch, sizeof *ss);
    if (!ss) goto out;
    for (int i = 0; i < c.batch; i++)
        if (ms_stream_new(ctx, &ss[i]) != MS_OK) goto out;
    const int per_clip = (int)((sr - f->win_length) / hop + 1);
    ms_chunk *ck = calloc((size_t)c.batch, sizeof *ck);
    t0 = ms_now();
    for (int done = 0; done < clips; done += c.batch) {
        int nb = clips - done < c.batch ? clips - done : c.batch;
        for (int i = 0; i < nb; i++) ms_stream_reset(ss[i]);
        for (int p0 = 0; p0 < per_clip; p0 += chunk) {
            int len = per_clip - p0 < chunk ? per_clip - p0 : chunk;
            for (int i = 0; i < nb; i++) {
                long src_frame = ((long)(done + i) * per_clip + p0) % (nf - chunk > 0 ? nf - chunk : 1);
                ck[i] = (ms_chunk){.stream = ss[i], .n_tokens = len, .features = feats + (size_t)src_frame * M};
            }
            if (ms_forward(ctx, ck, nb, logits, NULL) != MS_OK) { free(ck); goto out; }
        }
    }
    const double t_clips = ms_now() - t0;
    free(ck);

    char cpu[256], date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    cpu_name(cpu, sizeof cpu);
    printf("Audio path, CPU: %s, %ld cores online, %s; model %s: Mamba-%d d_model %d x %d layers, "
           "%d log-mel bins, %d labels; %d Hz, hop %d (%.0f ms)\n\n",
           cpu, sysconf(_SC_NPROCESSORS_ONLN), date, made ? "random" : c.model_dir,
           info->arch == MS_ARCH_MAMBA1 ? 1 : 2, info->d_model, info->n_layer, M, L, sr, hop,
           1000.0 * hop / sr);
    printf("| workload | audio | compute | real-time factor | per hop (median / p99 / max) |\n");
    printf("|---|---|---|---|---|\n");
    printf("| front end (log-mel, 10 ms pushes) | %.0f s | %.3f s | %.5f | %.1f us mean |\n",
           seconds, t_fe, t_fe / seconds, 1e6 * t_fe / n_hops);
    printf("| live: front end + 1-frame forward + detector | %.0f s | %.3f s | %.4f | %.3f / %.3f / %.3f ms |\n",
           seconds, t_live, t_live / seconds, 1e3 * lat[n_hops / 2], 1e3 * lat[(long)(n_hops * 0.99)],
           1e3 * lat[n_hops - 1]);
    printf("| clips: %d x 1 s, batch %d, chunk %d frames (engine only) | %d s | %.3f s | %.4f | - |\n",
           clips, c.batch, chunk, clips, t_clips, t_clips / clips);
    rc = 0;
out:
    if (ss) for (int i = 0; i < c.batch; i++) ms_stream_free(ss[i]);
    free(ss);
    ms_stream_free(s);
    ms_ctx_free(ctx);
    ms_model_free(model);
    ms_logmel_free(lm);
    ms_recognizer_free(rec);
    free(x); free(frames); free(feats); free(logits); free(lat); free(post);
    if (made) {
        snprintf(path, sizeof path, "%s/config.json", tmpdir); unlink(path);
        snprintf(path, sizeof path, "%s/model.safetensors", tmpdir); unlink(path);
        rmdir(tmpdir);
    }
    return rc;
}
