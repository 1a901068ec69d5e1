/* progress.c - "bases done, bases/s, ETA" on stderr, at most twice a second. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ms_progress_init(ms_progress *p, int quiet, int64_t total)
{
    p->enabled = !quiet && isatty(2);
    p->t0 = p->last = ms_now();
    p->total = total;
}

void ms_progress_update(ms_progress *p, int64_t done, int final)
{
    if (!p->enabled) return;
    double now = ms_now();
    if (!final && now - p->last < 0.5) return;
    p->last = now;
    double rate = done / (now - p->t0 + 1e-9);
    if (p->total > 0 && !final) {
        double eta = (p->total - done) / (rate + 1e-9);
        fprintf(stderr, "\r%lld / %lld bases (%.1f%%), %.3g bases/s, ETA %dh%02dm%02ds   ",
                (long long)done, (long long)p->total, 100.0 * done / p->total, rate,
                (int)(eta / 3600), (int)(eta / 60) % 60, (int)eta % 60);
    } else {
        fprintf(stderr, "\r%lld bases, %.3g bases/s   ", (long long)done, rate);
    }
    if (final) fputc('\n', stderr);
}
