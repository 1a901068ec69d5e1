#!/usr/bin/env python3
"""train_dna.py - train the single-base causal DNA language model and export it.

    python3 train/dna/train_dna.py --data data/dna --out runs/dna --export models/dna-mamba2-small

Data: train/dna/prepare.py's train.npz / val.npz (real genomes, split by genome). Samples
are windows of --seq-len bases (thousands: the model must learn to use long context),
each taken from a random position on a random strand. Tokens are the Caduceus / HyenaDNA
character ids (A7 C8 G9 T10 N11), so the exported model reads FASTA with no tokenizer.
Loss: next-base cross-entropy over every position; validation: bits per base on fixed
windows of val.npz (held-out ends of the training genomes).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from export import check_with_transformers, export, file_sizes  # noqa: E402
from mamba2 import Mamba2LM  # noqa: E402
from trainer import add_args, base_config, count_params, model_config, seed_all, train  # noqa: E402

TOKEN_OFFSET = 7          # code c (A0 C1 G2 T3 N4) -> token c + 7
ALPHABET = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)


def load(path):
    z = np.load(path)
    return z["seq"]


def window_batch(seq, rng, n, length):
    """n windows of length+1 codes, each on a random strand."""
    starts = rng.integers(0, len(seq) - length - 1, size=n)
    idx = starts[:, None] + np.arange(length + 1)[None, :]
    w = seq[idx]
    flip = rng.random(n) < 0.5
    w[flip] = COMPLEMENT[w[flip][:, ::-1]]
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/dna")
    ap.add_argument("--out", default="runs/dna")
    ap.add_argument("--export", default="models/dna-mamba2-small")
    add_args(ap, d_model=256, layers=8, d_state=64, head_dim=32, batch=32, steps=1100,
             lr=2e-3, warmup=100, weight_decay=0.1)
    ap.add_argument("--seq-len", type=int, default=4096, help="bases per window")
    a = ap.parse_args()

    seed_all(a.seed)
    train_seq, val_seq = load(os.path.join(a.data, "train.npz")), load(os.path.join(a.data, "val.npz"))
    cfg_m = model_config(a)
    model = Mamba2LM(cfg_m).to(a.device)
    n_params = count_params(model)
    print(f"model: {n_params:,} parameters; train {len(train_seq):,} bp, val {len(val_seq):,} bp",
          flush=True)

    rng = np.random.default_rng(a.seed)
    val_rng = np.random.default_rng(12345)
    val_windows = torch.from_numpy(
        window_batch(val_seq, val_rng, 64, min(a.seq_len, len(val_seq) // 8)).astype(np.int64)
        + TOKEN_OFFSET)

    def batch_fn(step, micro):
        w = window_batch(train_seq, rng, a.batch, a.seq_len).astype(np.int64) + TOKEN_OFFSET
        return torch.from_numpy(w).to(a.device, non_blocking=True)

    def loss_fn(m, ids):
        logits = m(ids[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        return loss, ids.numel()

    def eval_fn(m):
        tot, n = 0.0, 0
        for i in range(0, len(val_windows), 16):
            ids = val_windows[i:i + 16].to(a.device)
            logits = m(ids[:, :-1]).float()
            tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                   reduction="sum").item()
            n += ids[:, 1:].numel()
        return {"val_loss": tot / n, "val_bits_per_base": tot / n / math.log(2)}

    tcfg = base_config(a, n_params, min_lr_ratio=0.1, eval_every=max(1, a.steps // 10),
                       log_every=20, ckpt_every=200)
    tcfg["seq_len"] = a.seq_len
    t0 = time.time()
    rows = train(model, tcfg, batch_fn, loss_fn, eval_fn, out_dir=a.out,
                 title=f"DNA Mamba-2 {a.d_model}x{a.layers}: next-base loss (nats)")
    train_s = time.time() - t0

    # Export: HF Mamba2 layout + our section (alphabet, bos) + a reference of 2 x 512 bases.
    config = cfg_m.hf_dict()
    config.update(bos_token_id=2, eos_token_id=1, pad_token_id=4, dtype="bfloat16",
                  transformers_version="5.17.0")
    config["mamba_stream"] = {"alphabet": ALPHABET, "bos": 2, "unk": 6, "task": "lm"}
    ref_ids = torch.from_numpy(val_windows[:2, :512].numpy().copy())
    model.eval()
    ref_model, outs = export(
        model, a.export, config, {"input_ids": ref_ids},
        lambda m, inp: {"logits": m(inp["input_ids"]),
                        "hidden": m.backbone(inp["input_ids"])})
    diff = check_with_transformers(a.export, ref_ids, outs["logits"])
    last_val = [r for r in rows if "val_bits_per_base" in r][-1]
    report = {"params": n_params, "train_seconds": train_s, "steps": rows[-1]["step"],
              "tokens": rows[-1]["step"] * a.batch * a.accum * a.seq_len,
              "final_train_loss": rows[-1]["loss"],
              "val_bits_per_base": last_val["val_bits_per_base"],
              "transformers_max_abs_logit_diff": diff, "files": file_sizes(a.export),
              "gpu": tcfg["gpu"], "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(a.export, "export.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
    main()
