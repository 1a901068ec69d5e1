/* cmd_features.c - the model's front end alone: audio in, frames out (.npy or TSV).
 *
 * What the engine sees for an input, for tests against the numpy twin
 * (scripts/logmel.py) and for computing training features with the engine's own code.
 * Needs only the model's config.json. */
#include <getopt.h>
#include <samplerate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_config.h"
#include "audio_reader.h"
#include "cli.h"
#include "frontend_logmel.h"
#include "frontend_mulaw.h"
#include "log.h"

/* NumPy .npy v1.0: magic, header length, a Python dict literal padded with spaces; always
 * 128 bytes in all, so the row count can be rewritten in place at the end. */
static void npy_header(FILE *f, const char *descr, long long rows, int cols)
{
    char dict[128];
    int n = cols > 0
        ? snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %d), }", descr, rows, cols)
        : snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld,), }", descr, rows);
    int pad = 128 - (10 + n + 1);
    unsigned short hl = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: mamba-stream features --model DIR --audio FILE [--raw F:RATE:CH] [-o OUT]\n"
"\n"
"Runs the model's front end (config.json's \"mamba_stream\".frontend) over one input and\n"
"writes its frames: log-mel float32 [frames][n_mels] or mu-law int32 [samples]. OUT ending\n"
"in .npy is a NumPy array; otherwise TSV (one frame per line) [stdout, TSV].\n"
"  --resample Q   medium | fast [medium]\n");
}

int ms_cmd_features(int argc, char **argv)
{
    const char *dir = NULL, *path = NULL, *out = NULL;
    ms_raw_format raw = {0};
    int fast = 0, bad = 0, ch;
    enum { O_MODEL = 256, O_AUDIO, O_RAW, O_RESAMPLE };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"audio", 1, 0, O_AUDIO}, {"raw", 1, 0, O_RAW},
        {"resample", 1, 0, O_RESAMPLE}, {"output", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: dir = optarg; break;
        case O_AUDIO: path = optarg; break;
        case O_RAW: bad |= ms_raw_format_parse(optarg, &raw) != 0; break;
        case O_RESAMPLE: fast = !strcmp(optarg, "fast"); break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (!bad && (!dir || !path || optind < argc)) {
        fprintf(stderr, "mamba-stream features: --model and one --audio are required (see --help)\n");
        bad = 1;
    }
    if (bad) return 2;
    ms_audio_config ac;
    if (ms_audio_config_load(dir, &ac) != MS_OK) return 1;
    const ms_frontend_params *fp = &ac.frontend;
    if (fp->type == MS_FRONTEND_NONE) {
        ms_error("%s: the model declares no audio front end (\"mamba_stream\": {\"frontend\": "
                 "...}; docs/model-format.md)", dir);
        ms_audio_config_free(&ac);
        return 1;
    }
    const int logmel = fp->type == MS_FRONTEND_LOGMEL, M = logmel ? fp->n_mels : 1, block = 4096;
    const int npy = out && strlen(out) > 4 && !strcmp(out + strlen(out) - 4, ".npy");
    ms_audio_src *src = NULL;
    ms_logmel *lm = NULL;
    FILE *f = NULL;
    float *x = malloc(sizeof(float) * block), *frames = NULL;
    int32_t *tok = malloc(sizeof(int32_t) * block);
    long long rows = 0;
    int rc = 1;
    if (!x || !tok) goto done;
    if (ms_audio_src_open(path, &raw, fp->sample_rate,
                          fast ? SRC_SINC_FASTEST : SRC_SINC_MEDIUM_QUALITY,
                          block, &src) != MS_OK)
        goto done;
    if (logmel) {
        if (ms_logmel_new(fp, &lm) != MS_OK) goto done;
        if (!(frames = malloc(sizeof(float) * M * (size_t)ms_logmel_max_frames(lm, block)))) goto done;
    }
    f = out && strcmp(out, "-") ? fopen(out, "wb") : stdout;
    if (!f) {
        ms_error("%s: cannot write", out);
        goto done;
    }
    if (npy) npy_header(f, logmel ? "<f4" : "<i4", 0, logmel ? M : 0); /* rows patched below */
    int n;
    while ((n = ms_audio_src_read(src, x, block)) > 0) {
        int np = logmel ? ms_logmel_push(lm, x, n, frames) : n;
        if (!logmel) ms_mulaw_encode(x, n, fp->bits, tok);
        for (int i = 0; i < np; i++, rows++) {
            if (npy) {
                if (logmel) fwrite(frames + (size_t)i * M, sizeof(float), (size_t)M, f);
                else fwrite(tok + i, sizeof(int32_t), 1, f);
                continue;
            }
            if (!logmel) { fprintf(f, "%d\n", tok[i]); continue; }
            for (int m = 0; m < M; m++) fprintf(f, m ? "\t%.7g" : "%.7g", frames[(size_t)i * M + m]);
            fputc('\n', f);
        }
    }
    if (n < 0) goto done;
    if (npy) { /* the header has a fixed size: rewrite it with the row count */
        rewind(f);
        npy_header(f, logmel ? "<f4" : "<i4", rows, logmel ? M : 0);
    }
    rc = ferror(f) ? 1 : 0;
    if (rc) ms_error("%s: write error", out ? out : "stdout");
done:
    if (f && f != stdout && fclose(f) != 0) rc = 1;
    if (f == stdout) fflush(stdout);
    ms_logmel_free(lm);
    ms_audio_src_close(src);
    ms_audio_config_free(&ac);
    free(x);
    free(tok);
    free(frames);
    return rc;
}
