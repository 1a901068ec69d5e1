/* emit_hidden.h - hidden states (embeddings) per position or pooled, as safetensors.
 *
 * The file written (through ms_st_write, under a temporary name, renamed on success):
 *   hidden     F32 or F16 [N][d_model]  one row per position, or the mean of a window
 *   seq        I32 [N]                  index of the row's sequence in seq_names
 *   pos        I64 [N]                  0-based first position of the row
 *   len        I32 [N]                  positions averaged (the pool width; less for a
 *                                        sequence's last window)
 *   seq_names  U8  [bytes]              one name per sequence (record, region, read), each
 *                                        ended by '\n', in input order
 * Rows go to an unlinked spill file as they come (RAM holds one pool window and the
 * coordinates, 16 bytes a row); the spill is mapped for the final write. */
#ifndef MS_EMIT_HIDDEN_H
#define MS_EMIT_HIDDEN_H

#include <stdint.h>

typedef struct ms_emit_hidden ms_emit_hidden;

/* pool: positions per row (>= 1; INT64_MAX = one row per sequence). f16: store float16.
 * Returns MS_OK, or MS_ERR_IO / MS_ERR_NOMEM after logging. */
int ms_emit_hidden_open(const char *path, int d_model, int64_t pool, int f16, ms_emit_hidden **out);
int ms_emit_hidden_dim(const ms_emit_hidden *e);
/* hidden [n][d_model] of positions pos0.. of sequence `name`; `last`: the sequence (or
 * region) ends here, so a partial window is closed. Returns MS_OK or MS_ERR_IO. */
int ms_emit_hidden_add(ms_emit_hidden *e, const char *name, int64_t pos0, const float *hidden, int n,
                       int last);
/* ok = 1: write the file; ok = 0: discard. Frees e. Returns MS_OK or an error. */
int ms_emit_hidden_close(ms_emit_hidden *e, int ok);

/* IEEE half from float, round to nearest even (inf / NaN kept). */
uint16_t ms_f32_to_f16(float f);

#endif
