/* test_cli_logits.c - `mamba-stream logits` (the verification entry point) end to end:
 * every fixture's reference input_ids through the CLI at several --chunk values, the
 * written logits/hidden within 1e-5 of the float64 references; bad --ids files refused
 * with one line and no output file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mamba_stream.h"
#include "safetensors.h"
#include "test_util.h"

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void compare(const char *out, const char *ref, const char *name, const char *what)
{
    ms_st_set *a, *b;
    assert_int_equal(ms_st_open_file(out, &a), MS_OK);
    assert_int_equal(ms_st_open_file(ref, &b), MS_OK);
    const char *names[] = {"logits", "hidden"};
    for (int k = 0; k < 2; k++) {
        const ms_st_tensor *x = ms_st_find(a, names[k]), *y = ms_st_find(b, names[k]);
        assert_non_null(x);
        assert_int_equal(x->dtype, MS_DT_F32);
        assert_int_equal(x->n_dim, 3);
        for (int d = 0; d < 3; d++) assert_int_equal(x->shape[d], y->shape[d]);
        float *fx = malloc(sizeof(float) * x->n_elem), *fy = malloc(sizeof(float) * y->n_elem);
        assert_int_equal(ms_st_to_f32(x, fx), MS_OK);
        assert_int_equal(ms_st_to_f32(y, fy), MS_OK);
        double e = tu_rel_err(fx, fy, x->n_elem);
        print_message("  %-18s %-10s %s %.2e\n", name, what, names[k], e);
        assert_true(e <= 1e-5);
        free(fx); free(fy);
    }
    ms_st_close(a);
    ms_st_close(b);
}

static void test_fixtures(void **st)
{
    const char *bin = getenv("MS_BIN");
    assert_non_null(bin);
    const char *chunks[] = {"", "--chunk 1", "--chunk 13"};
    for (int i = 0; i < tu_n_fixtures; i++)
        for (int c = 0; c < 3; c++) {
            char out[4096], cmd[16384], ref[4200];
            const char *dir = tu_fixture_dir(tu_fixture_names[i]);
            snprintf(ref, sizeof ref, "%s/reference.safetensors", dir);
            snprintf(out, sizeof out, "%s/out-%d-%d.safetensors", tu_tmpdir(), i, c);
            snprintf(cmd, sizeof cmd, "'%s' logits --model '%s' --ids '%s' --out '%s' %s", bin, dir,
                     ref, out, chunks[c]);
            assert_int_equal(run(cmd), 0);
            compare(out, ref, tu_fixture_names[i], c ? chunks[c] + 2 : "whole");
        }
}

/* Bad inputs: non-zero exit, one stderr line naming the file, no output written. */
static void test_bad_ids(void **st)
{
    const char *bin = getenv("MS_BIN");
    const char *dir = tu_tmpdir();
    char ids[4096], out[4096], err[4096], cmd[16384];
    snprintf(out, sizeof out, "%s/bad-out.safetensors", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);
    /* 1: no input_ids tensor; 2: token out of range; 3: float ids; 4: not safetensors */
    for (int k = 1; k <= 4; k++) {
        snprintf(ids, sizeof ids, "%s/ids%d.safetensors", dir, k);
        int64_t v[4] = {0, 1, 2, k == 2 ? 99 : 3};
        float fv[4] = {0, 1, 2, 3};
        ms_st_out t = {k == 1 ? "tokens" : "input_ids", k == 3 ? MS_DT_F32 : MS_DT_I64, 2, {1, 4},
                       k == 3 ? (const void *)fv : (const void *)v};
        if (k == 4) assert_int_equal(tu_write_file(ids, "not a safetensors file", 22), 0);
        else assert_int_equal(ms_st_write(ids, &t, 1), MS_OK);
        snprintf(cmd, sizeof cmd, "'%s' logits --model '%s' --ids '%s' --out '%s' 2>'%s'", bin,
                 tu_fixture("hf/mamba1-tiny-hf"), ids, out, err);
        assert_int_not_equal(run(cmd), 0);
        assert_int_equal(access(out, F_OK), -1);
        FILE *f = fopen(err, "r");
        char line[2048] = {0}, extra[2048];
        assert_non_null(fgets(line, sizeof line, f));
        assert_null(fgets(extra, sizeof extra, f)); /* exactly one line */
        fclose(f);
        print_message("  bad ids %d: %s", k, line);
        assert_non_null(strstr(line, ids));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_bad_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
