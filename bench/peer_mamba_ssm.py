#!/usr/bin/env python3
"""peer_mamba_ssm.py - the reference workload of BENCHMARKS.md through mamba_ssm, the peer.

`mamba-stream bench --peer DIR` runs this script once per workload, with DIR (where
mamba_ssm is installed, e.g. `pip install --target DIR`) at the front of PYTHONPATH, and
prints mamba_ssm's numbers beside its own; it can also be run by hand:

    PYTHONPATH=DIR python3 bench/peer_mamba_ssm.py --arch mamba1 [--workload stream,decode:1]

The model is built through mamba_ssm's own classes (MambaLMHeadModel + MambaConfig, its
random initialisation) in the shape of the reference workload: d_model x n_layer, expand 2,
vocabulary 16, RMSNorm, fused add+norm where its Triton kernels import, residual in
float32, tied embeddings; Mamba-1 d_state 16, Mamba-2 d_state 128 and head_dim 64, d_conv 4.
Only mamba_ssm's public Python API is called; nothing of it is copied here.

Workloads (the same shapes as `mamba-stream bench`):
  stream     one sequence of --tokens tokens in one forward call (mamba_ssm cannot carry
             state across chunks, so it holds the whole sequence); scored
  reads      --reads reads of --read-len tokens, --reads-per-call per forward call; scored
  decode:B   B sequences one token per step, --decode-steps steps per run, through
             mamba_ssm's CUDA-graph decoding (utils.generation.update_graph_cache, as its
             generate(cg=True) does), or its step() path in a loop if capture fails
Scoring = forward + log_softmax + the log-prob of each next token (gather), on the device.
Each time is the median of --repeats runs timed with CUDA events after a warm-up run of
the same shapes, on random token ids.

Output: with --json one JSON object per line and workload:
  {"name": "stream", "tok_per_s": .., "ms_per_token": .., "peak_gib": .., "note": ..}
  {"name": "decode:64", "tok_per_s": .., "ms_per_step": .., "peak_gib": .., "note": ..}
  {"name": .., "error": "one line"}            (out of memory, a CUDA error, a timeout)
peak_gib is torch.cuda.max_memory_allocated over the workload (weights included).
--check only imports torch and mamba_ssm and looks for a GPU: one object with "mamba_ssm",
"torch" and "gpu", or "error"; exit status 1 on error.
Exit status 0 once every workload has its line (failures included), 2 for bad arguments.
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time
import warnings

VOCAB = 16


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="peer_mamba_ssm.py",
        description="Time mamba_ssm on the reference workload of BENCHMARKS.md "
                    "(run by `mamba-stream bench --peer DIR`).")
    ap.add_argument("--json", action="store_true", help="one JSON object per line and workload")
    ap.add_argument("--check", action="store_true",
                    help="only check that torch, mamba_ssm and a GPU are there")
    ap.add_argument("--arch", choices=["mamba1", "mamba2"], default="mamba1")
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--n-layer", type=int, default=24)
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16",
                    help="weights and activations [bf16]")
    ap.add_argument("--state-dtype", choices=["fp32", "model"], default="fp32",
                    help="decode state: float32 like mamba-stream [fp32], or the model dtype "
                         "as mamba_ssm's generate() allocates it")
    ap.add_argument("--device", default="cuda", help="cuda or cuda:N [cuda]")
    ap.add_argument("--workload", default="stream,reads,decode:1,decode:64,decode:1024",
                    help="comma-separated: stream, reads, decode:B [all of them]")
    ap.add_argument("--tokens", type=int, default=1048576, help="stream length [1048576]")
    ap.add_argument("--reads", type=int, default=4096, help="[4096]")
    ap.add_argument("--read-len", type=int, default=160, help="[160]")
    ap.add_argument("--reads-per-call", type=int, default=512, help="[512]")
    ap.add_argument("--decode-steps", type=int, default=32, help="steps per timed run [32]")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs, median reported [3]")
    ap.add_argument("--no-graphs", action="store_true", help="decode without CUDA graphs")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds per workload before it is reported as failed [900]")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    workloads = [w.strip() for w in a.workload.split(",") if w.strip()]
    for w in workloads:
        ok = w in ("stream", "reads") or (w.startswith("decode:") and w[7:].isdigit()
                                          and int(w[7:]) > 0)
        if not ok:
            ap.error(f"--workload: unknown workload '{w}' (stream, reads, decode:B)")
    for name in ("d_model", "n_layer", "tokens", "reads", "read_len", "reads_per_call",
                 "decode_steps", "repeats"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    a.workloads = workloads
    return a


def one_line(e):
    """An exception as one short line (JSON-safe, no table separators)."""
    s = f"{type(e).__name__}: {e}".strip().splitlines()
    s = s[0] if s else type(e).__name__
    return s.replace("|", "/")[:200]


def emit(a, obj):
    if a.json:
        print(json.dumps(obj), flush=True)
    elif "error" in obj:
        print(f"{obj['name']:>12}: fails: {obj['error']}", flush=True)
    else:
        ms = f"{obj['ms_per_step']:.3f} ms/step" if "ms_per_step" in obj else \
             f"{obj['ms_per_token'] * 1e3:.3f} us/token"
        print(f"{obj['name']:>12}: {obj['tok_per_s']:12.0f} tok/s  {ms}  peak "
              f"{obj['peak_gib']:.2f} GiB  {obj.get('note', '')}", flush=True)


def check(a):
    """Import what the workloads need; the reason as one line if something is missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
            import mamba_ssm
            from mamba_ssm.models.config_mamba import MambaConfig  # noqa: F401
            from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel  # noqa: F401
            from mamba_ssm.utils.generation import InferenceParams, update_graph_cache  # noqa: F401
        if not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} sees no CUDA device")
        dev = torch.device(a.device)
        return {"name": "check", "mamba_ssm": mamba_ssm.__version__, "torch": torch.__version__,
                "gpu": torch.cuda.get_device_name(dev),
                "path": os.path.dirname(os.path.dirname(os.path.abspath(mamba_ssm.__file__)))}
    except Exception as e:  # ImportError, a broken extension, no GPU: all one line
        return {"name": "check", "error": one_line(e)}


def build_model(a, torch, dev, dtype):
    """A random reference-shaped model through mamba_ssm's classes; (model, note)."""
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel, rms_norm_fn
    import importlib.util
    notes = []
    have_conv = importlib.util.find_spec("causal_conv1d") is not None
    if a.arch == "mamba1":
        ssm_cfg = {"layer": "Mamba1", "d_state": 16, "d_conv": 4, "expand": 2}
    else:
        ssm_cfg = {"layer": "Mamba2", "d_state": 128, "d_conv": 4, "expand": 2, "headdim": 64,
                   "ngroups": 1, "chunk_size": 256}
        if not have_conv:
            # Mamba2's fused path calls causal_conv1d's kernel unconditionally; without that
            # package only its unfused path (nn.Conv1d + the Triton SSD scan) runs.
            ssm_cfg["use_mem_eff_path"] = False
            notes.append("unfused (no causal_conv1d)")
    if a.arch == "mamba1" and not have_conv:
        notes.append("no causal_conv1d")
    fused = rms_norm_fn is not None
    if not fused:
        notes.append("no fused add+norm")
    cfg = MambaConfig(d_model=a.d_model, n_layer=a.n_layer, vocab_size=VOCAB, ssm_cfg=ssm_cfg,
                      rms_norm=True, residual_in_fp32=True, fused_add_norm=fused,
                      pad_vocab_size_multiple=1, tie_embeddings=True)
    torch.manual_seed(a.seed)
    model = MambaLMHeadModel(cfg, device=dev, dtype=dtype).eval()
    return model, notes


def timed(torch, fn, repeats):
    """Median seconds of `repeats` runs of fn, by CUDA events, after fn has been warmed up."""
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def score_fn(torch, model):
    def score(ids):
        logits = model(ids).logits  # [B, L, V]
        lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        return lp.gather(-1, ids[:, 1:, None])  # log-prob of each next token
    return score


def run_stream(a, torch, model, dev):
    ids = torch.randint(0, VOCAB, (1, a.tokens), device=dev)
    score = score_fn(torch, model)
    score(ids)  # warm-up: Triton compilation and autotuning, cuBLAS, the allocator
    torch.cuda.synchronize()
    s = timed(torch, lambda: score(ids), a.repeats)
    return {"tok_per_s": a.tokens / s, "ms_per_token": 1e3 * s / a.tokens}


def run_reads(a, torch, model, dev):
    ids = torch.randint(0, VOCAB, (a.reads, a.read_len), device=dev)
    score = score_fn(torch, model)
    per = min(a.reads_per_call, a.reads)
    batches = [ids[r:r + per] for r in range(0, a.reads, per)]
    score(batches[0])  # warm-up, for each batch shape
    if batches[-1].shape[0] != per:
        score(batches[-1])
    torch.cuda.synchronize()

    def all_reads():
        for b in batches:
            score(b)
    s = timed(torch, all_reads, a.repeats)
    n = a.reads * a.read_len
    return {"tok_per_s": n / s, "ms_per_token": 1e3 * s / n}


def decode_step_fn(a, torch, model, batch, dev):
    """One decode step as mamba_ssm's generate() runs it: a captured CUDA graph of the
    model at one token per sequence (update_graph_cache), else the step() path in a loop.
    Returns (step(ids, pos, t), note)."""
    from mamba_ssm.utils.generation import InferenceParams, update_graph_cache
    state_dtype = torch.float32 if a.state_dtype == "fp32" else None  # None: the model's
    steps = a.decode_steps + 2
    if not a.no_graphs:
        try:
            cache = update_graph_cache(model, None, batch, 1, steps, dtype=state_dtype)
            return cache.run, "CUDA graphs"
        except Exception as e:
            note = "no CUDA graphs (" + one_line(e)[:80] + ")"
            torch.cuda.synchronize()
    else:
        note = "no CUDA graphs"
    params = InferenceParams(max_seqlen=steps, max_batch_size=batch)
    params.key_value_memory_dict = model.allocate_inference_cache(batch, steps, dtype=state_dtype)
    params.seqlen_offset = 1  # > 0: every call is one step() from the cached state

    def step(ids, pos, t):
        return model(ids, position_ids=pos, inference_params=params, num_last_tokens=1).logits
    return step, note


def run_decode(a, torch, model, dev, batch):
    step, note = decode_step_fn(a, torch, model, batch, dev)
    ids = torch.randint(0, VOCAB, (batch, 1), device=dev)
    pos = torch.zeros((batch, 1), dtype=torch.long, device=dev)

    def steps():
        for t in range(a.decode_steps):
            step(ids, pos, t + 1)
    steps()  # warm-up; leaves the state non-zero for the timed runs
    torch.cuda.synchronize()
    s = timed(torch, steps, a.repeats) / a.decode_steps
    return {"tok_per_s": batch / s, "ms_per_step": 1e3 * s, "note": note}


def run_workload(a, torch, model, dev, w):
    if w == "stream":
        return run_stream(a, torch, model, dev)
    if w == "reads":
        return run_reads(a, torch, model, dev)
    return run_decode(a, torch, model, dev, int(w[7:]))


def main(argv):
    a = parse_args(argv)
    if a.check:
        r = check(a)
        print(json.dumps(r), flush=True)
        os._exit(1 if "error" in r else 0)
    r = check(a)
    if "error" in r:
        for w in a.workloads:
            emit(a, {"name": w, "error": r["error"]})
        sys.stdout.flush()
        os._exit(1)
    import torch
    dev = torch.device(a.device)
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    if not a.json:
        print(f"mamba_ssm {r['mamba_ssm']} (torch {torch.__version__}) on {r['gpu']}: "
              f"{a.arch} {a.d_model}x{a.n_layer}, {a.dtype}", flush=True)
    current = {"name": None}

    def watchdog():  # a hung kernel or allocator: report and leave
        emit(a, {"name": current["name"], "error": f"timed out after {a.timeout:.0f} s"})
        sys.stdout.flush()
        os._exit(3)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, notes = build_model(a, torch, dev, dtype)
    except Exception as e:
        for w in a.workloads:
            emit(a, {"name": w, "error": "building the model: " + one_line(e)})
        sys.stdout.flush()
        os._exit(1)
    for w in a.workloads:
        current["name"] = w
        timer = threading.Timer(a.timeout, watchdog)
        timer.daemon = True
        timer.start()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        try:
            with torch.inference_mode():
                res = run_workload(a, torch, model, dev, w)
            out = {"name": w, **res, "peak_gib": torch.cuda.max_memory_allocated(dev) / 2**30}
            out["note"] = ", ".join(notes + ([res["note"]] if "note" in res else []))
        except Exception as e:  # out of memory, a CUDA or cuBLAS error: the workload fails
            out = {"name": w, "error": one_line(e)}
        timer.cancel()
        emit(a, out)
        if a.json:  # the table has no room for the notes (graphs or not, fused or not)
            what = out.get("error") or f"{out['tok_per_s']:.0f} tok/s, peak {out['peak_gib']:.2f} GiB"
            print(f"peer_mamba_ssm: {a.arch} {w}: {what}" +
                  (f" ({out['note']})" if out.get("note") else ""), file=sys.stderr, flush=True)
    sys.stdout.flush()
    # A CUDA fault can make interpreter teardown hang or abort; every line is out already.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
