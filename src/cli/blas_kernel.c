/* blas_kernel.c - make OpenBLAS use the matrix kernel this CPU can run.
 *
 * OpenBLAS picks its kernels from the CPU model at load time, before main(). A CPU model
 * newer than the OpenBLAS build knows (Debian 12 ships 0.3.21; many cloud Xeons report
 * just "Intel(R) Xeon(R) Processor") falls back to "Prescott", the SSE3 kernels: the
 * projections then run 3-4x slower than with the AVX2/AVX-512 ones the CPU has. The
 * choice can only be changed through OPENBLAS_CORETYPE before the library loads, so when
 * that happens we set it and re-execute ourselves once. A user's own OPENBLAS_CORETYPE is
 * left alone; so is any other BLAS (the symbol is weak: absent, nothing happens). A run on
 * a CUDA device (--device cuda...) does no CPU matrix work and is not re-executed: loading
 * the libraries twice cost it 0.05-0.1 s of its start-up (H200 host: `--help` 0.17-0.21 s
 * re-executed, 0.10-0.11 s not; one read 0.67-0.80 s, 0.63-0.66 s). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

extern char *openblas_get_corename(void) __attribute__((weak));

/* Does the command line ask for a CUDA device (--device cuda, cuda:N, --device=cuda...)? */
static int wants_cuda(char **argv)
{
    for (int i = 1; argv[i]; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--device")) v = argv[i + 1];
        else if (!strncmp(argv[i], "--device=", 9)) v = argv[i] + 9;
        if (v && !strncmp(v, "cuda", 4)) return 1;
    }
    return 0;
}

void ms_blas_pick_kernel(char **argv)
{
    if (!openblas_get_corename || getenv("OPENBLAS_CORETYPE") || wants_cuda(argv)) return;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return;
    const char *want = NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want) return;
    /* the program's real path, so the process keeps its name (not "exe") in ps and top */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return; /* no /proc: carry on with the slower kernels */
    self[n] = 0;
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv(self, argv);
}
