/* cmd_reads.c - scores of sequencing reads (SAM/BAM/CRAM): read reader thread -> ring ->
 * engine (this thread; many reads per forward call, one stream each) -> ring -> output
 * thread (per-read table, per-base table, an aux-tagged copy of the input, or hidden
 * states).
 *
 * Orientation: BAM stores a flag-0x10 read reverse-complemented (reference strand); by
 * default it is turned back and scored as sequenced, so a read scores the same whichever
 * strand it mapped to; --as-stored scores SEQ as it is in the file. Per-base output is in
 * the scored orientation; the mp:B:f tag is in SEQ's order, like base qualities. */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <htslib/sam.h>

#include "cli.h"
#include "config.h"
#include "emit_hidden.h"
#include "log.h"
#include "read_reader.h"
#include "score_engine.h"
#include "sink.h"

/* Chunks in flight between stages (reads are short): two batches, at least RING_CHUNKS and
 * at most RING_MAX (a chunk holds up to --chunk bases and, scored, 16 bytes of logits a
 * base: the cap bounds what a slow output stage can hold back). The engine fills a whole
 * batch before each call (deterministic batches), so with rings of two batches the reader
 * fills the next batch while the device runs this one and the output thread drains the
 * last; rings of 64 chunks made a batch of 512 wait on the reader and the output thread in
 * turn. */
#define RING_CHUNKS 64
#define RING_MAX 8192
#define OUT_TAKE 1024 /* chunks the output thread takes at once */

typedef enum { OUT_TABLE, OUT_PER_BASE, OUT_ALN, OUT_HIDDEN } out_kind;

typedef struct {
    ms_cli_common common;
    const char *in, *reference, *out, *alphabet;
    ms_region_list regions;
    int hts_threads, as_stored, per_base, no_bos, emit, emit_dtype;
    int64_t pool;            /* --pool: 0 = per read */
    long require, exclude;
    out_kind kind;
} reads_opts;

typedef struct {
    const reads_opts *o;
    ms_ring *in;
    const char *in_path;
    ms_sink *sink;           /* OUT_TABLE / OUT_PER_BASE */
    samFile *aln;            /* OUT_ALN */
    sam_hdr_t *hdr;
    char *aln_tmp;
    ms_emit_hidden *emit;    /* OUT_HIDDEN */
    /* the read being assembled from its chunks */
    double sum;
    float *logp;             /* [length] in scored order, for the mp tag */
    int64_t cap;
    int status;
    pthread_t thread;
    ms_scored_chunk *take[OUT_TAKE]; /* what one ms_ring_pop_upto took */
    ms_sink_part parts[OUT_TAKE];    /* OUT_PER_BASE: their lines, in order */
} out_stage;

/* The finished read: table line or tagged record. */
static int finish_read(out_stage *s, ms_read *rd, const char *name)
{
    const reads_opts *o = s->o;
    double mean = rd->length ? s->sum / (double)rd->length : 0.0;
    if (o->kind == OUT_TABLE && !rd->skipped)
        return ms_sink_printf(s->sink, "%s\t%u\t%" PRId64 "\t%.6g\t%.6g\t%d\n", name, rd->flag,
                              rd->length, s->sum, mean, rd->reversed);
    if (o->kind != OUT_ALN) return MS_OK;
    bam1_t *b = rd->rec;
    if (!rd->skipped) {
        if (rd->reversed) /* back to SEQ's order */
            for (int64_t i = 0; i < rd->length / 2; i++) {
                float t = s->logp[i];
                s->logp[i] = s->logp[rd->length - 1 - i];
                s->logp[rd->length - 1 - i] = t;
            }
        if (bam_aux_update_float(b, "ml", (float)mean) != 0 ||
            (o->per_base && bam_aux_update_array(b, "mp", 'f', (uint32_t)rd->length, s->logp) != 0)) {
            ms_error("%s: read %s: cannot add the ml/mp tags", s->in_path, name);
            return MS_ERR_NOMEM;
        }
    }
    if (sam_write1(s->aln, s->hdr, b) < 0) {
        ms_error("%s: cannot write read %s", o->out, name);
        return MS_ERR_IO;
    }
    return MS_OK;
}

/* Takes what the engine has pushed, up to OUT_TAKE chunks (a batch of reads arrives
 * together), scores them across the team (ms_scored_chunks_scores), then sums and writes
 * them read by read in order; per-base lines go to the sink as one run of parts, so the
 * team formats many reads at once. */
static void *out_main(void *arg)
{
    out_stage *s = arg;
    size_t got;
    while ((got = ms_ring_pop_upto(s->in, (void **)s->take, OUT_TAKE))) {
        ms_scored_chunk **take = s->take;
        int rc = s->status, parts = 0;
        if (rc == MS_OK && s->o->kind != OUT_HIDDEN && ms_scored_chunks_scores(take, (int)got) != 0) {
            ms_error("out of memory scoring reads of %s", s->in_path);
            rc = MS_ERR_NOMEM;
        }
        for (size_t i = 0; i < got && rc == MS_OK; i++) {
            ms_scored_chunk *sc = take[i];
            ms_seq_chunk *c = sc->chunk;
            ms_read *rd = c->name->user;
            if (c->first) s->sum = 0;
            if (s->o->kind == OUT_HIDDEN) {
                rc = ms_emit_hidden_add(s->emit, c->name->name, c->pos0, sc->hidden, c->n, c->last);
                continue;
            }
            if (c->first && rd->length > s->cap) {
                float *p = realloc(s->logp, sizeof(float) * rd->length);
                if (p) { s->logp = p; s->cap = rd->length; } else { rc = MS_ERR_NOMEM; break; }
            }
            for (int j = 0; j < c->n; j++) {
                s->sum += sc->scores[j].logp;
                s->logp[c->pos0 + j] = sc->scores[j].logp;
            }
            if (s->o->kind == OUT_PER_BASE)
                s->parts[parts++] = (ms_sink_part){c->name->name, sc->scores, c->n};
            if (c->last) rc = finish_read(s, rd, c->name->name);
        }
        if (rc == MS_OK && parts) rc = ms_sink_write_parts(s->sink, s->parts, parts);
        if (rc != MS_OK && s->status == MS_OK) {
            s->status = rc;
            ms_ring_close(s->in); /* stop the engine early: the output is lost */
        }
        for (size_t i = 0; i < got; i++) ms_scored_chunk_free(take[i]);
    }
    return NULL;
}

/* An aux-tagged copy of the input: same header plus an @PG line, format from the name. */
static int open_aln(out_stage *s, const reads_opts *o, sam_hdr_t *hdr, int argc, char **argv)
{
    const char *dot = strrchr(o->out, '.');
    const char *mode = dot && !strcmp(dot, ".sam") ? "w" : dot && !strcmp(dot, ".cram") ? "wc" : "wb";
    size_t n = strlen(o->out) + 32;
    if (!(s->aln_tmp = malloc(n))) return MS_ERR_NOMEM;
    snprintf(s->aln_tmp, n, "%s.tmp.%ld", o->out, (long)getpid());
    if (!(s->hdr = sam_hdr_dup(hdr))) return MS_ERR_NOMEM;
    char *cl = stringify_argv(argc, argv);
    int e = sam_hdr_add_pg(s->hdr, "mamba-stream", "VN", MS_VERSION, "CL", cl ? cl : "", NULL);
    free(cl);
    if (e != 0) return MS_ERR_NOMEM;
    if (!(s->aln = sam_open(s->aln_tmp, mode))) {
        ms_error("cannot create %s", s->aln_tmp);
        return MS_ERR_IO;
    }
    if (mode[1] == 'c' && (!o->reference || hts_set_fai_filename(s->aln, o->reference) != 0)) {
        ms_error("%s: CRAM output needs --reference FASTA", o->out);
        return MS_ERR_ARG;
    }
    if (sam_hdr_write(s->aln, s->hdr) != 0) {
        ms_error("cannot write the header of %s", o->out);
        return MS_ERR_IO;
    }
    return MS_OK;
}

/* Finish the copy: close (flushes) and rename into place on success, else remove. */
static int close_aln(out_stage *s, int ok)
{
    int rc = MS_OK;
    if (s->aln && sam_close(s->aln) != 0) {
        ms_error("cannot write %s", s->o->out);
        rc = MS_ERR_IO;
    }
    s->aln = NULL;
    if (s->aln_tmp) {
        if (ok && rc == MS_OK && rename(s->aln_tmp, s->o->out) != 0) {
            ms_error("cannot rename %s onto %s", s->aln_tmp, s->o->out);
            rc = MS_ERR_IO;
        }
        if (!ok || rc != MS_OK) unlink(s->aln_tmp);
    }
    free(s->aln_tmp);
    s->aln_tmp = NULL;
    if (s->hdr) sam_hdr_destroy(s->hdr);
    s->hdr = NULL;
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream reads [--model DIR] (--bam | --cram | --sam) FILE [options]\n"
"       (or: mamba-stream [--model DIR] --bam FILE ...)\n"
"\n"
"Scores every read: ln p(base | previous bases of the read) summed over the read, one\n"
"stream per read, many reads per forward call.\n"
"\n"
"Input:\n"
"  --bam / --cram / --sam FILE   alignments (any of the three; '-' reads stdin)\n"
"  --reference FASTA   reference for CRAM (else the header's UR/M5 lookup)\n"
"  --region R          only reads overlapping chr:beg-end (repeatable; needs the index:\n"
"                      .bai/.csi/.crai); a read overlapping several regions comes once\n"
"  --regions BED       regions from a BED file\n"
"  -f, --require-flags N  only records with all of these flag bits [0]\n"
"  -F, --exclude-flags N  skip records with any of these [0xF00: secondary, QC-fail,\n"
"                      duplicate, supplementary], as samtools view -f / -F\n"
"  --as-stored         score reverse-strand (0x10) reads as stored in SEQ (reference\n"
"                      strand); default: reverse-complemented back to the sequenced\n"
"                      orientation\n"
"  --hts-threads N     decompression threads [2]\n"
"Output (-o FILE, or stdout):\n"
"  default             TSV per read: #name flag length logp_sum logp_mean revcomp\n"
"                      (revcomp 1: scored reverse-complemented from SEQ)\n"
"  --per-base          TSV per base (the score TSV with the read name as chrom, pos\n"
"                      1-based in the scored orientation); with -o FILE.bam also mp:B:f\n"
"  -o FILE.bam|.sam|.cram  a copy of the input with ml:f (mean ln p) on every scored\n"
"                      read and, with --per-base, mp:B:f (ln p per base, SEQ order);\n"
"                      filtered and empty reads are copied untagged\n"
"  --emit hidden       hidden states as safetensors to -o FILE (see score --help), pooled\n"
"                      --pool read (mean per read, default) or --pool W\n"
"  --emit-dtype T      f32 | f16 [f32]\n"
"Model and engine: --model, --alphabet, --no-bos, --device, --precision, --threads, -q as\n"
"  for score; --chunk N bases per chunk of one read [4096]; --batch N reads per forward\n"
"  call [64 on cpu, 512 on cuda]\n"
"\n"
"Examples:\n"
"  mamba-stream --model models/dna --bam sample.bam --region chr17:1-5000 -o reads.tsv\n"
"  mamba-stream --model models/dna --cram sample.cram --reference ref.fa --batch 256\n"
"  mamba-stream --model models/dna --bam sample.bam --per-base -o tagged.bam\n");
}

int ms_cmd_reads(int argc, char **argv)
{
    reads_opts o = {0};
    o.common.chunk = 4096;
    o.common.batch = 0; /* unset: 64 on the CPU, 512 on CUDA (after the options) */
    o.hts_threads = 2;
    o.exclude = MS_READ_DEFAULT_EXCLUDE;
    enum { O_MODEL = 256, O_IN, O_REF, O_REGION, O_REGIONS, O_STORED, O_PERBASE, O_HTS, O_ALPHABET,
           O_NOBOS, O_EMIT, O_POOL, O_EMIT_DT };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"bam", 1, 0, O_IN}, {"cram", 1, 0, O_IN}, {"sam", 1, 0, O_IN},
        {"reference", 1, 0, O_REF}, {"region", 1, 0, O_REGION}, {"regions", 1, 0, O_REGIONS},
        {"require-flags", 1, 0, 'f'}, {"exclude-flags", 1, 0, 'F'}, {"as-stored", 0, 0, O_STORED},
        {"per-base", 0, 0, O_PERBASE}, {"hts-threads", 1, 0, O_HTS}, {"output", 1, 0, 'o'},
        {"alphabet", 1, 0, O_ALPHABET}, {"no-bos", 0, 0, O_NOBOS},
        {"emit", 1, 0, O_EMIT}, {"pool", 1, 0, O_POOL},
        {"emit-dtype", 1, 0, O_EMIT_DT}, {"quiet", 0, 0, 'q'}, MS_CLI_ENGINE_OPTS,
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    int64_t v;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:f:F:qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: o.common.model_dir = optarg; break;
        case O_IN: o.in = optarg; break;
        case O_REF: o.reference = optarg; break;
        case O_REGION: bad |= ms_region_parse(optarg, &o.regions) != MS_OK; break;
        case O_REGIONS: bad |= ms_region_read_bed(optarg, &o.regions) != MS_OK; break;
        case 'f': case 'F': {
            char *end;
            long f = strtol(optarg, &end, 0); /* decimal or 0x hex, as samtools */
            if (*end || f < 0 || f > 0xFFFF) {
                fprintf(stderr, "mamba-stream: -%c: '%s' is not a flag value (0..0xFFFF)\n", ch, optarg);
                bad = 1;
            }
            if (ch == 'f') o.require = f; else o.exclude = f;
            break;
        }
        case O_STORED: o.as_stored = 1; break;
        case O_PERBASE: o.per_base = 1; break;
        case O_HTS: bad |= (v = ms_cli_parse_int("--hts-threads", optarg, 0, 256)) < 0; o.hts_threads = (int)v; break;
        case 'o': o.out = optarg; break;
        MS_CLI_ENGINE_CASES: bad |= ms_cli_engine_option(ch, optarg, &o.common) != 0; break;
        case O_ALPHABET: o.alphabet = optarg; break;
        case O_NOBOS: o.no_bos = 1; break;
        case O_EMIT:
            if (strcmp(optarg, "hidden")) {
                fprintf(stderr, "mamba-stream: --emit: '%s' is not hidden\n", optarg);
                bad = 1;
            }
            o.emit = 1;
            break;
        case O_POOL:
            if (!strcmp(optarg, "read")) o.pool = 0;
            else bad |= (o.pool = ms_cli_parse_int("--pool", optarg, 1, 1 << 30)) < 0;
            break;
        case O_EMIT_DT:
            o.emit_dtype = !strcmp(optarg, "f32") ? 0 : !strcmp(optarg, "f16") ? 1 : -1;
            if (o.emit_dtype < 0) {
                fprintf(stderr, "mamba-stream: --emit-dtype: '%s' is not f32 or f16\n", optarg);
                bad = 1;
            }
            break;
        case 'q': o.common.quiet = 1; break;
        case 'h': usage(stdout); ms_region_list_free(&o.regions); return 0;
        default: bad = 1;
        }
    }
    if (!bad && optind < argc) {
        fprintf(stderr, "mamba-stream: unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    /* A GPU call of 64 reads (~8 K tokens) is mostly launch and copy overhead: on the
     * H200, 100,000 reads of 100-151 bases took 4.4-4.6 s at 64 and 3.7 s at 512 (2,048:
     * 4.0 s), bundled model, bf16. */
    if (!o.common.batch) o.common.batch = o.common.device == MS_DEVICE_CUDA ? 512 : 64;
    /* no --model: the bundled model (default_model.c) */
    if (!bad && !o.common.model_dir && !(o.common.model_dir = ms_cli_default_model(MS_DEFAULT_DNA_MODEL))) bad = 1;
    if (!bad && (!o.common.model_dir || !o.in)) {
        fprintf(stderr, "mamba-stream: one of --bam/--cram/--sam is required (see reads --help)\n");
        bad = 1;
    }
    const char *dot = o.out ? strrchr(o.out, '.') : NULL;
    int aln_out = dot && (!strcmp(dot, ".bam") || !strcmp(dot, ".sam") || !strcmp(dot, ".cram"));
    o.kind = o.emit ? OUT_HIDDEN : aln_out ? OUT_ALN : o.per_base ? OUT_PER_BASE : OUT_TABLE;
    if (!bad && o.emit && (!o.out || !strcmp(o.out, "-"))) {
        fprintf(stderr, "mamba-stream: --emit hidden writes safetensors: give -o FILE\n");
        bad = 1;
    }
    if (bad) { ms_region_list_free(&o.regions); return 2; }

    ms_model *model = NULL;
    ms_ctx *ctx = NULL;
    ms_ring *in = NULL, *out = NULL;
    ms_read_reader reader = {0};
    out_stage os = {.o = &o, .in_path = o.in};
    int rc = 1, reader_started = 0, out_started = 0;

    if (ms_cli_open_model(&o.common, ms_cli_call_tokens(o.common.chunk, o.common.batch), o.common.batch,
                          &model, &ctx) != 0)
        goto done;
    ms_model_info info;
    if (ms_cli_dna_alphabet(model, o.common.model_dir, o.alphabet, &info) != 0) goto done;
    const size_t ring = ms_cli_ring_chunks(o.common.batch, RING_CHUNKS, RING_MAX);
    in = ms_ring_new(ring);
    out = ms_ring_new(ring);
    if (!in || !out) goto done;
    ms_read_reader_opts ro = {o.in, o.reference, &o.regions, o.hts_threads, (uint16_t)o.require,
                              (uint16_t)o.exclude, o.as_stored, o.kind == OUT_ALN, o.common.chunk};
    if (ms_read_reader_start(&reader, &ro, in) != MS_OK) goto done;
    reader_started = 1;
    if (o.kind == OUT_HIDDEN) {
        if (ms_emit_hidden_open(o.out, info.d_model, o.pool ? o.pool : INT64_MAX, o.emit_dtype, &os.emit) != MS_OK)
            goto done;
    } else if (o.kind == OUT_ALN) {
        if (open_aln(&os, &o, reader.hdr, argc, argv) != MS_OK) goto done;
    } else {
        ms_sink_opts so = {o.out, o.kind == OUT_PER_BASE ? MS_FMT_TSV : MS_FMT_TEXT, MS_VAL_LOGP, NULL, 0};
        if (ms_sink_open_opts(&so, &os.sink) != MS_OK) goto done;
        if (o.kind == OUT_TABLE &&
            ms_sink_printf(os.sink, "#name\tflag\tlength\tlogp_sum\tlogp_mean\trevcomp\n") != MS_OK)
            goto done;
    }
    os.in = out;
    if (pthread_create(&os.thread, NULL, out_main, &os) != 0) goto done;
    out_started = 1;

    ms_progress prog;
    ms_progress_init(&prog, o.common.quiet, -1);
    ms_score_engine_opts eo = {o.common.batch, o.common.chunk, !o.no_bos && info.bos_token >= 0, o.emit};
    int erc = ms_score_engine_run(&eo, ctx, &info, in, out, &prog);
    ms_ring_close(out);
    pthread_join(os.thread, NULL);
    out_started = 0;
    int rrc = ms_read_reader_join(&reader);
    reader_started = 0;
    int ok = erc == MS_OK && rrc == MS_OK && os.status == MS_OK;
    if (os.sink && ms_sink_close(os.sink, ok) != MS_OK) ok = 0;
    os.sink = NULL;
    if (o.kind == OUT_ALN && close_aln(&os, ok) != MS_OK) ok = 0;
    if (os.emit && ms_emit_hidden_close(os.emit, ok) != MS_OK) ok = 0;
    os.emit = NULL;
    if (ok && !o.common.quiet)
        fprintf(stderr, "mamba-stream: %s: %" PRId64 " records: %" PRId64 " reads scored (%" PRId64
                " bases), %" PRId64 " filtered by flags, %" PRId64 " without sequence\n", o.in,
                reader.n_records, reader.n_reads, reader.n_bases, reader.n_filtered, reader.n_empty);
    rc = ok ? 0 : 1;
done:
    if (out_started) { ms_ring_close(out); pthread_join(os.thread, NULL); }
    if (reader_started) {
        ms_ring_close(in);
        ms_seq_chunk *c;
        while ((c = ms_ring_pop(in))) ms_seq_chunk_free(c);
        ms_read_reader_join(&reader);
    }
    ms_read_reader_free(&reader);
    if (os.sink) ms_sink_close(os.sink, 0);
    close_aln(&os, 0);
    if (os.emit) ms_emit_hidden_close(os.emit, 0);
    free(os.logp);
    ms_ring_free(in);
    ms_ring_free(out);
    ms_ctx_free(ctx);
    ms_model_free(model);
    ms_region_list_free(&o.regions);
    return rc;
}
