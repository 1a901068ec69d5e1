#!/usr/bin/env python3
"""make_stream.py - a long 16 kHz WAV of held-out (test) speakers saying keywords and
other words, 1-4 s apart, over background noise whose kind and level change from word to
word; and its truth, for the live-mode evaluation (eval_kws.py).

    /usr/bin/python3 train/kws/make_stream.py --out data/kws/stream_test.wav --minutes 10 --seed 2

Writes OUT (16-bit mono WAV) and OUT with .tsv for .wav: one line per word,
`start_s end_s word label speaker` (a '#' header first), start/end = the trimmed word.
The test speakers are read from meta.json beside OUT when make_dataset.py has written
one (else the split is recomputed with --split-seed), so the stream holds no training
voice. Words are drawn as make_dataset.py draws its test clips (same voices, speeds,
pitches, sox effects and SNR range).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kwsynth as ks  # noqa: E402
import make_dataset as md  # noqa: E402  (its AUG ranges and speech_spec, for the same draw)

GAP_S = (1.0, 4.0)       # background between words
KEYWORD_P = 0.75         # the rest are _unknown_ words
FADE_S = 0.02            # cross-fade where the background changes kind or level


def held_out_speakers(out, split_seed, split):
    """The speakers of split ("test", or "val" for a stream to tune the detector on)."""
    meta = os.path.join(os.path.dirname(os.path.abspath(out)), "meta.json")
    if os.path.exists(meta):
        with open(meta) as f:
            return json.load(f)["speakers"][split], meta
    return ks.split_speakers(split_seed)[0][split], f"split recomputed with seed {split_seed}"


def draw_word(rng):
    if rng.random() < KEYWORD_P:
        w = str(rng.choice(ks.KEYWORDS))
        return w, w
    return "_unknown_", str(rng.choice(ks.UNKNOWN_WORDS))


def add_background(x, bank, a, b, level, kind, fade, rng):
    """Add noise of `kind` at RMS `level` over x[a:b], ramping up over the first `fade`
    samples and down over `fade` samples past b: consecutive segments (b = next a)
    cross-fade, so a change of background makes no click, and the timeline stays exact."""
    n = min(b + fade, len(x)) - a
    env = np.ones(n)
    if a > 0:
        env[:fade] = np.linspace(0.0, 1.0, fade)
    tail = n - (b - a)
    if tail > 0:
        env[-tail:] = np.linspace(1.0, 0.0, fade)[:tail]
    x[a:a + n] += ks.noise_segment(bank, kind, n, float(rng.random()), "test") * level * env


def build(minutes, speakers, voices, bank, rng, split="test"):
    """(samples float64, truth rows). Each segment = a gap, then a word, over one
    background whose level is set by the word's SNR; a last gap closes the stream."""
    total = int(minutes * 60 * ks.RATE)
    fade = int(FADE_S * ks.RATE)
    x = np.zeros(total)
    truth, t, level = [], 0, ks.db(-60)
    while True:
        gap = int(rng.uniform(*GAP_S) * ks.RATE)
        label, word = draw_word(rng)
        spec = md.speech_spec(label, word, split, speakers, voices, rng)
        y = ks.utterance(word, spec) * ks.db(spec["peak_dbfs"])
        if t + gap + len(y) + int(GAP_S[0] * ks.RATE) > total:
            break
        # the dataset's clean clips (no noise) become a floor 60 dB under the speech
        level = ks.rms(y) / ks.db(spec["snr_db"] if spec["noise"] else 60.0)
        add_background(x, bank, t, t + gap + len(y), level, spec["noise"] or "white", fade, rng)
        x[t + gap:t + gap + len(y)] += y
        truth.append(((t + gap) / ks.RATE, (t + gap + len(y)) / ks.RATE, word, label,
                      spec["variant"]))
        t += gap + len(y)
    # the closing stretch, to the full length: pink noise at the last segment's level
    add_background(x, bank, t, total, level, "pink", fade, rng)
    peak = np.abs(x).max()
    if peak > 0.99:                          # scale, never clip
        x *= 0.99 / peak
    return x, truth


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="the WAV; the truth goes to the same name .tsv")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--split-seed", type=int, default=1,
                    help="make_dataset.py's --seed, used only when OUT's folder has no meta.json")
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="whose voices: test speakers (report), or val speakers (to choose the "
                         "detector settings on without looking at the test stream)")
    a = ap.parse_args()
    t0 = time.time()
    speakers, source = held_out_speakers(a.out, a.split_seed, a.split)
    rng = np.random.default_rng([a.seed, 11])
    x, truth = build(a.minutes, speakers, ks.english_voices(), ks.make_noise_bank(), rng, a.split)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    ks.write_wav(a.out, ks.to_pcm16(x))
    tsv = os.path.splitext(a.out)[0] + ".tsv"
    with open(tsv, "w") as f:
        f.write("#start_s\tend_s\tword\tlabel\tspeaker\n")
        for s, e, w, lab, spk in truth:
            f.write(f"{s:.3f}\t{e:.3f}\t{w}\t{lab}\t{spk}\n")
    n_kw = sum(1 for r in truth if r[3] != "_unknown_")
    print(f"{a.out}: {len(x) / ks.RATE / 60:.2f} min, {len(truth)} words ({n_kw} keywords, "
          f"{len(truth) - n_kw} other) by {len(set(r[4] for r in truth))} {a.split} speakers "
          f"({source}); truth {tsv}; {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
