"""trainer.py - the training loop both recipes share.

What mamba_ssm's users expect of a trainer: AdamW with weight decay on weight matrices
only (not norms, biases, A_log, D, dt_bias, embeddings' rows are matrices and decay),
linear warm-up then cosine decay, bf16 autocast on CUDA, gradient accumulation, gradient
clipping, checkpoint and resume, optional gradient checkpointing, a fixed seed, a log of
loss and learning rate (log.tsv) and the loss curve as a plot (loss.png).

A recipe supplies `batch_fn(step, micro) -> inputs` and `loss_fn(model, inputs) ->
(loss, n_items)` plus an optional `eval_fn(model) -> dict` run every eval_every steps.
"""
import json
import math
import os
import random
import time

import numpy as np
import torch

from mamba2 import Mamba2Config

NO_DECAY = ("A_log", "D", "dt_bias", "bias", "norm")


def add_args(ap, *, d_model, layers, d_state, head_dim, batch, steps, lr, warmup, weight_decay):
    """The options every recipe has (model shape, optimiser, schedule, run control), with
    the recipe's defaults."""
    ap.add_argument("--d-model", type=int, default=d_model)
    ap.add_argument("--layers", type=int, default=layers)
    ap.add_argument("--d-state", type=int, default=d_state)
    ap.add_argument("--head-dim", type=int, default=head_dim)
    ap.add_argument("--batch", type=int, default=batch, help="samples per micro-batch")
    ap.add_argument("--accum", type=int, default=1, help="micro-batches per optimiser step")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--weight-decay", type=float, default=weight_decay)
    ap.add_argument("--clip-norm", type=float, default=1.0, help="gradient clipping")
    ap.add_argument("--time-limit", type=float, default=float("inf"),
                    help="seconds of training, then a checkpoint and the export")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--resume", action="store_true", help="go on from OUT/ckpt.pt")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def model_config(a):
    """The Mamba2Config of add_args' shape options (vocabulary 16, SSD chunks of 64)."""
    return Mamba2Config(hidden_size=a.d_model, num_hidden_layers=a.layers, state_size=a.d_state,
                        head_dim=a.head_dim, vocab_size=16, chunk_size=64)


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def base_config(a, n_params, min_lr_ratio, eval_every, log_every, ckpt_every):
    """train()'s configuration from add_args' options (plus what the log should record)."""
    return dict(lr=a.lr, warmup=a.warmup, steps=a.steps, min_lr_ratio=min_lr_ratio,
                accum=a.accum, weight_decay=a.weight_decay, clip=a.clip_norm,
                eval_every=eval_every, log_every=log_every, ckpt_every=ckpt_every,
                resume=a.resume, time_limit_s=a.time_limit,
                grad_checkpointing=a.grad_checkpointing, seed=a.seed, batch=a.batch,
                d_model=a.d_model, layers=a.layers, d_state=a.d_state, head_dim=a.head_dim,
                device=a.device, params=n_params,
                gpu=torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu")


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def param_groups(model, weight_decay):
    """Decay only weight matrices; norms, biases and the SSM's A_log / D / dt_bias not."""
    decay, keep = [], []
    for name, p in model.named_parameters():
        leaf = name.split(".")[-1]
        is_norm = ".norm" in name or name.startswith("norm")
        (keep if p.dim() < 2 or leaf in NO_DECAY or is_norm else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": keep, "weight_decay": 0.0}]


def lr_at(step, cfg):
    """Linear warm-up to cfg['lr'], then cosine down to cfg['lr'] * cfg['min_lr_ratio']."""
    if step < cfg["warmup"]:
        return cfg["lr"] * (step + 1) / cfg["warmup"]
    t = (step - cfg["warmup"]) / max(1, cfg["steps"] - cfg["warmup"])
    floor = cfg["lr"] * cfg["min_lr_ratio"]
    return floor + 0.5 * (cfg["lr"] - floor) * (1 + math.cos(math.pi * min(1.0, t)))


def save_checkpoint(path, model, opt, step, extra):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "torch_rng": torch.get_rng_state(), "np_rng": np.random.get_state(),
                "py_rng": random.getstate(), "extra": extra}, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint whole


def plot_log(rows, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=0.8, label="train")
    ev = [r for r in rows if "val_loss" in r]
    if ev:
        ax.plot([r["step"] for r in ev], [r["val_loss"] for r in ev], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax2 = ax.twinx()
    ax2.plot([r["step"] for r in rows], [r["lr"] for r in rows], color="grey", lw=0.5)
    ax2.set_ylabel("learning rate", color="grey")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def train(model, cfg, batch_fn, loss_fn, eval_fn=None, out_dir="run", title="loss"):
    """Runs cfg['steps'] optimiser steps of cfg['accum'] micro-batches each; resumes from
    out_dir/ckpt.pt when cfg['resume']. Stops early at cfg['time_limit_s'] (the device
    budget), saving a checkpoint. Returns the log rows."""
    os.makedirs(out_dir, exist_ok=True)
    dev = next(model.parameters()).device
    opt = torch.optim.AdamW(param_groups(model, cfg["weight_decay"]), lr=cfg["lr"],
                            betas=(0.9, 0.95), eps=1e-8,
                            **({"fused": True} if dev.type == "cuda" else {}))
    ck_path, log_path = os.path.join(out_dir, "ckpt.pt"), os.path.join(out_dir, "log.tsv")
    step, rows = 0, []
    if cfg.get("resume") and os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        torch.set_rng_state(ck["torch_rng"])
        np.random.set_state(ck["np_rng"])
        random.setstate(ck["py_rng"])
        rows = ck["extra"].get("rows", [])
        print(f"resumed from {ck_path} at step {step}", flush=True)
    if hasattr(model, "backbone"):
        model.backbone.grad_checkpointing = bool(cfg.get("grad_checkpointing"))
    amp = dev.type == "cuda" and cfg.get("bf16", True)
    t0, items, last = time.time(), 0, time.time()
    model.train()
    while step < cfg["steps"]:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for micro in range(cfg["accum"]):
            inputs = batch_fn(step, micro)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                loss, n = loss_fn(model, inputs)
            (loss / cfg["accum"]).backward()
            loss_sum += loss.item() / cfg["accum"]
            items += n
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"]).item()
        opt.step()
        step += 1
        row = {"step": step, "loss": loss_sum, "lr": opt.param_groups[0]["lr"],
               "grad_norm": gnorm, "elapsed_s": time.time() - t0}
        if eval_fn and (step % cfg["eval_every"] == 0 or step == cfg["steps"]):
            model.eval()
            with torch.no_grad(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                                                 enabled=amp):
                row.update(eval_fn(model))
            model.train()
        rows.append(row)
        if step % cfg["log_every"] == 0 or "val_loss" in row:
            rate = items / max(1e-9, time.time() - last)
            items, last = 0, time.time()
            extra = " ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("val"))
            print(f"step {step}/{cfg['steps']} loss {loss_sum:.4f} lr {row['lr']:.2e} "
                  f"gnorm {gnorm:.2f} {rate:,.0f} items/s {extra}", flush=True)
        out_of_time = time.time() - t0 > cfg.get("time_limit_s", float("inf"))
        if step % cfg["ckpt_every"] == 0 or step == cfg["steps"] or out_of_time:
            save_checkpoint(ck_path, model, opt, step, {"rows": rows})
        if out_of_time:
            print(f"time limit reached at step {step}; checkpoint saved (--resume goes on)",
                  flush=True)
            break
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k))
    with open(log_path, "w") as f:
        f.write("\t".join(keys) + "\n")
        for r in rows:
            f.write("\t".join(f"{r[k]:.6g}" if k in r else "" for k in keys) + "\n")
    plot_log(rows, os.path.join(out_dir, "loss.png"), title)
    with open(os.path.join(out_dir, "train_config.json"), "w") as f:
        json.dump({**cfg, "final_step": step, "train_seconds": time.time() - t0}, f, indent=1)
    return rows
