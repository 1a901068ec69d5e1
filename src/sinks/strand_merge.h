/* strand_merge.h - reverse-strand scores mapped back to forward coordinates, and the
 * per-position mean of both strands (the GPN convention), on their way to a sink.
 *
 * The reverse pass of a region arrives first, position descending (see genome_reader.h);
 * its scores are mapped to the forward strand (ref complemented back, p(A,C,G,T) taken
 * from the reverse pass's p(T,G,C,A), pred complemented; logp and entropy unchanged) and
 * spilled to an unlinked temporary file (TMPDIR, sizeof(ms_score) = 36 bytes a base),
 * since a sink takes positions ascending: RAM stays bounded whatever the region length;
 * disk holds one region at a time. REVERSE then writes the region ascending from the
 * spill; BOTH waits for the forward pass and writes the mean of the two per position. */
#ifndef MS_STRAND_MERGE_H
#define MS_STRAND_MERGE_H

#include <stdint.h>

#include "sink.h"

/* A reverse-pass score as the forward strand sees it (in place). */
void ms_score_to_forward(ms_score *s);
/* Mean of the two strands at one position: logp and entropy averaged (logp: ln of the
 * geometric mean of the two probabilities), p = mean of the two distributions, pred its
 * most probable base; ref and rule from the forward score (rule from the reverse when the
 * forward has 0). */
void ms_score_mean(const ms_score *fwd, const ms_score *rev, ms_score *out);

typedef struct ms_strand_merge ms_strand_merge;

/* both: 0 = reverse only, 1 = mean of both. Returns MS_OK or MS_ERR_IO. */
int ms_strand_merge_new(int both, ms_strand_merge **out);
void ms_strand_merge_free(ms_strand_merge *m);
/* Scores of one chunk (warm-up positions already dropped; n may be 0) of segment
 * `segment`: reverse = 1 for the reverse pass (positions descending, not yet mapped; the
 * array is mapped in place). `last`: the segment's last chunk. Writes to sink what is
 * complete. Returns MS_OK or MS_ERR_IO (logged). */
int ms_strand_merge_write(ms_strand_merge *m, ms_sink *sink, const char *chrom, int64_t segment,
                          ms_score *scores, int n, int reverse, int last);

#endif
