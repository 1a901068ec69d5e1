#!/usr/bin/env python3
"""prepare.py - the DNA model's data: real genomes from Debian packages, split by genome.

    train/dna/prepare.py [--out data/dna] [--cache data/debs]

Fetches the packages with `apt-get download` (no install, no root needed), reads the
genomes and writes, under --out:

  train.npz / val.npz   uint8 base codes (A0 C1 G2 T3, anything else 4), `seq`, and the
                        start offset of each record, `starts`, with `names`
  test_species.fa       a whole species never seen in training (H. pylori G27)
  test_strain.fa        a genome held out from a species that is in training (E. coli 536)
  splits.json           what went where, sizes, GC content

The split: one genome per training species (E. coli K-12, Klebsiella pneumoniae HS11286,
V. cholerae O395, S. aureus N315, C. elegans chromosome I); the last 2% of each training
record is held out as `val` (early-stopping signal, never trained on). Other strains of the
training species are left out entirely rather than added: they are 95-99% identical to the
chosen ones, so they would add repeats, not information. Numpy and the standard library
only, so the Markov baselines (eval_dna.py) run from the same files in CI.
"""
import argparse
import gzip
import json
import lzma
import os
import subprocess
import sys

import numpy as np

PKGS = ["bowtie-examples", "ragout-examples", "htslib-test", "kleborate-examples"]
RAGOUT = "usr/share/doc/ragout/examples"
TRAIN = [
    ("E. coli K-12 MG1655", f"{RAGOUT}/E.Coli/references/MG1655-K12.fasta.gz"),
    ("K. pneumoniae HS11286", "usr/share/doc/kleborate/examples/data/Klebs_HS11286.fna.xz"),
    ("V. cholerae O395", f"{RAGOUT}/V.Cholerae/references/O395.fasta.gz"),
    ("S. aureus N315", f"{RAGOUT}/S.Aureus/references/N315.fasta.gz"),
    ("C. elegans chrI", "usr/share/htslib-test/test/ce.fa"),
]
TEST_SPECIES = ("H. pylori G27", f"{RAGOUT}/H.Pylori/references/G27.fasta.gz")
TEST_STRAIN = ("E. coli 536", "usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz")
VAL_FRACTION = 0.02
CODE = np.full(256, 4, dtype=np.uint8)
for i, b in enumerate(b"ACGT"):
    CODE[b] = CODE[b + 32] = i  # lower case (soft-masked) is the same base


def fetch(cache):
    """Download and unpack the packages once; returns the unpack root."""
    root = os.path.join(cache, "root")
    stamp = os.path.join(root, ".done")
    if os.path.exists(stamp):
        return root
    os.makedirs(root, exist_ok=True)
    subprocess.run(["apt-get", "download", *PKGS], cwd=cache, check=True,
                   stdout=subprocess.DEVNULL)
    for f in sorted(os.listdir(cache)):
        if f.endswith(".deb"):
            subprocess.run(["dpkg-deb", "-x", os.path.join(cache, f), root], check=True)
    open(stamp, "w").close()
    return root


def read_fasta(path):
    """[(name, bytes)] of a plain, gzip or xz FASTA file."""
    opener = gzip.open if path.endswith(".gz") else lzma.open if path.endswith(".xz") else open
    recs, name, parts = [], None, []
    with opener(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line.startswith(b">"):
                if name is not None:
                    recs.append((name, b"".join(parts)))
                name, parts = line[1:].split()[0].decode(), []
            elif line:
                parts.append(line)
    if name is not None:
        recs.append((name, b"".join(parts)))
    return recs


def codes(seq):
    return CODE[np.frombuffer(seq, dtype=np.uint8)]


def gc(c):
    acgt = c[c < 4]
    return float(np.isin(acgt, (1, 2)).mean()) if acgt.size else 0.0


def save_split(path, pieces):
    """pieces: [(name, codes)] -> one npz with the concatenation and record offsets."""
    seq = np.concatenate([p for _, p in pieces]) if pieces else np.zeros(0, np.uint8)
    starts = np.cumsum([0] + [len(p) for _, p in pieces[:-1]]).astype(np.int64)
    np.savez_compressed(path, seq=seq, starts=starts, names=np.array([n for n, _ in pieces]))


def write_fasta(path, recs):
    with open(path, "w") as f:
        for name, seq in recs:
            f.write(f">{name}\n")
            s = seq.decode().upper()
            for i in range(0, len(s), 80):
                f.write(s[i:i + 80] + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/dna")
    ap.add_argument("--cache", default="data/debs")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.cache, exist_ok=True)
    root = fetch(a.cache)

    train, val, info = [], [], {"train": [], "val_fraction": VAL_FRACTION}
    for label, rel in TRAIN:
        recs = read_fasta(os.path.join(root, rel))
        if label.startswith("C. elegans"):
            recs = recs[:1]  # chromosome I; the other records are 5 kbp pieces
        for name, seq in recs:
            c = codes(seq)
            cut = int(len(c) * (1 - VAL_FRACTION))
            train.append((f"{label}|{name}", c[:cut]))
            val.append((f"{label}|{name}", c[cut:]))
            info["train"].append({"genome": label, "record": name, "bp": len(c), "gc": gc(c)})
    save_split(os.path.join(a.out, "train.npz"), train)
    save_split(os.path.join(a.out, "val.npz"), val)

    for key, (label, rel) in (("test_species", TEST_SPECIES), ("test_strain", TEST_STRAIN)):
        recs = read_fasta(os.path.join(root, rel))
        write_fasta(os.path.join(a.out, f"{key}.fa"), recs)
        info[key] = {"genome": label, "records": [n for n, _ in recs],
                     "bp": sum(len(s) for _, s in recs),
                     "gc": gc(np.concatenate([codes(s) for _, s in recs]))}
    info["train_bp"] = int(sum(len(p) for _, p in train))
    info["val_bp"] = int(sum(len(p) for _, p in val))
    with open(os.path.join(a.out, "splits.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"prepare: train {info['train_bp']:,} bp, val {info['val_bp']:,} bp, "
          f"test_species {info['test_species']['bp']:,} bp, "
          f"test_strain {info['test_strain']['bp']:,} bp -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
