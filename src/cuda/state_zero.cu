// state_zero.cu - zeros of reset streams' states, for the forwards whose kernels read a
// state without asking ms_cu_batch.fresh (decode: cuda_backend.c, "Fresh streams").
// Why a kernel: a reset used to be one cudaMemsetAsync and a stream synchronisation per
// stream (512 of them before each call of bench's reads); this is one launch per 32
// streams, enqueued with the forward. The pointers travel as a kernel argument, so
// nothing is uploaded and a forward replayed from a graph is not involved.
// Grid (blocks per state, ceil(n / 32) launches of up to 32 states), 256 threads, float4
// stores where the state is 16-byte aligned.
#include "cuda_dtype.cuh"

#define ZERO_PER_LAUNCH 32

typedef struct {
    float *p[ZERO_PER_LAUNCH];
} zero_ptrs;

__global__ void zero_states_kernel(zero_ptrs z, size_t floats)
{
    float *st = z.p[blockIdx.y];
    const size_t step = (size_t)gridDim.x * blockDim.x;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if ((uintptr_t)st % 16 == 0) {
        float4 *s4 = reinterpret_cast<float4 *>(st);
        for (; i < floats / 4; i += step) s4[i] = make_float4(0.f, 0.f, 0.f, 0.f);
        i = floats / 4 * 4 + blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    }
    for (; i < floats; i += step) st[i] = 0.f;
}

extern "C" cudaError_t ms_cu_zero_states(float *const *states, int n, size_t floats,
                                         cudaStream_t stream)
{
    /* a block per 8 K floats, at most 64 per state */
    size_t bx = (floats + 8191) / 8192;
    if (bx > 64) bx = 64;
    if (bx < 1) bx = 1;
    for (int i0 = 0; i0 < n; i0 += ZERO_PER_LAUNCH) {
        const int k = n - i0 < ZERO_PER_LAUNCH ? n - i0 : ZERO_PER_LAUNCH;
        zero_ptrs z;
        memset(&z, 0, sizeof z);
        for (int j = 0; j < k; j++) z.p[j] = states[i0 + j];
        zero_states_kernel<<<dim3((unsigned)bx, k), 256, 0, stream>>>(z, floats);
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}
