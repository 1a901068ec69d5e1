/* label_sink.c - TSV / JSON Lines writers for clip labels, posteriors and detections. */
#include "label_sink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mamba_stream.h"

struct ms_label_sink {
    FILE *f;
    char *path, *tmp;   /* tmp: the name written, renamed to path on success */
    ms_label_format fmt;
    int header_done;
    int failed;
};

int ms_label_format_parse(const char *s)
{
    if (!strcmp(s, "tsv")) return MS_LABELS_TSV;
    if (!strcmp(s, "jsonl")) return MS_LABELS_JSONL;
    return -1;
}

int ms_label_format_from_path(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot) return -1;
    if (!strcmp(dot, ".jsonl") || !strcmp(dot, ".json")) return MS_LABELS_JSONL;
    if (!strcmp(dot, ".tsv") || !strcmp(dot, ".txt")) return MS_LABELS_TSV;
    return -1;
}

int ms_label_sink_open(const char *path, ms_label_format fmt, int live, ms_label_sink **out)
{
    *out = NULL;
    ms_label_sink *s = calloc(1, sizeof *s);
    if (!s) return MS_ERR_NOMEM;
    s->fmt = fmt;
    if (!path || !strcmp(path, "-")) {
        s->f = stdout;
        *out = s;
        return MS_OK;
    }
    struct stat st;
    /* a device or FIFO cannot be renamed onto: write it in place */
    int in_place = live || (stat(path, &st) == 0 && !S_ISREG(st.st_mode));
    size_t n = strlen(path) + 32;
    s->path = strdup(path);
    s->tmp = malloc(n);
    if (!s->path || !s->tmp) goto fail;
    if (in_place) snprintf(s->tmp, n, "%s", path);
    else snprintf(s->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    if (!(s->f = fopen(s->tmp, "w"))) {
        ms_error("%s: cannot write: %s", path, strerror(errno));
        goto fail;
    }
    if (in_place) { free(s->path); s->path = NULL; }
    *out = s;
    return MS_OK;
fail:
    free(s->path);
    free(s->tmp);
    free(s);
    return MS_ERR_IO;
}

/* file names in JSON: quotes, backslashes and control bytes escaped */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int check(ms_label_sink *s)
{
    if (ferror(s->f)) {
        if (!s->failed) ms_error("%s: write error", s->path ? s->path : s->tmp ? s->tmp : "stdout");
        s->failed = 1;
        return MS_ERR_IO;
    }
    return MS_OK;
}

int ms_label_sink_clip(ms_label_sink *s, const char *file, int64_t n_pos, double seconds,
                       const char *const *labels, const float *probs, int k)
{
    if (s->fmt == MS_LABELS_TSV) {
        if (!s->header_done) {
            fprintf(s->f, "#file\tframes\tseconds");
            for (int i = 1; i <= k; i++) fprintf(s->f, "\tlabel%d\tp%d", i, i);
            fputc('\n', s->f);
            s->header_done = 1;
        }
        fprintf(s->f, "%s\t%lld\t%.3f", file, (long long)n_pos, seconds);
        for (int i = 0; i < k; i++) fprintf(s->f, "\t%s\t%.6f", labels[i], probs[i]);
        fputc('\n', s->f);
    } else {
        fprintf(s->f, "{\"file\": ");
        json_str(s->f, file);
        fprintf(s->f, ", \"frames\": %lld, \"seconds\": %.3f, \"top\": [", (long long)n_pos, seconds);
        for (int i = 0; i < k; i++)
            fprintf(s->f, "%s{\"label\": \"%s\", \"p\": %.6f}", i ? ", " : "", labels[i], probs[i]);
        fprintf(s->f, "]}\n");
    }
    return check(s);
}

int ms_label_sink_posteriors(ms_label_sink *s, const char *file, int64_t t, double time_s,
                             const char *const *all_labels, const float *probs, int n)
{
    if (s->fmt == MS_LABELS_TSV) {
        if (!s->header_done) {
            fprintf(s->f, "#file\tframe\ttime");
            for (int i = 0; i < n; i++) fprintf(s->f, "\t%s", all_labels[i]);
            fputc('\n', s->f);
            s->header_done = 1;
        }
        fprintf(s->f, "%s\t%lld\t%.4f", file, (long long)t, time_s);
        for (int i = 0; i < n; i++) fprintf(s->f, "\t%.6g", probs[i]);
        fputc('\n', s->f);
    } else {
        fprintf(s->f, "{\"file\": ");
        json_str(s->f, file);
        fprintf(s->f, ", \"frame\": %lld, \"time\": %.4f, \"p\": {", (long long)t, time_s);
        for (int i = 0; i < n; i++) fprintf(s->f, "%s\"%s\": %.6g", i ? ", " : "", all_labels[i], probs[i]);
        fprintf(s->f, "}}\n");
    }
    return check(s);
}

int ms_label_sink_detection(ms_label_sink *s, double time_s, const char *label, float score)
{
    if (s->fmt == MS_LABELS_TSV) fprintf(s->f, "%.3f\t%s\t%.4f\n", time_s, label, score);
    else fprintf(s->f, "{\"time\": %.3f, \"label\": \"%s\", \"score\": %.4f}\n", time_s, label, score);
    fflush(s->f);
    return check(s);
}

int ms_label_sink_flush(ms_label_sink *s)
{
    fflush(s->f);
    return check(s);
}

int ms_label_sink_close(ms_label_sink *s, int ok)
{
    if (!s) return MS_OK;
    int rc = check(s);
    if (s->f == stdout) {
        if (fflush(stdout) != 0) rc = MS_ERR_IO;
    } else if (fclose(s->f) != 0) {
        rc = MS_ERR_IO;
        if (!s->failed) ms_error("%s: write error", s->path ? s->path : s->tmp);
    }
    if (s->f != stdout && s->path) {
        if (ok && rc == MS_OK) {
            if (rename(s->tmp, s->path) != 0) {
                ms_error("%s: cannot rename into place: %s", s->path, strerror(errno));
                rc = MS_ERR_IO;
                remove(s->tmp);
            }
        } else {
            remove(s->tmp);
        }
    }
    free(s->path);
    free(s->tmp);
    free(s);
    return rc;
}
