/* cmd_generate.c - sample DNA from a causal DNA language model.
 *
 *   mamba-stream generate --model DIR --prompt ACGT... -n N [options]
 *
 * Flow: BOS (when the model has one) and the prompt are fed to one stream in chunks of
 * --chunk tokens; that stream's state is copied into the M streams of --num-samples; then
 * each step samples one base per stream from its last logits (sampler.h) and feeds the M
 * new bases as M one-token chunks of one batched forward call. The streams' state carries
 * all the context, so a step costs the same at base 10 and base 10^6. What does grow: the
 * prompt text and the M generated sequences (1 byte a base each), held for the FASTA
 * written at the end.
 *
 * Only the letters allowed (A C G T, and N with --allow-n) are ever sampled: their
 * vocabulary rows are the only logits computed (ms_forward_cols), and the sampler picks
 * among them. Each sample draws from its own PRNG stream (seed, sample index), one number
 * per base, so a seed gives the same FASTA whatever --threads and --chunk are. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fasta_stream.h"
#include "log.h"
#include "sampler.h"
#include "sink.h"

#define MAX_LETTERS 5 /* A C G T N */

typedef struct {
    ms_cli_common common;
    const char *prompt, *prompt_file, *out, *alphabet;
    int64_t n;           /* bases to generate per sample */
    int64_t seed;
    int64_t window;      /* --repetition-window */
    int num_samples;
    int line_width;      /* 0: one line per record */
    int include_prompt, allow_n, no_bos;
    ms_sampler_params sp;
} generate_opts;

/* The letters that may be sampled, in the order the sampler sees them. */
typedef struct {
    int n;                      /* 4, or 5 with --allow-n */
    char letter[MAX_LETTERS];   /* A C G T [N] */
    int token[MAX_LETTERS];     /* their vocabulary ids: the head rows computed */
    char prompt_letters[8];     /* letters a prompt may hold: "ACGT" or "ACGTN" */
} letters;

/* The last W bases of one sequence, as indices into letters (-1: a prompt N that cannot
 * be sampled), and how often each letter occurs among them: the repetition penalty's
 * "seen". A ring of W entries. */
typedef struct {
    signed char *ring; /* [W] */
    int64_t w, head, filled;
    int count[MAX_LETTERS];
} recent;

static void recent_push(recent *r, int idx)
{
    if (r->filled == r->w) {
        int old = r->ring[r->head];
        if (old >= 0) r->count[old]--;
    } else {
        r->filled++;
    }
    r->ring[r->head] = (signed char)idx;
    if (idx >= 0) r->count[idx]++;
    r->head = (r->head + 1) % r->w;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream generate [--model DIR] (--prompt ACGT... | --prompt-file FASTA) -n N [options]\n"
"\n"
"Samples N bases that follow the prompt from a causal DNA language model, and writes\n"
"them as FASTA. The prompt is fed in chunks, then one base per step; the model's state\n"
"carries the context, so memory does not grow with the prompt or N.\n"
"\n"
"Prompt:\n"
"  --prompt SEQ          the bases to continue; lower case is read as upper case; A C G T,\n"
"                        and N when the model has a token for it. An empty prompt (or\n"
"                        none) starts after the model's BOS token when it has one, else\n"
"                        the first base is drawn uniformly (as if all logits were equal)\n"
"  --prompt-file FASTA   the prompt is the first record of FASTA ('-': stdin)\n"
"  --no-bos              do not feed the model's BOS token before the prompt\n"
"Sampling (applied in this order):\n"
"  -n, --num-bases N     bases to generate per sample (required)\n"
"  --repetition-penalty R  logits of letters seen in the last W bases (prompt included):\n"
"                        divided by R if > 0, multiplied by R if < 0 (CTRL) [1 = off]\n"
"  --repetition-window W the W of --repetition-penalty [64]\n"
"  --temperature T       softmax(logits / T); 0 = greedy (argmax, filters unused) [1]\n"
"  --top-k K             keep the K most probable letters [0 = off]\n"
"  --top-p P             keep the fewest most probable letters whose mass reaches P\n"
"                        [1 = off]\n"
"  --min-p P             keep letters with p >= P * p_max [0 = off]\n"
"                        (each filter sees what the previous left, renormalised)\n"
"  --allow-n             N may be sampled too (the model needs a token for N)\n"
"  --seed S              PRNG seed (xoshiro256**): the same seed gives the same output,\n"
"                        whatever --threads and --chunk [0]\n"
"  --num-samples M       M independent sequences from the same prompt, run as M streams\n"
"                        batched in each forward call; sample i draws from its own PRNG\n"
"                        stream, so it does not depend on M [1]\n"
"Output:\n"
"  -o, --output FILE     FASTA file [stdout]; written under a temporary name and renamed\n"
"                        when complete\n"
"  --line-width W        bases per line [60; 0 = one line]\n"
"  --include-prompt      write the prompt before the generated bases\n"
"                        Records: >sample_I prompt_len=.. n=.. seed=.. temperature=..\n"
"                        (then the filters that are on)\n"
"Model and engine:\n"
"  --model DIR           model directory (config.json + model.safetensors)\n"
"                        [the bundled models/dna-mamba2-small]\n"
"  --alphabet NAME       input alphabet when the model names none: caduceus |\n"
"                        plant-dnamamba | gpn\n"
"  --device D            cpu | cuda | cuda:N [cpu]\n"
"  --precision P         fp32 | bf16 | fp16 (bf16/fp16: CUDA only) [fp32]\n"
"  --chunk N             prompt tokens per forward call [4096]\n"
"  --batch N             samples per forward call [all of them]\n"
"  --threads N           CPU threads [all cores]\n"
"  -q, --quiet           no progress line on stderr\n"
"  -h, --help            this help\n"
"\n"
"Example:\n"
"  mamba-stream generate --model examples/models/dna-tiny-untrained --prompt ACGTTGCA \\\n"
"      -n 200 --temperature 0.8 --top-p 0.95 --num-samples 4 --seed 7 -o samples.fa\n");
}

/* Which letters the model lets us sample and read. Returns 0, or -1 after one line. */
static int pick_letters(const ms_model_info *info, const char *model_dir, int allow_n, letters *L)
{
    int n_tok = info->token_of_char['N'];
    if (allow_n && n_tok < 0) {
        ms_error("%s: --allow-n: the model's alphabet has no token for N", model_dir);
        return -1;
    }
    L->n = 0;
    for (int b = 0; b < 4; b++) {
        L->letter[L->n] = "ACGT"[b];
        L->token[L->n++] = info->base_token[b];
    }
    if (allow_n) {
        L->letter[L->n] = 'N';
        L->token[L->n++] = n_tok;
    }
    snprintf(L->prompt_letters, sizeof L->prompt_letters, "%s", n_tok >= 0 ? "ACGTN" : "ACGT");
    return 0;
}

/* Upper-case a prompt piece in place and check it; where = "--prompt" or "FILE, record
 * NAME", pos0 = 0-based position of seq[0]. Returns 0, or -1 after one line naming the
 * 1-based position. */
static int check_prompt(char *seq, int64_t n, int64_t pos0, const letters *L, const char *where)
{
    for (int64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)seq[i];
        if (c >= 'a' && c <= 'z') c = (unsigned char)(c - 'a' + 'A');
        if (!c || !strchr(L->prompt_letters, c)) {
            char shown[8];
            if (c > ' ' && c < 127) snprintf(shown, sizeof shown, "'%c'", seq[i]);
            else snprintf(shown, sizeof shown, "0x%02x", (unsigned char)seq[i]);
            ms_error("%s: position %lld: %s is not a base of the model's alphabet (%s)", where,
                     (long long)(pos0 + i + 1), shown, L->prompt_letters);
            return -1;
        }
        seq[i] = (char)c;
    }
    return 0;
}

/* The prompt: --prompt, or the first record of --prompt-file. *seq is malloc'd (NUL
 * ended); *name is "" or the record's name (malloc'd). Returns 0, or -1 after one line. */
static int read_prompt(const generate_opts *o, const letters *L, char **seq, int64_t *len,
                       char **name)
{
    *seq = NULL;
    *name = NULL;
    if (!o->prompt_file) {
        const char *p = o->prompt ? o->prompt : "";
        *len = (int64_t)strlen(p);
        *seq = strdup(p);
        *name = strdup("");
        if (!*seq || !*name) goto nomem;
        return check_prompt(*seq, *len, 0, L, "--prompt");
    }
    ms_fasta *f;
    const char *rec;
    if (ms_fasta_open(o->prompt_file, &f) != MS_OK) return -1;
    int rc = ms_fasta_next_record(f, &rec);
    if (rc == 0) ms_error("%s: no FASTA record for the prompt", o->prompt_file);
    if (rc != 1) { ms_fasta_close(f); return -1; }
    char where[512];
    snprintf(where, sizeof where, "%s, record %s", o->prompt_file, rec);
    *name = strdup(rec);
    size_t cap = 1 << 16;
    *seq = malloc(cap);
    *len = 0;
    for (;;) {
        if (!*seq || !*name) { ms_fasta_close(f); goto nomem; }
        if ((size_t)*len + 1 == cap) {
            char *grown = realloc(*seq, cap *= 2);
            if (!grown) { ms_fasta_close(f); goto nomem; }
            *seq = grown;
        }
        ssize_t got = ms_fasta_read(f, *seq + *len, cap - 1 - (size_t)*len);
        if (got == 0) break;
        if (got < 0 || check_prompt(*seq + *len, got, *len, L, where) != 0) {
            ms_fasta_close(f);
            return -1;
        }
        *len += got;
    }
    (*seq)[*len] = 0;
    ms_fasta_close(f);
    return 0;
nomem:
    ms_error("out of memory reading the prompt");
    return -1;
}

/* Feed [BOS] + prompt to s in chunks of `chunk` tokens; last [L->n] gets the logits after
 * the last token. Returns MS_OK, or a negative status (logged). With nothing to feed (no
 * BOS, empty prompt) last is all zero: a uniform first base. */
static int feed_prompt(ms_ctx *ctx, ms_stream *s, const ms_model_info *info, const letters *L,
                       int bos, const char *prompt, int64_t len, int chunk, int32_t *tok,
                       float *logits, float *last)
{
    int64_t total = len + (bos >= 0); /* tokens of the input sequence */
    memset(last, 0, sizeof(float) * L->n);
    for (int64_t t0 = 0; t0 < total; t0 += chunk) {
        int n = total - t0 < chunk ? (int)(total - t0) : chunk;
        for (int j = 0; j < n; j++) {
            int64_t t = t0 + j - (bos >= 0); /* index into the prompt; -1 = BOS */
            tok[j] = t < 0 ? bos : info->token_of_char[(unsigned char)prompt[t]];
        }
        ms_chunk c = {s, tok, n};
        int rc = ms_forward_cols(ctx, &c, 1, L->token, L->n, logits, NULL);
        if (rc != MS_OK) return rc;
        memcpy(last, logits + (size_t)(n - 1) * L->n, sizeof(float) * L->n);
    }
    return MS_OK;
}

/* One FASTA record: header, then a + b wrapped at width (0: one line). */
static int write_record(ms_sink *sink, const char *header, const char *a, int64_t na,
                        const char *b, int64_t nb, int width)
{
    int rc = ms_sink_printf(sink, ">%s\n", header);
    int64_t total = na + nb, step = width > 0 ? width : (total > 0 ? total : 1);
    for (int64_t l0 = 0; rc == MS_OK && l0 < total; l0 += step) {
        int64_t l1 = l0 + step < total ? l0 + step : total;
        int64_t a0 = l0 < na ? l0 : na, a1 = l1 < na ? l1 : na;  /* the line's part of a */
        int64_t b0 = l0 > na ? l0 - na : 0, b1 = l1 > na ? l1 - na : 0;
        /* %.*s takes an int: a one-line record is written in pieces below 1 GiB */
        while (rc == MS_OK && (a1 - a0) + (b1 - b0) > (1 << 30)) {
            int64_t k = a1 - a0 > 0 ? (a1 - a0 < (1 << 30) ? a1 - a0 : (1 << 30)) : 0;
            if (k) { rc = ms_sink_printf(sink, "%.*s", (int)k, a + a0); a0 += k; continue; }
            k = b1 - b0 < (1 << 30) ? b1 - b0 : (1 << 30);
            rc = ms_sink_printf(sink, "%.*s", (int)k, b + b0);
            b0 += k;
        }
        if (rc == MS_OK)
            rc = ms_sink_printf(sink, "%.*s%.*s\n", (int)(a1 - a0), a + a0, (int)(b1 - b0), b + b0);
    }
    return rc;
}

/* ">sample_I ..." without the '>': what made the record. */
static void record_header(char *buf, size_t cap, const generate_opts *o, int i, int64_t prompt_len,
                          const char *prompt_name)
{
    const ms_sampler_params *sp = &o->sp;
    int k = snprintf(buf, cap, "sample_%d prompt_len=%lld n=%lld seed=%lld temperature=%g", i + 1,
                     (long long)prompt_len, (long long)o->n, (long long)o->seed, sp->temperature);
    if (*prompt_name) k += snprintf(buf + k, cap - k, " prompt=%s", prompt_name);
    if (sp->top_k > 0) k += snprintf(buf + k, cap - k, " top_k=%d", sp->top_k);
    if (sp->top_p < 1) k += snprintf(buf + k, cap - k, " top_p=%g", sp->top_p);
    if (sp->min_p > 0) k += snprintf(buf + k, cap - k, " min_p=%g", sp->min_p);
    if (sp->repetition_penalty != 1)
        k += snprintf(buf + k, cap - k, " repetition_penalty=%g repetition_window=%lld",
                      sp->repetition_penalty, (long long)o->window);
    if (o->allow_n) snprintf(buf + k, cap - k, " allow_n=1");
}

static int parse_args(int argc, char **argv, generate_opts *o)
{
    enum { O_MODEL = 256, O_PROMPT, O_PROMPT_FILE, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REP,
           O_REPWIN, O_SEED, O_SAMPLES, O_WIDTH, O_INCLUDE, O_ALLOW_N, O_NOBOS, O_ALPHABET };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"prompt", 1, 0, O_PROMPT}, {"prompt-file", 1, 0, O_PROMPT_FILE},
        {"num-bases", 1, 0, 'n'}, {"temperature", 1, 0, O_TEMP}, {"top-k", 1, 0, O_TOPK},
        {"top-p", 1, 0, O_TOPP}, {"min-p", 1, 0, O_MINP}, {"repetition-penalty", 1, 0, O_REP},
        {"repetition-window", 1, 0, O_REPWIN}, {"seed", 1, 0, O_SEED},
        {"num-samples", 1, 0, O_SAMPLES}, {"output", 1, 0, 'o'}, {"line-width", 1, 0, O_WIDTH},
        {"include-prompt", 0, 0, O_INCLUDE}, {"allow-n", 0, 0, O_ALLOW_N},
        {"no-bos", 0, 0, O_NOBOS}, {"alphabet", 1, 0, O_ALPHABET}, {"quiet", 0, 0, 'q'},
        MS_CLI_ENGINE_OPTS, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    int64_t v;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "n:o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: o->common.model_dir = optarg; break;
        case O_PROMPT: o->prompt = optarg; break;
        case O_PROMPT_FILE: o->prompt_file = optarg; break;
        case 'n': bad |= (o->n = ms_cli_parse_int("-n", optarg, 1, (int64_t)1 << 40)) < 0; break;
        case O_TEMP: bad |= ms_cli_parse_double("--temperature", optarg, 0, 1e6, &o->sp.temperature) != 0; break;
        case O_TOPK:
            bad |= (v = ms_cli_parse_int("--top-k", optarg, 0, MS_SAMPLER_MAX)) < 0;
            o->sp.top_k = (int)v;
            break;
        case O_TOPP:
            bad |= ms_cli_parse_double("--top-p", optarg, 0, 1, &o->sp.top_p) != 0;
            if (!bad && o->sp.top_p <= 0) {
                fprintf(stderr, "mamba-stream: --top-p: '%s' is not in (0, 1]\n", optarg);
                bad = 1;
            }
            break;
        case O_MINP: bad |= ms_cli_parse_double("--min-p", optarg, 0, 1, &o->sp.min_p) != 0; break;
        case O_REP:
            bad |= ms_cli_parse_double("--repetition-penalty", optarg, 1e-6, 1e6,
                                       &o->sp.repetition_penalty) != 0;
            break;
        case O_REPWIN: bad |= (o->window = ms_cli_parse_int("--repetition-window", optarg, 1, 1 << 24)) < 0; break;
        case O_SEED: bad |= (o->seed = ms_cli_parse_int("--seed", optarg, 0, INT64_MAX)) < 0; break;
        case O_SAMPLES:
            bad |= (v = ms_cli_parse_int("--num-samples", optarg, 1, 1 << 16)) < 0;
            o->num_samples = (int)v;
            break;
        case 'o': o->out = optarg; break;
        case O_WIDTH:
            bad |= (v = ms_cli_parse_int("--line-width", optarg, 0, 1 << 30)) < 0;
            o->line_width = (int)v;
            break;
        case O_INCLUDE: o->include_prompt = 1; break;
        case O_ALLOW_N: o->allow_n = 1; break;
        case O_NOBOS: o->no_bos = 1; break;
        case O_ALPHABET: o->alphabet = optarg; break;
        MS_CLI_ENGINE_CASES: bad |= ms_cli_engine_option(ch, optarg, &o->common) != 0; break;
        case 'q': o->common.quiet = 1; break;
        case 'h': usage(stdout); return 1;
        default: bad = 1;
        }
    }
    if (!bad && optind < argc) {
        fprintf(stderr, "mamba-stream generate: unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    /* no --model: the bundled model (default_model.c) */
    if (!bad && !o->common.model_dir && !(o->common.model_dir = ms_cli_default_model(MS_DEFAULT_DNA_MODEL))) bad = 1;
    if (!bad && (!o->common.model_dir || !o->n)) {
        fprintf(stderr, "mamba-stream generate: -n is required (see --help)\n");
        bad = 1;
    }
    if (!bad && o->prompt && o->prompt_file) {
        fprintf(stderr, "mamba-stream generate: give --prompt or --prompt-file, not both\n");
        bad = 1;
    }
    return bad ? -1 : 0;
}

int ms_cmd_generate(int argc, char **argv)
{
    generate_opts o = {0};
    o.common.chunk = 4096;
    o.common.batch = 0; /* 0: all samples in one call */
    o.num_samples = 1;
    o.line_width = 60;
    o.window = 64;
    o.sp = ms_sampler_default_params();
    int pa = parse_args(argc, argv, &o);
    if (pa) return pa > 0 ? 0 : 2;

    const int M = o.num_samples;
    const int per_call = o.common.batch > 0 && o.common.batch < M ? o.common.batch : M;
    const int use_window = o.sp.repetition_penalty != 1;
    int rc = 1;
    ms_model *model = NULL;
    ms_ctx *ctx = NULL;
    ms_sink *sink = NULL;
    ms_stream **streams = NULL;
    char *prompt = NULL, *prompt_name = NULL, **seq = NULL;
    ms_rng *rng = NULL;
    recent *rec = NULL;
    int32_t *tok = NULL;
    float *logits = NULL, *first = NULL, *state = NULL;
    ms_chunk *fw = NULL;
    int64_t prompt_len = 0;

    int64_t max_tokens = o.common.chunk > per_call ? o.common.chunk : per_call;
    if (ms_cli_open_model(&o.common, max_tokens, per_call, &model, &ctx) != 0) goto done;
    ms_model_info info;
    letters L;
    if (ms_cli_dna_alphabet(model, o.common.model_dir, o.alphabet, &info) != 0 ||
        pick_letters(&info, o.common.model_dir, o.allow_n, &L) != 0 ||
        read_prompt(&o, &L, &prompt, &prompt_len, &prompt_name) != 0)
        goto done;
    /* open the output now: an unwritable path fails before the work, not after */
    if (ms_sink_open(o.out, MS_FMT_TEXT, MS_VAL_LOGP, &sink) != MS_OK) goto done;

    streams = calloc(M, sizeof *streams);
    seq = calloc(M, sizeof *seq);
    rng = calloc(M, sizeof *rng);
    rec = calloc(M, sizeof *rec);
    fw = calloc(M, sizeof *fw);
    tok = malloc(sizeof(int32_t) * (max_tokens > M ? max_tokens : M));
    logits = malloc(sizeof(float) * (size_t)(max_tokens > M ? max_tokens : M) * L.n); /* [T][L.n] */
    first = malloc(sizeof(float) * L.n); /* logits after the prompt, shared by all samples */
    state = malloc(sizeof(float) * ms_stream_state_size(ctx));
    if (!streams || !seq || !rng || !rec || !fw || !tok || !logits || !first || !state) goto nomem;
    for (int m = 0; m < M; m++) {
        if (ms_stream_new(ctx, &streams[m]) != MS_OK) goto done;
        if (!(seq[m] = malloc(o.n))) goto nomem;
        ms_rng_seed(&rng[m], (uint64_t)o.seed, (uint64_t)m);
        rec[m].w = o.window;
        if (use_window && !(rec[m].ring = malloc(o.window))) goto nomem;
    }

    /* The prompt once, into stream 0, then its state into the others. */
    int bos = o.no_bos ? -1 : info.bos_token;
    if (feed_prompt(ctx, streams[0], &info, &L, bos, prompt, prompt_len, o.common.chunk, tok,
                    logits, first) != MS_OK)
        goto done;
    if (ms_stream_state_get(streams[0], state) != MS_OK) goto done;
    for (int m = 1; m < M; m++)
        if (ms_stream_state_set(streams[m], state) != MS_OK) goto done;
    if (use_window) {
        for (int64_t i = prompt_len > o.window ? prompt_len - o.window : 0; i < prompt_len; i++) {
            const char *hit = memchr(L.letter, prompt[i], L.n);
            recent_push(&rec[0], hit ? (int)(hit - L.letter) : -1);
        }
        for (int m = 1; m < M; m++) {
            memcpy(rec[m].ring, rec[0].ring, o.window);
            rec[m].head = rec[0].head;
            rec[m].filled = rec[0].filled;
            memcpy(rec[m].count, rec[0].count, sizeof rec[0].count);
        }
    }

    ms_progress prog;
    ms_progress_init(&prog, o.common.quiet, o.n * M);
    for (int64_t i = 0; i < o.n; i++) {
        for (int m = 0; m < M; m++) {
            const float *row = i == 0 ? first : logits + (size_t)m * L.n;
            unsigned char seen[MAX_LETTERS];
            for (int k = 0; k < L.n; k++) seen[k] = use_window && rec[m].count[k] > 0;
            int k = ms_sample(&o.sp, row, L.n, use_window ? seen : NULL, &rng[m], NULL);
            seq[m][i] = L.letter[k];
            tok[m] = L.token[k];
            if (use_window) recent_push(&rec[m], k);
        }
        if (i + 1 == o.n) break; /* the last base need not be fed */
        for (int g = 0; g < M; g += per_call) {
            int nb = M - g < per_call ? M - g : per_call;
            for (int j = 0; j < nb; j++) fw[j] = (ms_chunk){streams[g + j], tok + g + j, 1};
            if (ms_forward_cols(ctx, fw, nb, L.token, L.n, logits + (size_t)g * L.n, NULL) != MS_OK)
                goto done;
        }
        ms_progress_update(&prog, (i + 1) * M, 0);
    }
    ms_progress_update(&prog, o.n * M, 1);

    for (int m = 0; m < M; m++) {
        char header[1024];
        record_header(header, sizeof header, &o, m, prompt_len, prompt_name);
        int64_t np = o.include_prompt ? prompt_len : 0;
        if (write_record(sink, header, prompt, np, seq[m], o.n, o.line_width) != MS_OK) goto done;
    }
    rc = ms_sink_close(sink, 1) == MS_OK ? 0 : 1;
    sink = NULL;
    goto done;
nomem:
    ms_error("generate: out of memory for %d samples of %lld bases", M, (long long)o.n);
done:
    if (sink) ms_sink_close(sink, 0);
    for (int m = 0; m < M; m++) {
        if (streams) ms_stream_free(streams[m]);
        if (seq) free(seq[m]);
        if (rec) free(rec[m].ring);
    }
    free(streams); free(seq); free(rng); free(rec); free(fw); free(tok); free(logits);
    free(first); free(state); free(prompt); free(prompt_name);
    ms_ctx_free(ctx);
    ms_model_free(model);
    return rc;
}
