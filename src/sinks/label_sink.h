/* label_sink.h - writers for audio results: one line per clip (top-k labels), per
 * position (posteriors) or per live detection, as TSV or JSON Lines.
 *
 * As the score sinks do, a named regular file is written as PATH.tmp.<pid> and renamed by
 * ms_label_sink_close(s, 1); a failed run (ok = 0) removes it. Live detections are
 * flushed line by line, so a reader of the pipe sees each as it happens. */
#ifndef MS_LABEL_SINK_H
#define MS_LABEL_SINK_H

#include <stdint.h>

typedef enum { MS_LABELS_TSV = 0, MS_LABELS_JSONL = 1 } ms_label_format;

typedef struct ms_label_sink ms_label_sink;

/* path NULL or "-" writes stdout. live = 1 writes PATH itself, not a temporary name, so
 * that a reader can follow detections as they are written (a live stream has no "complete"
 * to wait for). Returns MS_OK and *out, or MS_ERR_IO after logging. */
int ms_label_sink_open(const char *path, ms_label_format fmt, int live, ms_label_sink **out);
/* One clip: positions, seconds of audio, top k labels and probabilities (descending). */
int ms_label_sink_clip(ms_label_sink *s, const char *file, int64_t n_pos, double seconds,
                       const char *const *labels, const float *probs, int k);
/* One position's posteriors over all n labels (header printed before the first). */
int ms_label_sink_posteriors(ms_label_sink *s, const char *file, int64_t t, double time_s,
                             const char *const *all_labels, const float *probs, int n);
/* One live detection, flushed at once. */
int ms_label_sink_detection(ms_label_sink *s, double time_s, const char *label, float score);
/* Push out what is buffered (live mode: after each chunk's lines). */
int ms_label_sink_flush(ms_label_sink *s);
/* Finish: ok = 1 renames into place, 0 removes. Returns MS_OK or MS_ERR_IO. Frees s. */
int ms_label_sink_close(ms_label_sink *s, int ok);

/* "tsv" / "jsonl" -> format, -1 if unknown; from a path's extension (.jsonl / .json ->
 * jsonl), -1 if none. */
int ms_label_format_parse(const char *s);
int ms_label_format_from_path(const char *path);

#endif
