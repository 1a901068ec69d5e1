#!/usr/bin/env bash
# run.sh - the DNA model, end to end: data -> train -> export -> evaluate.
#
#   train/dna/run.sh [MODEL_OUT]        (from the repository root; MODEL_OUT default
#                                        models/dna-mamba2-small)
#
# Needs: python3 with numpy and PyTorch (a CUDA GPU for the recorded run; the CPU works,
# slowly), apt-get download (Debian genomes), and a built build/mamba-stream for the
# evaluation. Extra arguments for train_dna.py go in TRAIN_ARGS, e.g.
# TRAIN_ARGS="--steps 200 --seq-len 1024" for a quick try; EVAL_OUT moves the report
# (default docs/eval-dna.md) and EVAL_ARGS adds options to eval_dna.py (e.g. "--no-long").
# The recorded run: 1100 steps of 32 x 4096 bases (144 M tokens), 6 min on one H200; its
# evaluation on 2 CPU cores took 42 min.
set -euo pipefail
out=${1:-models/dna-mamba2-small}
py=${PYTHON:-python3}
$py train/dna/prepare.py --out data/dna --cache data/debs
$py train/dna/train_dna.py --data data/dna --out runs/dna --export "$out" ${TRAIN_ARGS:-}
mkdir -p "$out/training"
cp runs/dna/log.tsv runs/dna/train_config.json "$out/training/"
[ -f runs/dna/loss.png ] && cp runs/dna/loss.png "$out/training/"
$py train/dna/eval_dna.py --model "$out" --data data/dna --out "${EVAL_OUT:-docs/eval-dna.md}" ${EVAL_ARGS:-}
