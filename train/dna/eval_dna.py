#!/usr/bin/env python3
"""eval_dna.py - bits per base of the DNA model, against order-k Markov baselines.

    train/dna/eval_dna.py --model DIR [--data data/dna] [--mamba-stream build/mamba-stream]
                          [--kmax 12] [--out docs/eval-dna.md]

Writes a markdown report (--out) and the same numbers as JSON beside it (.json), and prints
the main table. Numpy and the standard library only; the model is run through the C engine
(mamba-stream score, TSV), never PyTorch.

  1. Markov models of orders 0..kmax, counted on train.npz and its reverse complement,
     smoothing tuned on val.npz (markov.py), on val, test_species and test_strain.
  2. The model's bits/base on the same positions: -log2 p(observed base) from the TSV.
  3. Where: bits by position class (repeats, low complexity, GC) on the two test genomes.
  4. Long context: bits by position inside windows scored from a fresh state.

Positions: every base whose code is A, C, G or T, including the first of each record (the
model predicts it after its BOS token, or uniform without one; the Markov models with order
0). Non-ACGT bases are scored by neither; they end a Markov context, the model reads
through them. The Markov counts are cached under --cache (360 MB at k = 12).
"""
import argparse
import array
import datetime
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import markov  # noqa: E402
from prepare import CODE, codes, read_fasta  # noqa: E402  (the base codes prepare.py wrote)

LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)
SETS = ("val", "test_species", "test_strain")
TESTS = ("test_species", "test_strain")
LN2 = np.log(2.0)

# position classes (section 3)
REPEAT_K = 20          # a 20-mer seen earlier in the genome, either strand
LOWCOMP_TILE = 64      # trinucleotide entropy of 64-bp tiles ...
LOWCOMP_BITS = 4.5     # ... below 4.5 bits (max log2(62) = 5.95; median ~5 in bacteria)
GC_TILE = 100
ORF_CODONS = 150       # open reading frames of >= 150 codons (450 bp): the gene proxy
STOP_CODONS = (3 * 16 + 0 * 4 + 0, 3 * 16 + 0 * 4 + 2, 3 * 16 + 2 * 4 + 0)  # TAA TAG TGA (A0 C1 G2 T3)
GC_EDGES = (0.0, 0.3, 0.4, 0.5, 0.6, 1.01)

T0 = time.time()
ENGINE_RUNS = []  # what each engine call cost, or that it came from the cache (report)


def log(msg):
    print(f"[{time.time() - T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data

class Genome:
    """Records concatenated: uint8 codes `seq`, record offsets `starts`, `names`."""

    def __init__(self, names, seqs):
        self.names = list(names)
        self.seq = np.concatenate(seqs) if seqs else np.zeros(0, np.uint8)
        self.starts = np.cumsum([0] + [len(s) for s in seqs[:-1]]).astype(np.int64)
        self.lengths = np.array([len(s) for s in seqs], dtype=np.int64)

    @classmethod
    def from_npz(cls, path):
        z = np.load(path)
        seq, starts = z["seq"], z["starts"]
        ends = np.append(starts[1:], len(seq))
        return cls([str(n) for n in z["names"]], [seq[a:b] for a, b in zip(starts, ends)])

    @classmethod
    def from_fasta(cls, path):
        """Record name = header up to the first white space, as the engine names it."""
        recs = read_fasta(path)
        return cls([name for name, _ in recs], [codes(seq) for _, seq in recs])

    def acgt(self):
        return int(np.count_nonzero(self.seq < 4))

    def fasta(self):
        """The records as FASTA text (bytes), 80 bases a line."""
        out = []
        for name, a, n in zip(self.names, self.starts, self.lengths):
            out.append(b">" + name.encode() + b"\n")
            text = LETTERS[self.seq[a:a + n]].tobytes()
            out += [text[i:i + 80] + b"\n" for i in range(0, len(text), 80)]
        return b"".join(out)


def write_if_changed(path, data):
    """Write bytes unless path already holds exactly them: its mtime keys the engine cache."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def both_strands(g):
    """The sequence followed by its reverse complement; record starts of both."""
    rc = np.where(g.seq < 4, 3 - g.seq, 4).astype(np.uint8)[::-1]
    ends = g.starts + g.lengths
    n = len(g.seq)  # record [a, e) of the sequence is [2n - e, 2n - a) of the copy
    return np.concatenate([g.seq, rc]), np.concatenate([g.starts, 2 * n - ends[::-1]])


def file_key(*paths, extra=""):
    """Cache key: names, sizes and mtimes of files, plus any text."""
    h = hashlib.sha1(extra.encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.realpath(p)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- Markov

def fit_markov(train, kmax, cache_dir, train_path):
    """Counts on both strands of train, from the cache when train.npz has not changed."""
    path = os.path.join(cache_dir, f"markov-k{kmax}-{file_key(train_path)}.npz")
    if os.path.exists(path):
        z = np.load(path)
        log(f"markov: counts from {path}")
        return markov.MarkovModel(kmax).set_counts([z[f"c{k}"] for k in range(kmax + 1)])
    seq, starts = both_strands(train)
    model = markov.MarkovModel(kmax).fit(seq, starts, log=log)
    os.makedirs(cache_dir, exist_ok=True)
    np.savez(path + ".tmp.npz", **{f"c{k}": c for k, c in enumerate(model.counts())})
    os.replace(path + ".tmp.npz", path)
    return model


# ---------------------------------------------------------------- the engine

def run_engine(args, fasta, genome, regions=None):
    """Score fasta with mamba-stream (TSV). Returns (offset, bits, rule): offsets into
    genome.seq of the scored lines, -log2 p of the observed base, the TSV rule. Checks that
    the engine's ref column is the base we read."""
    cmd = [args.mamba_stream, "score", "--model", args.model, "--fasta", fasta,
           "--format", "tsv", "-q", *shlex.split(args.engine_args)]
    if regions:
        cmd += ["--regions", regions]
    log("engine: " + " ".join(shlex.quote(c) for c in cmd))
    index = {n: i for i, n in enumerate(genome.names)}
    rec, pos, logp, ref, rule = (array.array("l"), array.array("q"), array.array("d"),
                                 bytearray(), bytearray())
    cur_name, cur = None, -1
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=1 << 20) as proc:
        for line in proc.stdout:
            if line[0] == 35:  # '#': the header
                continue
            f = line.split(b"\t", 11)
            if f[0] != cur_name:  # records come in runs: look the name up once per run
                cur_name, cur = f[0], index[f[0].decode()]
            rec.append(cur)
            pos.append(int(f[1]))
            ref.append(f[2][0])
            logp.append(float(f[3]))
            rule.append(f[10][0] - 48)
    if proc.returncode:
        sys.exit(f"eval_dna: mamba-stream failed (exit {proc.returncode})")
    offset = genome.starts[np.frombuffer(rec, dtype=np.int64)] + np.frombuffer(pos, dtype=np.int64) - 1
    if np.any(CODE[np.frombuffer(bytes(ref), np.uint8)] != genome.seq[offset]):
        sys.exit(f"eval_dna: the engine's ref column disagrees with {fasta}")
    bits = -np.frombuffer(logp, dtype=np.float64) / LN2
    return offset, bits, np.frombuffer(bytes(rule), np.uint8)


def engine_cached(args, fasta, genome, regions=None):
    """run_engine, cached by model, FASTA, regions, engine binary and options."""
    model_files = [os.path.join(args.model, f) for f in ("config.json", "model.safetensors")]
    files = [fasta, args.mamba_stream] + [f for f in model_files if os.path.exists(f)]
    if regions:
        files.append(regions)
    path = os.path.join(args.cache, f"engine-{file_key(*files, extra=args.engine_args)}.npz")
    if os.path.exists(path) and not args.no_cache:
        log(f"engine: scores of {os.path.basename(fasta)} from {path}")
        ENGINE_RUNS.append({"fasta": fasta, "regions": regions, "cached": True})
        z = np.load(path)
        return z["offset"], z["bits"], z["rule"]
    t = time.time()
    out = run_engine(args, fasta, genome, regions)
    log(f"engine: {len(out[0]):,} positions in {time.time() - t:.0f} s "
        f"({len(out[0]) / max(time.time() - t, 1e-9) / 1e3:.0f} kbp/s)")
    ENGINE_RUNS.append({"fasta": fasta, "regions": regions, "cached": False,
                        "positions": int(len(out[0])), "seconds": round(time.time() - t, 1)})
    os.makedirs(args.cache, exist_ok=True)
    np.savez(path + ".tmp.npz", offset=out[0], bits=out[1], rule=out[2])
    os.replace(path + ".tmp.npz", path)
    return out


def model_bits(args, name, genome, fasta):
    """Per position -log2 p of the model over a whole-record scoring (NaN where not ACGT),
    and how many first bases were predicted after BOS (rule 1) or as uniform (rule 2)."""
    offset, bits, rule = engine_cached(args, fasta, genome)
    if len(offset) != len(genome.seq) or np.any(offset != np.arange(len(genome.seq))):
        sys.exit(f"eval_dna: the engine did not score every position of {name} once, in order")
    out = np.where(genome.seq < 4, bits, np.nan)
    if not np.all(np.isfinite(out[genome.seq < 4])):
        sys.exit(f"eval_dna: the engine gave a non-finite score in {name}")
    return out, {"bos": int(np.count_nonzero(rule == 1)), "uniform": int(np.count_nonzero(rule == 2))}


# ---------------------------------------------------------------- position classes

def kmer_at(seq, k):
    """2-bit code of the k-mer ending at each position (garbage where not all ACGT)."""
    for m, h in markov.kmer_codes(seq, k):
        if m == k:
            return h.copy()


def repeat_mask(g, k=REPEAT_K):
    """Positions inside a k-mer whose sequence, or its reverse complement, occurred earlier in
    the genome (file order): what a long-context model could copy and a Markov model cannot."""
    n = len(g.seq)
    ok = markov.context_lengths(g.seq, g.starts) >= k - 1     # k-mer ending at i is clean
    fwd = kmer_at(g.seq, k)
    rc = kmer_at(np.where(g.seq < 4, 3 - g.seq, 4).astype(np.uint8)[::-1], k)
    # the k-mer ending at i, reverse-complemented, ends at n - i + k - 2 in the reversed copy
    rev = np.zeros(n, dtype=np.int64)
    rev[k - 1:] = rc[k - 1:][::-1]
    ends = np.flatnonzero(ok)
    key = np.minimum(fwd[ends], rev[ends])                     # canonical: strand-free
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    again = ends[np.arange(len(ends)) != first[inverse]]       # not the first occurrence
    # mark the k bases of each: +1 where one begins, -1 after it ends, running sum > 0
    cover = np.bincount(again - k + 1, minlength=n + 1) - np.bincount(again + 1, minlength=n + 1)
    return np.cumsum(cover[:n]) > 0


def tile_stat(values, tile):
    """Per position, the mean of values over its tile of `tile` positions."""
    n = len(values)
    idx = np.arange(n) // tile
    return (np.bincount(idx, weights=values) / np.bincount(idx))[idx]


def low_complexity_mask(g):
    """Positions in 64-bp tiles whose trinucleotide entropy is below LOWCOMP_BITS (simple
    repeats, homopolymer-rich or strongly biased sequence)."""
    n = len(g.seq)
    tri = kmer_at(g.seq, 3)
    ok = markov.context_lengths(g.seq, g.starts) >= 2
    tile = np.arange(n) // LOWCOMP_TILE
    ntile = tile[-1] + 1 if n else 0
    cnt = np.bincount(tile[ok] * 64 + tri[ok], minlength=ntile * 64).reshape(ntile, 64)
    p = cnt / np.maximum(cnt.sum(axis=1, keepdims=True), 1)
    ent = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=1)
    return (ent < LOWCOMP_BITS)[tile]


def long_orf_mask(g, min_codons=ORF_CODONS):
    """Positions inside an open reading frame of >= min_codons codons (stop to stop, no
    ambiguous base) on either strand, in any frame: with no annotation offline, the usual
    proxy for protein-coding genes in a bacterial genome (~88% coding); random sequence
    has a stop every ~21 codons: at 150 codons ~3% of random sequence is covered, against
    ~90% of a bacterial genome."""
    n = len(g.seq)
    mask = np.zeros(n, bool)
    for strand in (0, 1):
        seq = g.seq if strand == 0 else np.where(g.seq < 4, 3 - g.seq, 4).astype(np.uint8)[::-1]
        strand_mask = np.zeros(n, bool)
        for f in range(3):
            m = (n - f) // 3
            if m < 1:
                continue
            cod = seq[f:f + 3 * m].reshape(m, 3).astype(np.int64)
            bad = (cod >= 4).any(axis=1)
            code = cod[:, 0] * 16 + cod[:, 1] * 4 + cod[:, 2]
            stop = bad | np.isin(code, STOP_CODONS)
            # open stretches between breakers: starts after each breaker, ends at the next
            brk = np.flatnonzero(stop)
            lo = np.concatenate(([0], brk + 1))
            hi = np.concatenate((brk, [m]))
            keep = hi - lo >= min_codons
            cover = np.zeros(m + 1, np.int64)
            np.add.at(cover, lo[keep], 1)
            np.add.at(cover, hi[keep], -1)
            codon_in = np.cumsum(cover[:m]) > 0
            strand_mask[f:f + 3 * m] |= np.repeat(codon_in, 3)
        mask |= strand_mask if strand == 0 else strand_mask[::-1]
    return mask


def position_classes(g):
    """[(label, bool mask)] of the classes of section 3."""
    rep = repeat_mask(g)
    low = low_complexity_mask(g)
    orf = long_orf_mask(g)
    gc = tile_stat(np.isin(g.seq, (1, 2)).astype(np.float64), GC_TILE)
    out = [("all", np.ones(len(g.seq), bool)), ("repeat", rep), ("not repeat", ~rep),
           ("low complexity", low), ("in a long ORF (genes)", orf),
           ("outside long ORFs", ~orf)]
    for lo, hi in zip(GC_EDGES[:-1], GC_EDGES[1:]):
        label = (f"AT-rich, GC < {hi:.0%}" if lo == 0.0 else f"GC-rich, GC >= {lo:.0%}"
                 if hi > 1 else f"GC {lo:.0%}-{hi:.0%}")
        out.append((label, (gc >= lo) & (gc < hi)))
    return out


CLASS_LEGEND = (f"repeat: inside a {REPEAT_K}-mer that occurred earlier in the genome (file "
                f"order), on either strand — what a long-context model can copy; low "
                f"complexity: in a {LOWCOMP_TILE}-bp tile whose trinucleotide entropy is below "
                f"{LOWCOMP_BITS} bits (at most 5.95; ~5 in typical bacterial sequence); long "
                f"ORF: inside a stop-to-stop open reading frame of >= {ORF_CODONS} codons on "
                f"either strand (no annotation is available offline: the usual proxy for "
                f"protein-coding genes in bacteria); GC: the GC fraction of the position's "
                f"{GC_TILE}-bp tile.")


# ---------------------------------------------------------------- long context

def bucket_edges(window):
    """1-16, 17-64, ... by factors of 4 up to the window length."""
    edges = [0, 16]
    while edges[-1] * 4 < window:
        edges.append(edges[-1] * 4)
    return edges + [window] if edges[-1] < window else edges


def short(n):
    return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else str(n)


def bucket_labels(edges):
    # 1-16, 17-64, 65-256, 257-1K, then 1K-4K for 1,025-4,096 and so on
    return [f"{short(a + 1) if a + 1 < 1024 else short(a)}-{short(b)}"
            for a, b in zip(edges[:-1], edges[1:])]


def windows(g, w, max_windows):
    """Offsets of whole windows of w bases tiling each record from its start; at most
    max_windows (0: all), spread evenly."""
    offs = [a + j * w for a, n in zip(g.starts, g.lengths) for j in range(n // w)]
    if max_windows and len(offs) > max_windows:
        offs = [offs[i] for i in np.linspace(0, len(offs) - 1, max_windows).round().astype(int)]
    return np.array(offs, dtype=np.int64)


def long_context(args, name, g, fasta, mk, whole_bits):
    """Model (fresh state per window), Markov k=kmax (context reset per window) and the
    model scored over whole records, by position inside the window."""
    w = args.window
    offs = windows(g, w, args.max_windows)
    if not len(offs):
        return None
    rec = np.searchsorted(g.starts, offs, side="right") - 1
    bed = os.path.join(args.cache, f"windows-{name}-{w}-{len(offs)}.bed")
    os.makedirs(args.cache, exist_ok=True)
    write_if_changed(bed, "".join(f"{g.names[r]}\t{o - g.starts[r]}\t{o - g.starts[r] + w}\n"
                                  for r, o in zip(rec, offs)).encode())
    offset, bits, _ = engine_cached(args, fasta, g, bed)
    wanted = (offs[:, None] + np.arange(w)).ravel()
    if len(offset) != len(wanted) or np.any(np.sort(offset) != np.sort(wanted)):
        sys.exit(f"eval_dna: the engine did not score the {len(offs)} windows of {name}")
    fresh = np.full(len(g.seq), np.nan)
    fresh[offset] = bits
    mbits = mk.bits(g.seq, g.starts, reset=offs, orders=[mk.kmax])[0]
    edges = bucket_edges(w)
    rows, per_window = [], []
    for label, lo, hi in zip(bucket_labels(edges), edges[:-1], edges[1:]):
        at = offs[:, None] + np.arange(lo, hi)  # [window, position in bucket]
        ok = g.seq[at] < 4
        n = ok.sum(axis=1)
        # per-window means, for the spread across windows; pooled means for the table
        pw = {k: np.where(ok, v[at], 0.0).sum(axis=1) / np.maximum(n, 1)
              for k, v in (("model", fresh), ("markov", mbits), ("whole", whole_bits))}
        per_window.append(pw)
        rows.append({"label": label, "from": lo + 1, "to": hi, "positions": int(n.sum()),
                     **{k: float((pw[k] * n).sum() / max(n.sum(), 1)) for k in ("model", "markov")},
                     "model_whole_record": float((pw["whole"] * n).sum() / max(n.sum(), 1))})
    out = {"window": w, "windows": int(len(offs)), "buckets": rows}
    if len(rows) >= 4 and len(offs) >= 2:
        # model minus Markov, change from the 257-1K bucket to the last, per window: its
        # spread gives a standard error (content varies from window to window)
        a, b = per_window[3], per_window[-1]
        d = (b["model"] - a["model"]) - (b["markov"] - a["markov"])
        out["late_gain"] = {"from": rows[3]["label"], "to": rows[-1]["label"],
                            "model_rel_markov": float(d.mean()),
                            "se": float(d.std(ddof=1) / np.sqrt(len(d)))}
    return out


# ---------------------------------------------------------------- report

def git_commit():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def model_info(model_dir):
    try:
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
    except OSError:
        return {}
    keys = ("model_type", "hidden_size", "d_model", "num_hidden_layers", "n_layer",
            "state_size", "d_state", "vocab_size")
    info = {k: c[k] for k in keys if k in c}
    st = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(st):
        h = hashlib.sha256()
        with open(st, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        info["safetensors_sha256"] = h.hexdigest()[:16]
    return info


def delta(x):
    return f"{round(x, 4) + 0.0:+.4f}"  # + 0.0: no '-0.0000'


def fmt(x):
    return "—" if x is None or not np.isfinite(x) else f"{x:.4f}"


def main_table(res):
    """Markdown: bits/base of every order and of the model, per data set."""
    head = "| predictor | " + " | ".join(SETS) + " |\n|---|" + "---:|" * len(SETS) + "\n"
    best = {s: int(np.argmin(res["sets"][s]["markov"])) for s in SETS}
    rows = []
    for k in range(res["kmax"] + 1):
        cells = []
        for s in SETS:
            v = fmt(res["sets"][s]["markov"][k])
            cells.append(f"**{v}**" if k == best[s] else v)
        rows.append(f"| Markov k={k} | " + " | ".join(cells) + " |")
    if res["model_dir"]:
        rows.append("| **model** | " + " | ".join(fmt(res["sets"][s]["model"]) for s in SETS) + " |")
    return head + "\n".join(rows) + "\n"


def where_table(c):
    out = (f"| class | share | model | Markov k={c['markov_k']} | model − Markov |\n"
           "|---|---:|---:|---:|---:|\n")
    for r in c["rows"]:
        d = None if r["model"] is None else r["model"] - r["markov"]
        out += (f"| {r['class']} | {r['share']:.1%} | {fmt(r['model'])} | {fmt(r['markov'])} | "
                f"{'—' if d is None else f'{d:+.4f}'} |\n")
    return out


def where_summary(c):
    rows = [r for r in c["rows"] if r["positions"] >= 1000 and r["class"] != "all"]
    win = [r["class"] for r in rows if r["model"] < r["markov"]]
    lose = [r["class"] for r in rows if r["model"] >= r["markov"]]
    d = {r["class"]: r["model"] - r["markov"] for r in rows}
    s = ""
    if win:
        s += ("The model beats the best Markov model on: "
              + "; ".join(f"{x} ({d[x]:+.3f})" for x in win) + ". ")
    if lose:
        s += "The model loses on: " + "; ".join(f"{x} ({d[x]:+.3f})" for x in lose) + "."
    return s + " (Classes with fewer than 1,000 positions are left out of this sentence.)"


def long_table(lc_by_set, kmax):
    """Per bucket and test genome: the model from a fresh state, Markov k=kmax, and what the
    missing history costs the model (fresh minus whole-record run on the same positions)."""
    names = [n for n in TESTS if lc_by_set.get(n)]
    head = "| position in window | " + " | ".join(
        f"{n}: model | {n}: Markov k={kmax} | {n}: fresh − whole" for n in names)
    out = head + " |\n|---|" + "---:|" * (3 * len(names)) + "\n"
    for i, label in enumerate(bucket_labels(bucket_edges(lc_by_set[names[0]]["window"]))):
        cells = []
        for n in names:
            b = lc_by_set[n]["buckets"][i]
            cells += [fmt(b["model"]), fmt(b["markov"]), delta(b["model"] - b["model_whole_record"])]
        out += f"| {label} | " + " | ".join(cells) + " |\n"
    return out


def long_summary(lc):
    """Two readings: does the model keep improving after a few hundred bases (relative to the
    Markov model on the same positions), and how far back does a fresh start still cost."""
    b = lc["buckets"]
    if len(b) < 4:
        return ""
    labels = [r["label"] for r in b]
    mid, last = b[3], b[-1]  # 257-1K against the last bucket
    dm, dk = last["model"] - mid["model"], last["markov"] - mid["markov"]
    gap = [r["model"] - r["model_whole_record"] for r in b]
    still = [labels[i] for i, g in enumerate(gap) if abs(g) >= 0.001]
    se = f" ± {lc['late_gain']['se']:.4f} (s.e. over windows)" if "late_gain" in lc else ""
    return (f"{labels[3]} → {labels[-1]}: model {delta(dm)}, Markov {delta(dk)}, model relative "
            f"to Markov {delta(dm - dk)}{se} bits/base; |fresh − whole| ≥ 0.001 bits/base up to "
            f"{still[-1] if still else '(nowhere)'}, {delta(gap[-1])} in the last bucket")


def runs_line(runs):
    fresh = [r for r in runs if not r["cached"]]
    s = f"{len(runs)} runs, {len(runs) - len(fresh)} from the cache"
    if fresh:
        n, t = sum(r["positions"] for r in fresh), sum(r["seconds"] for r in fresh)
        s += f"; scored {n:,} positions in {t:.0f} s ({n / max(t, 1e-9) / 1e3:.0f} kbp/s)"
    return s


def write_report(res, path):
    lines = ["# DNA model evaluation\n",
             "Generated by `train/dna/eval_dna.py` — do not edit by hand; rerun it.\n",
             f"- date: {res['date']}",
             f"- model: `{res['model_dir'] or '(none: --no-model)'}` {json.dumps(res['model_info'])}",
             f"- git commit: `{res['git_commit']}`",
             f"- command: `{res['command']}`",
             f"- engine: `{res['engine']}`",
             f"- runtime: {res['runtime_s']:.0f} s; engine: {runs_line(res['engine_runs'])}",
             "- data (`" + res["data"] + "`): train " + f"{res['sizes']['train']:,} bp in "
             f"{res['sizes']['train_records']} records (ACGT; Markov counts use both strands, "
             f"{2 * res['sizes']['train']:,} bp); "
             + "; ".join(f"{s} {res['sizes'][s]:,} bp" for s in SETS),
             "",
             "## Bits per base\n",
             "-log2 p(observed base), averaged over every A/C/G/T position of every record, "
             "including the first of each record (the model predicts it "
             + res["first_base"] + "; the Markov models with order 0, and the first k bases of "
             "a record with the longest order their context allows). Other codes are scored by "
             "neither; they end a Markov context, the model reads through them. Uniform = 2. "
             "Bold: the best Markov order per set. The Markov smoothing (per order: discount "
             "scale s, prior strength alpha) is tuned on val, so val is optimistic for the "
             "Markov rows; the test sets are held out from everything.\n",
             main_table(res),
             "Markov smoothing per order k (s, alpha): "
             + ", ".join(f"{k}: ({s:g}, {a:g})" for k, (s, a) in enumerate(res["markov_params"]))
             + "\n"]
    if res.get("where"):
        lines.append("## Where the model wins or loses\n")
        lines.append("Bits/base by position class, model against the Markov order that is best on "
                     "that genome (chosen on the test genome itself, which favours the baseline). "
                     "Classes overlap; share = fraction of the genome's scored positions.\n")
        for name in TESTS:
            c = res["where"].get(name)
            if c:
                lines += [f"### {name} ({res['genomes'][name]})\n", where_table(c),
                          where_summary(c) + "\n"]
        lines.append("Classes: " + CLASS_LEGEND + "\n")
    if res.get("long_context"):
        lc = res["long_context"]
        n = next(iter(lc.values()))
        lines.append("## Long context\n")
        lines.append(f"Bits/base by position inside windows of {n['window']:,} bases that tile each "
                     "record from its start (whole windows only; windows per genome: "
                     + ", ".join(f"{k} {v['windows']}" for k, v in lc.items()) + "), scored by "
                     "the engine as regions, i.e. from a fresh state at each window start "
                     f"(`--regions`, no `--context`). The Markov model (k={res['kmax']}) restarts "
                     "its context at each window start too. 'fresh − whole' is the model's bits "
                     "here minus its bits on the same positions in the whole-record run (full "
                     "history): what the missing history costs at that distance from the start; "
                     "it is zero once the state has forgotten where it started.\n")
        lines.append(long_table(lc, res["kmax"]))
        lines.append("Every window contributes equally to every bucket, so each bucket holds the "
                     "same windows; the early buckets are small (windows × 16 positions in 1-16), "
                     "so their Markov values wobble with the content. A model that uses more than "
                     "the last few hundred bases keeps improving in the late buckets relative to "
                     "the Markov model, and its fresh − whole gap persists to large distances:\n")
        for k, v in lc.items():
            s = long_summary(v)
            if s:
                lines.append(f"- {k}: {s}")
        lines.append("")
    lines.append(f"Machine-readable: `{os.path.basename(os.path.splitext(path)[0])}.json`.\n")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(res, f, indent=1)


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model directory (config.json + model.safetensors)")
    ap.add_argument("--no-model", action="store_true", help="Markov baselines only")
    ap.add_argument("--data", default="data/dna", help="prepare.py's output [data/dna]")
    ap.add_argument("--mamba-stream", default="build/mamba-stream", help="the engine binary")
    ap.add_argument("--engine-args", default="",
                    help="more options for mamba-stream score, e.g. '--device cuda --batch 64'")
    ap.add_argument("--kmax", type=int, default=12, help="highest Markov order [12]")
    ap.add_argument("--window", type=int, default=32768, help="long-context window [32768]")
    ap.add_argument("--max-windows", type=int, default=0,
                    help="long-context windows per test genome, spread evenly [0: all]")
    ap.add_argument("--no-long", action="store_true", help="skip the long-context section")
    ap.add_argument("--cache", help="Markov counts and engine scores [DATA/eval-cache]")
    ap.add_argument("--no-cache", action="store_true", help="rescore with the engine")
    ap.add_argument("--out", default="docs/eval-dna.md", help="report; the JSON goes beside it")
    a = ap.parse_args(argv)
    if not a.no_model and not a.model:
        ap.error("--model DIR is required (or --no-model)")
    if a.window < 64:
        ap.error("--window must be at least 64")
    if a.kmax < 0 or a.kmax > 13:
        ap.error("--kmax must be 0..13 (4^(k+1) counts in memory)")
    a.cache = a.cache or os.path.join(a.data, "eval-cache")
    return a


def markov_section(args, mk, sets):
    """Tune on val, then bits of every order on every set: (mean bits per set, per-position
    bits of the test sets)."""
    t = time.time()
    params = mk.tune(sets["val"].seq, sets["val"].starts)
    log(f"markov: smoothing tuned on val ({time.time() - t:.1f} s)")
    means, per_pos = {}, {}
    for name, g in sets.items():
        b = mk.bits(g.seq, g.starts)
        ok = g.seq < 4
        means[name] = [float(b[k, ok].astype(np.float64).mean()) for k in range(mk.kmax + 1)]
        if name in TESTS:
            per_pos[name] = b
        log(f"markov: {name}: " + " ".join(f"{x:.3f}" for x in means[name]))
    return params, means, per_pos


def where_section(g, model, mbits, k):
    rows = []
    for label, mask in position_classes(g):
        m = mask & (g.seq < 4)
        n = int(np.count_nonzero(m))
        rows.append({"class": label, "positions": n, "share": n / max(g.acgt(), 1),
                     "model": float(model[m].mean()) if n else None,
                     "markov": float(mbits[m].astype(np.float64).mean()) if n else None})
    return {"markov_k": k, "rows": rows}


def main(argv=None):
    args = parse_args(argv)
    if not args.no_model and not os.access(args.mamba_stream, os.X_OK):
        sys.exit(f"eval_dna: no engine at {args.mamba_stream} (build it, or --mamba-stream PATH)")
    train = Genome.from_npz(os.path.join(args.data, "train.npz"))
    sets = {"val": Genome.from_npz(os.path.join(args.data, "val.npz"))}
    fastas = {n: os.path.join(args.data, f"{n}.fa") for n in TESTS}
    for n in TESTS:
        sets[n] = Genome.from_fasta(fastas[n])
    try:
        with open(os.path.join(args.data, "splits.json")) as f:
            splits = json.load(f)
        genomes = {n: splits[n]["genome"] for n in TESTS}
    except (OSError, KeyError, ValueError):
        genomes = {n: n for n in TESTS}
    log(f"data: train {train.acgt():,} bp, "
        + ", ".join(f"{n} {g.acgt():,} bp" for n, g in sets.items()))

    mk = fit_markov(train, args.kmax, args.cache, os.path.join(args.data, "train.npz"))
    train_bp, train_records = train.acgt(), len(train.names)
    del train  # 18 MB; the counts are what matter now
    params, means, mbits = markov_section(args, mk, sets)

    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "model_dir": None if args.no_model else args.model,
           "model_info": {} if args.no_model else model_info(args.model),
           "git_commit": git_commit(),
           "command": " ".join(shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])),
           "engine": "none" if args.no_model else f"{args.mamba_stream} {args.engine_args}".strip(),
           "data": args.data, "genomes": genomes, "kmax": args.kmax,
           "sizes": {"train": train_bp, "train_records": train_records,
                     **{n: g.acgt() for n, g in sets.items()}},
           "markov_params": params,
           "sets": {n: {"positions": sets[n].acgt(), "markov": means[n], "model": None} for n in SETS},
           "first_base": "—", "where": {}, "class_legend": CLASS_LEGEND, "long_context": {}}

    if not args.no_model:
        # val has no FASTA: write one, with plain names (val's contain spaces)
        os.makedirs(args.cache, exist_ok=True)
        fastas["val"] = os.path.join(args.cache, "val.fa")
        sets["val"].names = [f"val{i}" for i in range(len(sets["val"].names))]
        write_if_changed(fastas["val"], sets["val"].fasta())
        rules = {"bos": 0, "uniform": 0}
        for name in SETS:
            bits, r = model_bits(args, name, sets[name], fastas[name])
            rules = {k: rules[k] + r[k] for k in rules}
            res["sets"][name]["model"] = float(np.nanmean(bits))
            log(f"model: {name}: {res['sets'][name]['model']:.4f} bits/base")
            if name in TESTS:
                k = int(np.argmin(means[name]))
                res["where"][name] = where_section(sets[name], bits, mbits[name][k], k)
                if not args.no_long:
                    lc = long_context(args, name, sets[name], fastas[name], mk, bits)
                    if lc:
                        res["long_context"][name] = lc
        res["first_base"] = ("after the BOS token" if rules["uniform"] == 0 else
                             "as uniform (no BOS token)" if rules["bos"] == 0 else
                             f"after BOS ({rules['bos']}) or uniform ({rules['uniform']})")
        res["first_base_rules"] = rules
    res["runtime_s"] = time.time() - T0
    res["engine_runs"] = ENGINE_RUNS
    write_report(res, args.out)
    print(main_table(res), end="")
    log(f"wrote {args.out} and {os.path.splitext(args.out)[0]}.json")


if __name__ == "__main__":
    main()
