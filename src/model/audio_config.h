/* audio_config.h - the audio part of config.json's "mamba_stream" section (internal).
 *
 *   "mamba_stream": {"task": "classify", "labels": ["yes", "no", ...], "pooling": "mean",
 *                    "frontend": {"type": "logmel", "sample_rate": 16000, ...},
 *                    "detector": {"average_window_ms": 300, "threshold": 0.5}}
 *
 * docs/model-format.md is the reference for every field, its default and its meaning. */
#ifndef MS_AUDIO_CONFIG_H
#define MS_AUDIO_CONFIG_H

#include <cjson/cJSON.h>

#include "mamba_stream.h"

typedef struct {
    ms_task task;
    ms_pooling pooling;
    int n_labels;
    char **labels;               /* [n_labels] owned */
    ms_frontend_params frontend; /* norm_mean / norm_std point into norm */
    float *norm;                 /* [2][n_mels] owned, or NULL */
    /* "detector": the live keyword detector's settings that suit this model (its
     * posteriors' dynamics), used where the user gives no flag; < 0 = not given. */
    double det_window_ms, det_threshold, det_suppression_ms, det_min_count;
} ms_audio_config;

/* Fill ac from root's "mamba_stream" section (root = parsed config.json, path names it in
 * messages). A model without the section, or without task/frontend in it, is a token LM
 * (task lm, frontend none). Returns MS_OK, or MS_ERR_MODEL after one line naming the
 * field. ms_audio_config_free releases what it owns (safe on a zeroed struct). */
int ms_audio_config_parse(const char *path, const cJSON *root, ms_audio_config *ac);
void ms_audio_config_free(ms_audio_config *ac);

/* Read DIR/config.json and parse its audio section (for tools that need the front end but
 * not the weights, e.g. `mamba-stream features`). */
int ms_audio_config_load(const char *dir, ms_audio_config *ac);

/* Defaults of a log-mel front end (docs/model-format.md), for writers of test models. */
ms_frontend_params ms_frontend_logmel_defaults(void);

#endif
