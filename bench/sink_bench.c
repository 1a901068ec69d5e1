/* sink_bench.c - host time of the text sinks alone: N synthetic scores through
 * ms_sink_write in chunks of 4096 (the CLI's default --chunk) to /dev/null (or files), for
 * each of tsv, bedgraph and wig; prints ns/position.
 *
 *   sink_bench [N_POSITIONS (5000000)] [DIR]
 *
 * With DIR the outputs are kept as DIR/sink_bench.{tsv,bedgraph,wig}, to compare the
 * bytes of two builds (the input is the same every run).
 *
 * The scores come from ms_score_from_logits on pseudo-random logits (spread like a
 * trained model's: a few nats), so values, exponents and digit counts are those of a
 * real run; 1 M distinct scores are cycled, positions keep ascending. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mamba_stream.h"
#include "score.h"
#include "sink.h"

#define N_DISTINCT (1 << 20)
#define CHUNK 4096

/* xorshift64*: reproducible, no libc state. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Roughly normal logits (sum of 4 uniforms), sd ~2 nats, one base favoured at times. */
static void make_scores(ms_score *sc, int n)
{
    uint64_t st = 0x9E3779B97F4A7C15ULL;
    const int base_token[4] = {0, 1, 2, 3};
    for (int i = 0; i < n; i++) {
        float l[4];
        for (int b = 0; b < 4; b++) {
            double u = 0;
            for (int k = 0; k < 4; k++) u += (double)(rng_next(&st) >> 11) / 9007199254740992.0;
            l[b] = (float)((u - 2.0) * 3.5);
        }
        char ref = "ACGTacgtNR"[rng_next(&st) % 10]; /* masked, N (logp 0), a set */
        ms_score_from_logits(l, base_token, ref, &sc[i]);
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds to write n positions as fmt (open to close). */
static double run(ms_sink_format fmt, const char *dir, const char *name, const ms_score *pool,
                  ms_score *chunk, long long n)
{
    ms_sink *s;
    char path[4096];
    snprintf(path, sizeof path, "%s/sink_bench.%s", dir, name);
    if (!strcmp(dir, "/dev/null")) snprintf(path, sizeof path, "/dev/null");
    double t0 = now_s();
    if (ms_sink_open(path, fmt, MS_VAL_LOGP, &s) != MS_OK) exit(1);
    for (long long done = 0; done < n; done += CHUNK) {
        int m = n - done < CHUNK ? (int)(n - done) : CHUNK;
        for (int i = 0; i < m; i++) {
            chunk[i] = pool[(done + i) % N_DISTINCT];
            chunk[i].pos = done + i;
        }
        if (ms_sink_write(s, "NZ_CP009072.1", chunk, m) != MS_OK) exit(1);
    }
    if (ms_sink_close(s, 1) != MS_OK) exit(1);
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    long long n = argc > 1 ? atoll(argv[1]) : 5000000;
    const char *dir = argc > 2 ? argv[2] : "/dev/null";
    ms_score *pool = malloc(sizeof *pool * N_DISTINCT), *chunk = malloc(sizeof *chunk * CHUNK);
    if (!pool || !chunk) return 1;
    make_scores(pool, N_DISTINCT);

    /* the copy into the chunk is part of every run: time it alone to subtract */
    double t0 = now_s();
    volatile int64_t sink_pos = 0;
    for (long long done = 0; done < n; done += CHUNK)
        for (int i = 0; i < CHUNK && done + i < n; i++) {
            chunk[i] = pool[(done + i) % N_DISTINCT];
            sink_pos += chunk[i].pos;
        }
    double copy = now_s() - t0;

    static const struct { ms_sink_format f; const char *name; } fmts[] = {
        {MS_FMT_TSV, "tsv"}, {MS_FMT_BEDGRAPH, "bedgraph"}, {MS_FMT_WIG, "wig"}};
    printf("%lld positions to %s (copy into chunks: %.1f ns/position, subtracted)\n", n, dir,
           1e9 * copy / (double)n);
    for (int k = 0; k < 3; k++) {
        double t = run(fmts[k].f, dir, fmts[k].name, pool, chunk, n);
        printf("%-9s %7.1f ns/position  (%.3f s)\n", fmts[k].name, 1e9 * (t - copy) / (double)n, t);
    }
    free(pool);
    free(chunk);
    return 0;
}
