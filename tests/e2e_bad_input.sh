#!/usr/bin/env bash
# Bad input: one clear line on stderr naming the file / record / tensor at fault, a
# non-zero exit, no crash and no output file left behind.
. "$(dirname "$0")/lib_e2e.sh"

MODEL=$(make_dna_model)
printf '>chr1\nACGTACGTAC\nGGTTAACC\n>chr2\nACGT\n' > "$TMP/good.fa"

# expect_error "what" "text the line must contain" command... ; runs with -o $TMP/out.tsv
expect_error() {
    local what=$1 needle=$2; shift 2
    rm -f "$TMP/out.tsv" "$TMP/err"
    "$@" -o "$TMP/out.tsv" 2> "$TMP/err" > /dev/null
    local rc=$?
    local lines; lines=$(wc -l < "$TMP/err")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -qF -- "$needle" "$TMP/err" \
        && [ ! -e "$TMP/out.tsv" ] && [ -z "$(ls "$TMP" | grep '\.tmp\.')" ]; then
        ok "$what: $(cat "$TMP/err")"
    else
        fail "$what (exit $rc, $lines stderr lines, want '$needle'): $(cat "$TMP/err")"
    fi
}
S() { "$BIN" --model "$MODEL" -q "$@"; }

expect_error "missing FASTA" "nope.fa" S --fasta "$TMP/nope.fa"
printf 'ACGT\n>x\nAC\n' > "$TMP/nohdr.fa"
expect_error "sequence before the first header" "nohdr.fa: line 1" S --fasta "$TMP/nohdr.fa"
printf '>x\nACGT\nAC9T\n' > "$TMP/digit.fa"
expect_error "digit in sequence" "digit.fa: line 3" S --fasta "$TMP/digit.fa"
head -c 10000 /dev/urandom | gzip > "$TMP/r.gz"; head -c 4000 "$TMP/r.gz" > "$TMP/trunc.fa.gz"
printf '>x\n' | gzip > "$TMP/t2.gz"
python3 -c "import random,gzip,sys; random.seed(1); sys.stdout.buffer.write(gzip.compress(b'>x\n' + bytes(random.choice(b'ACGT') for _ in range(200000)) + b'\n'))" > "$TMP/big.fa.gz"
head -c 20000 "$TMP/big.fa.gz" > "$TMP/trunc.fa.gz"
expect_error "truncated gzip" "trunc.fa.gz" S --fasta "$TMP/trunc.fa.gz"
expect_error "unknown region sequence" "chrZ" S --fasta "$TMP/good.fa" --region chrZ:1-10
expect_error "region beyond the end" "chr1" S --fasta "$TMP/good.fa" --region chr1:500-600
expect_error "malformed region" "chr1:9-2" S --fasta "$TMP/good.fa" --region chr1:9-2
gzip -c "$TMP/good.fa" > "$TMP/plain.fa.gz"
expect_error "region on plain gzip (not bgzip)" "plain.fa.gz" S --fasta "$TMP/plain.fa.gz" --region chr1:1-5
expect_error "region on stdin" "stdin" S --fasta - --region chr1:1-5
printf 'chr1\t5\n' > "$TMP/bad.bed"
expect_error "BED line with two fields" "bad.bed" S --fasta "$TMP/good.fa" --regions "$TMP/bad.bed"
expect_error "unknown format" "--format" S --fasta "$TMP/good.fa" --format xls
expect_error "chunk 0" "--chunk" S --fasta "$TMP/good.fa" --chunk 0
expect_error "precision bf16 on CPU" "float32 only" S --fasta "$TMP/good.fa" --precision bf16

# models
expect_error "missing model directory" "no-such-model" "$BIN" --model "$TMP/no-such-model" --fasta "$TMP/good.fa"
cp -r "$MODEL" "$TMP/m-trunc"; head -c 50000 "$MODEL/model.safetensors" > "$TMP/m-trunc/model.safetensors"
expect_error "truncated safetensors" "model.safetensors" "$BIN" --model "$TMP/m-trunc" --fasta "$TMP/good.fa"
cp -r "$MODEL" "$TMP/m-cfg"; grep -v '"hidden_size"' "$MODEL/config.json" > "$TMP/m-cfg/config.json"
expect_error "config missing a field" "hidden_size" "$BIN" --model "$TMP/m-cfg" --fasta "$TMP/good.fa"
cp -r "$MODEL" "$TMP/m-shape"; sed 's/"state_size": 16/"state_size": 8/' "$MODEL/config.json" > "$TMP/m-shape/config.json"
expect_error "weights of the wrong shape" "config expects" "$BIN" --model "$TMP/m-shape" --fasta "$TMP/good.fa"
cp -r "$MODEL" "$TMP/m-json"; echo '{"hidden_size": 64,' > "$TMP/m-json/config.json"
expect_error "config.json syntax error" "config.json" "$BIN" --model "$TMP/m-json" --fasta "$TMP/good.fa"
mkdir -p "$TMP/m-noalpha"; cp "$MODEL/config.json" "$MODEL/model.safetensors" "$TMP/m-noalpha/"
expect_error "model without an alphabet" "--alphabet" "$BIN" --model "$TMP/m-noalpha" --fasta "$TMP/good.fa"
expect_error "unknown built-in alphabet" "klingon" "$BIN" --model "$TMP/m-noalpha" --alphabet klingon --fasta "$TMP/good.fa"
expect_error "CUDA asked for on a CPU-only run" "CUDA" S --fasta "$TMP/good.fa" --device cuda:7

# output
rm -f "$TMP/err"
S --fasta "$TMP/good.fa" -o "$TMP/no/such/dir/out.tsv" 2> "$TMP/err"
rc=$?
check "unwritable output: non-zero exit and one line naming it" \
    [ $rc -ne 0 -a "$(wc -l < "$TMP/err")" -eq 1 -a -n "$(grep -F 'no/such/dir' "$TMP/err")" ]
S --fasta "$TMP/good.fa" -o /dev/full 2> "$TMP/err"
check "disk full: non-zero exit" [ $? -ne 0 -a -n "$(grep -F '/dev/full' "$TMP/err")" ]
# an error in the middle of a long input: the output file is not left half-written
python3 -c "import sys; sys.stdout.write('>a\n' + 'ACGT' * 50000 + '\n>b\nACGT!!\n')" > "$TMP/late.fa"
expect_error "error after 200 kbp of good input" "late.fa: line 4" S --fasta "$TMP/late.fa"
finish
