/* variant_engine.h - log-likelihood of windows with the ALT allele vs the REF allele,
 * sharing the reference prefix between variants.
 *
 * A group is a set of variants whose windows start at the same reference position s
 * (cmd_vcf.c picks s on a grid, so a variant's score never depends on its neighbours).
 * One reference stream runs from s (after BOS) to the end of the group's last window,
 * cut exactly at each variant position p; there its state (ms_stream_state_get) is copied
 * into a branch stream per ALT allele (ms_stream_state_set), which is fed the ALT allele
 * and the reference after the REF allele, up to the window end e. Branches of many
 * variants, and the reference run, go through ms_forward_cols together (up to `batch`
 * branch streams at once). A causal model's scores before p are the same with either
 * allele, so:
 *   ll_ref = sum over the reference bases [p, e) of ln p(base | s..base-1)
 *   ll_alt = sum over ALT then reference [p + len(REF), e) of ln p(base | ...)
 * both read off the shared reference run (ll_ref) and the branch (ll_alt). */
#ifndef MS_VARIANT_ENGINE_H
#define MS_VARIANT_ENGINE_H

#include <stdint.h>

#include "mamba_stream.h"

typedef struct {
    int64_t p;          /* 0-based position of the first REF base */
    int lr;             /* REF length (>= 1) */
    const char *alt;    /* ALT bases */
    int la;             /* ALT length (>= 1) */
    int64_t e;          /* window end, exclusive: > p + lr - 1, <= the group's E */
    double ll_ref, ll_alt; /* out */
} ms_variant_job;

typedef struct ms_variant_engine ms_variant_engine;

/* batch: branch streams per forward call; chunk: most tokens per stream per call; the ctx
 * must take batch + 1 streams and (batch + 1) * chunk tokens. */
int ms_variant_engine_new(ms_ctx *ctx, const ms_model_info *info, int use_bos, int batch, int chunk,
                          ms_variant_engine **out);
void ms_variant_engine_free(ms_variant_engine *ve);
/* Score jobs (any order) whose windows start at s; ref = the bases [s, E) of chrom, E >=
 * every job's e. Returns MS_OK or an error after logging (a letter with no token). */
int ms_variant_group_score(ms_variant_engine *ve, const char *chrom, int64_t s, const char *ref,
                           int64_t E, ms_variant_job *jobs, int n);
/* Tokens run so far: the shared reference passes and the ALT branches. */
void ms_variant_engine_counts(const ms_variant_engine *ve, int64_t *ref_tokens, int64_t *alt_tokens);

#endif
