/* test_cuda_util.h - what the GPU tests (tests/test_cuda_*.c, CTest label gpu) share. */
#ifndef MS_TEST_CUDA_UTIL_H
#define MS_TEST_CUDA_UTIL_H

#include <stdio.h>

#include <cuda_runtime_api.h>

/* 1 where the CUDA runtime finds a device; else 0, after "<name>: SKIP: no CUDA device
 * (why)" on stderr: the test then exits 77, which CTest reports as skipped. */
static inline int tu_cuda_device(const char *name)
{
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0) return 1;
    fprintf(stderr, "%s: SKIP: no CUDA device (%s)\n", name,
            e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0");
    return 0;
}

#endif
