#!/usr/bin/env python3
"""eval_kws.py - score a keyword-spotting model through the C engine (not PyTorch) on the
synthetic test split and the test stream, and write a markdown report.

    /usr/bin/python3 train/kws/eval_kws.py --model DIR --data data/kws --out docs/eval-kws.md \\
        [--mamba-stream build/mamba-stream] [--stream data/kws/stream_test.wav] \\
        [--settings 1000:0.5,300:0.5] [--threads N]

Clips: `mamba-stream --model DIR --audio-list LIST --top-k 1 -o clips.tsv` over
DATA/test_list.tsv -> accuracy, a confusion matrix, per-class accuracy.
Stream: `mamba-stream --model DIR --audio STREAM --mode live [--threshold X]` -> each
detection is matched to the truth (STREAM with .tsv for .wav): a detection of keyword K
at time t is a hit if an unmatched spoken K has start <= t <= end + 1.0 s; any other
detection is a false alarm. Reported at the default detector settings and at each of
--settings (averaging window and threshold; the other detector settings at their defaults).
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from kwsynth import KEYWORDS, LABELS  # noqa: E402

HIT_AFTER_END_S = 1.0    # a detection may come up to this long after the word ends


def engine(cmd):
    """Run the engine; on failure, show its own one-line error and stop."""
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"eval_kws: failed ({r.returncode}): {shlex.join(cmd)}\n{r.stderr.strip()}")
    return time.time() - t


def read_tsv(path):
    """Rows of a TSV, '#' lines skipped."""
    with open(path) as f:
        return [ln.rstrip("\n").split("\t") for ln in f if ln.strip() and not ln.startswith("#")]


# ------------------------------------------------------------------ clips

def eval_clips(a, tmp):
    """(true label idx, predicted label idx) arrays over the test WAVs, and the seconds."""
    rows = read_tsv(os.path.join(a.data, "test_list.tsv"))
    paths = [os.path.abspath(os.path.join(a.data, r[0])) for r in rows]
    truth = dict(zip(paths, (r[1] for r in rows)))
    lst, out = os.path.join(tmp, "clips.txt"), os.path.join(tmp, "clips.tsv")
    with open(lst, "w") as f:
        f.write("\n".join(paths) + "\n")
    cmd = [a.mamba_stream, "--model", a.model, "--audio-list", lst, "--top-k", "1", "-o", out] + a.threads
    secs = engine(cmd)
    pred = {r[0]: r[3] for r in read_tsv(out)}           # file frames seconds label1 p1
    missing = [p for p in paths if p not in pred]
    if missing:
        sys.exit(f"eval_kws: the engine gave no label for {len(missing)} clips, e.g. {missing[0]}")
    ix = {lab: i for i, lab in enumerate(LABELS)}
    y = np.array([ix[truth[p]] for p in paths])
    p = np.array([ix[pred[p]] for p in paths])
    return y, p, secs, cmd


def confusion(y, p, n):
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (y, p), 1)
    return m


# ------------------------------------------------------------------ stream

def match(detections, truth):
    """Hits and false alarms. detections: [(t, label)]; truth: [(start, end, word)].
    In time order, each detection takes the earliest unmatched spoken keyword of its label
    whose window [start, end + 1 s] holds it; a false alarm is further classed by what
    was being said (another keyword, an unknown word, or nothing) within the same window."""
    used = [False] * len(truth)
    hits, fa = 0, {"on another keyword or a repeat": 0, "on an unknown word": 0, "in background": 0}
    for t, lab in sorted(detections):
        near = [i for i, (s, e, w) in enumerate(truth) if s <= t <= e + HIT_AFTER_END_S]
        match_i = next((i for i in near if truth[i][2] == lab and not used[i]), None)
        if match_i is not None:
            used[match_i] = True
            hits += 1
        elif any(truth[i][2] in KEYWORDS for i in near):
            fa["on another keyword or a repeat"] += 1
        elif near:
            fa["on an unknown word"] += 1
        else:
            fa["in background"] += 1
    return hits, fa


def eval_stream(a, tmp, window_ms, threshold):
    """One live run over the stream with the detector's averaging window and threshold
    (None = the engine's default): (row dict, command)."""
    truth = [(float(r[0]), float(r[1]), r[2]) for r in read_tsv(os.path.splitext(a.stream)[0] + ".tsv")]
    out = os.path.join(tmp, f"live_{window_ms or 'default'}_{threshold or 'default'}.tsv")
    cmd = [a.mamba_stream, "--model", a.model, "--audio", a.stream, "--mode", "live", "-o", out] + a.threads
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    if window_ms is not None:
        cmd += ["--average-window-ms", str(window_ms)]
    secs = engine(cmd)
    dets = [(float(r[0]), r[1]) for r in read_tsv(out)]
    hits, fa = match(dets, truth)
    n_kw = sum(1 for s, e, w in truth if w in KEYWORDS)
    hours = wav_seconds(a.stream) / 3600
    return dict(window_ms=window_ms, threshold=threshold, detections=len(dets), hits=hits, n_kw=n_kw,
                rate=hits / n_kw if n_kw else 0.0, fa=sum(fa.values()), fa_kinds=fa,
                fa_per_hour=sum(fa.values()) / hours, seconds=secs,
                n_unknown=len(truth) - n_kw, stream_s=hours * 3600), cmd


def wav_seconds(path):
    import wave
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


# ------------------------------------------------------------------ report

def shown(cmd, tmp):
    """A command as the report shows it: the temporary folder written as TMP."""
    return shlex.join(cmd).replace(tmp, "TMP")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def report(a, clips, streams, argv, tmp):
    y, p, clip_secs, clip_cmd = clips
    n = len(LABELS)
    m = confusion(y, p, n)
    acc = (y == p).mean()
    kw = np.isin(y, range(2, n))
    lines = [
        "# Keyword spotting: evaluation through the C engine", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- command: `{shlex.join(argv)}`",
        f"- model: `{a.model}`",
        f"- engine: `{a.mamba_stream}` ({version(a.mamba_stream)})",
        f"- data: `{a.data}` (test split: held-out speakers, see its meta.json)", "",
        "## Clips (test split)", "",
        f"`{shown(clip_cmd, tmp)}`: {len(y)} clips of 1 s in {clip_secs:.1f} s.", "",
        f"**Accuracy {acc:.1%}** ({int((y == p).sum())}/{len(y)}); on the keyword clips "
        f"{(y[kw] == p[kw]).mean():.1%}; chance (most frequent class) "
        f"{np.bincount(y, minlength=n).max() / len(y):.1%}.", "",
        "Per class (recall; precision = correct / predicted as that class):", "",
        table(["class", "clips", "recall", "predicted", "precision"],
              [(LABELS[i], m[i].sum(), f"{m[i, i] / max(m[i].sum(), 1):.1%}", m[:, i].sum(),
                f"{m[i, i] / m[:, i].sum():.1%}" if m[:, i].sum() else "-") for i in range(n)]),
        "", "Confusion matrix (rows: truth, columns: predicted):", "",
        table(["truth \\ pred"] + [lab.strip("_") for lab in LABELS],
              [[LABELS[i]] + list(m[i]) for i in range(n)]),
        "", "## Stream (live mode)", ""]
    if streams:
        s0 = streams[0][0]
        lines += [
            f"`{a.stream}`: {s0['stream_s'] / 60:.1f} min, {s0['n_kw']} keywords and "
            f"{s0['n_unknown']} other words by held-out speakers, 1-4 s apart over changing "
            f"background. A detection of keyword K is a hit when an unmatched spoken K has "
            f"start <= t <= end + {HIT_AFTER_END_S:g} s; anything else is a false alarm.",
            "", f"`{shown(streams[0][1], tmp)}` (and with `--average-window-ms W "
            f"--threshold X`):", "",
            table(["window ms", "threshold", "detections", "hits", "detection rate", "false alarms",
                   "FA / hour", "FA: keyword / unknown / background", "engine s"],
                  [(f"{r['window_ms']}" if r["window_ms"] is not None else "model default",
                    f"{r['threshold']}" if r["threshold"] is not None else "model default",
                    r["detections"], f"{r['hits']}/{r['n_kw']}", f"{r['rate']:.1%}", r["fa"],
                    f"{r['fa_per_hour']:.0f}", " / ".join(str(v) for v in r["fa_kinds"].values()),
                    f"{r['seconds']:.1f}") for r, _ in streams]),
            "", "'model default': the settings in the model's config.json (\"mamba_stream\"."
            "detector, chosen on a stream of validation speakers, make_stream.py --split val), "
            "else the engine's (window 1000 ms, threshold 0.7: TensorFlow's). Other detector "
            "settings at the engine's defaults (suppression 1500 ms, min count 3)."]
    else:
        lines += ["(no stream: run train/kws/make_stream.py first)"]
    return "\n".join(lines) + "\n"


def version(exe):
    r = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="data/kws")
    ap.add_argument("--out", default="docs/eval-kws.md")
    ap.add_argument("--mamba-stream", default="build/mamba-stream")
    ap.add_argument("--stream", default=None, help="[DATA/stream_test.wav]")
    ap.add_argument("--settings", default="1000:0.5,500:0.5,300:0.5,300:0.7,200:0.5",
                    help="live detector settings WINDOW_MS:THRESHOLD to try besides the "
                         "default (comma-separated)")
    ap.add_argument("--threads", type=int, default=None, help="engine CPU threads [all cores]")
    a = ap.parse_args()
    a.threads = ["--threads", str(a.threads)] if a.threads else []
    a.stream = a.stream or os.path.join(a.data, "stream_test.wav")
    with tempfile.TemporaryDirectory() as tmp:
        clips = eval_clips(a, tmp)
        print(f"clips: accuracy {(clips[0] == clips[1]).mean():.1%} over {len(clips[0])}", flush=True)
        streams = []
        if os.path.exists(a.stream):
            pairs = [(None, None)] + [(int(x.split(":")[0]), float(x.split(":")[1]))
                                      for x in a.settings.split(",") if x]
            for win, thr in pairs:
                r = eval_stream(a, tmp, win, thr)
                streams.append(r)
                print(f"stream, window {win or 'default'} threshold {thr or 'default'}: "
                      f"{r[0]['hits']}/{r[0]['n_kw']} "
                      f"hits, {r[0]['fa']} false alarms ({r[0]['fa_per_hour']:.0f}/h)", flush=True)
        else:
            print(f"eval_kws: no {a.stream}: stream not scored", file=sys.stderr)
        text = report(a, clips, streams, sys.argv, tmp)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
