/* cmd_vcf.c - variant effect scores: for each ALT allele of a VCF/BCF, the log-likelihood
 * of a window with the ALT allele minus with the REF allele (variant_engine.h).
 *
 * Windows: a variant at p (0-based) with REF of length lr is scored over [p, e), e =
 * min(p + lr + after, chromosome length): the allele and `after` reference bases past it
 * (a causal model changes every score from p on; `after` bounds how far the effect is
 * followed). The model has read the reference from s on, where s is the last multiple of
 * the step S at or before p - N (N = --context, S = --context-step, default N/4, at least
 * 1; s >= 0), so every variant sees N to N + S - 1 bases of context, fixed by its own
 * position alone. Variants with the same s share one reference pass (records are read in
 * file order and grouped while s and the chromosome stay the same: a sorted VCF shares the
 * most).
 *
 * REF is checked against the FASTA (case-insensitive); a mismatch is reported on stderr,
 * flagged in the output, and not scored. Symbolic (<DEL>), '*' and missing ALT alleles are
 * not scored (missing value). */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <htslib/vcf.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "regions.h"
#include "sink.h"
#include "variant_engine.h"

#define MAX_MISMATCH_LINES 20 /* REF mismatches listed one by one; the rest counted */

typedef struct {
    ms_cli_common common;
    const char *fasta, *vcf, *out, *alphabet;
    int64_t context, step, after;
    int no_bos, tsv;
} vcf_opts;

typedef enum { ST_OK, ST_REF_MISMATCH, ST_NOT_SCORED, ST_NO_CHROM } var_status;

typedef struct {
    bcf1_t *rec;
    var_status st;
    int first_job;     /* jobs of this record's ALT alleles: [first_job, first_job + n_allele - 1);
                        * -1 for an allele not scored */
    int64_t s, e;
} group_rec;

typedef struct {
    const vcf_opts *o;
    bcf_hdr_t *hdr, *hdr_out;
    htsFile *out_vcf;
    ms_sink *out_tsv;
    char *tmp;
    ms_faidx *fx;
    ms_variant_engine *ve;
    group_rec *g;
    int n_g, cap_g;
    ms_variant_job *jobs;
    int n_jobs, cap_jobs;
    char *ref;         /* reference [s, E) of the group */
    int64_t ref_cap;
    int64_t n_records, n_alleles, n_mismatch, n_unscored;
} vcf_run;

static int64_t window_start(const vcf_opts *o, int64_t p)
{
    int64_t a = p - o->context;
    if (a <= 0) return 0;
    return a / o->step * o->step;
}

static int is_bases(const char *a)
{
    if (!*a) return 0;
    for (; *a; a++)
        if (!strchr("ACGTNacgtn", *a)) return 0;
    return 1;
}

/* Write the group's records with their scores, in input order. */
static int write_group(vcf_run *v, const char *chrom)
{
    const vcf_opts *o = v->o;
    float *vals = NULL;
    int cap = 0, rc = MS_OK;
    for (int i = 0; rc == MS_OK && i < v->n_g; i++) {
        group_rec *g = &v->g[i];
        bcf1_t *rec = g->rec;
        int na = rec->n_allele - 1;
        if (na > cap) {
            float *p = realloc(vals, sizeof(float) * na);
            if (!p) { rc = MS_ERR_NOMEM; break; }
            vals = p;
            cap = na;
        }
        for (int a = 0; a < na; a++) {
            int j = g->first_job >= 0 ? g->first_job + a : -1;
            if (j >= 0 && v->jobs[j].la > 0) vals[a] = (float)(v->jobs[j].ll_alt - v->jobs[j].ll_ref);
            else bcf_float_set_missing(vals[a]);
            if (o->tsv) {
                static const char *names[] = {"ok", "ref_mismatch", "not_scored", "no_chrom"};
                const char *st = g->st == ST_OK && (j < 0 || v->jobs[j].la == 0) ? "not_scored" : names[g->st];
                int scored = g->st == ST_OK && j >= 0 && v->jobs[j].la > 0;
                if (scored)
                    rc = ms_sink_printf(v->out_tsv, "%s\t%lld\t%s\t%s\t%s\t%.6g\t%.6g\t%.6g\t%lld\t%lld\t%s\n",
                                        chrom, (long long)rec->pos + 1, rec->d.id, rec->d.allele[0],
                                        rec->d.allele[a + 1], v->jobs[j].ll_alt - v->jobs[j].ll_ref,
                                        v->jobs[j].ll_ref, v->jobs[j].ll_alt, (long long)g->s + 1,
                                        (long long)g->e, st);
                else
                    rc = ms_sink_printf(v->out_tsv, "%s\t%lld\t%s\t%s\t%s\t.\t.\t.\t.\t.\t%s\n", chrom,
                                        (long long)rec->pos + 1, rec->d.id, rec->d.allele[0],
                                        rec->d.allele[a + 1], st);
                if (rc != MS_OK) break;
            }
        }
        if (o->tsv || rc != MS_OK) continue;
        if ((na > 0 && bcf_update_info_float(v->hdr_out, rec, "MS_LLR", vals, na) < 0) ||
            (g->st == ST_REF_MISMATCH && bcf_update_info_flag(v->hdr_out, rec, "MS_REF_MISMATCH", NULL, 1) < 0)) {
            ms_error("%s: %s:%lld: cannot add the INFO fields", o->vcf, chrom, (long long)rec->pos + 1);
            rc = MS_ERR_FORMAT;
        } else if (bcf_write(v->out_vcf, v->hdr_out, rec) != 0) {
            ms_error("cannot write %s", o->out ? o->out : "standard output");
            rc = MS_ERR_IO;
        }
    }
    free(vals);
    return rc;
}

/* Score and write the buffered group (records of one chromosome with one window start). */
static int flush_group(vcf_run *v)
{
    if (v->n_g == 0) return MS_OK;
    const vcf_opts *o = v->o;
    const char *chrom = bcf_hdr_id2name(v->hdr, v->g[0].rec->rid);
    int64_t len = ms_faidx_seq_len(v->fx, chrom);
    int64_t s = v->g[0].s, E = s;
    int rc = MS_OK;
    v->n_jobs = 0;
    for (int i = 0; i < v->n_g; i++) {
        group_rec *g = &v->g[i];
        bcf1_t *rec = g->rec;
        g->first_job = -1;
        const char *REF = rec->d.allele[0];
        int64_t lr = (int64_t)strlen(REF);
        if (len < 0) { g->st = ST_NO_CHROM; continue; }
        g->e = rec->pos + lr + o->after < len ? rec->pos + lr + o->after : len;
        if (rec->pos + lr > len) { g->st = ST_REF_MISMATCH; continue; }
        if (g->e > E) E = g->e;
    }
    if (len >= 0 && E > s) {
        if (E - s > v->ref_cap) {
            char *p = realloc(v->ref, (size_t)(E - s));
            if (!p) return MS_ERR_NOMEM;
            v->ref = p;
            v->ref_cap = E - s;
        }
        if (ms_faidx_fetch(v->fx, chrom, s, E, v->ref) != E - s) return MS_ERR_IO;
    }
    for (int i = 0; i < v->n_g; i++) {
        group_rec *g = &v->g[i];
        bcf1_t *rec = g->rec;
        if (g->st != ST_OK) continue;
        const char *REF = rec->d.allele[0];
        int lr = (int)strlen(REF);
        for (int k = 0; k < lr; k++)
            if (toupper((unsigned char)REF[k]) != toupper((unsigned char)v->ref[rec->pos - s + k])) {
                g->st = ST_REF_MISMATCH;
                break;
            }
        if (g->st == ST_REF_MISMATCH) {
            if (v->n_mismatch++ < MAX_MISMATCH_LINES)
                ms_warn("%s: %s:%lld: REF %s does not match %s (%.*s); not scored, flagged "
                        "MS_REF_MISMATCH", o->vcf, chrom, (long long)rec->pos + 1, REF, o->fasta,
                        lr, v->ref + (rec->pos - s));
            continue;
        }
        if (v->n_jobs + rec->n_allele > v->cap_jobs) {
            int cap = (v->n_jobs + rec->n_allele) * 2;
            ms_variant_job *p = realloc(v->jobs, sizeof *p * cap);
            if (!p) return MS_ERR_NOMEM;
            v->jobs = p;
            v->cap_jobs = cap;
        }
        g->first_job = v->n_jobs;
        for (int a = 1; a < rec->n_allele; a++) {
            const char *alt = rec->d.allele[a];
            ms_variant_job *j = &v->jobs[v->n_jobs++];
            memset(j, 0, sizeof *j);
            j->p = rec->pos;
            j->lr = lr;
            j->e = g->e;
            if (is_bases(alt)) { j->alt = alt; j->la = (int)strlen(alt); v->n_alleles++; }
            else v->n_unscored++; /* symbolic, '*', '.': la = 0 marks it unscored */
        }
    }
    /* unscored alleles leave the engine's list, their slots keep la = 0 */
    int n = 0;
    ms_variant_job *run = malloc(sizeof *run * (v->n_jobs ? v->n_jobs : 1));
    int *back = malloc(sizeof(int) * (v->n_jobs ? v->n_jobs : 1));
    if (!run || !back) { free(run); free(back); return MS_ERR_NOMEM; }
    for (int j = 0; j < v->n_jobs; j++)
        if (v->jobs[j].la > 0) { back[n] = j; run[n++] = v->jobs[j]; }
    if (n > 0) rc = ms_variant_group_score(v->ve, chrom, s, v->ref, E, run, n);
    for (int k = 0; k < n; k++) v->jobs[back[k]] = run[k];
    free(run);
    free(back);
    if (rc == MS_OK) rc = write_group(v, chrom);
    for (int i = 0; i < v->n_g; i++) bcf_destroy(v->g[i].rec);
    v->n_g = 0;
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream vcf [--model DIR] --fasta REF.fa --vcf FILE [options]\n"
"       (or: mamba-stream [--model DIR] --fasta REF.fa --vcf FILE ...)\n"
"\n"
"Variant effect scores: for each ALT allele, LLR = ll(window with ALT) - ll(window with\n"
"REF), summed ln p of the bases from the variant to the window end (a causal model\n"
"changes nothing before the variant). SNVs, MNVs and indels; multi-allelic records per\n"
"allele; REF checked against the FASTA (mismatches reported, flagged, not scored).\n"
"\n"
"  --fasta FILE        reference FASTA (plain or bgzip; .fai built if missing)\n"
"  --vcf FILE          VCF / BCF, plain or bgzip ('-' reads stdin)\n"
"  --context N         reference bases the model reads before a variant, at least [1000]\n"
"  --context-step S    windows start on multiples of S, so the context is N..N+S-1 bases\n"
"                      and variants with the same start share one reference pass [N/4]\n"
"  --after M           reference bases scored after the REF allele [100]\n"
"  -o, --output FILE   .vcf | .vcf.gz (bgzip + .tbi) | .bcf (+ .csi) | .tsv [stdout VCF]\n"
"                      VCF: the input with INFO MS_LLR (Number=A, Float) and the flag\n"
"                      MS_REF_MISMATCH added. TSV: #chrom pos id ref alt llr ll_ref ll_alt\n"
"                      win_start win_end status (1-based inclusive window)\n"
"  --format F          vcf | tsv [from -o]\n"
"Model and engine: --model, --alphabet, --no-bos, --device, --precision, --threads, -q as\n"
"  for score; --batch N ALT branches per forward call [64]; --chunk N tokens per stream per\n"
"  call [4096]\n"
"\n"
"Example:\n"
"  mamba-stream --model models/dna --fasta ref.fa --vcf variants.vcf.gz -o scored.vcf.gz\n");
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int ms_cmd_vcf(int argc, char **argv)
{
    vcf_opts o = {0};
    o.common.chunk = 4096;
    o.common.batch = 64;
    o.context = 1000;
    o.step = -1;
    o.after = 100;
    o.tsv = -1;
    enum { O_MODEL = 256, O_FASTA, O_VCF, O_CONTEXT, O_STEP, O_AFTER, O_FORMAT, O_ALPHABET, O_NOBOS };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"fasta", 1, 0, O_FASTA}, {"vcf", 1, 0, O_VCF},
        {"context", 1, 0, O_CONTEXT}, {"context-step", 1, 0, O_STEP}, {"after", 1, 0, O_AFTER},
        {"format", 1, 0, O_FORMAT}, {"output", 1, 0, 'o'},
        {"alphabet", 1, 0, O_ALPHABET}, {"no-bos", 0, 0, O_NOBOS},
        {"quiet", 0, 0, 'q'}, MS_CLI_ENGINE_OPTS, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: o.common.model_dir = optarg; break;
        case O_FASTA: o.fasta = optarg; break;
        case O_VCF: o.vcf = optarg; break;
        case O_CONTEXT: bad |= (o.context = ms_cli_parse_int("--context", optarg, 0, 1 << 28)) < 0; break;
        case O_STEP: bad |= (o.step = ms_cli_parse_int("--context-step", optarg, 1, 1 << 28)) < 0; break;
        case O_AFTER: bad |= (o.after = ms_cli_parse_int("--after", optarg, 0, 1 << 28)) < 0; break;
        case O_FORMAT:
            o.tsv = !strcmp(optarg, "tsv") ? 1 : !strcmp(optarg, "vcf") ? 0 : -2;
            if (o.tsv == -2) { fprintf(stderr, "mamba-stream: --format: '%s' is not vcf or tsv\n", optarg); bad = 1; }
            break;
        case 'o': o.out = optarg; break;
        MS_CLI_ENGINE_CASES: bad |= ms_cli_engine_option(ch, optarg, &o.common) != 0; break;
        case O_ALPHABET: o.alphabet = optarg; break;
        case O_NOBOS: o.no_bos = 1; break;
        case 'q': o.common.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (!bad && optind < argc) {
        fprintf(stderr, "mamba-stream: unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    /* no --model: the bundled model (default_model.c) */
    if (!bad && !o.common.model_dir && !(o.common.model_dir = ms_cli_default_model(MS_DEFAULT_DNA_MODEL))) bad = 1;
    if (!bad && (!o.common.model_dir || !o.fasta || !o.vcf)) {
        fprintf(stderr, "mamba-stream: --fasta and --vcf are required (see vcf --help)\n");
        bad = 1;
    }
    if (bad) return 2;
    if (o.step < 0) o.step = o.context / 4 > 0 ? o.context / 4 : 1;
    if (o.tsv < 0) o.tsv = o.out && ends_with(o.out, ".tsv");
    const char *out_name = o.out && strcmp(o.out, "-") ? o.out : NULL;

    ms_model *model = NULL;
    ms_ctx *ctx = NULL;
    vcf_run r = {.o = &o};
    htsFile *in = NULL;
    bcf1_t *rec = NULL;
    int rc = 1, ok = 0;
    char *idx_tmp = NULL;

    /* Up to batch + 1 chunks per call (reference + ALT branches): shorten the chunk so a
     * call stays within ms_cli_call_tokens' cap (results do not depend on chunking). */
    if ((int64_t)(o.common.batch + 1) * o.common.chunk > (1 << 18)) {
        o.common.chunk = (1 << 18) / (o.common.batch + 1);
        if (o.common.chunk < 1) o.common.chunk = 1;
    }
    if (ms_cli_open_model(&o.common, ((int64_t)o.common.batch + 1) * o.common.chunk, o.common.batch + 1,
                          &model, &ctx) != 0)
        goto done;
    ms_model_info info;
    if (ms_cli_dna_alphabet(model, o.common.model_dir, o.alphabet, &info) != 0) goto done;
    if (ms_faidx_open(o.fasta, &r.fx) != MS_OK) goto done;
    if (ms_variant_engine_new(ctx, &info, !o.no_bos && info.bos_token >= 0, o.common.batch,
                              o.common.chunk, &r.ve) != MS_OK)
        goto done;
    if (!(in = bcf_open(o.vcf, "r")) || !(r.hdr = bcf_hdr_read(in))) {
        ms_error("%s: cannot open or read the VCF/BCF header", o.vcf);
        goto done;
    }
    if (o.tsv) {
        ms_sink_opts so = {o.out, MS_FMT_TEXT, MS_VAL_LOGP, NULL, 0};
        if (ms_sink_open_opts(&so, &r.out_tsv) != MS_OK) goto done;
        if (ms_sink_printf(r.out_tsv, "#chrom\tpos\tid\tref\talt\tllr\tll_ref\tll_alt\twin_start\twin_end\tstatus\n") != MS_OK)
            goto done;
    } else {
        if (!(r.hdr_out = bcf_hdr_dup(r.hdr))) goto done;
        char line[512];
        snprintf(line, sizeof line, "##INFO=<ID=MS_LLR,Number=A,Type=Float,Description=\"mamba-stream: "
                 "ln-likelihood of the window with ALT minus with REF (context %lld+, %lld bases "
                 "after REF)\">", (long long)o.context, (long long)o.after);
        if (bcf_hdr_append(r.hdr_out, line) != 0 ||
            bcf_hdr_append(r.hdr_out, "##INFO=<ID=MS_REF_MISMATCH,Number=0,Type=Flag,Description="
                           "\"mamba-stream: REF differs from the reference FASTA; not scored\">") != 0 ||
            bcf_hdr_sync(r.hdr_out) != 0)
            goto done;
        const char *mode = out_name && ends_with(out_name, ".bcf") ? "wb"
                           : out_name && ends_with(out_name, ".gz") ? "wz" : "w";
        if (out_name) {
            size_t n = strlen(out_name) + 32;
            if (!(r.tmp = malloc(n))) goto done;
            snprintf(r.tmp, n, "%s.tmp.%ld", out_name, (long)getpid());
        }
        if (!(r.out_vcf = hts_open(r.tmp ? r.tmp : "-", mode))) {
            ms_error("cannot create %s", r.tmp ? r.tmp : "standard output");
            goto done;
        }
        if (bcf_hdr_write(r.out_vcf, r.hdr_out) != 0) {
            ms_error("cannot write %s", out_name ? out_name : "standard output");
            goto done;
        }
    }

    int got, err = MS_OK;
    while (err == MS_OK && (rec = bcf_init()) && (got = bcf_read(in, r.hdr, rec)) == 0) {
        r.n_records++;
        if (bcf_unpack(rec, BCF_UN_STR) != 0) {
            ms_error("%s: record %lld: cannot unpack", o.vcf, (long long)r.n_records);
            err = MS_ERR_FORMAT;
            break;
        }
        int64_t s = window_start(&o, rec->pos);
        if (r.n_g > 0 && (r.g[0].rec->rid != rec->rid || r.g[0].s != s)) err = flush_group(&r);
        if (err != MS_OK) break;
        if (r.n_g == r.cap_g) {
            int cap = r.cap_g ? r.cap_g * 2 : 64;
            group_rec *p = realloc(r.g, sizeof *p * cap);
            if (!p) { err = MS_ERR_NOMEM; break; }
            r.g = p;
            r.cap_g = cap;
        }
        r.g[r.n_g++] = (group_rec){rec, ST_OK, -1, s, 0};
        rec = NULL;
        if (ms_faidx_seq_len(r.fx, bcf_hdr_id2name(r.hdr, r.g[r.n_g - 1].rec->rid)) < 0 && r.n_g == 1)
            ms_warn("%s: %s:%lld: no sequence %s in %s; its variants are not scored", o.vcf,
                    bcf_hdr_id2name(r.hdr, r.g[0].rec->rid), (long long)r.g[0].rec->pos + 1,
                    bcf_hdr_id2name(r.hdr, r.g[0].rec->rid), o.fasta);
    }
    if (err == MS_OK && rec && got < -1) {
        ms_error("%s: cannot read record %lld: malformed or truncated", o.vcf, (long long)r.n_records + 1);
        err = MS_ERR_FORMAT;
    }
    if (err == MS_OK) err = flush_group(&r);
    if (err != MS_OK) goto done;
    if (r.out_tsv) {
        int c = ms_sink_close(r.out_tsv, 1);
        r.out_tsv = NULL;
        if (c != MS_OK) goto done;
    }
    if (r.out_vcf) {
        int c = hts_close(r.out_vcf);
        r.out_vcf = NULL;
        if (c != 0) { ms_error("cannot write %s", out_name ? out_name : "standard output"); goto done; }
    }
    if (r.tmp) {
        /* bgzip VCF -> .tbi, BCF -> .csi; built on the temporary file, then both renamed */
        int bcf = ends_with(out_name, ".bcf"), gz = ends_with(out_name, ".gz");
        if (bcf || gz) {
            size_t n = strlen(r.tmp) + 8;
            if (!(idx_tmp = malloc(n))) goto done;
            snprintf(idx_tmp, n, "%s.%s", r.tmp, bcf ? "csi" : "tbi");
            if (bcf_index_build2(r.tmp, idx_tmp, bcf ? 14 : 0) != 0) {
                ms_error("%s: cannot index the output (is the input sorted by position?)", out_name);
                goto done;
            }
        }
        char final_idx[4200];
        snprintf(final_idx, sizeof final_idx, "%s.%s", out_name, bcf ? "csi" : "tbi");
        if (rename(r.tmp, out_name) != 0 || (idx_tmp && rename(idx_tmp, final_idx) != 0)) {
            ms_error("cannot rename %s onto %s", r.tmp, out_name);
            goto done;
        }
        free(r.tmp);
        r.tmp = NULL;
    }
    ok = 1;
    if (!o.common.quiet) {
        int64_t rt, at;
        ms_variant_engine_counts(r.ve, &rt, &at);
        fprintf(stderr, "mamba-stream: %s: %lld records, %lld ALT alleles scored, %lld not scored "
                "(symbolic / missing), %lld REF mismatches; tokens: %lld reference, %lld ALT\n",
                o.vcf, (long long)r.n_records, (long long)r.n_alleles, (long long)r.n_unscored,
                (long long)r.n_mismatch, (long long)rt, (long long)at);
    }
    rc = 0;
done:
    if (rec) bcf_destroy(rec);
    for (int i = 0; i < r.n_g; i++) bcf_destroy(r.g[i].rec);
    free(r.g);
    free(r.jobs);
    free(r.ref);
    if (r.out_tsv) ms_sink_close(r.out_tsv, 0);
    if (r.out_vcf) hts_close(r.out_vcf);
    if (r.tmp) unlink(r.tmp);
    if (idx_tmp && !ok) unlink(idx_tmp);
    free(r.tmp);
    free(idx_tmp);
    if (r.hdr_out) bcf_hdr_destroy(r.hdr_out);
    if (r.hdr) bcf_hdr_destroy(r.hdr);
    if (in) hts_close(in);
    ms_variant_engine_free(r.ve);
    if (r.fx) ms_faidx_close(r.fx);
    ms_ctx_free(ctx);
    ms_model_free(model);
    return rc;
}
