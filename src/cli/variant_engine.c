/* variant_engine.c - shared reference pass + ALT branches (see variant_engine.h). */
#include "variant_engine.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "score.h"

typedef struct {
    int job;           /* -1: free */
    ms_stream *s;
    int32_t *tok;      /* [cap] inputs; tok[k] predicts pred[k + skip] */
    char *pred;        /* [n_pred] bases predicted: ALT, then reference after REF */
    int n_tok, n_pred, done, skip, cap;
    double sum;
} branch;

struct ms_variant_engine {
    ms_ctx *ctx;
    const ms_model_info *info;
    int use_bos, batch, chunk;
    ms_stream *ref;
    branch *br;        /* [batch] */
    float *state;      /* [ms_stream_state_size] */
    int32_t *tok;      /* [(batch + 1) * chunk] packed inputs of one call */
    float *logits;     /* [(batch + 1) * chunk][4] */
    ms_chunk *fw;      /* [batch + 1] */
    double *refll;     /* [E - s] ln p of each reference base of the group's run */
    int64_t refll_cap;
    int64_t n_ref_tok, n_alt_tok;
};

static const int k_cols4[4] = {0, 1, 2, 3};

int ms_variant_engine_new(ms_ctx *ctx, const ms_model_info *info, int use_bos, int batch, int chunk,
                          ms_variant_engine **out)
{
    *out = NULL;
    ms_variant_engine *ve = calloc(1, sizeof *ve);
    if (!ve) return MS_ERR_NOMEM;
    ve->ctx = ctx;
    ve->info = info;
    ve->use_bos = use_bos;
    ve->batch = batch;
    ve->chunk = chunk;
    size_t T = (size_t)(batch + 1) * chunk;
    ve->br = calloc(batch, sizeof *ve->br);
    ve->state = malloc(sizeof(float) * ms_stream_state_size(ctx));
    ve->tok = malloc(sizeof(int32_t) * T);
    ve->logits = malloc(sizeof(float) * T * 4);
    ve->fw = calloc(batch + 1, sizeof *ve->fw);
    int rc = ve->br && ve->state && ve->tok && ve->logits && ve->fw ? MS_OK : MS_ERR_NOMEM;
    if (rc == MS_OK) rc = ms_stream_new(ctx, &ve->ref);
    for (int i = 0; rc == MS_OK && i < batch; i++) {
        ve->br[i].job = -1;
        rc = ms_stream_new(ctx, &ve->br[i].s);
    }
    if (rc != MS_OK) {
        ms_variant_engine_free(ve);
        return rc;
    }
    *out = ve;
    return MS_OK;
}

void ms_variant_engine_free(ms_variant_engine *ve)
{
    if (!ve) return;
    if (ve->ref) ms_stream_free(ve->ref);
    for (int i = 0; ve->br && i < ve->batch; i++) {
        if (ve->br[i].s) ms_stream_free(ve->br[i].s);
        free(ve->br[i].tok);
        free(ve->br[i].pred);
    }
    free(ve->br); free(ve->state); free(ve->tok); free(ve->logits); free(ve->fw); free(ve->refll);
    free(ve);
}

void ms_variant_engine_counts(const ms_variant_engine *ve, int64_t *ref_tokens, int64_t *alt_tokens)
{
    *ref_tokens = ve->n_ref_tok;
    *alt_tokens = ve->n_alt_tok;
}

static int token_of(const ms_variant_engine *ve, char b, const char *chrom, int64_t pos)
{
    int t = ve->info->token_of_char[(unsigned char)b];
    if (t < 0) t = ve->info->unk_token;
    if (t < 0)
        ms_error("%s:%lld: letter '%c' has no token in the model's alphabet and the model has "
                 "no N/UNK token", chrom, (long long)pos + 1, b);
    return t;
}

static double base_logp(const float *row, char b)
{
    ms_score sc;
    ms_score_from_logits(row, k_cols4, b, &sc);
    return sc.logp;
}

static double uniform_logp(char b)
{
    ms_score sc;
    ms_score_uniform(b, &sc);
    return sc.logp;
}

/* Start a branch for job j at its variant position (the reference stream's state). */
static int spawn(ms_variant_engine *ve, branch *b, int j, const ms_variant_job *job, const char *chrom,
                 int64_t s, const char *ref)
{
    int64_t after = job->e - (job->p + job->lr); /* reference bases after REF in the window */
    int n_pred = job->la + (int)(after > 0 ? after : 0);
    if (n_pred > b->cap) {
        int32_t *t = realloc(b->tok, sizeof(int32_t) * n_pred);
        if (t) b->tok = t;
        char *p = realloc(b->pred, (size_t)n_pred);
        if (p) b->pred = p;
        if (!t || !p) return MS_ERR_NOMEM;
        b->cap = n_pred;
    }
    memcpy(b->pred, job->alt, (size_t)job->la);
    if (after > 0) memcpy(b->pred + job->la, ref + (job->p + job->lr - s), (size_t)after);
    b->n_pred = n_pred;
    b->skip = job->p == s && !ve->use_bos; /* the window's first base: uniform, no input */
    b->sum = b->skip ? uniform_logp(b->pred[0]) : 0.0;
    int n = 0;
    if (!b->skip) {
        int t = job->p == s ? ve->info->bos_token : token_of(ve, ref[job->p - 1 - s], chrom, job->p - 1);
        if (t < 0) return MS_ERR_FORMAT;
        b->tok[n++] = t;
    }
    for (int k = 1; k < n_pred; k++) {
        int t = token_of(ve, b->pred[k - 1], chrom, job->p + k - 1);
        if (t < 0) return MS_ERR_FORMAT;
        b->tok[n++] = t;
    }
    b->n_tok = n;
    b->done = 0;
    b->job = j;
    return ms_stream_state_set(b->s, ve->state);
}

static int cmp_p(const void *a, const void *b, void *arg)
{
    const ms_variant_job *jobs = arg;
    int64_t x = jobs[*(const int *)a].p, y = jobs[*(const int *)b].p;
    return x < y ? -1 : x > y;
}

int ms_variant_group_score(ms_variant_engine *ve, const char *chrom, int64_t s, const char *ref,
                           int64_t E, ms_variant_job *jobs, int n)
{
    int rc = MS_OK;
    int *order = malloc(sizeof(int) * (n ? n : 1));
    if (!order) return MS_ERR_NOMEM;
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_p, jobs);
    if (E - s > ve->refll_cap) {
        double *r = realloc(ve->refll, sizeof(double) * (E - s));
        if (!r) { free(order); return MS_ERR_NOMEM; }
        ve->refll = r;
        ve->refll_cap = E - s;
    }
    ms_stream_reset(ve->ref);
    int64_t cur = s, state_at = -1; /* position whose state ve->state holds */
    int oi = 0, active = 0;
    while (rc == MS_OK) {
        /* branches of the variants at cur, while slots are free */
        for (int b = 0; rc == MS_OK && oi < n && jobs[order[oi]].p == cur && b < ve->batch; b++) {
            if (ve->br[b].job >= 0) continue;
            if (state_at != cur && (rc = ms_stream_state_get(ve->ref, ve->state)) != MS_OK) break;
            state_at = cur;
            rc = spawn(ve, &ve->br[b], order[oi], &jobs[order[oi]], chrom, s, ref);
            oi++;
            active++;
        }
        if (rc != MS_OK) break;
        int blocked = oi < n && jobs[order[oi]].p == cur; /* waits for a free slot */
        int nf = 0, t0 = 0, ref_rows = 0, ref_skip = 0;
        int64_t hi = cur;
        if (!blocked && cur < E) {
            int64_t next = oi < n ? jobs[order[oi]].p : E;
            hi = next < E ? next : E;
            if (hi - cur > ve->chunk) hi = cur + ve->chunk;
            for (int64_t q = cur; q < hi; q++) {
                int t;
                if (q == s && !ve->use_bos) { ref_skip = 1; continue; }
                t = q == s ? ve->info->bos_token : token_of(ve, ref[q - 1 - s], chrom, q - 1);
                if (t < 0) { rc = MS_ERR_FORMAT; break; }
                ve->tok[t0++] = t;
            }
            ref_rows = t0;
            if (ref_rows > 0) ve->fw[nf++] = (ms_chunk){ve->ref, ve->tok, ref_rows};
        }
        int take[ve->batch > 0 ? ve->batch : 1];
        for (int b = 0; rc == MS_OK && b < ve->batch; b++) {
            branch *br = &ve->br[b];
            take[b] = 0;
            if (br->job < 0) continue;
            take[b] = br->n_tok - br->done < ve->chunk ? br->n_tok - br->done : ve->chunk;
            if (take[b] == 0) continue;
            memcpy(ve->tok + t0, br->tok + br->done, sizeof(int32_t) * take[b]);
            ve->fw[nf++] = (ms_chunk){br->s, ve->tok + t0, take[b]};
            t0 += take[b];
        }
        if (rc != MS_OK) break;
        if (nf > 0) rc = ms_forward_cols(ve->ctx, ve->fw, nf, ve->info->base_token, 4, ve->logits, NULL);
        if (rc != MS_OK) break;
        ve->n_ref_tok += ref_rows;
        /* reference rows */
        if (ref_skip) ve->refll[0] = uniform_logp(ref[0]);
        for (int r = 0; r < ref_rows; r++) {
            int64_t q = cur + ref_skip + r;
            ve->refll[q - s] = base_logp(ve->logits + (size_t)r * 4, ref[q - s]);
        }
        if (hi > cur) state_at = -1;
        cur = hi;
        /* branch rows */
        int row = ref_rows;
        for (int b = 0; b < ve->batch; b++) {
            branch *br = &ve->br[b];
            if (br->job < 0) continue;
            for (int k = 0; k < take[b]; k++, row++)
                br->sum += base_logp(ve->logits + (size_t)row * 4, br->pred[br->done + k + br->skip]);
            br->done += take[b];
            ve->n_alt_tok += take[b];
            if (br->done == br->n_tok) {
                jobs[br->job].ll_alt = br->sum;
                br->job = -1;
                active--;
            }
        }
        if (cur >= E && oi >= n && active == 0) break;
    }
    for (int i = 0; rc == MS_OK && i < n; i++) {
        double sum = 0;
        for (int64_t q = jobs[i].p; q < jobs[i].e; q++) sum += ve->refll[q - s];
        jobs[i].ll_ref = sum;
    }
    for (int b = 0; b < ve->batch; b++) ve->br[b].job = -1;
    free(order);
    return rc;
}
