#!/usr/bin/env bash
# `mamba-stream generate` end to end on the bundled random model: a seed gives the same
# FASTA whatever --threads, --chunk and --batch; seeds differ; records have the asked length,
# alphabet and layout; greedy decoding (with and without the repetition penalty) equals the
# argmax of `mamba-stream logits` over the same tokens, worked out here in Python; a bad
# prompt is one error line, a non-zero exit and no output file.
. "$(dirname "$0")/lib_e2e.sh"

MODEL="$MS_SRC/examples/models/dna-tiny-untrained"
PROMPT=ACGTTGCAGGATTACAGGCT
G() { "$BIN" generate --model "$MODEL" -q "$@"; }
# The random model mostly repeats the last base; temperature 2 gives varied output.
S=(--prompt "$PROMPT" -n 300 --temperature 2)

# --- reproducibility
G "${S[@]}" --seed 5 -o "$TMP/a.fa"
G "${S[@]}" --seed 5 -o "$TMP/b.fa"
check "same seed: identical FASTA" cmp -s "$TMP/a.fa" "$TMP/b.fa"
G "${S[@]}" --seed 6 -o "$TMP/c.fa"
check "different seeds: different bases" \
    eval '! cmp -s <(sed -n "2,\$p" "$TMP/a.fa") <(sed -n "2,\$p" "$TMP/c.fa")'
G "${S[@]}" --seed 5 --threads 1 > "$TMP/t1.fa"
G "${S[@]}" --seed 5 --threads 2 > "$TMP/t2.fa"
check "--threads 1 and 2: identical, and stdout equals -o" \
    eval 'cmp -s "$TMP/t1.fa" "$TMP/t2.fa" && cmp -s "$TMP/t1.fa" "$TMP/a.fa"'

# --- chunk invariance of the prompt feeding (a 500-base prompt from a file)
python3 -c "import random; random.seed(3); print('>p1 a prompt'); print(''.join(random.choice('acgtACGT') for _ in range(500))); print('>p2'); print('TTTT')" > "$TMP/prompt.fa"
G --prompt-file "$TMP/prompt.fa" -n 200 --temperature 1.5 --seed 9 --chunk 1 > "$TMP/c1.fa"
G --prompt-file "$TMP/prompt.fa" -n 200 --temperature 1.5 --seed 9 --chunk 64 > "$TMP/c64.fa"
check "--chunk 1 and --chunk 64: identical" cmp -s "$TMP/c1.fa" "$TMP/c64.fa"
P1=$(sed -n 2p "$TMP/prompt.fa" | tr acgt ACGT)
G --prompt "$P1" -n 200 --temperature 1.5 --seed 9 --chunk 7 > "$TMP/inline.fa"
check "--prompt-file (first record, upper-cased) equals --prompt" \
    eval 'diff <(sed -n "2,\$p" "$TMP/c1.fa") <(sed -n "2,\$p" "$TMP/inline.fa") > /dev/null'
check "header names the prompt record" grep -q '^>sample_1 prompt_len=500 n=200 seed=9 temperature=1.5 prompt=p1$' "$TMP/c1.fa"

# --- samples: batched streams; sample i does not depend on M or --batch
G "${S[@]}" --seed 5 --num-samples 4 -o "$TMP/m4.fa"
G "${S[@]}" --seed 5 --num-samples 4 --batch 3 -o "$TMP/m4b.fa"
check "--num-samples 4: --batch 3 gives the same FASTA" cmp -s "$TMP/m4.fa" "$TMP/m4b.fa"
check "sample_1 of 4 equals the single sample" \
    eval 'diff <(head -n 6 "$TMP/m4.fa") "$TMP/a.fa" > /dev/null'
check "the 4 samples differ" [ "$(awk '/^>/{n++} !/^>/{s[n] = s[n] $0} END {for (i in s) print s[i]}' "$TMP/m4.fa" | sort -u | wc -l)" -eq 4 ]

G --prompt "$PROMPT" -n 100 --temperature 0 --repetition-penalty 5 --repetition-window 3 > "$TMP/g1.fa"
G --prompt "$PROMPT" -n 100 --temperature 0 --repetition-penalty 5 --repetition-window 3 --num-samples 3 --batch 2 > "$TMP/g3.fa"
check "greedy: all 3 samples equal the single one (every stream starts from the prompt's state)" \
    [ "$(grep -v '^>' "$TMP/g3.fa" | sort -u)" = "$(grep -v '^>' "$TMP/g1.fa" | sort -u)" -a "$(grep -c '^>' "$TMP/g3.fa")" -eq 3 ]

# --- layout: records, names, length, alphabet, line width
check_layout() { # check_layout FILE M N WIDTH LETTERS_REGEX
    awk -v M="$2" -v N="$3" -v W="$4" -v RE="$5" '
        /^>/ { if (n) { if (len != N) { print "record " n ": " len " bases"; bad = 1 } }
               n++; len = 0; split($1, h, "_"); if (h[2] != n) { print "name " $1; bad = 1 }; next }
        { len += length($0)
          if (length($0) > W || $0 !~ ("^[" RE "]+$")) { print "line " NR ": " $0; bad = 1 } }
        END { if (len != N) { print "last record: " len " bases"; bad = 1 }
              if (n != M) { print n " records"; bad = 1 } exit bad }' "$1"
}
check "4 records sample_1..4 of 300 bases, ACGT only, 60 per line" check_layout "$TMP/m4.fa" 4 300 60 ACGT
check "full lines are 60 bases" [ "$(sed -n 2p "$TMP/a.fa" | tr -d '\n' | wc -c)" -eq 60 ]
G "${S[@]}" --seed 5 --num-samples 2 --include-prompt --line-width 7 > "$TMP/inc.fa"
check "--include-prompt --line-width 7: prompt + 300 bases, 7 per line" check_layout "$TMP/inc.fa" 2 320 7 ACGT
check "--include-prompt: the record starts with the prompt, then the same bases" \
    eval '[ "$(sed -n "2,\$p" "$TMP/a.fa" | tr -d "\n")" = "$(awk "/^>/{n++; next} n==1" "$TMP/inc.fa" | tr -d "\n" | cut -c21-)" ] &&
          awk "/^>/{n++; next} n==1" "$TMP/inc.fa" | tr -d "\n" | grep -q "^$PROMPT"'
G "${S[@]}" --seed 5 --line-width 0 > "$TMP/w0.fa"
check "--line-width 0: one line" [ "$(wc -l < "$TMP/w0.fa")" -eq 2 ]
G "${S[@]}" --temperature 5 --allow-n -n 2000 --seed 1 > "$TMP/n.fa"
check "--allow-n: ACGTN only, and N does come up at temperature 5" \
    eval 'check_layout "$TMP/n.fa" 1 2000 60 ACGTN && grep -v "^>" "$TMP/n.fa" | grep -q N'
check "without --allow-n: never N, even at temperature 5" \
    eval '! G "${S[@]}" --temperature 5 -n 2000 --seed 1 | grep -v "^>" | grep -q "[^ACGT]"'
G -n 50 --temperature 0 --no-bos > "$TMP/nobos.fa"
check "no prompt, --no-bos, greedy: the uniform first base is A (lowest index on a tie)" \
    eval 'sed -n 2p "$TMP/nobos.fa" | grep -q "^A"'
G --prompt "" -n 50 --seed 2 --temperature 2 > "$TMP/bos.fa"
check "empty prompt: starts after <bos>, header prompt_len=0" grep -q '^>sample_1 prompt_len=0 n=50 seed=2 temperature=2$' "$TMP/bos.fa"

# --- greedy decoding equals the argmax of `mamba-stream logits` over the same tokens
# greedy_check GEN_ARGS... : generate 40 greedy bases after PROMPT2, feed <bos> + prompt +
# generated to `logits`, and recompute each step's choice in Python (letters A C G T only,
# the CTRL repetition penalty over the last W bases when given).
PROMPT2=GGATCCTTAGCA
greedy_check() {
    local pen=$1 win=$2
    G --prompt "$PROMPT2" -n 40 --temperature 0 --repetition-penalty "$pen" --repetition-window "$win" \
        --line-width 0 > "$TMP/greedy.fa" || return 1
    python3 - "$MODEL" "$TMP" "$PROMPT2" "$(sed -n 2p "$TMP/greedy.fa")" <<'PY' || return 1
import json, struct, sys
model, tmp, prompt, gen = sys.argv[1:5]
vocab = {t: i for i, t in enumerate(open(model + "/vocab.txt").read().split())}
ids = [vocab["<bos>"]] + [vocab[c] for c in prompt + gen[:-1]]
hdr = json.dumps({"input_ids": {"dtype": "I64", "shape": [1, len(ids)], "data_offsets": [0, 8 * len(ids)]}}).encode()
hdr += b" " * (-len(hdr) % 8)
with open(tmp + "/ids.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + struct.pack("<%dq" % len(ids), *ids))
PY
    "$BIN" logits --model "$MODEL" --ids "$TMP/ids.safetensors" --out "$TMP/logits.safetensors" || return 1
    python3 - "$MODEL" "$TMP" "$PROMPT2" "$(sed -n 2p "$TMP/greedy.fa")" "$pen" "$win" <<'PY'
import json, struct, sys
model, tmp, prompt, gen, pen, win = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
vocab = {t: i for i, t in enumerate(open(model + "/vocab.txt").read().split())}
raw = open(tmp + "/logits.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
meta = json.loads(raw[8:8 + n])["logits"]
_, L, V = meta["shape"]
b0, b1 = meta["data_offsets"]
vals = struct.unpack("<%df" % (L * V), raw[8 + n + b0:8 + n + b1])
seq = prompt + gen
for i, got in enumerate(gen):
    row = vals[(len(prompt) + i) * V:(len(prompt) + i + 1) * V]  # after <bos> + seq[:len(prompt)+i]
    recent = set(seq[max(0, len(prompt) + i - win):len(prompt) + i])
    best, want = None, None
    for c in "ACGT":
        l = row[vocab[c]]
        if pen != 1 and c in recent:
            l = l / pen if l > 0 else l * pen
        if best is None or l > best:
            best, want = l, c
    if got != want:
        sys.exit("step %d: generated %s, logits say %s" % (i + 1, got, want))
PY
}
check "greedy = argmax of mamba-stream logits, 40 steps" greedy_check 1 64
check "greedy, --repetition-penalty 5 over 3 bases = the penalised argmax, 40 steps" greedy_check 5 3
check "greedy, --repetition-penalty 8 over 8 bases = the penalised argmax, 40 steps" greedy_check 8 8
# The model wants A after A (logit ~4.2, G ~1.1): 4.2 / 5 < 1.1 flips it, so the check above
# covers sampled bases entering and leaving the window, not only the prompt's.
check "the penalty changes greedy output here (so the checks above mean something)" \
    eval '[ "$(G --prompt $PROMPT2 -n 40 --temperature 0 | tail -n +2)" != "$(G --prompt $PROMPT2 -n 40 --temperature 0 --repetition-penalty 5 --repetition-window 3 | tail -n +2)" ]'

# --- errors: one line, non-zero exit, no output file (nor its temporary)
expect_error() { # expect_error "what" "text the line must contain" generate-args...
    local what=$1 needle=$2; shift 2
    rm -f "$TMP/out.fa"
    G "$@" -o "$TMP/out.fa" 2> "$TMP/err" > /dev/null
    local rc=$? lines; lines=$(wc -l < "$TMP/err")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -qF -- "$needle" "$TMP/err" \
        && [ ! -e "$TMP/out.fa" ] && [ -z "$(ls "$TMP" | grep '\.tmp\.')" ]; then
        ok "$what: $(cat "$TMP/err")"
    else
        fail "$what (exit $rc, $lines stderr lines, want '$needle'): $(cat "$TMP/err")"
    fi
}
expect_error "bad prompt letter" "position 5: 'X'" --prompt ACGTXACGT -n 10
expect_error "IUPAC code in the prompt" "position 3: 'R'" --prompt acRT -n 10
printf '>bad\nACGT\nAC-T\n' > "$TMP/bad.fa"
expect_error "bad letter in --prompt-file" "bad.fa, record bad: position 7: '-'" --prompt-file "$TMP/bad.fa" -n 10
expect_error "empty --prompt-file" "no FASTA record" --prompt-file /dev/null -n 10
expect_error "missing -n" "-n" --prompt ACGT
expect_error "--top-p 0" "--top-p" --prompt ACGT -n 5 --top-p 0
expect_error "negative temperature" "--temperature" --prompt ACGT -n 5 --temperature -1
expect_error "--prompt and --prompt-file" "not both" --prompt ACGT --prompt-file "$TMP/prompt.fa" -n 5
mkdir -p "$TMP/m-non"; cp "$MODEL/config.json" "$MODEL/model.safetensors" "$TMP/m-non/"
grep -vx N "$MODEL/vocab.txt" > "$TMP/m-non/vocab.txt"
expect_error "--allow-n on a model without N" "no token for N" --model "$TMP/m-non" --prompt ACGT -n 5 --allow-n
expect_error "N in the prompt of a model without N" "(ACGT)" --model "$TMP/m-non" --prompt ACNT -n 5
finish
