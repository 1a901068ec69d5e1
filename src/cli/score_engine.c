/* score_engine.c - chunks of many segments -> batched forward calls -> scored chunks. */
#include "score_engine.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "score.h"

void ms_scored_chunk_free(ms_scored_chunk *sc)
{
    if (!sc) return;
    ms_seq_chunk_free(sc->chunk);
    free(sc->scores);
    free(sc->hidden);
    free(sc->logits);
    free(sc);
}

/* Chunks of at least this many positions are scored by a team of their own. */
#define SCORE_TEAM_MIN 16384

ms_score *ms_scored_chunk_scores(ms_scored_chunk *sc)
{
    static const int cols4[4] = {0, 1, 2, 3};
    if (sc->scores || !sc->logits) return sc->scores;
    const ms_seq_chunk *c = sc->chunk;
    const int skip = sc->skip;
    if (!(sc->scores = malloc(sizeof(ms_score) * (c->n ? (size_t)c->n : 1)))) return NULL;
    /* Positions are independent: a long chunk's log-softmax, entropy and probabilities
     * (double exp/log: 130 ns a position on a 2-core Xeon VM, ~0.6 s for E. coli 536's
     * 4.9 Mbp) run on the sink's team of threads (the consumer is a sink's thread). Same
     * values at any thread count. */
    const int nt = ms_sink_threads();
#pragma omp parallel for num_threads(nt) if (c->n >= SCORE_TEAM_MIN) schedule(static)
    for (int j = 0; j < c->n; j++) {
        ms_score *s = &sc->scores[j];
        if (skip && j == 0) {
            ms_score_uniform(c->bases[0], s);
        } else {
            ms_score_from_logits(sc->logits + (size_t)(j - skip) * 4, cols4, c->bases[j], s);
            s->rule = (c->first && j == 0) ? 1 : 0;
        }
        s->pos = c->reverse ? c->pos0 - j : c->pos0 + j;
    }
    free(sc->logits);
    sc->logits = NULL;
    return sc->scores;
}

int ms_scored_chunks_scores(ms_scored_chunk **sc, int n)
{
    int bad = 0, shorts = 0;
    for (int i = 0; i < n; i++) {
        if (sc[i]->chunk->n >= SCORE_TEAM_MIN) bad |= !ms_scored_chunk_scores(sc[i]);
        else shorts++;
    }
    /* ~150 positions a read at ~0.13 us each: one read is too little for a team, a batch
     * of them is not (one after another they held the reads command to ~0.3 us a
     * position on the sink thread, with the GPU idle) */
#pragma omp parallel for num_threads(ms_sink_threads()) if (shorts > 1) schedule(dynamic, 4) \
    reduction(| : bad)
    for (int i = 0; i < n; i++)
        if (sc[i]->chunk->n < SCORE_TEAM_MIN) bad |= !ms_scored_chunk_scores(sc[i]);
    return bad ? -1 : 0;
}

/* Segments as keys of open-addressed tables (linear probing, capacity a power of two at
 * least twice the entries): the pool's segment -> slot map and a batch's set. Lookups
 * by scanning every slot cost a call of --batch 2048 reads ~10 M compares on the engine
 * thread, beside ~13 ms of GPU work. */
static unsigned seg_hash(int64_t k)
{
    return (unsigned)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> 32);
}

static unsigned table_cap(int n)
{
    unsigned cap = 16;
    while (cap < 2u * (unsigned)n) cap <<= 1;
    return cap;
}

/* A pool of streams, one per segment in flight: free slots on a stack, bound ones in a
 * map from segment (key -1: empty) to slot. */
typedef struct {
    ms_stream **s;
    int n;
    int *free_slot; /* [n] */
    int n_free;
    int64_t *key;   /* [mask + 1] */
    int *slot;      /* [mask + 1] */
    unsigned mask;
} stream_pool;

static int pool_init(stream_pool *p, int n)
{
    p->n = n;
    p->mask = table_cap(n) - 1;
    p->s = calloc(n, sizeof *p->s);
    p->free_slot = malloc(sizeof *p->free_slot * n);
    p->key = malloc(sizeof *p->key * (p->mask + 1));
    p->slot = malloc(sizeof *p->slot * (p->mask + 1));
    if (!p->s || !p->free_slot || !p->key || !p->slot) return -1;
    for (unsigned i = 0; i <= p->mask; i++) p->key[i] = -1;
    for (int i = 0; i < n; i++) p->free_slot[i] = n - 1 - i; /* slot 0 first */
    p->n_free = n;
    return 0;
}

static void pool_free(stream_pool *p)
{
    for (int i = 0; p->s && i < p->n; i++) if (p->s[i]) ms_stream_free(p->s[i]);
    free(p->s); free(p->free_slot); free(p->key); free(p->slot);
}

/* Where segment sits in the map, or the empty entry that ends its probe. */
static unsigned pool_probe(const stream_pool *p, int64_t segment)
{
    unsigned i = seg_hash(segment) & p->mask;
    while (p->key[i] >= 0 && p->key[i] != segment) i = (i + 1) & p->mask;
    return i;
}

static ms_stream *pool_get(stream_pool *p, int64_t segment, int first)
{
    const unsigned i = pool_probe(p, segment);
    if (p->key[i] == segment) return p->s[p->slot[i]];
    if (p->n_free == 0) return NULL;
    const int sl = p->free_slot[--p->n_free];
    p->key[i] = segment;
    p->slot[i] = sl;
    /* a stream whose last segment ended in a chunk marked last was reset then
     * (ms_chunk.last: position 0); one that stopped short still holds state */
    if (first && ms_stream_pos(p->s[sl]) != 0) ms_stream_reset(p->s[sl]);
    return p->s[sl];
}

static void pool_release(stream_pool *p, int64_t segment)
{
    unsigned i = pool_probe(p, segment);
    if (p->key[i] != segment) return;
    p->free_slot[p->n_free++] = p->slot[i];
    /* backward-shift deletion: entries after i that may move to it (their home not in
     * (i, j] cyclically) do, so every probe still ends at the first empty entry */
    for (unsigned j = (i + 1) & p->mask; p->key[j] >= 0; j = (j + 1) & p->mask) {
        const unsigned h = seg_hash(p->key[j]) & p->mask;
        if (((j - h) & p->mask) >= ((j - i) & p->mask)) {
            p->key[i] = p->key[j];
            p->slot[i] = p->slot[j];
            i = j;
        }
    }
    p->key[i] = -1;
}

/* The segments of the batch being filled: entries of older batches (gen != now) count as
 * empty, so a new batch only moves now on. */
typedef struct {
    int64_t *key;
    uint64_t *gen;
    unsigned mask;
    uint64_t now;
} segment_set;

/* 1 when segment was not yet in the set (now it is), 0 when it was */
static int set_add(segment_set *t, int64_t segment)
{
    for (unsigned i = seg_hash(segment) & t->mask;; i = (i + 1) & t->mask) {
        if (t->gen[i] != t->now) {
            t->gen[i] = t->now;
            t->key[i] = segment;
            return 1;
        }
        if (t->key[i] == segment) return 0;
    }
}

typedef struct {
    const ms_model_info *info;
    int use_bos;
} token_map;

/* Position of base j of a chunk in forward coordinates, 1-based, for messages. */
static long long msg_pos(const ms_seq_chunk *c, int j)
{
    return (long long)(c->reverse ? c->pos0 - j : c->pos0 + j) + 1;
}

/* Token for a base letter; -1 (after logging) if the model has none for it. */
static int base_token(const token_map *tm, char b, const ms_seq_chunk *c, int j)
{
    int t = tm->info->token_of_char[(unsigned char)b];
    if (t < 0) t = tm->info->unk_token;
    if (t < 0)
        ms_error("%s:%lld: letter '%c' has no token in the model's alphabet and the model has "
                 "no N/UNK token", c->name->name, msg_pos(c, j), b);
    return t;
}

/* Score mode (see score_engine.h): token j is the input just before base j. Returns the
 * count, or -1; *skip = 1 when base 0 gets the uniform score and no token. */
static int predict_tokens(const token_map *tm, const ms_seq_chunk *c, int32_t *tok, int *skip)
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

/* Hidden mode: BOS (at a segment's start, when used), then the chunk's own bases.
 * *skip = 1 when a BOS row leads (its output is not a position's). */
static int consume_tokens(const token_map *tm, const ms_seq_chunk *c, int32_t *tok, int *skip)
{
    int n = 0;
    *skip = c->first && tm->use_bos;
    if (*skip) tok[n++] = tm->info->bos_token;
    for (int j = 0; j < c->n; j++) {
        int t = base_token(tm, c->bases[j], c, j);
        if (t < 0) return -1;
        tok[n++] = t;
    }
    return n;
}

/* The scored form of chunk i of a batch whose logits / hidden rows start at row0: its
 * hidden rows, or its logits rows to be scored by the consumer (ms_scored_chunk_scores). */
static ms_scored_chunk *finish_chunk(const ms_score_engine_opts *o, const ms_model_info *info,
                                     ms_seq_chunk *c, int skip, const float *logits,
                                     const float *hidden, int row0)
{
    ms_scored_chunk *sc = calloc(1, sizeof *sc);
    if (!sc) return NULL;
    sc->chunk = c;
    sc->skip = skip;
    const int r = o->hidden ? c->n : c->n - skip;
    const size_t rows = r > 0 ? (size_t)r : 0;
    const size_t w = o->hidden ? (size_t)info->d_model : 4;
    float *dst = malloc(sizeof(float) * (rows ? rows : 1) * w);
    if (!dst) { free(sc); return NULL; }
    if (rows) memcpy(dst, (o->hidden ? hidden + (size_t)(row0 + skip) * w : logits + (size_t)row0 * w),
                     sizeof(float) * rows * w);
    if (o->hidden) sc->hidden = dst;
    else sc->logits = dst;
    return sc;
}

int ms_score_engine_run(const ms_score_engine_opts *o, ms_ctx *ctx, const ms_model_info *info,
                        ms_ring *in, ms_ring *out, ms_progress *prog)
{
    const int max_streams = o->batch;
    const int max_tokens = (int)(o->call_tokens ? o->call_tokens /* as the context's */
                                                : ms_cli_call_tokens(o->chunk, o->batch));
    token_map tm = {info, o->use_bos};
    stream_pool pool = {0};
    const unsigned set_cap = table_cap(max_streams);
    segment_set batch_set = {malloc(sizeof(int64_t) * set_cap), calloc(set_cap, sizeof(uint64_t)),
                             set_cap - 1, 0};
    int32_t *tok = malloc(sizeof(int32_t) * max_tokens);
    float *logits = o->hidden ? NULL : malloc(sizeof(float) * (size_t)max_tokens * 4); /* [T][A,C,G,T] */
    float *hidden = o->hidden ? malloc(sizeof(float) * (size_t)max_tokens * info->d_model) : NULL; /* [T][d_model] */
    ms_seq_chunk **batch = calloc(max_streams, sizeof *batch);
    ms_chunk *fw = calloc(max_streams, sizeof *fw);
    int *skip = calloc(max_streams, sizeof *skip);
    int *row = calloc(max_streams, sizeof *row); /* first logits row of chunk i */
    int rc = MS_OK;
    if (pool_init(&pool, max_streams + 1) != 0 || !batch_set.key || !batch_set.gen || !tok ||
        !(logits || hidden) || !batch || !fw || !skip || !row)
        rc = MS_ERR_NOMEM;
    for (int i = 0; rc == MS_OK && i < pool.n; i++) rc = ms_stream_new(ctx, &pool.s[i]);
    ms_seq_chunk *held = NULL;
    int64_t done = 0;
    while (rc == MS_OK) {
        int nb = 0, ntok = 0;
        batch_set.now++;
        if (held) {
            set_add(&batch_set, held->segment);
            batch[nb++] = held;
            ntok += held->n + 1;
            held = NULL;
        }
        while (nb < max_streams) {
            /* Always fill the batch (up to a clash or the end of input) rather than run
             * whatever has arrived: batch composition, and so the exact float rounding,
             * must not depend on thread timing - the same input gives the same bytes. */
            ms_seq_chunk *c = ms_ring_pop(in);
            if (!c) break;
            const int clash = !set_add(&batch_set, c->segment);
            if (clash || ntok + c->n + 1 > max_tokens) { held = c; break; }
            batch[nb++] = c;
            ntok += c->n + 1;
        }
        if (nb == 0) break;
        /* tokens of each chunk, packed */
        int nf = 0, t0 = 0;
        for (int i = 0; i < nb && rc == MS_OK; i++) {
            ms_seq_chunk *c = batch[i];
            int n = o->hidden ? consume_tokens(&tm, c, tok + t0, &skip[i])
                              : predict_tokens(&tm, c, tok + t0, &skip[i]);
            if (n < 0) { rc = MS_ERR_FORMAT; break; }
            row[i] = t0;
            if (n > 0) {
                /* a segment's last chunk ends its stream (the state is not kept) */
                fw[nf++] = (ms_chunk){pool_get(&pool, c->segment, c->first), tok + t0, n,
                                      .last = c->last};
                t0 += n;
            }
        }
        if (rc == MS_OK && nf > 0)
            rc = ms_forward_cols(ctx, fw, nf, info->base_token, 4, logits, hidden);
        for (int i = 0; i < nb; i++) {
            ms_seq_chunk *c = batch[i];
            ms_scored_chunk *sc = NULL;
            if (rc == MS_OK) {
                sc = finish_chunk(o, info, c, skip[i], logits, hidden, row[i]);
                if (!sc) rc = MS_ERR_NOMEM;
                else done += c->n - c->n_warm;
            }
            if (c->last) pool_release(&pool, c->segment);
            if (!sc || ms_ring_push(out, sc) != 0) {
                if (sc) { sc->chunk = NULL; ms_scored_chunk_free(sc); rc = rc == MS_OK ? MS_ERR_IO : rc; }
                ms_seq_chunk_free(c);
            }
        }
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
    pool_free(&pool);
    free(batch_set.key); free(batch_set.gen); free(tok); free(logits); free(hidden); free(batch); free(fw);
    free(skip); free(row);
    return rc;
}
