/* random_model.h - write a model directory with random weights (benchmarks, tests).
 *
 * The directory is a real Hugging Face layout (config.json of MambaForCausalLM or
 * Mamba2ForCausalLM + model.safetensors) loaded through ms_model_load like any other.
 * Weights follow mamba_ssm's initialisation in scale (linear ~ U(+-1/sqrt(fan_in)),
 * A_log = log(1..N), D = 1, dt in [1e-3, 1e-1]) so activations stay in range over many
 * layers. */
#ifndef MS_RANDOM_MODEL_H
#define MS_RANDOM_MODEL_H

#include <stdint.h>

#include "mamba_stream.h"
#include "safetensors.h"

typedef struct {
    ms_arch arch;
    int d_model, n_layer, vocab;
    int d_state, d_conv, expand;
    int head_dim, n_groups;  /* Mamba-2 */
    ms_dtype dtype;          /* MS_DT_F32, MS_DT_BF16 or MS_DT_F16 */
    uint64_t seed;
    /* Audio classifiers (test models, audio benchmark): frontend MS_FRONTEND_LOGMEL writes
     * frontend.proj [d_model][n_mels] instead of the embedding, MS_FRONTEND_MULAW keeps the
     * embedding (vocab >= 256); both add classifier.weight/.bias [n_labels] and the
     * "mamba_stream" section (docs/model-format.md) with the default front end at
     * sample_rate. MS_FRONTEND_NONE (0): a plain LM as before. */
    ms_frontend_type frontend;
    int n_labels, n_mels, sample_rate;
    int pooling_mean;       /* 1: "pooling": "mean", 0: "last" */
} ms_random_spec;

/* A small keyword-spotter shape: Mamba-1, 64 x 2, log-mel 40 at 16 kHz, 12 labels (the
 * Speech Commands set), float32. */
ms_random_spec ms_random_spec_kws(void);
/* Label i of a random classifier: the Speech Commands labels, then "extra<i>". */
void ms_random_label(int i, char *buf, int n);

/* The reference workload of BENCHMARKS.md: 768 x 24, vocab 16, bf16. */
ms_random_spec ms_random_spec_reference(ms_arch arch);
/* Write DIR/config.json and DIR/model.safetensors (DIR must exist). Returns MS_OK or a
 * negative status. */
int ms_random_model_write(const ms_random_spec *spec, const char *dir);

#endif
