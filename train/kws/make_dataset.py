#!/usr/bin/env python3
"""make_dataset.py - synthesise the keyword-spotting dataset (train / val / test) as
compact log-mel features, split by speaker.

    /usr/bin/python3 train/kws/make_dataset.py --out data/kws [--seed 1] [-j 2] [--scale 1]

Writes OUT/kws_{train,val,test}.npz (feats [N,98,40] uint8, label, word_start, word_end,
speaker, word [N] int16, labels, speakers, words, q_lo, q_scale), OUT/meta.json, and the
test split as 16-bit WAVs (OUT/test_wav/NNNNN_label.wav, OUT/test_list.tsv) for the C
engine. Needs numpy, espeak-ng and sox. See train/kws/README.md.
"""
import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import kwsynth as ks  # noqa: E402
import logmel  # noqa: E402

CLIP = ks.RATE                   # samples per clip: exactly 1.000 s
# Clips per class and split at --scale 1. Set by the budget: the three .npz files must
# compress to <= 30 MB, and a clip costs ~3.1 KB compressed (speech over noise is nearly
# incompressible at 8 bits; ~2.3 KB for _silence_), so ~9,800 clips in all. The test split
# keeps 120 a class (its scores are the ones reported); val, used only to pick a
# checkpoint, has 80.
COUNTS = {"train": {"keyword": 600, "_unknown_": 950, "_silence_": 450},
          "val": {"keyword": 80, "_unknown_": 80, "_silence_": 80},
          "test": {"keyword": 120, "_unknown_": 120, "_silence_": 120}}
BUDGET_MB = 30.0

# Augmentation ranges (documented in README.md and copied into meta.json).
AUG = dict(speed=(120, 200), pitch=(30, 70), tempo=(0.85, 1.15), cents=(-150, 150),
           reverb_p=0.25, reverberance=(10, 50), room_scale=(10, 60),
           peak_dbfs=(-25, -1), noise_p=0.9, snr_db=(5, 30),
           silence_dbfs=(-65, -20), near_silence_p=0.15, near_silence_dbfs=(-96, -70))

# uint8 quantisation of log-mel values: x ~ Q_LO + q * Q_SCALE. Q_LO is the front end's
# floor, ln(1e-6), so silent bins are exact. Q_HI: the dataset's speech peaks at -1 dBFS
# and its features stay below ~7 (meta.json has the observed range); any input at all
# stays below the 11.15 of a full-scale sine (the power spectrum is unscaled; measured
# over 20 Hz-8 kHz), so 12 never clips, even on a louder recording. The step is then
# 0.101 nats: at most 0.051 nats (0.22 dB) of rounding error.
Q_LO = float(np.log(1e-6))
Q_HI = 12.0
Q_SCALE = (Q_HI - Q_LO) / 255.0


# ------------------------------------------------------------------ clip specs

def word_list(n_per_keyword, n_unknown, rng):
    """(label, word) pairs: each keyword n times, unknown words spread evenly."""
    out = [(w, w) for w in ks.KEYWORDS for _ in range(n_per_keyword)]
    unk = [ks.UNKNOWN_WORDS[i % len(ks.UNKNOWN_WORDS)] for i in range(n_unknown)]
    rng.shuffle(unk)
    return out + [("_unknown_", w) for w in unk]


def speech_spec(label, word, split, speakers, voices, rng):
    """Every random choice for one spoken clip, decided here so workers are deterministic."""
    a = AUG
    return dict(
        split=split, label=label, word=word,
        voice=str(rng.choice(voices)), variant=str(rng.choice(speakers)),
        speed=int(rng.integers(a["speed"][0], a["speed"][1] + 1)),
        pitch=int(rng.integers(a["pitch"][0], a["pitch"][1] + 1)),
        tempo=float(rng.uniform(*a["tempo"])), cents=float(rng.uniform(*a["cents"])),
        reverb=(float(rng.uniform(*a["reverberance"])), float(rng.uniform(*a["room_scale"])))
        if rng.random() < a["reverb_p"] else None,
        peak_dbfs=float(rng.uniform(*a["peak_dbfs"])),
        noise=str(rng.choice(ks.NOISE_KINDS)) if rng.random() < a["noise_p"] else None,
        snr_db=float(rng.uniform(*a["snr_db"])), noise_pos=float(rng.random()),
        shift=float(rng.random()))


def silence_spec(split, rng):
    a = AUG
    near = rng.random() < a["near_silence_p"]
    return dict(split=split, label="_silence_", word="", variant=None,
                noise=str(rng.choice(ks.NOISE_KINDS)), noise_pos=float(rng.random()),
                level_dbfs=float(rng.uniform(*(a["near_silence_dbfs"] if near else a["silence_dbfs"]))))


def make_specs(split, counts, speakers, voices, rng):
    pairs = word_list(counts["keyword"], counts["_unknown_"], rng)
    specs = [speech_spec(lab, w, split, speakers, voices, rng) for lab, w in pairs]
    specs += [silence_spec(split, rng) for _ in range(counts["_silence_"])]
    order = rng.permutation(len(specs))   # classes interleaved; the trainer shuffles anyway
    return [specs[i] for i in order]


# ------------------------------------------------------------------ one clip (worker)

BANK = None          # the noise bank, set in the parent before the workers fork
FRONTEND = None


def render(spec):
    """(samples float32 [CLIP] as a 16-bit WAV holds them, first sample, end sample) of
    one clip; (-1, -1) for silence."""
    if spec["label"] == "_silence_":
        x = ks.noise_segment(BANK, spec["noise"], CLIP, spec["noise_pos"], spec["split"])
        return ks.to_pcm16(x * ks.db(spec["level_dbfs"])), -1, -1
    y = ks.utterance(spec["word"], spec) * ks.db(spec["peak_dbfs"])
    start = int(round(spec["shift"] * (CLIP - len(y))))
    x = np.zeros(CLIP, dtype=np.float64)
    x[start:start + len(y)] = y
    if spec["noise"]:
        n = ks.noise_segment(BANK, spec["noise"], CLIP, spec["noise_pos"], spec["split"])
        x += n * ks.rms(y) / ks.db(spec["snr_db"])
    peak = np.abs(x).max()
    if peak > 0.99:                      # loud speech plus noise: scale, never clip
        x *= 0.99 / peak
    return ks.to_pcm16(x), start, start + len(y)


def sample_to_frames(s0, s1, hop, win, n_frames):
    """First and last frame whose window [t*hop, t*hop + win) holds a sample of [s0, s1)."""
    first = max(0, -(-(s0 - win + 1) // hop))
    last = min(n_frames - 1, (s1 - 1) // hop)
    return first, last


def work(item):
    """Worker: one clip -> quantised features, word frames, raw range, and the PCM for
    the test split (kept as WAV for the C engine)."""
    i, spec = item
    pcm, s0, s1 = render(spec)
    f = logmel.logmel(pcm.astype(np.float64) / 32768.0, FRONTEND)
    q = np.clip(np.round((f - Q_LO) / Q_SCALE), 0, 255).astype(np.uint8)
    if s0 < 0:
        ws, we = -1, -1
    else:
        ws, we = sample_to_frames(s0, s1, FRONTEND["hop_length"], FRONTEND["win_length"], len(f))
    err = np.abs(Q_LO + q * Q_SCALE - f)
    return (i, q, ws, we, float(f.min()), float(f.max()), int((f > Q_HI).sum()),
            float(err.max()), float(err.mean()), pcm if spec["split"] == "test" else None)


# ------------------------------------------------------------------ output

def save_split(out, split, specs, results, speakers_all):
    label_ix = {lab: k for k, lab in enumerate(ks.LABELS)}
    spk_ix = {s: k for k, s in enumerate(speakers_all)}
    words_all = [""] + ks.KEYWORDS + ks.UNKNOWN_WORDS
    word_ix = {w: k for k, w in enumerate(words_all)}
    n = len(specs)
    arrays = dict(
        feats=np.stack([results[i][1] for i in range(n)]),
        label=np.array([label_ix[s["label"]] for s in specs], dtype=np.int16),
        word_start=np.array([results[i][2] for i in range(n)], dtype=np.int16),
        word_end=np.array([results[i][3] for i in range(n)], dtype=np.int16),
        speaker=np.array([spk_ix[s["variant"]] if s["variant"] else -1 for s in specs], dtype=np.int16),
        word=np.array([word_ix[s["word"]] for s in specs], dtype=np.int16),
        labels=np.array(ks.LABELS), speakers=np.array(speakers_all), words=np.array(words_all),
        q_lo=np.float32(Q_LO), q_scale=np.float32(Q_SCALE))
    path = os.path.join(out, f"kws_{split}.npz")
    np.savez_compressed(path, **arrays)
    return path, arrays


def save_test_wavs(out, specs, results):
    d = os.path.join(out, "test_wav")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(out, "test_list.tsv"), "w") as f:
        f.write("#path (relative to this file)\tlabel\tword\n")
        for i, s in enumerate(specs):
            rel = f"test_wav/{i:05d}_{s['label']}.wav"
            ks.write_wav(os.path.join(out, rel), results[i][9])
            f.write(f"{rel}\t{s['label']}\t{s['word']}\n")


def counts_of(specs):
    c = {lab: 0 for lab in ks.LABELS}
    for s in specs:
        c[s["label"]] += 1
    return c


# ------------------------------------------------------------------ main

def main():
    global BANK, FRONTEND
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (2 at most here)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every count (0.05 for a quick smoke run)")
    a = ap.parse_args()
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    FRONTEND = ks.load_frontend()
    voices = ks.english_voices()
    split_spk, families = ks.split_speakers(a.seed)
    speakers_all = sorted(sum(split_spk.values(), []), key=str.lower)
    BANK = ks.make_noise_bank()
    rng = np.random.default_rng(a.seed)
    specs = {}
    for split in ("train", "val", "test"):
        c = {k: max(1, int(round(v * a.scale))) for k, v in COUNTS[split].items()}
        specs[split] = make_specs(split, c, split_spk[split], voices, rng)
    total = sum(len(v) for v in specs.values())
    print(f"{total} clips ({', '.join(f'{k} {len(v)}' for k, v in specs.items())}); "
          f"speakers train/val/test {len(split_spk['train'])}/{len(split_spk['val'])}/"
          f"{len(split_spk['test'])}; {a.jobs} workers", flush=True)

    stats, files, t_split = {}, {}, {}
    with multiprocessing.Pool(a.jobs) if a.jobs > 1 else _Serial() as pool:
        done = 0
        for split in ("train", "val", "test"):
            ts = time.time()
            results = {}
            for r in pool.imap_unordered(work, list(enumerate(specs[split])), chunksize=16):
                results[r[0]] = r
                done += 1
                if done % 500 == 0:
                    el = time.time() - t0
                    print(f"  {done}/{total} clips, {el:.0f} s, ~{el / done * (total - done):.0f} s left",
                          flush=True)
            path, arrays = save_split(a.out, split, specs[split], results, speakers_all)
            if split == "test":
                save_test_wavs(a.out, specs[split], results)
            rs = list(results.values())
            stats[split] = dict(min=min(r[4] for r in rs), max=max(r[5] for r in rs),
                                clipped_values=sum(r[6] for r in rs),
                                q_err_max=max(r[7] for r in rs),
                                q_err_mean=float(np.mean([r[8] for r in rs])))
            files[split] = dict(path=os.path.basename(path), bytes=os.path.getsize(path),
                                clips=len(specs[split]))
            t_split[split] = round(time.time() - ts, 1)
            print(f"{path}: {len(specs[split])} clips, {os.path.getsize(path) / 1e6:.2f} MB, "
                  f"{t_split[split]} s", flush=True)

    elapsed = time.time() - t0
    total_mb = sum(f["bytes"] for f in files.values()) / 1e6
    meta = dict(
        created=time.strftime("%Y-%m-%d %H:%M:%S"), command=" ".join(sys.argv), seed=a.seed,
        jobs=a.jobs, scale=a.scale, seconds=round(elapsed, 1), seconds_per_split=t_split,
        labels=ks.LABELS, unknown_words=ks.UNKNOWN_WORDS,
        counts={s: counts_of(v) for s, v in specs.items()},
        speakers=split_spk, speaker_families=families, voices=voices,
        split_rule="speaker = an espeak-ng variant (voices/!v); whole families of variants "
                   "(same name but for trailing digits, or bit-identical output) are held out, "
                   "~10% of variants for test then ~10% for val, shuffled by the seed; the "
                   "English base voices (accents) are shared by all splits",
        frontend=FRONTEND, clip_samples=CLIP, frames=int(arrays["feats"].shape[1]),
        word_frames="word_start/word_end: first/last frame whose window [t*160, t*160+400) "
                    "holds a sample of the trimmed word (-1 for _silence_)",
        quantisation=dict(lo=Q_LO, hi=Q_HI, scale=Q_SCALE, formula="x = lo + q * scale",
                          max_error_bound=Q_SCALE / 2, observed=stats),
        augmentation=dict(AUG, noise_kinds=ks.NOISE_KINDS, bank_seconds=ks.BANK_SECONDS,
                          bank_regions=ks.BANK_REGIONS, trim_db=ks.TRIM_DB),
        files=files, npz_total_mb=round(total_mb, 2), tools=ks.tool_versions())
    if total_mb > BUDGET_MB:
        print(f"WARNING: the .npz files take {total_mb:.2f} MB, over the {BUDGET_MB} MB budget: "
              f"lower COUNTS or --scale", flush=True)
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"done: {total} clips in {elapsed:.0f} s ({elapsed / 60:.1f} min); npz total "
          f"{total_mb:.2f} MB; features in [{min(s['min'] for s in stats.values()):.2f}, "
          f"{max(s['max'] for s in stats.values()):.2f}], quantisation error <= "
          f"{max(s['q_err_max'] for s in stats.values()):.4f}; {a.out}/meta.json", flush=True)


class _Serial:
    """Pool stand-in for -j 1 (easier to debug: tracebacks come straight through)."""
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap_unordered(self, f, items, chunksize=1):
        return map(f, items)


if __name__ == "__main__":
    main()
