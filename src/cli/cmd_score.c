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
#include "score.h"
#include "sink.h"

#define RING_CHUNKS 8 /* chunks in flight between stages: bounds memory */

typedef struct {
    ms_seq_chunk *chunk;
    ms_score *scores; /* [chunk->n] */
} scored_chunk;

typedef struct {
    ms_ring *in;
    ms_sink *sink;
    int status;
    int64_t written;
    pthread_t thread;
} sink_stage;

static void *sink_main(void *arg)
{
    sink_stage *s = arg;
    scored_chunk *sc;
    while ((sc = ms_ring_pop(s->in))) {
        ms_seq_chunk *c = sc->chunk;
        int n = c->n - c->n_warm;
        if (s->status == MS_OK && n > 0) {
            s->status = ms_sink_write(s->sink, c->name->name, sc->scores + c->n_warm, n);
            if (s->status == MS_OK) s->written += n;
            else ms_ring_close(s->in); /* stop the engine early: the output is lost */
        }
        ms_seq_chunk_free(c);
        free(sc->scores);
        free(sc);
    }
    return NULL;
}

/* A pool of streams, one per segment in flight. */
typedef struct {
    ms_stream **s;
    int64_t *segment; /* segment bound to slot, -1 = free */
    int n;
} stream_pool;

static ms_stream *pool_get(stream_pool *p, int64_t segment, int first)
{
    for (int i = 0; i < p->n; i++)
        if (p->segment[i] == segment) return p->s[i];
    for (int i = 0; i < p->n; i++)
        if (p->segment[i] < 0) {
            p->segment[i] = segment;
            if (first) ms_stream_reset(p->s[i]);
            return p->s[i];
        }
    return NULL;
}

static void pool_release(stream_pool *p, int64_t segment)
{
    for (int i = 0; i < p->n; i++)
        if (p->segment[i] == segment) p->segment[i] = -1;
}

typedef struct {
    const ms_model_info *info;
    int use_bos;
} token_map;

/* Token for a base letter; -1 (after logging) if the model has none for it. */
static int base_token(const token_map *tm, char b, const ms_seq_chunk *c, int j)
{
    int t = tm->info->token_of_char[(unsigned char)b];
    if (t < 0) t = tm->info->unk_token;
    if (t < 0)
        ms_error("%s:%lld: letter '%c' has no token in the model's alphabet and the model has "
                 "no N/UNK token", c->name->name, (long long)(c->pos0 + j + 1), b);
    return t;
}

/* Tokens that predict the chunk's bases (see genome_reader.h): token j is the input just
 * before base j: BOS or prev at j = 0, else base j-1. Without BOS the first base of a
 * segment gets the uniform score and no token. Returns the count, or -1. */
static int chunk_tokens(const token_map *tm, const ms_seq_chunk *c, int32_t *tok, int *skip)
{
    int n = 0;
    *skip = 0;
    for (int j = 0; j < c->n; j++) {
        int t;
        if (j > 0) t = base_token(tm, c->bases[j - 1], c, j - 1);
        else if (!c->first) t = base_token(tm, c->prev, c, -1);
        else if (tm->use_bos) t = tm->info->bos_token;
        else { *skip = 1; continue; }
        if (t < 0) return -1;
        tok[n++] = t;
    }
    return n;
}

typedef struct {
    ms_cli_common common;
    const char *fasta, *out, *regions_bed, *alphabet;
    ms_region_list regions;
    int64_t context;
    int format, value, no_bos;
} score_opts;

static int run_engine(const score_opts *o, ms_ctx *ctx, const ms_model_info *info, ms_ring *in,
                      ms_ring *out, ms_progress *prog)
{
    const int max_streams = o->common.batch;
    const int max_tokens = o->common.chunk * o->common.batch;
    token_map tm = {info, !o->no_bos && info->bos_token >= 0};
    stream_pool pool = {calloc(max_streams + 1, sizeof(ms_stream *)),
                        calloc(max_streams + 1, sizeof(int64_t)), max_streams + 1};
    int32_t *tok = malloc(sizeof(int32_t) * max_tokens);
    float *logits = malloc(sizeof(float) * (size_t)max_tokens * 4); /* [T][A,C,G,T] */
    static const int cols4[4] = {0, 1, 2, 3};
    ms_seq_chunk **batch = calloc(max_streams, sizeof *batch);
    ms_chunk *fw = calloc(max_streams, sizeof *fw);
    int *skip = calloc(max_streams, sizeof *skip);
    int rc = MS_OK;
    if (!pool.s || !pool.segment || !tok || !logits || !batch || !fw || !skip) rc = MS_ERR_NOMEM;
    for (int i = 0; rc == MS_OK && i < pool.n; i++) {
        pool.segment[i] = -1;
        rc = ms_stream_new(ctx, &pool.s[i]);
    }
    ms_seq_chunk *held = NULL;
    int64_t done = 0;
    while (rc == MS_OK) {
        int nb = 0, ntok = 0;
        if (held) { batch[nb++] = held; ntok += held->n; held = NULL; }
        while (nb < max_streams) {
            /* Always fill the batch (up to a clash or the end of input) rather than run
             * whatever has arrived: batch composition, and so the exact float rounding,
             * must not depend on thread timing - the same input gives the same bytes. */
            ms_seq_chunk *c = ms_ring_pop(in);
            if (!c) break;
            int clash = 0;
            for (int i = 0; i < nb; i++) clash |= batch[i]->segment == c->segment;
            if (clash || ntok + c->n > max_tokens) { held = c; break; }
            batch[nb++] = c;
            ntok += c->n;
        }
        if (nb == 0) break;
        /* tokens of each chunk, packed */
        int nf = 0, t0 = 0;
        int *row = calloc(nb, sizeof *row); /* first logits row of chunk i */
        for (int i = 0; i < nb && rc == MS_OK; i++) {
            ms_seq_chunk *c = batch[i];
            int n = chunk_tokens(&tm, c, tok + t0, &skip[i]);
            if (n < 0) { rc = MS_ERR_FORMAT; break; }
            row[i] = t0;
            if (n > 0) {
                fw[nf++] = (ms_chunk){pool_get(&pool, c->segment, c->first), tok + t0, n};
                t0 += n;
            }
        }
        if (rc == MS_OK && nf > 0) rc = ms_forward_cols(ctx, fw, nf, info->base_token, 4, logits, NULL);
        for (int i = 0; i < nb; i++) {
            ms_seq_chunk *c = batch[i];
            scored_chunk *sc = NULL;
            if (rc == MS_OK) {
                sc = malloc(sizeof *sc);
                sc->chunk = c;
                sc->scores = malloc(sizeof(ms_score) * (c->n ? c->n : 1));
                for (int j = 0; j < c->n; j++) {
                    ms_score *s = &sc->scores[j];
                    if (skip[i] && j == 0) {
                        ms_score_uniform(c->bases[0], s);
                    } else {
                        int r = row[i] + j - skip[i];
                        ms_score_from_logits(logits + (size_t)r * 4, cols4, c->bases[j], s);
                        s->rule = (c->first && j == 0) ? 1 : 0;
                    }
                    s->pos = c->pos0 + j;
                }
                done += c->n - c->n_warm;
            }
            if (c->last) pool_release(&pool, c->segment);
            if (!sc || ms_ring_push(out, sc) != 0) {
                if (sc) { free(sc->scores); free(sc); rc = rc == MS_OK ? MS_ERR_IO : rc; }
                ms_seq_chunk_free(c);
            }
        }
        free(row);
        ms_progress_update(prog, done, 0);
    }
    ms_progress_update(prog, done, 1);
    if (held) ms_seq_chunk_free(held);
    if (rc != MS_OK) {
        /* drain and discard so the reader can finish */
        ms_ring_close(in);
        ms_seq_chunk *c;
        while ((c = ms_ring_pop(in))) ms_seq_chunk_free(c);
    }
    for (int i = 0; i < pool.n; i++) if (pool.s && pool.s[i]) ms_stream_free(pool.s[i]);
    free(pool.s); free(pool.segment); free(tok); free(logits); free(batch); free(fw); free(skip);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream [score] --model DIR --fasta FILE [options]\n"
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
"Output:\n"
"  -o, --output FILE   output file [stdout]; written under a temporary name and renamed\n"
"                      when complete\n"
"  --format F          tsv | bedgraph | wig [from -o's extension, else tsv]\n"
"  --value V           value of bedgraph/wig tracks: logp | entropy | pA | pC | pG | pT [logp]\n"
"Model:\n"
"  --model DIR         model directory (config.json + model.safetensors)\n"
"  --alphabet NAME     input alphabet when the model names none: caduceus |\n"
"                      plant-dnamamba | gpn\n"
"  --no-bos            predict the first base of a record as uniform (1/4 each) even if\n"
"                      the model has a BOS token\n"
"Engine:\n"
"  --device D          cpu | cuda | cuda:N [cpu]\n"
"  --precision P       fp32 | bf16 | fp16 (bf16/fp16: CUDA only) [fp32]\n"
"  --chunk N           bases per chunk of one sequence [4096]\n"
"  --batch N           sequences (records, regions) per forward call [16]\n"
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
"  zcat genome.fa.gz | mamba-stream --model models/dna --fasta - > scores.tsv\n");
}

int ms_cmd_score(int argc, char **argv)
{
    score_opts o = {0};
    o.common.chunk = 4096;
    o.common.batch = 16;
    o.format = -1;
    o.value = MS_VAL_LOGP;
    enum { O_MODEL = 256, O_FASTA, O_REGION, O_REGIONS, O_CONTEXT, O_FORMAT, O_VALUE, O_CHUNK,
           O_BATCH, O_THREADS, O_DEVICE, O_ALPHABET, O_NOBOS, O_PREC };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"fasta", 1, 0, O_FASTA}, {"region", 1, 0, O_REGION},
        {"regions", 1, 0, O_REGIONS}, {"context", 1, 0, O_CONTEXT}, {"output", 1, 0, 'o'},
        {"format", 1, 0, O_FORMAT}, {"value", 1, 0, O_VALUE}, {"chunk", 1, 0, O_CHUNK},
        {"batch", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS}, {"device", 1, 0, O_DEVICE},
        {"alphabet", 1, 0, O_ALPHABET}, {"no-bos", 0, 0, O_NOBOS}, {"precision", 1, 0, O_PREC}, {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    int64_t v;
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
                fprintf(stderr, "mamba-stream: --format: unknown format '%s' (tsv, bedgraph, wig)\n", optarg);
                bad = 1;
            }
            break;
        case O_VALUE:
            if ((o.value = ms_sink_value_parse(optarg)) < 0) {
                fprintf(stderr, "mamba-stream: --value: unknown value '%s' (logp, entropy, pA, pC, pG, pT)\n", optarg);
                bad = 1;
            }
            break;
        case O_CHUNK: bad |= (v = ms_cli_parse_int("--chunk", optarg, 1, 1 << 24)) < 0; o.common.chunk = (int)v; break;
        case O_BATCH: bad |= (v = ms_cli_parse_int("--batch", optarg, 1, 1 << 16)) < 0; o.common.batch = (int)v; break;
        case O_THREADS: bad |= (v = ms_cli_parse_int("--threads", optarg, 1, 4096)) < 0; o.common.n_threads = (int)v; break;
        case O_DEVICE: bad |= ms_cli_parse_device(optarg, &o.common) != 0; break;
        case O_ALPHABET: o.alphabet = optarg; break;
        case O_NOBOS: o.no_bos = 1; break;
        case O_PREC: bad |= ms_cli_parse_precision(optarg, &o.common) != 0; break;
        case 'q': o.common.quiet = 1; break;
        case 'h': usage(stdout); ms_region_list_free(&o.regions); return 0;
        default: bad = 1;
        }
    }
    if (!bad && optind < argc) {
        fprintf(stderr, "mamba-stream: unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    if (!bad && (!o.common.model_dir || !o.fasta)) {
        fprintf(stderr, "mamba-stream: --model and --fasta are required (see --help)\n");
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

    if (ms_cli_open_model(&o.common, (int64_t)o.common.chunk * o.common.batch, o.common.batch, &model,
                          &ctx) != 0)
        goto done;
    ms_model_info info = *ms_model_info_get(model);
    if (o.alphabet && ms_alphabet_builtin(o.alphabet, info.n_vocab, &info) != MS_OK) goto done;
    if (!info.has_alphabet) {
        ms_error("%s: the model names no input alphabet (no vocab.txt, tokenizer.json or "
                 "\"mamba_stream\" section in config.json); pass --alphabet", o.common.model_dir);
        goto done;
    }
    for (int b = 0; b < 4; b++)
        if (info.base_token[b] < 0) {
            ms_error("%s: the model's alphabet has no token for '%c'", o.common.model_dir, "ACGT"[b]);
            goto done;
        }
    in = ms_ring_new(RING_CHUNKS);
    out = ms_ring_new(RING_CHUNKS);
    if (!in || !out) goto done;
    ms_genome_reader_opts ro = {o.fasta, &o.regions, o.context, o.common.chunk};
    if (ms_genome_reader_start(&reader, &ro, in) != MS_OK) goto done;
    reader_started = 1;
    if (ms_sink_open(o.out, (ms_sink_format)o.format, (ms_sink_value)o.value, &sink) != MS_OK) goto done;
    ss.in = out;
    ss.sink = sink;
    if (pthread_create(&ss.thread, NULL, sink_main, &ss) != 0) goto done;
    sink_started = 1;

    ms_progress prog;
    ms_progress_init(&prog, o.common.quiet, reader.total_bases);
    int erc = run_engine(&o, ctx, &info, in, out, &prog);
    ms_ring_close(out);
    pthread_join(ss.thread, NULL);
    sink_started = 0;
    int rrc = ms_genome_reader_join(&reader);
    reader_started = 0;
    int ok = erc == MS_OK && rrc == MS_OK && ss.status == MS_OK;
    if (ms_sink_close(sink, ok) != MS_OK) ok = 0;
    sink = NULL;
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
    ms_ring_free(in);
    ms_ring_free(out);
    ms_ctx_free(ctx);
    ms_model_free(model);
    ms_region_list_free(&o.regions);
    return rc;
}
