/* blas_kernel.c - make OpenBLAS use the matrix kernel this CPU can run.
 *
 * OpenBLAS picks its kernels from the CPU model at load time, before main(). A CPU model
 * newer than the OpenBLAS build knows (Debian 12 ships 0.3.21; many cloud Xeons report
 * just "Intel(R) Xeon(R) Processor") falls back to "Prescott", the SSE3 kernels: the
 * projections then run 3-4x slower than with the AVX2/AVX-512 ones the CPU has. The
 * choice can only be changed through OPENBLAS_CORETYPE before the library loads, so when
 * that happens we set it and re-execute ourselves once. A user's own OPENBLAS_CORETYPE is
 * left alone; so is any other BLAS (the symbol is weak: absent, nothing happens). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

extern char *openblas_get_corename(void) __attribute__((weak));

void ms_blas_pick_kernel(char **argv)
{
    if (!openblas_get_corename || getenv("OPENBLAS_CORETYPE")) return;
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
