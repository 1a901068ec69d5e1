/* audio_config.c - task, labels, pooling and the audio front end from config.json. */
#include "audio_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

ms_frontend_params ms_frontend_logmel_defaults(void)
{
    ms_frontend_params f = {
        .type = MS_FRONTEND_LOGMEL, .sample_rate = 16000, .win_length = 400, .hop_length = 160,
        .n_fft = 512, .n_mels = 40, .window = MS_WINDOW_HANN, .mel_scale = MS_MEL_HTK,
        .fmin = 20.0f, .fmax = 7600.0f, .preemphasis = 0.97f, .log_floor = 1e-6f, .bits = 0,
    };
    return f;
}

void ms_audio_config_free(ms_audio_config *ac)
{
    if (!ac) return;
    for (int i = 0; i < ac->n_labels; i++) free(ac->labels[i]);
    free(ac->labels);
    free(ac->norm);
    memset(ac, 0, sizeof *ac);
}

/* Messages name fields as "mamba_stream.frontend.n_mels". */
typedef struct {
    const char *path;
    const char *prefix;
    const cJSON *obj;
} sect;

static int bad(const sect *s, const char *key, const char *what)
{
    ms_error("%s: field '%s%s' %s", s->path, s->prefix, key, what);
    return MS_ERR_MODEL;
}

static int get_num(const sect *s, const char *key, double def, double lo, double hi, int integer,
                   double *out)
{
    int r = ms_json_number(s->obj, key, out);
    char why[128];
    if (r == 0) {
        *out = def;
        return MS_OK;
    }
    if (r < 0 || isnan(*out)) return bad(s, key, "must be a number");
    if (integer && *out != floor(*out)) return bad(s, key, "must be an integer");
    if (*out < lo || *out > hi) {
        snprintf(why, sizeof why, "= %g is out of range [%g, %g]", *out, lo, hi);
        return bad(s, key, why);
    }
    return MS_OK;
}

/* A string field among names[]; *out = its index, or def when absent. */
static int get_choice(const sect *s, const char *key, const char *const *names, int n, int def,
                      int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->obj, key);
    char why[256];
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return MS_OK;
    }
    for (int i = 0; cJSON_IsString(v) && i < n; i++)
        if (!strcmp(v->valuestring, names[i])) {
            *out = i;
            return MS_OK;
        }
    size_t k = (size_t)snprintf(why, sizeof why, "must be one of");
    for (int i = 0; i < n && k < sizeof why; i++)
        k += (size_t)snprintf(why + k, sizeof why - k, "%s \"%s\"", i ? "," : "", names[i]);
    return bad(s, key, why);
}

/* {"mean": [n_mels], "std": [n_mels]} into ac->norm. */
static int parse_normalize(const sect *fs, const cJSON *v, ms_audio_config *ac)
{
    const int n = ac->frontend.n_mels;
    const char *keys[2] = {"mean", "std"};
    sect s = {fs->path, "mamba_stream.frontend.normalize.", v};
    if (!cJSON_IsObject(v)) return bad(fs, "normalize", "must be {\"mean\": [...], \"std\": [...]}");
    ac->norm = malloc(sizeof(float) * 2 * (size_t)n);
    if (!ac->norm) return MS_ERR_NOMEM;
    for (int k = 0; k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, keys[k]);
        char why[96];
        snprintf(why, sizeof why, "must be an array of n_mels (%d) numbers", n);
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return bad(&s, keys[k], why);
        for (int i = 0; i < n; i++) {
            const cJSON *x = cJSON_GetArrayItem(a, i);
            double d = cJSON_IsNumber(x) ? x->valuedouble : NAN;
            if (!isfinite(d) || (k == 1 && !(d > 0))) return bad(&s, keys[k], k ? "must hold finite numbers > 0" : "must hold finite numbers");
            ac->norm[(size_t)k * n + i] = (float)d;
        }
    }
    ac->frontend.norm_mean = ac->norm;
    ac->frontend.norm_std = ac->norm + n;
    return MS_OK;
}

/* The optional "detector" object: live-detection defaults for this model. */
static int parse_detector(const char *path, const cJSON *v, ms_audio_config *ac)
{
    ac->det_window_ms = ac->det_threshold = ac->det_suppression_ms = ac->det_min_count = -1;
    if (!v || cJSON_IsNull(v)) return MS_OK;
    sect top = {path, "mamba_stream.", NULL};
    if (!cJSON_IsObject(v)) return bad(&top, "detector", "must be an object");
    sect s = {path, "mamba_stream.detector.", v};
    int rc;
    if ((rc = get_num(&s, "average_window_ms", -1, 0, 1e7, 0, &ac->det_window_ms)) ||
        (rc = get_num(&s, "threshold", -1, 0, 1, 0, &ac->det_threshold)) ||
        (rc = get_num(&s, "suppression_ms", -1, 0, 1e7, 0, &ac->det_suppression_ms)) ||
        (rc = get_num(&s, "minimum_count", -1, 1, 1 << 20, 1, &ac->det_min_count)))
        return rc;
    return MS_OK;
}

static int parse_frontend(const char *path, const cJSON *v, ms_audio_config *ac)
{
    static const char *const types[] = {"logmel", "mulaw"};
    static const char *const windows[] = {"hann", "hamming"};
    static const char *const scales[] = {"htk", "slaney"};
    sect s = {path, "mamba_stream.frontend.", v};
    ms_frontend_params *f = &ac->frontend;
    int type, rc, win, scale;
    double d;
    if (!cJSON_IsObject(v)) {
        sect top = {path, "mamba_stream.", NULL};
        return bad(&top, "frontend", "must be an object");
    }
    if (!cJSON_GetObjectItemCaseSensitive(v, "type")) return bad(&s, "type", "is missing");
    if ((rc = get_choice(&s, "type", types, 2, 0, &type))) return rc;
    if (type == 0) {
        *f = ms_frontend_logmel_defaults();
#define NUM(key, lo, hi, integer, dst)                                                   \
    if ((rc = get_num(&s, key, (double)(dst), lo, hi, integer, &d))) return rc;          \
    dst = (__typeof__(dst))d
        NUM("sample_rate", 1000, 384000, 1, f->sample_rate);
        NUM("n_fft", 2, 65536, 1, f->n_fft);
        NUM("win_length", 1, f->n_fft, 1, f->win_length);
        NUM("hop_length", 1, 1 << 20, 1, f->hop_length);
        NUM("n_mels", 1, f->n_fft / 2 + 1, 1, f->n_mels);
        NUM("fmin", 0, f->sample_rate / 2.0, 0, f->fmin);
        NUM("fmax", 0, f->sample_rate / 2.0, 0, f->fmax);
        NUM("preemphasis", 0, 0.999999, 0, f->preemphasis);
        NUM("log_floor", 1e-30, 1e30, 0, f->log_floor);
#undef NUM
        if (f->n_fft % 2) return bad(&s, "n_fft", "must be even");
        if (!(f->fmin < f->fmax)) return bad(&s, "fmax", "must be above fmin");
        if ((rc = get_choice(&s, "window", windows, 2, 0, &win)) ||
            (rc = get_choice(&s, "mel_scale", scales, 2, 0, &scale)))
            return rc;
        f->window = (ms_window_type)win;
        f->mel_scale = (ms_mel_scale)scale;
        const cJSON *nv = cJSON_GetObjectItemCaseSensitive(v, "normalize");
        if (nv && !cJSON_IsNull(nv) && (rc = parse_normalize(&s, nv, ac))) return rc;
    } else {
        memset(f, 0, sizeof *f);
        f->type = MS_FRONTEND_MULAW;
        if ((rc = get_num(&s, "sample_rate", 16000, 1000, 384000, 1, &d))) return rc;
        f->sample_rate = (int)d;
        if ((rc = get_num(&s, "bits", 8, 2, 16, 1, &d))) return rc;
        f->bits = (int)d;
    }
    return MS_OK;
}

int ms_audio_config_parse(const char *path, const cJSON *root, ms_audio_config *ac)
{
    static const char *const tasks[] = {"lm", "classify"};
    static const char *const pools[] = {"last", "mean"};
    memset(ac, 0, sizeof *ac);
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, "mamba_stream");
    if (!sec || cJSON_IsNull(sec)) return MS_OK;
    sect s = {path, "mamba_stream.", sec};
    int task, pool, rc;
    if ((rc = get_choice(&s, "task", tasks, 2, 0, &task)) ||
        (rc = get_choice(&s, "pooling", pools, 2, 0, &pool)))
        goto fail;
    ac->task = (ms_task)task;
    ac->pooling = (ms_pooling)pool;
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(sec, "labels");
    if (ac->task == MS_TASK_CLASSIFY) {
        int n = cJSON_IsArray(labels) ? cJSON_GetArraySize(labels) : 0;
        if (n < 1) {
            rc = bad(&s, "labels", "must be a non-empty array of strings (task \"classify\")");
            goto fail;
        }
        ac->labels = calloc((size_t)n, sizeof *ac->labels);
        if (!ac->labels) { rc = MS_ERR_NOMEM; goto fail; }
        ac->n_labels = n;
        for (int i = 0; i < n; i++) {
            const cJSON *l = cJSON_GetArrayItem(labels, i);
            if (!cJSON_IsString(l) || !l->valuestring[0] || strpbrk(l->valuestring, "\t\n\r\"\\")) {
                rc = bad(&s, "labels", "must hold non-empty strings without tabs, newlines, quotes or backslashes");
                goto fail;
            }
            if (!(ac->labels[i] = strdup(l->valuestring))) { rc = MS_ERR_NOMEM; goto fail; }
        }
    }
    const cJSON *fe = cJSON_GetObjectItemCaseSensitive(sec, "frontend");
    if (fe && !cJSON_IsNull(fe) && (rc = parse_frontend(path, fe, ac))) goto fail;
    if ((rc = parse_detector(path, cJSON_GetObjectItemCaseSensitive(sec, "detector"), ac))) goto fail;
    return MS_OK;
fail:
    ms_audio_config_free(ac);
    return rc == MS_ERR_NOMEM ? (ms_error("%s: out of memory", path), rc) : rc;
}

int ms_audio_config_load(const char *dir, ms_audio_config *ac)
{
    char path[4096];
    memset(ac, 0, sizeof *ac);
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root = ms_json_parse_file(path);
    if (!root) return MS_ERR_MODEL;
    int rc = ms_audio_config_parse(path, root, ac);
    cJSON_Delete(root);
    return rc;
}
