/* cmd_score.c - next-base scores for genomes: reader thread -> ring -> engine (this
 * thread) -> ring -> sink thread.
 *
 * Ordering: the engine pops chunks in input order and batches consecutive chunks of
 * distinct segments; results go to the sink in the order popped, so every position is
 * written once, in input order, whatever the chunk and batch sizes. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "genome_reader.h"
#include "log.h"
#include "emit_hidden.h"
#include "score_engine.h"
#include "sink.h"
#include "strand_merge.h"

/* Chunks in flight between stages: two batches, so the reader and the sink work a batch
 * ahead of and behind the forward call (with 8, a batch of 512 reads waited on the sink
 * formatting its reads before the next call could start). At least RING_CHUNKS, at most
 * RING_MAX and RING_POSITIONS bases of --chunk (a scored base holds 16 bytes of logits,
 * then 32 of scores); RING_CHUNKS with --emit hidden (d_model floats a base). */
#define RING_CHUNKS 8
#define RING_MAX 1024
#define RING_POSITIONS (1 << 22)
#define SINK_TAKE 1024 /* chunks the sink takes at once */

typedef struct {
    ms_ring *in;
    ms_sink *sink;
    ms_strand_merge *merge; /* --strand reverse|both, else NULL */
    ms_emit_hidden *emit;   /* --emit hidden, else NULL (then no sink) */
    int status;
    int64_t written;
    pthread_t thread;
    ms_scored_chunk *take[SINK_TAKE]; /* what one ms_ring_pop_upto took */
    ms_sink_part parts[SINK_TAKE];
} sink_stage;

/* One chunk's positions to the sink, the strand merge or the hidden-state writer. */
static int write_chunk(sink_stage *s, ms_scored_chunk *sc)
{
    ms_seq_chunk *c = sc->chunk;
    int n = c->n - c->n_warm;
    if (s->emit)
        return ms_emit_hidden_add(s->emit, c->name->name, c->pos0 + c->n_warm,
                                  sc->hidden + (size_t)c->n_warm * ms_emit_hidden_dim(s->emit), n,
                                  c->last);
    if (s->merge)
        return ms_strand_merge_write(s->merge, s->sink, c->name->name, c->segment,
                                     sc->scores + c->n_warm, n, c->reverse, c->last);
    return ms_sink_write(s->sink, c->name->name, sc->scores + c->n_warm, n);
}

/* Takes what the engine has pushed, up to SINK_TAKE chunks (a batch of reads arrives
 * together), scores them across the team and writes them in order: as one run of parts
 * when nothing sits between scores and the file, so the team formats many short records
 * at once; through write_chunk one by one otherwise. */
static void *sink_main(void *arg)
{
    sink_stage *s = arg;
    size_t got;
    while ((got = ms_ring_pop_upto(s->in, (void **)s->take, SINK_TAKE))) {
        ms_scored_chunk **sc = s->take;
        if (s->status == MS_OK && !s->emit && ms_scored_chunks_scores(sc, (int)got) != 0) {
            ms_error("out of memory scoring %s", sc[0]->chunk->name->name);
            s->status = MS_ERR_NOMEM;
        }
        int64_t n = 0;
        for (size_t i = 0; i < got; i++) n += sc[i]->chunk->n - sc[i]->chunk->n_warm;
        if (s->status == MS_OK && !s->emit && !s->merge) {
            for (size_t i = 0; i < got; i++) {
                const ms_seq_chunk *c = sc[i]->chunk;
                s->parts[i] = (ms_sink_part){c->name->name, sc[i]->scores + c->n_warm,
                                             c->n - c->n_warm};
            }
            s->status = ms_sink_write_parts(s->sink, s->parts, (int)got);
        } else {
            for (size_t i = 0; i < got && s->status == MS_OK; i++) s->status = write_chunk(s, sc[i]);
        }
        if (s->status == MS_OK) s->written += n;
        else ms_ring_close(s->in); /* stop the engine early: the output is lost */
        for (size_t i = 0; i < got; i++) ms_scored_chunk_free(sc[i]);
    }
    return NULL;
}

typedef struct {
    ms_cli_common common;
    const char *fasta, *out, *regions_bed, *alphabet;
    ms_region_list regions;
    int64_t context;
    int format, value, no_bos, strand, mask_soft, emit_dtype;
    int64_t pool; /* --pool W: mean of W positions; 0 per position */
    int emit;     /* --emit hidden */
} score_opts;

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream [score] [--model DIR] --fasta FILE [options]\n"
"\n"
"Scores every base of every record: ln p(base | all previous bases of the record),\n"
"the entropy of the predicted distribution and p(A), p(C), p(G), p(T).\n"
"\n"
"Input:\n"
"  --fasta FILE        FASTA: plain, gzip or BGZF; '-' reads stdin\n"
"  --region R          score only chr:beg-end (1-based inclusive, samtools syntax);\n"
"                      repeatable; needs a plain or bgzip FASTA (index built if missing)\n"
"  --regions BED       regions from a BED file (0-based half-open)\n"
"  --context N         warm-up bases fed before each region start, not scored [0]\n"
"  --strand S          forward | reverse | both [forward]: reverse scores the reverse\n"
"                      complement as its own sequence, mapped back to forward coordinates\n"
"                      (p(A,C,G,T) from its p(T,G,C,A)); both writes the per-position mean\n"
"                      (GPN convention). Needs a plain or bgzip FASTA (read backwards\n"
"                      through faidx); reverse scores wait in a temporary file (TMPDIR,\n"
"                      36 bytes a base of the region being scored)\n"
"Output:\n"
"  -o, --output FILE   output file [stdout]; written under a temporary name and renamed\n"
"                      when complete\n"
"  --format F          tsv | bedgraph | wig | bigwig [from -o's extension (.tsv .bedgraph\n"
"                      .bg .wig .bw .bigwig), else tsv]; bigWig takes chromosome sizes\n"
"                      from the FASTA's .fai (built if missing)\n"
"  --value V           value of tracks: logp | entropy | pA | pC | pG | pT [logp]\n"
"  --mask-soft         leave soft-masked (lower-case) positions out of tracks; TSV keeps\n"
"                      them and flags every position in its last column, masked\n"
"  --emit hidden       write the backbone's hidden state (after each base) instead of\n"
"                      scores, as safetensors to -o (required): hidden [N][d_model],\n"
"                      seq [N] (index into the metadata's sequence names), pos [N]\n"
"                      (0-based start), len [N] (bases pooled)\n"
"  --pool W            with --emit: mean over windows of W bases of a sequence [1]\n"
"  --emit-dtype T      f32 | f16 [f32]\n"
"Model:\n"
"  --model DIR         model directory (config.json + model.safetensors)\n"
"                      [the bundled models/dna-mamba2-small]\n"
"  --alphabet NAME     input alphabet when the model names none: caduceus |\n"
"                      plant-dnamamba | gpn\n"
"  --no-bos            predict the first base of a record as uniform (1/4 each) even if\n"
"                      the model has a BOS token\n"
"Engine:\n"
"  --device D          cpu | cuda | cuda:N [cpu]\n"
"  --precision P       fp32 | bf16 | fp16 (bf16/fp16: CUDA only) [fp32]\n"
"  --chunk N           bases per chunk of one sequence [4096]\n"
"  --batch N           sequences (records, regions) per forward call [16]; a call holds\n"
"                      up to (chunk + 1) x batch bases, at most 2^18. On cuda with\n"
"                      neither option given (and no --emit): chunks of 65536 in calls\n"
"                      of 16 x 4097 bases, one chunk of a long record or up to 16\n"
"                      short records\n"
"  --threads N         CPU threads [all cores]\n"
"  -q, --quiet         no progress line on stderr\n"
"  -h, --help          this help\n"
"\n"
"Rules: the first base of a record (or region) is predicted after the model's BOS token\n"
"when its tokenizer names one (rule 1 in TSV), else as uniform (rule 2); every other base\n"
"from the model (rule 0). Probabilities are renormalised over A, C, G, T; an ambiguity\n"
"code (N, R, Y, ...) scores ln of the summed probability of the bases it stands for.\n"
"\n"
"Examples:\n"
"  mamba-stream --model models/dna --fasta genome.fa.gz -o scores.bedgraph\n"
"  mamba-stream --model models/dna --fasta genome.fa --region chrI:1000-2000 --format tsv\n"
"  mamba-stream --model models/dna --fasta genome.fa --strand both -o track.bw\n"
"  zcat genome.fa.gz | mamba-stream --model models/dna --fasta - > scores.tsv\n");
}

/* --chunk / --batch where unset, and the most tokens a forward call holds (the engine's
 * and the context's): 4096 x 16, and on CUDA with neither option given, chunks of 65536
 * bases in calls of 16 x 4097 tokens. A long record's calls each pay a fixed cost (one
 * stream, bf16, H200: the bundled model 3.62 -> 5.05 M bases/s from chunks of 4096 to
 * 65536, Mamba-1 768 x 24 0.73 -> 1.08 M, Mamba-2 0.92 -> 1.10 M; E. coli's 4.9 Mbp
 * through the CLI 1.70-1.87 -> 1.21-1.42 s); the call keeps the scratch of 16 x 4097, so
 * up to 16 short records still share one. A --batch given (reads: 512) keeps 4096: the
 * rings hold two batches of chunks, each of --chunk bases. --emit hidden keeps 4096 (a
 * scored chunk then holds d_model floats a base on the host). */
static int64_t call_shape(ms_cli_common *c, int emit)
{
    const int wide = c->device == MS_DEVICE_CUDA && !emit && !c->chunk && !c->batch;
    if (!c->chunk) c->chunk = wide ? 65536 : 4096;
    if (!c->batch) c->batch = 16;
    return wide ? ms_cli_call_tokens(4096, 16) : ms_cli_call_tokens(c->chunk, c->batch);
}

int ms_cmd_score(int argc, char **argv)
{
    score_opts o = {0};
    o.common.chunk = 0; /* unset: see call_shape */
    o.common.batch = 0;
    o.format = -1;
    o.value = MS_VAL_LOGP;
    enum { O_MODEL = 256, O_FASTA, O_REGION, O_REGIONS, O_CONTEXT, O_FORMAT, O_VALUE, O_ALPHABET,
           O_NOBOS, O_STRAND, O_MASK, O_EMIT, O_POOL, O_EMIT_DT };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"fasta", 1, 0, O_FASTA}, {"region", 1, 0, O_REGION},
        {"regions", 1, 0, O_REGIONS}, {"context", 1, 0, O_CONTEXT}, {"output", 1, 0, 'o'},
        {"format", 1, 0, O_FORMAT}, {"value", 1, 0, O_VALUE},
        {"alphabet", 1, 0, O_ALPHABET}, {"no-bos", 0, 0, O_NOBOS}, {"quiet", 0, 0, 'q'},
        {"strand", 1, 0, O_STRAND}, {"mask-soft", 0, 0, O_MASK}, {"emit", 1, 0, O_EMIT},
        {"pool", 1, 0, O_POOL}, {"emit-dtype", 1, 0, O_EMIT_DT},
        MS_CLI_ENGINE_OPTS, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: o.common.model_dir = optarg; break;
        case O_FASTA: o.fasta = optarg; break;
        case O_REGION: bad |= ms_region_parse(optarg, &o.regions) != MS_OK; break;
        case O_REGIONS: bad |= ms_region_read_bed(optarg, &o.regions) != MS_OK; break;
        case O_CONTEXT:
            bad |= (o.context = ms_cli_parse_int("--context", optarg, 0, INT64_MAX / 2)) < 0;
            break;
        case 'o': o.out = optarg; break;
        case O_FORMAT:
            if ((o.format = ms_sink_format_parse(optarg)) < 0) {
                fprintf(stderr, "mamba-stream: --format: unknown format '%s' (tsv, bedgraph, wig, bigwig)\n", optarg);
                bad = 1;
            }
            break;
        case O_VALUE:
            if ((o.value = ms_sink_value_parse(optarg)) < 0) {
                fprintf(stderr, "mamba-stream: --value: unknown value '%s' (logp, entropy, pA, pC, pG, pT)\n", optarg);
                bad = 1;
            }
            break;
        MS_CLI_ENGINE_CASES: bad |= ms_cli_engine_option(ch, optarg, &o.common) != 0; break;
        case O_ALPHABET: o.alphabet = optarg; break;
        case O_NOBOS: o.no_bos = 1; break;
        case O_STRAND:
            o.strand = !strcmp(optarg, "forward") ? MS_STRAND_FORWARD
                       : !strcmp(optarg, "reverse") ? MS_STRAND_REVERSE
                       : !strcmp(optarg, "both") ? MS_STRAND_BOTH : -1;
            if (o.strand < 0) {
                fprintf(stderr, "mamba-stream: --strand: '%s' is not forward, reverse or both\n", optarg);
                bad = 1;
            }
            break;
        case O_MASK: o.mask_soft = 1; break;
        case O_EMIT:
            if (strcmp(optarg, "hidden")) {
                fprintf(stderr, "mamba-stream: --emit: '%s' is not hidden\n", optarg);
                bad = 1;
            }
            o.emit = 1;
            break;
        case O_POOL: bad |= (o.pool = ms_cli_parse_int("--pool", optarg, 1, 1 << 30)) < 0; break;
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
    /* no --model: the bundled model (default_model.c) */
    if (!bad && !o.common.model_dir && !(o.common.model_dir = ms_cli_default_model(MS_DEFAULT_DNA_MODEL))) bad = 1;
    if (!bad && (!o.common.model_dir || !o.fasta)) {
        fprintf(stderr, "mamba-stream: --fasta is required (see --help)\n");
        bad = 1;
    }
    if (!bad && o.emit && (!o.out || !strcmp(o.out, "-"))) {
        fprintf(stderr, "mamba-stream: --emit hidden writes safetensors: give -o FILE\n");
        bad = 1;
    }
    if (!bad && o.emit && o.strand != MS_STRAND_FORWARD) {
        fprintf(stderr, "mamba-stream: --emit hidden is for the forward strand only\n");
        bad = 1;
    }
    if (bad) { ms_region_list_free(&o.regions); return 2; }
    if (o.format < 0) {
        o.format = o.out ? ms_sink_format_from_path(o.out) : MS_FMT_TSV;
        if (o.format < 0) o.format = MS_FMT_TSV;
    }

    ms_model *model = NULL;
    ms_ctx *ctx = NULL;
    ms_sink *sink = NULL;
    ms_ring *in = NULL, *out = NULL;
    int rc = 1, reader_started = 0, sink_started = 0;
    ms_genome_reader reader;
    sink_stage ss = {0};

    const int64_t call_tokens = call_shape(&o.common, o.emit);
    if (ms_cli_open_model(&o.common, call_tokens, o.common.batch,
                          &model, &ctx) != 0)
        goto done;
    ms_model_info info;
    if (ms_cli_dna_alphabet(model, o.common.model_dir, o.alphabet, &info) != 0) goto done;
    const size_t cap = RING_POSITIONS / (size_t)o.common.chunk;
    const size_t ring = o.emit ? RING_CHUNKS /* hidden rows: d_model floats a base */
                               : ms_cli_ring_chunks(o.common.batch, RING_CHUNKS,
                                                    cap < RING_MAX ? cap : RING_MAX);
    in = ms_ring_new(ring);
    out = ms_ring_new(ring);
    if (!in || !out) goto done;
    ms_genome_reader_opts ro = {o.fasta, &o.regions, o.context, o.common.chunk, (ms_strand)o.strand};
    if (ms_genome_reader_start(&reader, &ro, in) != MS_OK) goto done;
    reader_started = 1;
    if (o.emit) {
        if (ms_emit_hidden_open(o.out, info.d_model, o.pool ? o.pool : 1, o.emit_dtype, &ss.emit) != MS_OK)
            goto done;
    } else {
        ms_sink_opts so = {o.out, (ms_sink_format)o.format, (ms_sink_value)o.value, o.fasta, o.mask_soft};
        if (ms_sink_open_opts(&so, &sink) != MS_OK) goto done;
    }
    if (o.strand != MS_STRAND_FORWARD && ms_strand_merge_new(o.strand == MS_STRAND_BOTH, &ss.merge) != MS_OK)
        goto done;
    ss.in = out;
    ss.sink = sink;
    if (pthread_create(&ss.thread, NULL, sink_main, &ss) != 0) goto done;
    sink_started = 1;

    ms_progress prog;
    ms_progress_init(&prog, o.common.quiet, reader.total_bases);
    ms_score_engine_opts eo = {o.common.batch, o.common.chunk, !o.no_bos && info.bos_token >= 0, o.emit,
                               call_tokens};
    int erc = ms_score_engine_run(&eo, ctx, &info, in, out, &prog);
    ms_ring_close(out);
    pthread_join(ss.thread, NULL);
    sink_started = 0;
    int rrc = ms_genome_reader_join(&reader);
    reader_started = 0;
    int ok = erc == MS_OK && rrc == MS_OK && ss.status == MS_OK;
    if (sink && ms_sink_close(sink, ok) != MS_OK) ok = 0;
    sink = NULL;
    if (ss.emit && ms_emit_hidden_close(ss.emit, ok) != MS_OK) ok = 0;
    ss.emit = NULL;
    rc = ok ? 0 : 1;
done:
    if (sink_started) { ms_ring_close(out); pthread_join(ss.thread, NULL); }
    if (reader_started) {
        ms_ring_close(in);
        ms_seq_chunk *c;
        while ((c = ms_ring_pop(in))) ms_seq_chunk_free(c);
        ms_genome_reader_join(&reader);
    }
    if (sink) ms_sink_close(sink, 0);
    if (ss.emit) ms_emit_hidden_close(ss.emit, 0);
    ms_strand_merge_free(ss.merge);
    ms_ring_free(in);
    ms_ring_free(out);
    ms_ctx_free(ctx);
    ms_model_free(model);
    ms_region_list_free(&o.regions);
    return rc;
}
