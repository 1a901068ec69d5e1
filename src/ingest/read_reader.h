/* read_reader.h - the reads ingest stage: SAM/BAM/CRAM records (htslib) -> one segment
 * per read, cut into chunks of bases, pushed on a bounded ring by a thread of its own.
 *
 * Each read's ms_seq_name carries an ms_read (name->user): its flag, length, whether its
 * bases were reverse-complemented for scoring, and (for an aux-tag copy of the input) the
 * record itself. Filters are samtools view's -f / -F: by default secondary, supplementary,
 * QC-fail and duplicate records are skipped (-F 0xF00). Records with no stored sequence
 * ('*') are counted and skipped. With keep_all, skipped records still flow through, as
 * empty chunks (n = 0) with ms_read.skipped set, so a copy of the input keeps them. */
#ifndef MS_READ_READER_H
#define MS_READ_READER_H

#include <pthread.h>
#include <stdint.h>

#include <htslib/sam.h>

#include "regions.h"
#include "ring.h"

#define MS_READ_DEFAULT_EXCLUDE (BAM_FSECONDARY | BAM_FQCFAIL | BAM_FDUP | BAM_FSUPPLEMENTARY)

typedef struct {
    uint16_t flag;
    int64_t length;      /* bases scored (l_qseq) */
    int reversed;        /* 1: stored reverse-complemented (flag 0x10) and turned back to the
                          * sequenced orientation for scoring */
    int skipped;         /* 1 filtered by flags, 2 no stored sequence (keep_all only) */
    int64_t index;       /* record number in the file / region query (0-based) */
    bam1_t *rec;         /* the record (keep_all only), else NULL */
} ms_read;

typedef struct {
    const char *path;              /* SAM/BAM/CRAM; "-" stdin */
    const char *reference;         /* FASTA for CRAM, or NULL (then CRAM's UR/M5 lookup) */
    const ms_region_list *regions; /* NULL / empty: every record; else through the index */
    int threads;                   /* extra decompression threads (hts_set_threads) */
    uint16_t require;              /* -f: all of these flag bits set */
    uint16_t exclude;              /* -F: none of these set */
    int as_stored;                 /* 1: score flag-0x10 reads as stored (reference strand) */
    int keep_all;                  /* see above */
    int chunk;                     /* bases per chunk */
} ms_read_reader_opts;

typedef struct {
    ms_read_reader_opts opts;
    ms_ring *out;
    pthread_t thread;
    samFile *fp;
    sam_hdr_t *hdr;                /* valid from start to free (the copy's header) */
    hts_idx_t *idx;
    hts_itr_t *itr;
    int status;
    /* counts, final after join */
    int64_t n_records, n_filtered, n_empty, n_reads, n_bases;
} ms_read_reader;

/* Open the file (header, index and region queries checked here, so errors come before
 * any output), then start the thread. Returns MS_OK or an error after logging. */
int ms_read_reader_start(ms_read_reader *r, const ms_read_reader_opts *opts, ms_ring *out);
/* Wait for the thread; returns its status. */
int ms_read_reader_join(ms_read_reader *r);
/* Close the file; the header goes too. */
void ms_read_reader_free(ms_read_reader *r);

#endif
