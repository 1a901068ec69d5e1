#!/usr/bin/env bash
# Scoring real genomes end to end: the same scores from plain, gzip, BGZF and stdin, at any
# chunk and batch size; every position once and in order over many records; regions and
# BED regions equal scoring the extracted subsequence; soft-masked bases score as upper
# case; bedGraph and wig carry the TSV's values at the right coordinates.
. "$(dirname "$0")/lib_e2e.sh"

MODEL=$(make_dna_model)
LAMBDA=$(deb_file bowtie2-examples usr/share/doc/bowtie2/examples/reference/lambda_virus.fa.gz)
CE=$(deb_file htslib-test usr/share/htslib-test/test/ce.fa)
PIG=$(deb_file lastz-examples usr/share/doc/lastz/examples/test_data/pseudopig.fa.gz)
run() { "$BIN" --model "$MODEL" -q "$@"; }

# --- input forms: plain, gzip, BGZF, stdin give identical output
zcat "$LAMBDA" > "$TMP/lambda.fa"
bgzip -c "$TMP/lambda.fa" > "$TMP/lambda.fa.bgz"
run --fasta "$TMP/lambda.fa" > "$TMP/plain.tsv"
check "lambda: one line per base (48502) plus header" [ "$(wc -l < "$TMP/plain.tsv")" -eq 48503 ]
run --fasta "$LAMBDA" > "$TMP/gz.tsv"
check "gzip input equals plain" cmp -s "$TMP/plain.tsv" "$TMP/gz.tsv"
run --fasta "$TMP/lambda.fa.bgz" > "$TMP/bgzf.tsv"
check "BGZF input equals plain" cmp -s "$TMP/plain.tsv" "$TMP/bgzf.tsv"
zcat "$LAMBDA" | run --fasta - > "$TMP/stdin.tsv"
check "stdin input equals plain" cmp -s "$TMP/plain.tsv" "$TMP/stdin.tsv"
check "first base predicted after <bos> (rule 1)" \
    [ "$(awk -F'\t' 'NR==2{print $11} NR==3{print $11}' "$TMP/plain.tsv" | tr '\n' ' ')" = "1 0 " ]
check "every score finite" awk -F'\t' 'NR>1 && ($4 == "nan" || $4 == "-inf" || $5 == "nan") {exit 1}' "$TMP/plain.tsv"

# --- chunk and batch invariance (float rounding only)
for c in 1 7 64 4096 100000; do
    run --fasta "$TMP/lambda.fa" --chunk "$c" --batch 3 > "$TMP/c$c.tsv"
    check "chunk $c equals default chunking" same_scores "$TMP/plain.tsv" "$TMP/c$c.tsv"
done

# --- many records (ce.fa: 7 records), batched: every position once, in input order
cp "$CE" "$TMP/ce.fa"
run --fasta "$TMP/ce.fa" --chunk 500 --batch 4 > "$TMP/ce.tsv"
run --fasta "$TMP/ce.fa" --chunk 4096 --batch 1 > "$TMP/ce1.tsv"
check "ce.fa batched equals unbatched" same_scores "$TMP/ce1.tsv" "$TMP/ce.tsv"
awk -F'\t' 'NR>1 { if ($1 != last) { if (last != "") print last "\t" n; last = $1; n = 0 }
                   n++; if ($2 != n) { print "out of order at " $1 ":" $2; exit 1 } }
            END { print last "\t" n }' "$TMP/ce.tsv" > "$TMP/ce.counts"
"$BIN" --model "$MODEL" --fasta "$TMP/ce.fa" --region CHROMOSOME_I:1-1 -q >/dev/null # builds .fai
check "ce.fa: per-record counts equal the index lengths" \
    diff <(cut -f1,2 "$TMP/ce.fa.fai") "$TMP/ce.counts"

# --- regions: scores of a region equal scoring the extracted subsequence
run --fasta "$TMP/ce.fa" --region CHROMOSOME_I:1000-2000 > "$TMP/reg.tsv"
samtools faidx "$TMP/ce.fa" CHROMOSOME_I:1000-2000 | sed 's/^>.*/>CHROMOSOME_I/' > "$TMP/sub.fa"
run --fasta "$TMP/sub.fa" | awk -F'\t' 'BEGIN{OFS="\t"} NR>1{$2 += 999} {print}' > "$TMP/sub.tsv"
check "region: 1001 positions" [ "$(tail -n +2 "$TMP/reg.tsv" | wc -l)" -eq 1001 ]
check "region equals the extracted subsequence" same_scores "$TMP/sub.tsv" "$TMP/reg.tsv"
printf 'CHROMOSOME_I\t999\t2000\n' > "$TMP/r.bed"
run --fasta "$TMP/ce.fa" --regions "$TMP/r.bed" > "$TMP/bed.tsv"
check "BED region equals --region" cmp -s "$TMP/reg.tsv" "$TMP/bed.tsv"
run --fasta "$TMP/ce.fa" --region CHROMOSOME_I:1000-2000 --context 500 > "$TMP/ctx.tsv"
check "--context: same 1001 positions" [ "$(tail -n +2 "$TMP/ctx.tsv" | wc -l)" -eq 1001 ]
run --fasta "$TMP/ce.fa" --region CHROMOSOME_I:500-2000 | awk -F'\t' 'NR==1 || $2 >= 1000' > "$TMP/ctx_ref.tsv"
check "--context 500 equals scoring from 500 bases earlier" same_scores "$TMP/ctx_ref.tsv" "$TMP/ctx.tsv"
bgzip -c "$TMP/ce.fa" > "$TMP/ce.fa.gz"
run --fasta "$TMP/ce.fa.gz" --region CHROMOSOME_I:1000-2000 > "$TMP/reg_gz.tsv"
check "region from a bgzip FASTA equals plain" cmp -s "$TMP/reg.tsv" "$TMP/reg_gz.tsv"

# --- soft-masked (lower-case) bases score as upper case
zcat "$PIG" > "$TMP/pig.fa"
awk '/^>/ { print; next } { print toupper($0) }' "$TMP/pig.fa" > "$TMP/PIG.fa"
check "pseudopig is soft-masked" grep -q '[acgt]' "$TMP/pig.fa"
# (the last column, masked, is what differs: it flags the lower-case positions)
run --fasta "$TMP/pig.fa" | awk -F'\t' 'BEGIN{OFS="\t"} NR > 1 {$3 = toupper($3)} {NF = 11; print}' > "$TMP/pig.tsv"
run --fasta "$TMP/PIG.fa" | awk -F'\t' 'BEGIN{OFS="\t"} {NF = 11; print}' > "$TMP/PIG.tsv"
check "soft-masked input scores as upper case" cmp -s "$TMP/pig.tsv" "$TMP/PIG.tsv"

# --- track formats carry the TSV's values at the right coordinates
run --fasta "$TMP/ce.fa" --region CHROMOSOME_II:1-300 --region CHROMOSOME_I:101-200 > "$TMP/two.tsv"
run --fasta "$TMP/ce.fa" --region CHROMOSOME_II:1-300 --region CHROMOSOME_I:101-200 --format bedgraph --value entropy > "$TMP/two.bg"
check "bedGraph: 0-based starts, entropy column" diff \
    <(awk -F'\t' 'NR>1{print $1 "\t" $2-1 "\t" $2 "\t" $5}' "$TMP/two.tsv") <(tail -n +2 "$TMP/two.bg")
run --fasta "$TMP/ce.fa" --region CHROMOSOME_II:1-300 --region CHROMOSOME_I:101-200 -o "$TMP/two.wig"
check "wig (from -o extension): fixedStep blocks at each region start" \
    [ "$(grep -c '^fixedStep' "$TMP/two.wig")" = 2 -a "$(grep '^fixedStep' "$TMP/two.wig" | sed -n 2p)" = "fixedStep chrom=CHROMOSOME_I start=101 step=1" ]
check "wig values equal TSV logp" diff <(awk -F'\t' 'NR>1{print $4}' "$TMP/two.tsv") <(grep -v '^[tf]' "$TMP/two.wig")
check "-o leaves no temporary file" [ "$(ls "$TMP" | grep -c '\.tmp\.')" -eq 0 ]

# --- a model with no BOS token: first base uniform (rule 2, logp ln 1/4)
run --fasta "$TMP/lambda.fa" --no-bos | awk -F'\t' 'NR==2' > "$TMP/nobos.tsv"
check "--no-bos: first base uniform" awk -F'\t' '{exit !($11 == 2 && $4 > -1.3863 && $4 < -1.3862)}' "$TMP/nobos.tsv"
finish
