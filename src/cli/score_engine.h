/* score_engine.h - the engine stage of the chunk pipelines (FASTA scoring, reads):
 * pops ms_seq_chunks from a ring, batches consecutive chunks of distinct segments into
 * ms_forward_cols calls (one stream per segment in flight), pushes ms_scored_chunks in
 * the order popped, so every position comes out once, in input order.
 *
 * Two modes:
 *   scores: token j of a chunk is the input just before base j (the previous base, or
 *           BOS at a segment's start; without BOS the first base is scored uniform and
 *           gets no token); scores[j] is the next-base score of base j.
 *   hidden: token j is base j itself (after BOS at a segment's start when the model has
 *           one); hidden[j] is the backbone output after consuming base j. No scores.
 * Batch composition depends on the input only (never on thread timing): the same input
 * gives the same bytes. */
#ifndef MS_SCORE_ENGINE_H
#define MS_SCORE_ENGINE_H

#include "cli.h"
#include "genome_reader.h"
#include "ring.h"
#include "sink.h"

typedef struct {
    ms_seq_chunk *chunk;
    ms_score *scores;  /* [chunk->n], score mode, once ms_scored_chunk_scores has run; pos
                          is the forward position */
    float *hidden;     /* [chunk->n][d_model], hidden mode */
    float *logits;     /* score mode: [chunk->n - skip][A, C, G, T] logits not yet scored */
    int skip;          /* 1: base 0 had no token (its score is uniform) */
} ms_scored_chunk;

void ms_scored_chunk_free(ms_scored_chunk *sc);

/* The chunk's scores (score mode), computed from its logits on the first call and then
 * kept; NULL when out of memory. The consumer's thread does this work, not the engine's:
 * the engine thread is what feeds the GPU, so it only copies the four logits per position
 * (on the H200 the end-to-end time did not move beyond its run-to-run spread). */
ms_score *ms_scored_chunk_scores(ms_scored_chunk *sc);
/* ms_scored_chunk_scores of n chunks a consumer took at once (ms_ring_pop_upto): short ones
 * (reads) across the sink's team, a chunk at a time per thread; long ones each across the
 * team. The same values as one call per chunk. Returns 0, or -1 when out of memory. */
int ms_scored_chunks_scores(ms_scored_chunk **sc, int n);

typedef struct {
    int batch;         /* most chunks (segments) per forward call */
    int chunk;         /* most bases per chunk */
    int use_bos;       /* predict / start a segment after the BOS token */
    int hidden;        /* 1: hidden mode (see above) */
    int64_t call_tokens; /* most tokens a call holds, as the context was opened for;
                            0: ms_cli_call_tokens(chunk, batch) */
} ms_score_engine_opts;

/* Run until `in` is closed and drained. Returns MS_OK or the first error (after
 * logging); on error `in` is closed and drained so its producer can finish. `out` is
 * left open for the caller to close. */
int ms_score_engine_run(const ms_score_engine_opts *o, ms_ctx *ctx, const ms_model_info *info,
                        ms_ring *in, ms_ring *out, ms_progress *prog);

#endif
