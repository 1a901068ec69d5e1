/* bench_peer.c - run bench/peer_mamba_ssm.py as a child and read its JSON lines
 * (bench_peer.h says what the protocol is and where the script is found). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_peer.h"
#include "cli.h"

#ifndef MS_SOURCE_BENCH
#define MS_SOURCE_BENCH "bench"
#endif
#define PEER_SCRIPT "peer_mamba_ssm.py"

extern char **environ;

static int readable(const char *path) { return access(path, R_OK) == 0; }

/* $MAMBA_STREAM_PEER_SCRIPT, the installed copy, the source tree's: 0, or -1. */
static int find_script(ms_peer *p)
{
    const char *env = getenv("MAMBA_STREAM_PEER_SCRIPT");
    if (env && *env) {
        snprintf(p->script, sizeof p->script, "%s", env);
        return readable(p->script) ? 0 : -1;
    }
    char exe[PATH_MAX];
    if (ms_cli_exe_dir(exe, sizeof exe) == 0) {
        const int len = snprintf(p->script, sizeof p->script, "%s/../share/mamba-stream/" PEER_SCRIPT, exe);
        if (len < (int)sizeof p->script && readable(p->script)) return 0;
    }
    snprintf(p->script, sizeof p->script, "%s/" PEER_SCRIPT, MS_SOURCE_BENCH);
    return readable(p->script) ? 0 : -1;
}

/* Run argv[0] (looked up in PATH) with its stdout collected into *out (malloc'd, NUL-
 * terminated) and its stderr to /dev/null when quiet (else ours: the peer's warnings and
 * tracebacks stay visible). Returns the exit status, 128 + the signal that killed it, or
 * -1 with errno set when it could not be started. */
static int run_child(char *const argv[], int quiet, char **out)
{
    *out = NULL;
    int fd[2];
    if (pipe(fd) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    if (quiet) posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid;
    const int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc != 0) {
        close(fd[0]);
        errno = rc;
        return -1;
    }
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t k;
    while (buf && (k = read(fd[0], buf + n, cap - n - 1)) != 0) {
        if (k < 0) {
            if (errno == EINTR) continue;
            break;
        }
        n += (size_t)k;
        if (cap - n < 2) {
            char *b = realloc(buf, cap *= 2);
            if (!b) { free(buf); buf = NULL; }
            buf = b;
        }
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (buf) buf[n] = 0;
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The last line of text that is a JSON object (other lines: anything a library printed). */
static cJSON *last_object(char *text)
{
    cJSON *found = NULL;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *j = *line == '{' ? cJSON_Parse(line) : NULL;
        if (cJSON_IsObject(j)) {
            cJSON_Delete(found);
            found = j;
        } else {
            cJSON_Delete(j);
        }
        line = nl ? nl + 1 : NULL;
    }
    return found;
}

static const char *str_field(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_field(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Run the script with args[] after the interpreter, the script and --json; the answer,
 * or NULL with why in err. */
static cJSON *ask(const ms_peer *p, const char *const *args, int quiet, char *err, size_t n_err)
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)p->python;
    argv[n++] = (char *)p->script;
    argv[n++] = "--json";
    for (; *args && n < 47; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    char *out;
    const int rc = run_child(argv, quiet, &out);
    if (rc < 0) {
        snprintf(err, n_err, "cannot run %s: %s", p->python, strerror(errno));
        return NULL;
    }
    cJSON *j = out ? last_object(out) : NULL;
    free(out);
    if (!j) {
        if (rc > 128) snprintf(err, n_err, "killed by signal %d, no result", rc - 128);
        else snprintf(err, n_err, "exit %d, no result", rc);
    }
    return j;
}

/* A peer's message as a table cell: one line, no '|', at most n - 1 bytes. */
static void cell_text(char *dst, size_t n, const char *src)
{
    size_t k = strlen(src);
    if (k >= n) k = n - 1;
    memcpy(dst, src, k);
    dst[k] = 0;
    for (char *c = dst; *c; c++)
        if (*c == '|' || *c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
}

int ms_peer_open(ms_peer *p, const char *dir, int device_index, ms_precision precision)
{
    memset(p, 0, sizeof *p);
    p->dir = dir;
    const char *py = getenv("MAMBA_STREAM_PEER_PYTHON");
    p->python = py && *py ? py : "python3";
    snprintf(p->device, sizeof p->device, "cuda:%d", device_index);
    p->dtype = precision == MS_PREC_BF16 ? "bf16" : precision == MS_PREC_FP16 ? "fp16" : "fp32";
    struct stat st;
    if (!*dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mamba-stream bench: --peer '%s' is not a directory (give the folder "
                        "mamba_ssm is installed in, e.g. by pip install --target)\n", dir);
        return -1;
    }
    if (find_script(p) != 0) {
        fprintf(stderr, "mamba-stream bench: --peer: cannot read the peer script %s (set "
                        "$MAMBA_STREAM_PEER_SCRIPT to bench/" PEER_SCRIPT ")\n", p->script);
        return -1;
    }
    /* The children find mamba_ssm in DIR first; the bench itself runs no Python. */
    const char *old = getenv("PYTHONPATH");
    char *path = malloc(strlen(dir) + (old ? strlen(old) : 0) + 2);
    if (!path) return -1;
    sprintf(path, "%s%s%s", dir, old && *old ? ":" : "", old && *old ? old : "");
    setenv("PYTHONPATH", path, 1);
    free(path);

    const char *args[] = {"--check", "--device", p->device, NULL};
    char err[256];
    cJSON *j = ask(p, args, 1, err, sizeof err); /* quiet: the answer carries the reason */
    const char *why = j ? str_field(j, "error") : err;
    if (!j || why) {
        fprintf(stderr, "mamba-stream bench: --peer %s: cannot import mamba_ssm from there with "
                        "%s (%s): %s\n", dir, p->python, p->script, why ? why : "no answer");
        cJSON_Delete(j);
        return -1;
    }
    const char *ver = str_field(j, "mamba_ssm"), *torch = str_field(j, "torch"), *gpu = str_field(j, "gpu");
    snprintf(p->about, sizeof p->about, "mamba_ssm %s (torch %s) on %s", ver ? ver : "?",
             torch ? torch : "?", gpu ? gpu : "?");
    cJSON_Delete(j);
    return 0;
}

void ms_peer_run(const ms_peer *p, const ms_peer_shapes *s, const char *workload, ms_peer_result *r)
{
    memset(r, 0, sizeof *r);
    char dm[16], nl[16], tok[24], rd[16], rl[16], rpc[16], ds[16], rep[16];
    snprintf(dm, sizeof dm, "%d", s->d_model);
    snprintf(nl, sizeof nl, "%d", s->n_layer);
    snprintf(tok, sizeof tok, "%lld", (long long)s->tokens);
    snprintf(rd, sizeof rd, "%d", s->reads);
    snprintf(rl, sizeof rl, "%d", s->read_len);
    snprintf(rpc, sizeof rpc, "%d", s->reads_per_call);
    snprintf(ds, sizeof ds, "%d", s->decode_steps);
    snprintf(rep, sizeof rep, "%d", s->repeats);
    const char *args[] = {"--arch", s->arch, "--d-model", dm, "--n-layer", nl, "--dtype", p->dtype,
                          "--device", p->device, "--tokens", tok, "--reads", rd, "--read-len", rl,
                          "--reads-per-call", rpc, "--decode-steps", ds, "--repeats", rep,
                          "--workload", workload, NULL};
    char err[256];
    cJSON *j = ask(p, args, 0, err, sizeof err);
    const char *name = j ? str_field(j, "name") : NULL;
    const char *why = j ? str_field(j, "error") : err;
    if (j && !why && (!name || strcmp(name, workload)))
        why = "answer for another workload";
    if (!why && !(num_field(j, "tok_per_s") > 0)) why = "no tok_per_s in the answer";
    if (why) {
        cell_text(r->error, sizeof r->error, why);
    } else {
        r->tok_s = num_field(j, "tok_per_s");
        r->peak_gib = num_field(j, "peak_gib");
    }
    cJSON_Delete(j);
}
