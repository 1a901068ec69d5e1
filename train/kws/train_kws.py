#!/usr/bin/env python3
"""train_kws.py - train the keyword spotter (causal Mamba-2 on log-mel frames) and export it.

    python3 train/kws/train_kws.py --data data/kws --out runs/kws --export models/kws-mamba2-small

Data: train/kws/make_dataset.py's kws_{train,val,test}.npz (espeak-ng + sox clips, split
by speaker, features from scripts/logmel.py = the engine's front end, uint8-quantised).

The model must serve both of the engine's modes (src/cli/cmd_audio.c):
  - clip mode: a fresh state per 1 s clip, logits averaged over its frames ("pooling":
    "mean") -> one label;
  - live mode: one stream that never resets, per-frame posteriors averaged over a window
    (recognize.h) -> detections.
So a training sample is --clips clips back to back in one stream, and the loss has two
parts: the clip loss (mean-pooled logits of each clip -> its label) and a frame loss
(frames after the word has ended -> the word's label, frames before it started ->
_silence_, frames of the word itself unsupervised). The first clip of each sample starts
from a fresh state, exactly as clip mode does.
Augmentation on top of the sox one baked into the clips: SpecAugment-style frequency and
time masks and a random gain (a constant added to log energies, before standardising).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from export import export, file_sizes  # noqa: E402
from mamba2 import Mamba2Classifier  # noqa: E402
from trainer import add_args, base_config, count_params, model_config, seed_all, train  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
IGNORE = -100
TAIL_FRAMES = 2  # frames after word_end still unsupervised (the word's last phone)


def load_split(path):
    z = np.load(path)
    feats = z["q_lo"] + z["feats"].astype(np.float32) * z["q_scale"]
    return {"feats": feats.astype(np.float32), "label": z["label"].astype(np.int64),
            "start": z["word_start"].astype(np.int64), "end": z["word_end"].astype(np.int64),
            "labels": [str(s) for s in z["labels"]]}


def frame_targets(label, start, end, n_frames, silence):
    """Per-frame target of one clip [n_frames]: silence before the word, ignored during it
    and just after, the clip's label after it; silence clips are silence throughout."""
    t = np.full(n_frames, IGNORE, dtype=np.int64)
    if start < 0:
        t[:] = silence
        return t
    t[:max(0, start)] = silence
    t[min(n_frames, end + TAIL_FRAMES):] = label
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/kws")
    ap.add_argument("--out", default="runs/kws")
    ap.add_argument("--export", default="models/kws-mamba2-small")
    add_args(ap, d_model=128, layers=4, d_state=32, head_dim=32, batch=64, steps=3000,
             lr=3e-3, warmup=150, weight_decay=0.05)
    ap.add_argument("--clips", type=int, default=4, help="clips per training stream")
    ap.add_argument("--detector", default="300:0.6",
                    help="live detector defaults WINDOW_MS:THRESHOLD written to config.json, "
                         "chosen on the validation stream (eval_kws.py --stream stream_val.wav)")
    a = ap.parse_args()

    seed_all(a.seed)
    tr = load_split(os.path.join(a.data, "kws_train.npz"))
    va = load_split(os.path.join(a.data, "kws_val.npz"))
    te = load_split(os.path.join(a.data, "kws_test.npz"))
    labels = tr["labels"]
    silence = labels.index("_silence_")
    n_frames, n_mels = tr["feats"].shape[1:]
    # Per-bin standardisation, declared in config.json so the engine applies it too.
    mean = tr["feats"].mean(axis=(0, 1))
    std = tr["feats"].std(axis=(0, 1)) + 1e-3
    targets = np.stack([frame_targets(l, s, e, n_frames, silence)
                        for l, s, e in zip(tr["label"], tr["start"], tr["end"])])

    dev = a.device
    feats_t = torch.from_numpy(tr["feats"]).to(dev)
    targets_t = torch.from_numpy(targets).to(dev)
    label_t = torch.from_numpy(tr["label"]).to(dev)
    mean_t, std_t = torch.from_numpy(mean).to(dev), torch.from_numpy(std).to(dev)
    gen = torch.Generator(device=dev).manual_seed(a.seed)

    cfg_m = model_config(a)
    model = Mamba2Classifier(cfg_m, n_mels, len(labels)).to(dev)
    n_params = count_params(model)
    print(f"model: {n_params:,} parameters; clips train {len(tr['label'])}, val "
          f"{len(va['label'])}, test {len(te['label'])}", flush=True)

    def augment(x):
        """x [B, K, F, M] log-mel: random gain, one frequency mask, one time mask per clip."""
        B, K, Fn, M = x.shape
        x = x + (torch.rand(B, K, 1, 1, device=dev, generator=gen) - 0.5) * 2.0
        f0 = torch.randint(0, M, (B, K, 1, 1), device=dev, generator=gen)
        fw = torch.randint(0, 6, (B, K, 1, 1), device=dev, generator=gen)
        m = torch.arange(M, device=dev).view(1, 1, 1, M)
        x = torch.where((m >= f0) & (m < f0 + fw), mean_t.view(1, 1, 1, M), x)
        t0 = torch.randint(0, Fn, (B, K, 1, 1), device=dev, generator=gen)
        tw = torch.randint(0, 8, (B, K, 1, 1), device=dev, generator=gen)
        t = torch.arange(Fn, device=dev).view(1, 1, Fn, 1)
        return torch.where((t >= t0) & (t < t0 + tw), mean_t.view(1, 1, 1, M), x)

    def batch_fn(step, micro):
        idx = torch.randint(0, feats_t.shape[0], (a.batch, a.clips), device=dev, generator=gen)
        x = augment(feats_t[idx])                       # [B, K, F, M]
        x = (x - mean_t) / std_t
        return x.reshape(a.batch, a.clips * n_frames, n_mels), targets_t[idx], label_t[idx]

    def loss_fn(m, inp):
        x, ft, cl = inp
        logits = m(x).float()                           # [B, K*F, n_labels]
        per_clip = logits.reshape(a.batch, a.clips, n_frames, -1)
        clip_loss = F.cross_entropy(per_clip.mean(2).reshape(-1, per_clip.shape[-1]), cl.reshape(-1))
        frame_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ft.reshape(-1),
                                     ignore_index=IGNORE)
        return clip_loss + frame_loss, a.batch * a.clips

    def clip_accuracy(m, split):
        """Clip mode exactly: fresh state per clip, mean-pooled logits."""
        x = (torch.from_numpy(split["feats"]).to(dev) - mean_t) / std_t
        pred = torch.cat([m(x[i:i + 512]).float().mean(1).argmax(-1) for i in range(0, len(x), 512)])
        return pred.cpu().numpy()

    def eval_fn(m):
        pred = clip_accuracy(m, va)
        return {"val_acc": float((pred == va["label"]).mean())}

    tcfg = base_config(a, n_params, min_lr_ratio=0.05, eval_every=max(1, a.steps // 15),
                       log_every=50, ckpt_every=500)
    tcfg["clips"] = a.clips
    t0 = time.time()
    rows = train(model, tcfg, batch_fn, loss_fn, eval_fn, out_dir=a.out,
                 title=f"keywords Mamba-2 {a.d_model}x{a.layers}: clip + frame loss")
    train_s = time.time() - t0

    model.eval()
    with torch.no_grad():
        test_pred = clip_accuracy(model, te)
    test_acc = float((test_pred == te["label"]).mean())

    with open(os.path.join(HERE, "frontend.json")) as f:
        frontend = json.load(f)
    frontend["normalize"] = {"mean": [round(float(v), 6) for v in mean],
                             "std": [round(float(v), 6) for v in std]}
    config = cfg_m.hf_dict()
    config.update(dtype="bfloat16", transformers_version="5.17.0")
    win, thr = a.detector.split(":")
    config["mamba_stream"] = {"task": "classify", "pooling": "mean", "labels": labels,
                              "frontend": frontend,
                              "detector": {"average_window_ms": int(win), "threshold": float(thr)}}
    # Reference: 4 test clips (standardised features, as the engine feeds the backbone
    # after its front end) and the float32 logits at every frame.
    ref_x = ((torch.from_numpy(te["feats"][:4]) - torch.from_numpy(mean)) / torch.from_numpy(std))
    export(model, a.export, config, {"features": ref_x.float().contiguous()},
           lambda m, inp: {"logits": m(inp["features"])})
    report = {"params": n_params, "train_seconds": train_s, "steps": rows[-1]["step"],
              "clips_seen": rows[-1]["step"] * a.batch * a.accum * a.clips,
              "final_train_loss": rows[-1]["loss"],
              "val_acc": [r for r in rows if "val_acc" in r][-1]["val_acc"],
              "test_acc_pytorch": test_acc, "files": file_sizes(a.export),
              "gpu": tcfg["gpu"], "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(a.export, "export.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
    main()
