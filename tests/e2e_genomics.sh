#!/usr/bin/env bash
# Genomics breadth end to end on real data (Debian htslib-test / lastz-examples):
# reads from BAM = CRAM = SAM; reverse-strand reads; flag filters and empty sequences;
# region queries; aux-tagged BAM copy; --strand reverse equals scoring the reverse
# complement directly, both = the mean; bigWig reads back equal to bedGraph; --mask-soft;
# variant scores equal a direct computation of both full windows; hidden-state export.
. "$(dirname "$0")/lib_e2e.sh"

MODEL=$(make_dna_model)
T=$(dirname "$(deb_file htslib-test usr/share/htslib-test/test/range.bam)")
PIG=$(deb_file lastz-examples usr/share/doc/lastz/examples/test_data/pseudopig.fa.gz)
BW_DUMP=${MS_BUILD:?}/tests/bw_dump
cp "$T/ce.fa" "$T/range.bam" "$T/range.bam.bai" "$T/range.cram" "$T/range.cram.crai" "$TMP/"
samtools faidx "$TMP/ce.fa"
run() { "$BIN" --model "$MODEL" -q "$@"; }
close() { # close A B TOL: numbers equal within TOL absolute + TOL relative
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= t + t * m) }'
}

# ---------------------------------------------------------------- reads
run --bam "$TMP/range.bam" > "$TMP/bam.tsv"
check "BAM: one line per read (112) plus header" [ "$(wc -l < "$TMP/bam.tsv")" -eq 113 ]
run --cram "$TMP/range.cram" --reference "$TMP/ce.fa" > "$TMP/cram.tsv"
check "CRAM of the same reads gives the same scores" cmp -s "$TMP/bam.tsv" "$TMP/cram.tsv"
samtools view -h "$TMP/range.bam" > "$TMP/range.sam"
run --sam "$TMP/range.sam" --batch 7 > "$TMP/sam.tsv"
check "SAM, other batch size: same scores" same_track <(tail -n +2 "$TMP/bam.tsv" | cut -f1-4) <(tail -n +2 "$TMP/sam.tsv" | cut -f1-4)
run --bam "$TMP/range.bam" --hts-threads 0 --batch 1 > "$TMP/b1.tsv"
check "no decompression threads, batch 1: same" same_track <(tail -n +2 "$TMP/bam.tsv" | cut -f1-4) <(tail -n +2 "$TMP/b1.tsv" | cut -f1-4)

# a read's score is its sequenced orientation scored as a FASTA record
samtools view -f 16 "$TMP/range.bam" | awk -F'\t' '{ print ">" $1 "_" $2; print $10 }' | head -20 > "$TMP/rev_stored.fa"
samtools view -f 16 "$TMP/range.bam" | awk -F'\t' '{ print $1 "_" $2 "\t" $10 }' | head -10 |
    while IFS=$'\t' read -r n s; do printf '>%s\n%s\n' "$n" "$(echo "$s" | rev | tr ACGTN TGCAN)"; done > "$TMP/rev_seq.fa"
sum_fa() { run --fasta "$1" | awk -F'\t' 'NR > 1 { s[$1] += $4; if (!($1 in o)) { o[$1] = ++n; k[n] = $1 } }
                                       END { for (i = 1; i <= n; i++) printf "%s\t%.6g\n", k[i], s[k[i]] }'; }
sum_fa "$TMP/rev_seq.fa" > "$TMP/rev_seq.sum"
awk -F'\t' 'NR > 1 && $6 == 1 { print $1 "_" $2 "\t" $4 }' "$TMP/bam.tsv" | head -10 > "$TMP/rev_tool.sum"
check "reverse-strand reads scored reverse-complemented back (= FASTA of the sequenced read)" \
    same_track <(awk '{print $1 "\t0\t1\t" $2}' "$TMP/rev_seq.sum") <(awk '{print $1 "\t0\t1\t" $2}' "$TMP/rev_tool.sum")
run --bam "$TMP/range.bam" --as-stored > "$TMP/stored.tsv"
sum_fa "$TMP/rev_stored.fa" | head -10 > "$TMP/stored_fa.sum"
grep -F -f <(awk -F'\t' 'NR > 1 && $6 == 1 { print $1 "\t" $2 "\t" }' "$TMP/bam.tsv") "$TMP/stored.tsv" | awk -F'\t' '{ print $1 "_" $2 "\t" $4 }' | head -10 > "$TMP/stored_tool.sum"
check "--as-stored scores SEQ as stored" \
    same_track <(awk '{print $1 "\t0\t1\t" $2}' "$TMP/stored_fa.sum") <(awk '{print $1 "\t0\t1\t" $2}' "$TMP/stored_tool.sum")
check "forward reads: same either way" diff <(awk -F'\t' '$6 != 1' "$TMP/bam.tsv") <(grep -v -F -f <(awk -F'\t' 'NR > 1 && $6 == 1 { print $1 "\t" $2 "\t" }' "$TMP/bam.tsv") "$TMP/stored.tsv")
check "revcomp column marks the turned reads" [ "$(awk -F'\t' 'NR > 1 && $6 == 1' "$TMP/bam.tsv" | wc -l)" -eq "$(samtools view -c -f 16 "$TMP/range.bam")" ]

# filters and empty sequences: real reads with flags / SEQ edited
samtools view -h "$TMP/range.bam" | python3 -c '
import sys
n = 0
for l in sys.stdin:
    if l.startswith("@"): sys.stdout.write(l); continue
    f = l.rstrip("\n").split("\t"); n += 1
    if n <= 4: f[1] = str(int(f[1]) | (256, 1024, 512, 2048)[n - 1])  # secondary, dup, QC-fail, supplementary
    if n in (5, 6): f[9] = f[10] = "*"                               # no stored sequence
    print("\t".join(f))' > "$TMP/edited.sam"
run --sam "$TMP/edited.sam" > "$TMP/edited.tsv" 2> /dev/null
check "default filters: secondary, duplicate, QC-fail, supplementary and 2 empty reads skipped" \
    [ "$(tail -n +2 "$TMP/edited.tsv" | wc -l)" -eq 106 ]
"$BIN" --model "$MODEL" --sam "$TMP/edited.sam" -o "$TMP/e.tsv" 2> "$TMP/err"
check "summary counts filtered and empty reads" grep -q "106 reads scored (10600 bases), 4 filtered by flags, 2 without sequence" "$TMP/err"
run --sam "$TMP/edited.sam" -F 0 > "$TMP/f0.tsv"
check "-F 0 keeps flagged reads (empty ones still skipped)" [ "$(tail -n +2 "$TMP/f0.tsv" | wc -l)" -eq 110 ]
run --sam "$TMP/edited.sam" -f 0x400 -F 0 > "$TMP/dup.tsv"
check "-f 0x400: only the duplicate" [ "$(tail -n +2 "$TMP/dup.tsv" | wc -l)" -eq 1 ]

# regions through the index
run --bam "$TMP/range.bam" --region CHROMOSOME_II > "$TMP/r2.tsv"
check "region CHROMOSOME_II: 34 reads (idxstats)" [ "$(tail -n +2 "$TMP/r2.tsv" | wc -l)" -eq 34 ]
run --bam "$TMP/range.bam" --region CHROMOSOME_I:1000-1100 --region CHROMOSOME_I:1050-1200 > "$TMP/r3.tsv"
check "overlapping regions: each read once (= samtools view)" \
    [ "$(tail -n +2 "$TMP/r3.tsv" | wc -l)" -eq "$(samtools view -c -M "$TMP/range.bam" CHROMOSOME_I:1000-1100 CHROMOSOME_I:1050-1200)" ]
run --cram "$TMP/range.cram" --reference "$TMP/ce.fa" --region CHROMOSOME_II > "$TMP/r2c.tsv"
check "CRAM region query equals BAM" cmp -s "$TMP/r2.tsv" "$TMP/r2c.tsv"
check "region scores equal whole-file scores of those reads" \
    diff <(tail -n +2 "$TMP/r2.tsv") <(grep -F -f <(cut -f1,2 "$TMP/r2.tsv" | tail -n +2) "$TMP/bam.tsv")

# aux-tagged copy
run --bam "$TMP/range.bam" --per-base -o "$TMP/tagged.bam"
check "tagged copy keeps every record" [ "$(samtools view -c "$TMP/tagged.bam")" -eq 112 ]
check "ml:f equals the TSV mean" same_track <(samtools view "$TMP/tagged.bam" | grep -o 'ml:f:[^[:space:]]*' | awk -F: '{ print "r\t0\t1\t" $3 }') \
    <(tail -n +2 "$TMP/bam.tsv" | awk -F'\t' '{ print "r\t0\t1\t" $5 }')
samtools view "$TMP/tagged.bam" | head -1 | grep -o 'mp:B:f[^[:space:]]*' | tr ',' '\n' | tail -n +2 > "$TMP/mp1"
run --bam "$TMP/range.bam" --per-base | awk -F'\t' 'NR > 1 && NR <= 101 { print $4 }' | tac > "$TMP/pb1"
check "mp:B:f: per base in SEQ order (first read is reverse: per-base output reversed)" same_track \
    <(awk '{print "r\t0\t1\t" $1}' "$TMP/mp1") <(awk '{print "r\t0\t1\t" $1}' "$TMP/pb1")
run --sam "$TMP/edited.sam" -o "$TMP/edited.bam" 2> /dev/null
check "tagged copy: filtered and empty reads copied untagged" \
    [ "$(samtools view "$TMP/edited.bam" | grep -vc 'ml:f')" -eq 6 -a "$(samtools view -c "$TMP/edited.bam")" -eq 112 ]

# ---------------------------------------------------------------- strands
R=CHROMOSOME_II:1001-1600
run --fasta "$TMP/ce.fa" --region $R > "$TMP/fwd.tsv"
run --fasta "$TMP/ce.fa" --region $R --strand reverse > "$TMP/rev.tsv"
samtools faidx -i "$TMP/ce.fa" $R | sed 's/^>.*/>rc/' > "$TMP/rc.fa"
# the reverse complement scored directly, mapped back: position i -> 1600 - (i - 1), p swapped
run --fasta "$TMP/rc.fa" | awk -F'\t' 'BEGIN { OFS = "\t"; c["A"]="T"; c["C"]="G"; c["G"]="C"; c["T"]="A"; c["N"]="N" }
    NR > 1 { print "CHROMOSOME_II", 1601 - $2, c[$3], $4, $5, $9, $8, $7, $6, c[$10], $11 }' | sort -k2,2n > "$TMP/rc_mapped.tsv"
check "--strand reverse equals the reverse complement scored directly, mapped back" \
    same_scores <(head -1 "$TMP/rev.tsv"; cat "$TMP/rc_mapped.tsv") "$TMP/rev.tsv"
run --fasta "$TMP/ce.fa" --region $R --strand both --chunk 77 --batch 3 > "$TMP/both.tsv"
paste "$TMP/fwd.tsv" "$TMP/rev.tsv" | awk -F'\t' 'BEGIN { OFS = "\t" } NR > 1 {
    printf "%s\t%s\t%s\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\n", $1, $2, $3, ($4 + $16) / 2, ($5 + $17) / 2,
        ($6 + $18) / 2, ($7 + $19) / 2, ($8 + $20) / 2, ($9 + $21) / 2 }' > "$TMP/mean.tsv"
check "--strand both is the per-position mean of the two strands" \
    same_track <(awk -F'\t' '{ print $1 "\t" $2 "\t" $3 "\t" $4 }' "$TMP/mean.tsv") <(tail -n +2 "$TMP/both.tsv" | cut -f1-4)
for col in 5 6 7 8 9; do
    check "--strand both: column $col (entropy, pA..pT) is the mean too" \
        same_track <(awk -F'\t' -v c=$col '{ print $1 "\t" $2 "\t" $3 "\t" $c }' "$TMP/mean.tsv") <(tail -n +2 "$TMP/both.tsv" | awk -F'\t' -v c=$col '{ print $1 "\t" $2 "\t" $3 "\t" $c }')
done
# a palindrome (its own reverse complement) scores alike on both strands at mirrored
# positions, and whole records (not regions) work through the .fai
printf '>pal\n%s\n' "$(samtools faidx "$TMP/ce.fa" CHROMOSOME_III:1-200 | tail -n +2 | tr -d '\n')$(samtools faidx -i "$TMP/ce.fa" CHROMOSOME_III:1-200 | tail -n +2 | tr -d '\n')" > "$TMP/pal.fa"
run --fasta "$TMP/pal.fa" > "$TMP/pal_f.tsv"
run --fasta "$TMP/pal.fa" --strand reverse > "$TMP/pal_r.tsv"
check "palindrome: reverse strand at i equals forward at 401 - i (p swapped)" same_track \
    <(awk -F'\t' 'NR > 1 { print "p\t" 401 - $2 "\t" $4 "\t" $6 }' "$TMP/pal_f.tsv" | sort -k2,2n) \
    <(awk -F'\t' 'NR > 1 { print "p\t" $2 "\t" $4 "\t" $9 }' "$TMP/pal_r.tsv")
run --fasta "$TMP/pal.fa" --strand both > "$TMP/pal_b.tsv"
check "palindrome: both = mean of the two strands" same_track \
    <(paste "$TMP/pal_f.tsv" "$TMP/pal_r.tsv" | awk -F'\t' 'NR > 1 { printf "p\t%d\t1\t%.6g\n", $2, ($4 + $16) / 2 }') \
    <(awk -F'\t' 'NR > 1 { print "p\t" $2 "\t1\t" $4 }' "$TMP/pal_b.tsv")
check "--strand with stdin is refused" sh -c "! '$BIN' --model '$MODEL' -q --fasta - --strand both < '$TMP/pal.fa' > /dev/null 2>&1"

# ---------------------------------------------------------------- bigWig, masking
run --fasta "$TMP/ce.fa" --region CHROMOSOME_I:101-200 --region CHROMOSOME_II:1-300 --strand both --format bedgraph > "$TMP/t.bg"
run --fasta "$TMP/ce.fa" --region CHROMOSOME_I:101-200 --region CHROMOSOME_II:1-300 --strand both -o "$TMP/t.bw"
check "bigWig read back (libBigWig) equals bedGraph" same_track <(tail -n +2 "$TMP/t.bg") <("$BW_DUMP" "$TMP/t.bw")
check "bigWig: regions out of the FASTA's order are refused" \
    sh -c "! '$BIN' --model '$MODEL' -q --fasta '$TMP/ce.fa' --region CHROMOSOME_II:1-10 --region CHROMOSOME_I:1-10 -o '$TMP/bad.bw' 2>/dev/null && [ ! -e '$TMP/bad.bw' ]"
zcat "$PIG" > "$TMP/pig.fa"
run --fasta "$TMP/pig.fa" > "$TMP/pig.tsv"
check "TSV: masked column flags lower-case positions" \
    [ "$(awk -F'\t' 'NR > 1 && $12 == 1' "$TMP/pig.tsv" | wc -l)" -eq "$(grep -v '>' "$TMP/pig.fa" | tr -cd 'acgtn' | wc -c)" ]
run --fasta "$TMP/pig.fa" --mask-soft -o "$TMP/pig.bw"
run --fasta "$TMP/pig.fa" --mask-soft --format bedgraph > "$TMP/pig.bg"
check "--mask-soft: bedGraph has only upper-case positions" \
    diff <(awk -F'\t' 'NR > 1 && $12 == 0 { print $1 "\t" $2 - 1 "\t" $2 "\t" $4 }' "$TMP/pig.tsv") <(tail -n +2 "$TMP/pig.bg")
check "--mask-soft: bigWig equals that bedGraph" same_track <(tail -n +2 "$TMP/pig.bg") <("$BW_DUMP" "$TMP/pig.bw")

# ---------------------------------------------------------------- variants
python3 - "$TMP/ce.fa" > "$TMP/v.vcf" <<'PY'
import sys
seq, name = {}, None
for l in open(sys.argv[1]):
    l = l.strip()
    if l.startswith('>'): name = l[1:].split()[0]; seq[name] = []
    else: seq[name].append(l)
seq = {k: ''.join(v) for k, v in seq.items()}
nxt = {'A': 'C', 'C': 'G', 'G': 'T', 'T': 'A'}
recs = []
for c in ('CHROMOSOME_II', 'CHROMOSOME_III'):
    s = seq[c]; L = len(s); b = lambda p: s[p - 1].upper()
    recs += [(c, 1, b(1), nxt[b(1)]),                            # record start
             (c, 10, b(10), nxt[b(10)]), (c, 11, b(11), nxt[b(11)]),  # adjacent
             (c, 200, b(200), nxt[b(200)] + ',' + nxt[nxt[b(200)]] + ',' + nxt[nxt[nxt[b(200)]]]),  # multi-allelic
             (c, 300, s[299:303].upper(), b(300)),             # deletion
             (c, 400, b(400), b(400) + 'GATTACA'),             # insertion
             (c, 401, s[400:402].upper(), 'T,' + s[400].upper() + 'CC'),  # MNV + indel
             (c, 500, nxt[b(500)], 'G' if b(500) != 'G' else 'A'),  # REF mismatch
             (c, L - 2, s[L - 3:L].upper(), b(L - 2)),           # deletion reaching the end
             (c, L, b(L), nxt[b(L)])]                            # record end
print('##fileformat=VCFv4.2')
for k, v in seq.items(): print(f'##contig=<ID={k},length={len(v)}>')
print('#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO')
for i, (c, p, r, a) in enumerate(sorted(recs, key=lambda x: (x[0], x[1]))):
    print(f'{c}\t{p}\tv{i}\t{r}\t{a}\t.\t.\t.')
PY
bgzip -c "$TMP/v.vcf" > "$TMP/v.vcf.gz"
run --fasta "$TMP/ce.fa" --vcf "$TMP/v.vcf.gz" --context 40 --after 15 --batch 5 -o "$TMP/v.tsv" 2> "$TMP/verr"
check "REF mismatch reported on stderr" grep -q "CHROMOSOME_II:500: REF .* does not match" "$TMP/verr"
check "REF mismatch flagged, not scored" [ "$(grep -c 'ref_mismatch' "$TMP/v.tsv")" -eq 2 ]
# direct computation: both full windows as FASTA records, scored independently from the
# window start (BOS), summed from the variant on
k=0
awk -F'\t' 'NR > 1 && $11 == "ok"' "$TMP/v.tsv" | while IFS=$'\t' read -r c p id ref alt llr llr_ref ll_alt ws we st; do
    w=$(samtools faidx "$TMP/ce.fa" "$c:$ws-$we" | tail -n +2 | tr -d '\n' | tr a-z A-Z)
    pre=${w:0:$((p - ws))}; post=${w:$((p - ws + ${#ref}))}
    k=$((k + 1))
    printf '>w%d_ref_%d\n%s\n' $k $((p - ws + 1)) "$w"
    printf '>w%d_alt_%d\n%s%s%s\n' $k $((p - ws + 1)) "$pre" "$alt" "$post"
done > "$TMP/windows.fa"
run --fasta "$TMP/windows.fa" | awk -F'\t' 'NR > 1 { split($1, f, "_"); if ($2 >= f[3]) s[$1] += $4; if (!($1 in o)) { o[$1] = ++k; key[k] = $1 } }
    END { for (i = 1; i <= k; i += 2) printf "%.6g\n", s[key[i + 1]] - s[key[i]] }' > "$TMP/direct.tsv"
awk -F'\t' 'NR > 1 && $11 == "ok" { print $6 }' "$TMP/v.tsv" > "$TMP/tool.tsv"
check "every ALT allele scored (24 alleles; 2 mismatched records not)" [ "$(wc -l < "$TMP/tool.tsv")" -eq 24 ]
paste "$TMP/direct.tsv" "$TMP/tool.tsv" > "$TMP/pairs"
check "variant LLRs equal the direct computation (SNV, MNV, indels, record starts/ends, adjacent, multi-allelic)" \
    awk -F'\t' 'NF != 2 { bad = 1 } { d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (d > 2e-4 + 2e-4 * m) { print NR ": " $0; bad = 1 } } END { exit bad || NR != 24 }' "$TMP/pairs"
run --fasta "$TMP/ce.fa" --vcf "$TMP/v.vcf.gz" --context 40 --after 15 --batch 1 --chunk 7 -o "$TMP/v1.tsv" 2> /dev/null
check "batch/chunk sizes do not change variant scores" same_track <(awk -F'\t' 'NR > 1 && $6 != "." { print $1 "\t" $2 "\t" $5 "\t" $6 }' "$TMP/v.tsv") \
    <(awk -F'\t' 'NR > 1 && $6 != "." { print $1 "\t" $2 "\t" $5 "\t" $6 }' "$TMP/v1.tsv")
run --fasta "$TMP/ce.fa" --vcf "$TMP/v.vcf.gz" --context 40 --after 15 -o "$TMP/out.vcf.gz" 2> /dev/null
check "VCF output: bgzipped, indexed (.tbi), INFO declared" \
    sh -c "[ -s '$TMP/out.vcf.gz.tbi' ] && bcftools view -h '$TMP/out.vcf.gz' | grep -q 'ID=MS_LLR,Number=A,Type=Float'"
check "VCF output: MS_LLR per ALT equals TSV (float32 in VCF)" same_track \
    <(bcftools query -f '%CHROM\t%POS\t%ALT\t%INFO/MS_LLR\n' "$TMP/out.vcf.gz" | awk -F'\t' '$4 != "." { n = split($3, a, ","); split($4, v, ","); for (i = 1; i <= n; i++) print $1 "\t" $2 "\t" a[i] "\t" v[i] }') \
    <(awk -F'\t' 'NR > 1 && $6 != "." { print $1 "\t" $2 "\t" $5 "\t" $6 }' "$TMP/v.tsv")
check "VCF output: region query through the index, mismatch flag present" \
    sh -c "bcftools view -H -r CHROMOSOME_II:500 '$TMP/out.vcf.gz' | grep -q MS_REF_MISMATCH"
# shared work: 1000 SNVs in 2 kbp cost far fewer reference tokens than 1000 windows
python3 -c "
import random
random.seed(1)
s = ''.join(l.strip() for l in open('$TMP/ce.fa').read().split('>')[2].splitlines()[1:])
print('##fileformat=VCFv4.2\n##contig=<ID=CHROMOSOME_II,length=5000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO')
for p in range(1001, 3001, 2):
    r = s[p - 1].upper(); print(f'CHROMOSOME_II\t{p}\t.\t{r}\t{\"ACGT\"[(\"ACGT\".index(r) + 1) % 4]}\t.\t.\t.')
" > "$TMP/many.vcf"
"$BIN" --model "$MODEL" --fasta "$TMP/ce.fa" --vcf "$TMP/many.vcf" --context 1000 --after 10 -o "$TMP/many.tsv" 2> "$TMP/many.err"
check "1000 SNVs, context 1000: reference tokens shared (< 20,000, not ~1,000,000)" \
    awk '/tokens:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^reference/) r = $i + 0 } END { exit !(r > 0 && r < 20000) }' "$TMP/many.err"

# ---------------------------------------------------------------- hidden states
run --fasta "$TMP/ce.fa" --region CHROMOSOME_II:1-250 --emit hidden --pool 100 -o "$TMP/h.safetensors"
run --fasta "$TMP/ce.fa" --region CHROMOSOME_II:1-250 --emit hidden --emit-dtype f16 -o "$TMP/h1.safetensors"
run --bam "$TMP/range.bam" --emit hidden -o "$TMP/hr.safetensors"
check "hidden states: pooled windows, per position f16, per read" python3 - "$TMP" <<'PY'
import json, struct, sys
def load(p):
    d = open(p, 'rb').read(); n = struct.unpack('<Q', d[:8])[0]; h = json.loads(d[8:8 + n]); return h, d[8 + n:]
def arr(h, b, k, code):
    o = h[k]['data_offsets']; size = struct.calcsize(code)
    return struct.unpack('<%d%s' % ((o[1] - o[0]) // size, code), b[o[0]:o[1]])
h, b = load(sys.argv[1] + '/h.safetensors')
assert h['hidden']['shape'][0] == 3 and h['hidden']['dtype'] == 'F32', h
assert list(arr(h, b, 'pos', 'q')) == [0, 100, 200] and list(arr(h, b, 'len', 'i')) == [100, 100, 50]
h1, b1 = load(sys.argv[1] + '/h1.safetensors')
assert h1['hidden']['shape'][0] == 250 and h1['hidden']['dtype'] == 'F16'
D = h1['hidden']['shape'][1]
full = arr(h1, b1, 'hidden', 'e')  # float16
pooled = arr(h, b, 'hidden', 'f')
for k in range(D):  # window 3 = mean of positions 200..249
    m = sum(full[p * D + k] for p in range(200, 250)) / 50
    assert abs(m - pooled[2 * D + k]) < 2e-3 + 2e-3 * abs(m), (k, m, pooled[2 * D + k])
hr, br = load(sys.argv[1] + '/hr.safetensors')
assert hr['hidden']['shape'][0] == 112 and list(arr(hr, br, 'len', 'i')) == [100] * 112
assert br[hr['seq_names']['data_offsets'][0]:hr['seq_names']['data_offsets'][1]].count(b'\n') == 112
PY

finish
