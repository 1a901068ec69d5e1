/* test_util.h - small helpers shared by the cmocka tests. */
#ifndef MS_TEST_UTIL_H
#define MS_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* $MS_FIXTURES/<rel> in a static buffer (one of 8 rotating). */
const char *tu_fixture(const char *rel);
/* A fresh directory under $TMPDIR (or /tmp), removed at exit. */
const char *tu_tmpdir(void);
/* ||a - b|| / ||b|| in double. */
double tu_rel_err(const float *a, const float *b, size_t n);
/* Write a whole file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);
/* k / 64 for a pseudo-random |k| < 256 (state s): exact in bf16 and fp16, and so are
 * products and short float32 sums of such values (the GPU tests' exact inputs). */
float tu_rand_q(unsigned *s);
/* 16-bit encodings of floats that are exact in them (bf16: at most 8 significant bits;
 * fp16: normal, at most 11, or 0), and their values (fp16: subnormals too). */
uint16_t tu_bf16_bits(float f);
float tu_bf16_value(uint16_t h);
uint16_t tu_f16_bits(float f);
float tu_f16_value(uint16_t h);
/* Capture the library's log lines; tu_log_text() returns all captured since tu_log_capture(). */
void tu_log_capture(void);
const char *tu_log_text(void);

/* The reference fixtures: "hf/<name>" under $MS_FIXTURES (../shared/fixtures), "@<name>"
 * under tests/fixtures ($MS_SRC), each with reference.safetensors (input_ids, logits,
 * hidden from transformers in float64). */
#include "mamba_stream.h"
extern const char *const tu_fixture_names[];
extern const int tu_n_fixtures;
/* A fixture's directory (static buffer, one of 8 rotating). */
const char *tu_fixture_dir(const char *name);

typedef struct {
    ms_model *model;
    int B, L, V, D;
    int32_t *ids;   /* [B][L] */
    float *logits;  /* [B][L][V] reference */
    float *hidden;  /* [B][L][D] reference */
} tu_ref_fixture;
/* Load the model and its reference outputs (asserts on any failure). */
void tu_ref_fixture_load(const char *name, tu_ref_fixture *f);
/* The same for a model directory given by path. */
void tu_ref_fixture_load_dir(const char *dir, tu_ref_fixture *f);

/* A shipped model (models/<name>): $MS_MODELS/<name>, else $MS_SRC/models/<name> (static
 * buffer, one of 8 rotating). */
const char *tu_model_dir(const char *name);
/* A feature-input (audio) model and its export reference (train/export.py): features
 * [B][L][F] -> label logits [B][L][V] (asserts on any failure). */
typedef struct {
    ms_model *model;
    int B, L, F, V;
    float *features; /* [B][L][F] */
    float *logits;   /* [B][L][V] reference */
} tu_feat_ref;
void tu_feat_ref_load(const char *dir, tu_feat_ref *r);
void tu_feat_ref_free(tu_feat_ref *r);
void tu_ref_fixture_free(tu_ref_fixture *f);

#endif
