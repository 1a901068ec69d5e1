/* bench_peer.h - mamba_ssm as the benchmark's peer (`mamba-stream bench --peer DIR`).
 *
 * The peer's numbers come from bench/peer_mamba_ssm.py, run as a child process with DIR
 * (where mamba_ssm is installed, e.g. by `pip install --target DIR`) at the front of
 * PYTHONPATH: `python3 SCRIPT --json [shapes] --workload W`. It prints one JSON object per
 * line and workload:
 *     {"name": "stream", "tok_per_s": 6.0e5, "peak_gib": 27.5, ...}
 *     {"name": "decode:64", "error": "one line"}
 * (`--check` answers {"name": "check", "mamba_ssm": .., "torch": .., "gpu": ..} or an
 * error). One child per workload, so that a CUDA fault inside mamba_ssm (its Mamba-2 at a
 * million tokens ends in an illegal memory access) costs only that workload's number.
 *
 * The script is the first found of: $MAMBA_STREAM_PEER_SCRIPT, <folder of the executable>
 * /../share/mamba-stream/peer_mamba_ssm.py (installed), the source tree's bench/ (compiled
 * in); the interpreter is $MAMBA_STREAM_PEER_PYTHON, else python3 from PATH. */
#ifndef MS_BENCH_PEER_H
#define MS_BENCH_PEER_H

#include <stdint.h>

#include "mamba_stream.h"

typedef struct {
    const char *dir;        /* --peer DIR */
    const char *python;     /* the interpreter */
    char script[4096];      /* peer_mamba_ssm.py */
    char device[32];        /* "cuda:N" */
    const char *dtype;      /* "bf16" | "fp16" | "fp32": the engine's precision */
    char about[512];        /* "mamba_ssm 2.3.2 (torch 2.11.0) on NVIDIA H200", after open */
} ms_peer;

/* The shapes of the workloads, the same as the engine's. */
typedef struct {
    const char *arch;       /* "mamba1" | "mamba2" */
    int d_model, n_layer;
    int64_t tokens;         /* the long stream, given whole */
    int reads, read_len, reads_per_call;
    int decode_steps, repeats;
} ms_peer_shapes;

typedef struct {
    double tok_s;           /* tokens per second; 0 when the workload failed */
    double peak_gib;        /* the peer's peak device memory */
    char error[96];         /* why it failed: one line without '|' (a Markdown table cell) */
} ms_peer_result;

/* Check DIR, find the script and ask it whether torch, mamba_ssm and a GPU are there.
 * Returns 0 (p->about filled), or -1 after one line on stderr naming DIR and the reason. */
int ms_peer_open(ms_peer *p, const char *dir, int device_index, ms_precision precision);

/* Run one workload ("stream", "reads" or "decode:B") through the peer. Always fills *r:
 * a failure (out of memory, a crash, no answer) is a result, with r->error saying which. */
void ms_peer_run(const ms_peer *p, const ms_peer_shapes *s, const char *workload, ms_peer_result *r);

#endif
