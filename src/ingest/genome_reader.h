/* genome_reader.h - the genome ingest stage: FASTA records or faidx regions cut into
 * chunks of bases, pushed on a bounded ring by a thread of its own.
 *
 * A segment is what is scored as one sequence: a whole FASTA record, or one region
 * (preceded by up to `context` warm-up bases that are fed to the model but not scored).
 * Chunks of a segment arrive in order; a chunk of bases b[0..n) also carries the base
 * just before it in the segment (prev), since the token that predicts b[0] is prev (or
 * the BOS token at the segment's start). Memory is the ring's capacity times the chunk
 * length, whatever the record length. */
#ifndef MS_GENOME_READER_H
#define MS_GENOME_READER_H

#include <pthread.h>
#include <stdint.h>

#include "regions.h"
#include "ring.h"

typedef struct {
    char *name;        /* record / chrom name; shared by a segment's chunks (refcounted) */
    int refs;          /* chunks still holding the name (atomic) */
    void *user;        /* what a producer attaches to a segment (a read's record), or NULL */
    void (*user_free)(void *user); /* called on user when the last reference goes */
} ms_seq_name;

typedef struct {
    ms_seq_name *name;
    int64_t segment;   /* running index of the segment (0, 1, ...) */
    int64_t pos0;      /* 0-based position of bases[0] in the record */
    int n;             /* bases in this chunk (>= 0; 0 only for an empty record) */
    int n_warm;        /* leading bases fed but not scored (region context) */
    int first;         /* 1: first chunk of its segment (prev is none) */
    int last;          /* 1: last chunk of its segment */
    int reverse;       /* 1: reverse-strand pass: bases[j] is the complement of the forward
                        * base at pos0 - j (positions descend) */
    char prev;         /* base before bases[0] in the segment, when !first */
    char bases[];      /* [n] as in the file */
} ms_seq_chunk;

void ms_seq_chunk_free(ms_seq_chunk *c);
/* A name holding one reference (the producer's), or NULL when out of memory. */
ms_seq_name *ms_seq_name_new(const char *s);
void ms_seq_name_unref(ms_seq_name *n);
/* A zeroed chunk of one segment with room for cap bases; takes a reference on name. */
ms_seq_chunk *ms_seq_chunk_new(ms_seq_name *name, int64_t segment, int cap);

/* Which strands of a FASTA are scored (see ms_genome_reader_opts.strand). */
typedef enum { MS_STRAND_FORWARD = 0, MS_STRAND_REVERSE = 1, MS_STRAND_BOTH = 2 } ms_strand;

typedef struct {
    const char *fasta;           /* path or "-" */
    const ms_region_list *regions; /* NULL or empty: every record, streamed */
    int64_t context;             /* warm-up bases before each region */
    int chunk;                   /* bases per chunk */
    ms_strand strand;            /* REVERSE / BOTH: each region (whole records become regions
                                  * from the .fai) is first read backwards, complemented, as
                                  * segment 2i+1, with `context` warm-up bases after its end;
                                  * BOTH then reads it forwards as segment 2i. Needs faidx. */
} ms_genome_reader_opts;

typedef struct {
    ms_genome_reader_opts opts;
    ms_ring *out;
    pthread_t thread;
    int status;                  /* MS_OK, or the error that stopped reading */
    int64_t total_bases;         /* bases to score if known in advance (faidx), else -1 */
    ms_region_list whole;        /* whole records as regions (strand passes), owned */
} ms_genome_reader;

/* Check the inputs (open the file, resolve regions through faidx), then start the
 * reading thread. Returns MS_OK, or an error before any thread started. */
int ms_genome_reader_start(ms_genome_reader *r, const ms_genome_reader_opts *opts, ms_ring *out);
/* Wait for the thread; returns its status. The ring is closed by the thread when done. */
int ms_genome_reader_join(ms_genome_reader *r);

#endif
