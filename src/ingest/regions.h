/* regions.h - genomic regions: samtools-style strings and BED files, fetched through
 * htslib's faidx in bounded pieces (an index is built if missing, as samtools does). */
#ifndef MS_REGIONS_H
#define MS_REGIONS_H

#include <stdint.h>
#include <sys/types.h>

typedef struct {
    char *chrom;
    int64_t beg;  /* 0-based, inclusive */
    int64_t end;  /* 0-based, exclusive; INT64_MAX = to the end of the sequence */
} ms_region;

typedef struct {
    ms_region *r;
    int n, cap;
} ms_region_list;

/* "chr", "chr:beg", "chr:beg-end" (1-based inclusive, commas allowed, as samtools).
 * Appends to list. Returns 0 or MS_ERR_ARG after logging the bad string. */
int ms_region_parse(const char *s, ms_region_list *list);
/* BED file (0-based half-open; header/track/browser/# lines skipped). Errors name the
 * file and line. */
int ms_region_read_bed(const char *path, ms_region_list *list);
/* Append [beg, end) of chrom (copied). Returns 0 or MS_ERR_NOMEM. */
int ms_region_add(ms_region_list *list, const char *chrom, int64_t beg, int64_t end);
void ms_region_list_free(ms_region_list *list);

/* A FASTA opened through faidx (path must be a file, not stdin; plain or BGZF). */
typedef struct ms_faidx ms_faidx;
int ms_faidx_open(const char *fasta_path, ms_faidx **out);
void ms_faidx_close(ms_faidx *fx);
/* Sequences of the index, in file order: count and i-th name (valid while fx is open). */
int ms_faidx_count(const ms_faidx *fx);
const char *ms_faidx_name(const ms_faidx *fx, int i);
/* Length of a sequence, or -1 if the index has no such name. */
int64_t ms_faidx_seq_len(const ms_faidx *fx, const char *chrom);
/* Clamp a region to its sequence (end INT64_MAX -> length). Returns 0, or MS_ERR_ARG
 * (unknown sequence, or beg beyond the end) after logging the region. */
int ms_faidx_resolve(const ms_faidx *fx, ms_region *r);
/* Copy bases [beg, end) of chrom into buf (end - beg bytes, no terminator).
 * Returns the count, or a negative ms_status. */
ssize_t ms_faidx_fetch(const ms_faidx *fx, const char *chrom, int64_t beg, int64_t end, char *buf);

#endif
