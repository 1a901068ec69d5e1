/* fasta_stream.h - streaming FASTA reader over htslib BGZF (plain, gzip, BGZF, stdin).
 *
 * Memory is fixed (one I/O buffer): a 250 Mbp record is read piece by piece, unlike
 * htslib's kseq/faidx readers which hold a whole record. Accepts many records, CRLF line
 * ends, blank lines, lower case, and '>' header lines whose name ends at the first
 * whitespace. Sequence bytes are returned as in the file (case kept; the caller maps
 * them), with line ends removed. Errors (text before the first '>', a header with no
 * name, a NUL or non-printable byte in sequence, a truncated gzip stream, an I/O error)
 * name the file and line. */
#ifndef MS_FASTA_STREAM_H
#define MS_FASTA_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ms_fasta ms_fasta;

/* path "-" reads stdin. Returns 0 and *out, or MS_ERR_IO. */
int ms_fasta_open(const char *path, ms_fasta **out);
void ms_fasta_close(ms_fasta *f);

/* Advance to the next record (skipping any unread sequence of the current one).
 * Returns 1 and sets *name (valid until the next call), 0 at end of input,
 * or a negative ms_status after logging. */
int ms_fasta_next_record(ms_fasta *f, const char **name);

/* Read up to cap bases of the current record into buf. Returns the number read (> 0),
 * 0 at the end of the record, or a negative ms_status after logging. */
ssize_t ms_fasta_read(ms_fasta *f, char *buf, size_t cap);

#endif
