/* recognize.c - RecognizeCommands-style smoothing and detection (see recognize.h). */
#include "recognize.h"

#include <stdlib.h>
#include <string.h>

struct ms_recognizer {
    ms_recognize_params p;
    int n_labels;
    int silence;          /* index of "_silence_", or -1 */
    /* the window: a ring of results, [cap][n_labels] scores and [cap] times */
    float *scores;
    double *times;
    int cap, head, count;
    double *sum;          /* [n_labels] running sum over the window */
    int prev_label;       /* previous command; starts as silence */
    double prev_time;
    int have_prev_time;
};

ms_recognize_params ms_recognize_default_params(void)
{
    ms_recognize_params p = {.average_window_ms = 1000, .threshold = 0.7f, .suppression_ms = 1500,
                             .minimum_count = 3};
    return p;
}

ms_recognizer *ms_recognizer_new(const ms_recognize_params *p, const char *const *labels,
                                 int n_labels)
{
    ms_recognizer *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->p = *p;
    r->n_labels = n_labels;
    r->silence = -1;
    for (int i = 0; i < n_labels; i++)
        if (!strcmp(labels[i], "_silence_")) r->silence = i;
    r->prev_label = r->silence;
    r->cap = 64;
    r->scores = malloc(sizeof(float) * r->cap * n_labels);
    r->times = malloc(sizeof(double) * r->cap);
    r->sum = calloc((size_t)n_labels, sizeof(double));
    if (!r->scores || !r->times || !r->sum) {
        ms_recognizer_free(r);
        return NULL;
    }
    return r;
}

void ms_recognizer_free(ms_recognizer *r)
{
    if (!r) return;
    free(r->scores);
    free(r->times);
    free(r->sum);
    free(r);
}

static int grow(ms_recognizer *r)
{
    const int L = r->n_labels, cap = 2 * r->cap;
    float *s = malloc(sizeof(float) * cap * L);
    double *t = malloc(sizeof(double) * cap);
    if (!s || !t) { free(s); free(t); return -1; }
    for (int i = 0; i < r->count; i++) {
        int j = (r->head + i) % r->cap;
        memcpy(s + (size_t)i * L, r->scores + (size_t)j * L, sizeof(float) * L);
        t[i] = r->times[j];
    }
    free(r->scores);
    free(r->times);
    r->scores = s;
    r->times = t;
    r->cap = cap;
    r->head = 0;
    return 0;
}

int ms_recognizer_push(ms_recognizer *r, double time_ms, const float *post, int *label, float *score)
{
    const int L = r->n_labels;
    if (r->count == r->cap && grow(r) != 0) return 0;
    int j = (r->head + r->count) % r->cap;
    memcpy(r->scores + (size_t)j * L, post, sizeof(float) * L);
    r->times[j] = time_ms;
    r->count++;
    for (int i = 0; i < L; i++) r->sum[i] += post[i];
    const double limit = time_ms - r->p.average_window_ms;
    while (r->count > 0 && r->times[r->head] < limit) {
        const float *old = r->scores + (size_t)r->head * L;
        for (int i = 0; i < L; i++) r->sum[i] -= old[i];
        r->head = (r->head + 1) % r->cap;
        r->count--;
    }
    if (r->count < r->p.minimum_count ||
        time_ms - r->times[r->head] < r->p.average_window_ms / 4)
        return 0;
    int top = 0;
    for (int i = 1; i < L; i++)
        if (r->sum[i] > r->sum[top]) top = i;
    const float top_score = (float)(r->sum[top] / r->count);
    double since = 1e300;
    if (r->prev_label != r->silence && r->have_prev_time) since = time_ms - r->prev_time;
    if (top_score > r->p.threshold && top != r->prev_label && since > r->p.suppression_ms) {
        r->prev_label = top;
        r->prev_time = time_ms;
        r->have_prev_time = 1;
        *label = top;
        *score = top_score;
        return 1;
    }
    return 0;
}
