#!/usr/bin/env bash
# Score a genome on a SLURM cluster: one array task per sequence of the FASTA index.
#
#   samtools faidx genome.fa                       # once: genome.fa.fai (or bgzip + faidx)
#   N=$(wc -l < genome.fa.fai)
#   sbatch --array=1-$N pipelines/slurm_score_genome.sh MODEL_DIR genome.fa OUTDIR
#   # when all tasks are done: cat OUTDIR/*.bedgraph > genome.bedgraph (in .fai order)
#
# Each task scores one whole sequence (so scores equal a single-process run) and writes
# OUTDIR/<index>.<name>.bedgraph atomically (name with characters other than
# [A-Za-z0-9._-] replaced by _); a failed task leaves no file and exits
# non-zero, so resubmitting the missing indices is safe. Set MS_DEVICE=cuda for GPU
# nodes (request one GPU per task, e.g. #SBATCH --gres=gpu:1).
#SBATCH --job-name=mamba-stream
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
set -euo pipefail
model=$1 fasta=$2 outdir=$3
bin=${MS_BIN:-mamba-stream}
i=${SLURM_ARRAY_TASK_ID:?run as a SLURM array job (--array=1-N)}
name=$(sed -n "${i}p" "$fasta.fai" | cut -f1)
[ -n "$name" ] || { echo "no sequence $i in $fasta.fai" >&2; exit 2; }
mkdir -p "$outdir"
safe=$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_')
out=$(printf '%s/%06d.%s.bedgraph' "$outdir" "$i" "$safe")
exec "$bin" --model "$model" --fasta "$fasta" --region "$name" --device "${MS_DEVICE:-cpu}" \
    --threads "${SLURM_CPUS_PER_TASK:-1}" -q -o "$out"
