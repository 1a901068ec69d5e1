// launch.cu - the per-thread switch of programmatic dependent launch (cuda_dtype.cuh's
// ms_launch), and whether this build and device can take it.
#include "cuda_dtype.cuh"

/* per thread: contexts on other threads (reads, audio) keep their own setting */
static thread_local int pdl_on = 0;

int ms_cu_pdl_on(void) { return pdl_on; }

extern "C" int ms_cu_set_pdl(int on)
{
    const int prev = pdl_on;
    pdl_on = on;
    return prev;
}

/* compiled like every kernel here: its virtual architecture (the __CUDA_ARCH__ the kernels
 * saw) says whether ms_pdl_wait is real */
__global__ void pdl_probe_kernel() { ms_pdl_wait(); }

extern "C" int ms_cu_pdl_supported(void)
{
    int dev = 0, major = 0;
    cudaFuncAttributes fa;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaFuncGetAttributes(&fa, pdl_probe_kernel) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return major >= 9 && fa.ptxVersion >= 90;
}
