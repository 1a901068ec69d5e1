/* cli.h - the mamba-stream command line: subcommands wire ingest -> engine -> sinks. */
#ifndef MS_CLI_H
#define MS_CLI_H

#include <stdint.h>

#include "mamba_stream.h"

#define MS_VERSION "0.1.0"

/* Options every subcommand that runs a model shares. */
typedef struct {
    const char *model_dir;
    ms_device_kind device;
    ms_precision precision;
    int device_index;
    int n_threads;
    int chunk;        /* tokens per chunk of one stream */
    int batch;        /* streams per forward call */
    int quiet;
} ms_cli_common;

/* The engine options every model-running command takes, as getopt_long entries and cases:
 * --chunk, --batch, --threads, --device, --precision. Use MS_CLI_ENGINE_OPTS in the
 * option table and pass those codes to ms_cli_engine_option (0, or -1 after printing). */
enum { MS_OPT_CHUNK = 0x1000, MS_OPT_BATCH, MS_OPT_THREADS, MS_OPT_DEVICE, MS_OPT_PREC };
#define MS_CLI_ENGINE_OPTS                                                                   \
    {"chunk", 1, 0, MS_OPT_CHUNK}, {"batch", 1, 0, MS_OPT_BATCH},                            \
        {"threads", 1, 0, MS_OPT_THREADS}, {"device", 1, 0, MS_OPT_DEVICE},                  \
        {"precision", 1, 0, MS_OPT_PREC}
#define MS_CLI_ENGINE_CASES                                                                  \
    case MS_OPT_CHUNK:                                                                       \
    case MS_OPT_BATCH:                                                                       \
    case MS_OPT_THREADS:                                                                     \
    case MS_OPT_DEVICE:                                                                      \
    case MS_OPT_PREC
int ms_cli_engine_option(int code, const char *arg, ms_cli_common *c);

/* "cpu", "cuda", "cuda:N". Returns 0, or -1 after printing the error. */
int ms_cli_parse_device(const char *s, ms_cli_common *c);
/* "fp32", "bf16", "fp16". Returns 0, or -1 after printing the error. */
int ms_cli_parse_precision(const char *s, ms_cli_common *c);
/* Load the model and create a context taking up to max_tokens tokens in up to
 * max_streams chunks per call; prints the error and returns non-zero on failure. */
/* Tokens per forward call for chunk x batch: (chunk + 1) * batch (+1: a BOS row), capped
 * at 2^18 so that scratch memory stays modest whatever --batch is (a long record only
 * ever fills one chunk per call), but never below one chunk. The engine loops and the
 * context must agree on it. */
static inline int64_t ms_cli_call_tokens(int chunk, int batch)
{
    int64_t t = (int64_t)(chunk + 1) * batch;
    if (t > (1 << 18)) t = 1 << 18;
    if (t < chunk + 1) t = chunk + 1;
    return t;
}
int ms_cli_open_model(const ms_cli_common *c, int64_t max_tokens, int max_streams, ms_model **model,
                      ms_ctx **ctx);
/* Chunks a ring between pipeline stages holds: two batches, so the reader and the sink work
 * a batch ahead of and behind the forward call (the engine fills a whole batch before each
 * call), at most hi, at least lo. */
static inline size_t ms_cli_ring_chunks(int batch, size_t lo, size_t hi)
{
    size_t r = 2 * (size_t)batch;
    if (r > hi) r = hi;
    return r < lo ? lo : r;
}
/* Parse a positive integer option; -1 after printing "--name: ..." on failure. */
int64_t ms_cli_parse_int(const char *opt, const char *s, int64_t min, int64_t max);
/* Parse a number in [lo, hi] into *out: 0, or -1 after printing "--name: ..." on failure. */
int ms_cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out);

/* The DNA alphabet a genome command needs: the model's own, or the built-in named by
 * --alphabet (may be NULL), with tokens for A, C, G and T. Fills *info from the model;
 * returns 0, or -1 after one error line naming the model directory. */
int ms_cli_dna_alphabet(const ms_model *model, const char *model_dir, const char *alphabet,
                        ms_model_info *info);

int ms_cmd_score(int argc, char **argv);
int ms_cmd_logits(int argc, char **argv);
int ms_cmd_bench(int argc, char **argv);
int ms_cmd_audio(int argc, char **argv);
int ms_cmd_features(int argc, char **argv);
int ms_cmd_bench_audio(int argc, char **argv);
int ms_cmd_reads(int argc, char **argv);
int ms_cmd_vcf(int argc, char **argv);
int ms_cmd_generate(int argc, char **argv);

/* Progress line on stderr (only when stderr is a terminal and not quiet). */
typedef struct {
    int enabled;
    double t0, last;
    int64_t total; /* -1 unknown */
} ms_progress;
void ms_progress_init(ms_progress *p, int quiet, int64_t total);
void ms_progress_update(ms_progress *p, int64_t done, int final);
double ms_now(void);

/* blas_kernel.c: re-executes with OPENBLAS_CORETYPE set when OpenBLAS fell back to its
 * SSE3 kernels on a CPU with AVX2 / AVX-512 (returns where nothing needs doing). */
void ms_blas_pick_kernel(char **argv);

/* The bundled models (models/), used when --model is not given. */
#define MS_DEFAULT_DNA_MODEL "dna-mamba2-small"
#define MS_DEFAULT_KWS_MODEL "kws-mamba2-small"
/* default_model.c: the directory of the running binary (from /proc/self/exe) into
 * dir[n]: 0, or -1. */
int ms_cli_exe_dir(char *dir, size_t n);
/* default_model.c: the path of bundled model `name` ($MAMBA_STREAM_MODELS, the install
 * prefix, the source tree), or NULL after one line on stderr. */
const char *ms_cli_default_model(const char *name);

#endif
