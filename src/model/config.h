/* config.h - config.json and tokenizer files of a model directory (internal). */
#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <cjson/cJSON.h>

#include "model.h"

/* Parse a JSON file as real checkpoints write it: bare Infinity / -Infinity / NaN
 * literals are accepted (outside strings), and transformers 5's {"__float__": "Infinity"}
 * is read by ms_json_number(). Returns NULL after logging "FILE: reason (line N)". */
cJSON *ms_json_parse_file(const char *path);
/* A number field, accepting {"__float__": "Infinity"|"-Infinity"|"NaN"} and the strings
 * the fix-up of bare literals leaves. Returns 1 and *out if present and numeric, 0 if
 * absent, -1 if present but not a number. */
int ms_json_number(const cJSON *obj, const char *key, double *out);

/* Fill cfg from DIR/config.json (HF Mamba / Mamba2 / FalconMamba or mamba_ssm
 * MambaConfig). Missing required fields, unknown architectures and unsupported features
 * (mamba_ssm d_intermediate > 0, attention layers) are errors naming the field.
 * *root_out (may be NULL) receives the parsed JSON for later sections. */
int ms_config_load(const char *dir, ms_config *cfg, cJSON **root_out);

/* Fill info's alphabet fields from the model directory: the config's "mamba_stream"
 * section ({"alphabet": {"A": 7, ...}, "bos": 2, "unk": 6}) wins, then vocab.txt, then
 * tokenizer.json (character-level vocab). Sets info->has_alphabet = 0 when none is found
 * (the logits command needs no alphabet). Token ids >= n_vocab are errors. */
int ms_alphabet_load(const char *dir, const cJSON *root, const ms_config *cfg, ms_model_info *info);

/* Built-in alphabets by name for --alphabet: "caduceus" (also HyenaDNA), "plant-dnamamba",
 * "gpn". Returns 0, or MS_ERR_ARG for an unknown name or ids >= n_vocab. */
int ms_alphabet_builtin(const char *name, int n_vocab, ms_model_info *info);

#endif
