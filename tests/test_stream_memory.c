/* test_stream_memory.c - scoring memory does not grow with sequence length.
 *
 * A small random model scores one record of 1 Mbp and one of 50 Mbp, each generated on
 * the fly and piped into `mamba-stream --fasta -`; the CLI's peak RSS (wait4) for the long
 * one must be within 10% of the short one's. Every position must come out exactly once
 * (wig output lines counted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "random_model.h"
#include "test_util.h"

/* Run the CLI on a generated record of n bases; returns peak RSS in KiB and the number
 * of value lines written. */
static long score_generated(const char *model, int64_t n, int64_t *lines)
{
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    pid_t cli = fork();
    if (cli == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execl(getenv("MS_BIN"), "mamba-stream", "--model", model, "--alphabet", "caduceus",
              "--fasta", "-", "--format", "wig", "--chunk", "4096", "-q", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    pid_t gen = fork();
    if (gen == 0) { /* writer: a FASTA record of n pseudo-random bases, 80 per line */
        close(out[0]);
        FILE *f = fdopen(in[1], "w");
        fprintf(f, ">long\n");
        uint64_t s = 42;
        char line[81];
        for (int64_t i = 0; i < n;) {
            int k = 0;
            for (; k < 80 && i < n; k++, i++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                line[k] = "ACGT"[s >> 62];
            }
            line[k] = '\n';
            fwrite(line, 1, k + 1, f);
        }
        fclose(f);
        _exit(0);
    }
    close(in[1]);
    FILE *r = fdopen(out[0], "r");
    char buf[256];
    *lines = 0;
    while (fgets(buf, sizeof buf, r))
        if (buf[0] != 't' && buf[0] != 'f') (*lines)++; /* skip track / fixedStep lines */
    fclose(r);
    int status;
    struct rusage ru;
    assert_int_equal(wait4(cli, &status, 0, &ru), cli);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    waitpid(gen, &status, 0);
    return ru.ru_maxrss;
}

static void test_memory_flat(void **st)
{
    char model[4096];
    snprintf(model, sizeof model, "%s/model", tu_tmpdir());
    mkdir(model, 0755);
    ms_random_spec spec = {.arch = MS_ARCH_MAMBA1, .d_model = 16, .n_layer = 1, .vocab = 16,
                           .d_state = 4, .d_conv = 4, .expand = 2, .dtype = MS_DT_F32, .seed = 5};
    assert_int_equal(ms_random_model_write(&spec, model), MS_OK);
    int64_t l1, l50;
    long r1 = score_generated(model, 1000000, &l1);
    long r50 = score_generated(model, 50000000, &l50);
    print_message("  peak RSS: 1 Mbp %ld KiB, 50 Mbp %ld KiB (ratio %.3f)\n", r1, r50, (double)r50 / r1);
    assert_int_equal(l1, 1000000);
    assert_int_equal(l50, 50000000);
    assert_true(r50 <= r1 * 1.10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_memory_flat)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
