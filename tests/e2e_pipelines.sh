#!/usr/bin/env bash
# The SLURM array script, run task by task as SLURM would: the joined per-sequence tracks
# equal one whole-genome run.
. "$(dirname "$0")/lib_e2e.sh"
MODEL=$(make_dna_model)
CE=$(deb_file htslib-test usr/share/htslib-test/test/ce.fa)
cp "$CE" "$TMP/ce.fa"
samtools faidx "$TMP/ce.fa"
n=$(wc -l < "$TMP/ce.fa.fai")
for i in $(seq 1 "$n"); do
    SLURM_ARRAY_TASK_ID=$i MS_BIN="$BIN" bash "$MS_SRC/pipelines/slurm_score_genome.sh" "$MODEL" "$TMP/ce.fa" "$TMP/parts" \
        || fail "array task $i"
done
check "one track per sequence" [ "$(ls "$TMP/parts" | wc -l)" -eq "$n" ]
(head -n 1 "$TMP/parts/000001."*; for f in "$TMP/parts/"*; do tail -n +2 "$f"; done) > "$TMP/joined.bedgraph"
"$BIN" --model "$MODEL" --fasta "$TMP/ce.fa" -q -o "$TMP/whole.bedgraph"
check "joined array output equals one whole-genome run" same_track "$TMP/joined.bedgraph" "$TMP/whole.bedgraph"
finish
