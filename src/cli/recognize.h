/* recognize.h - keyword detection from per-hop posteriors, with the semantics of
 * TensorFlow's RecognizeCommands (tensorflow/examples/speech_commands):
 *
 *   - each result (time_ms, posteriors[n_labels]) enters a window; results older than
 *     time_ms - average_window_ms leave it;
 *   - with fewer than minimum_count results, or results spanning less than a quarter of
 *     the window, nothing is decided;
 *   - otherwise the scores are averaged over the window and the top label taken;
 *   - it is a new command when its averaged score > threshold, it differs from the
 *     previous command, and more than suppression_ms passed since the previous command
 *     (no wait after "_silence_" or at the start).
 * The previous command starts as "_silence_" (label index -1 when the model has none). */
#ifndef MS_RECOGNIZE_H
#define MS_RECOGNIZE_H

typedef struct {
    double average_window_ms;  /* 1000 */
    float threshold;           /* 0.7 */
    double suppression_ms;     /* 1500 */
    int minimum_count;         /* 3 */
} ms_recognize_params;

ms_recognize_params ms_recognize_default_params(void);

typedef struct ms_recognizer ms_recognizer;

/* labels [n_labels]: used to find "_silence_". NULL on out of memory. */
ms_recognizer *ms_recognizer_new(const ms_recognize_params *p, const char *const *labels,
                                 int n_labels);
void ms_recognizer_free(ms_recognizer *r);
/* Add the posteriors at time_ms (non-decreasing). Returns 1 and the new command's label
 * index and averaged score, or 0. */
int ms_recognizer_push(ms_recognizer *r, double time_ms, const float *posteriors, int *label,
                       float *score);

#endif
