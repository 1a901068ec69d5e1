"""export.py - write a trained model in the Hugging Face layout mamba-stream loads.

    config.json             transformers' Mamba2 config + our "mamba_stream" section
    model.safetensors       the state dict, bf16 (or fp16 / fp32)
    reference.safetensors   inputs and float32 PyTorch outputs of the exported weights

The reference is computed from the weights as stored (rounded to bf16, then run in
float32), so the C engine must reproduce it to float32 accuracy: tests/test_models.c
checks that in CI. Where transformers is installed, the exported directory is also loaded
with transformers' own Mamba2ForCausalLM and its logits compared (an implementation we
did not write); the difference goes into export.json.
"""
import json
import os
import struct

import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: torch tensor}. The format: u64 header length, JSON header, data."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype in (torch.bfloat16, torch.float16) \
            else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)  # data aligned to 8 bytes
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def rounded_state(model, dtype):
    """The state dict as stored: every float tensor rounded to dtype."""
    return {k: v.detach().to(dtype) for k, v in model.state_dict().items()}


def export(model, out_dir, config, ref_inputs, forward_ref, dtype=torch.bfloat16):
    """Writes the three files. forward_ref(model, inputs) -> {name: float32 tensor} runs the
    float32 model on the reference inputs (a dict of tensors, saved too)."""
    os.makedirs(out_dir, exist_ok=True)
    state = rounded_state(model, dtype)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), state,
                      {"format": "pt", "producer": "mamba-stream train/"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    # The float32 reference of the rounded weights, on the CPU (deterministic).
    ref_model = _clone_float32(model, state)
    with torch.no_grad():
        outs = forward_ref(ref_model, ref_inputs)
    write_safetensors(os.path.join(out_dir, "reference.safetensors"),
                      {**ref_inputs, **{k: v.float() for k, v in outs.items()}})
    return ref_model, outs


def _clone_float32(model, state):
    import copy
    m = copy.deepcopy(model).cpu().float()
    m.load_state_dict({k: v.float() for k, v in state.items()})
    m.eval()
    return m


def check_with_transformers(out_dir, ids, logits):
    """Load out_dir with transformers' Mamba2ForCausalLM (torch_forward path, float32, CPU)
    and return the largest |difference| of its logits from ours, or None if transformers
    is missing."""
    try:
        from transformers import Mamba2ForCausalLM
    except ImportError:
        return None
    hf = Mamba2ForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = hf(input_ids=ids).logits
    return float((theirs - logits).abs().max())


def file_sizes(out_dir):
    return {f: os.path.getsize(os.path.join(out_dir, f)) for f in sorted(os.listdir(out_dir))}

