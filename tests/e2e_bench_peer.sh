#!/usr/bin/env bash
# `mamba-stream bench --peer DIR`, the C side of its protocol with bench/peer_mamba_ssm.py
# (src/cli/bench_peer.h), on the CPU with a fake peer script that answers canned JSON:
# the table gets the peer's columns and the ratio ours / peer; a peer's failure (an error
# answer, a crash with no answer) is a "fails" cell and the run goes on; DIR reaches the
# peer first in PYTHONPATH with our shapes as arguments. Then the real script's no-GPU
# paths: --help, and an empty DIR is one error line and a non-zero exit before anything is
# timed. Also: the plain CPU table has its per-workload columns.
. "$(dirname "$0")/lib_e2e.sh"

PEER="$TMP/peer-dir"
mkdir -p "$PEER"
cat > "$TMP/fake_peer.py" <<'EOF'
import json, os, sys
args = sys.argv[1:]
def arg(name):
    return args[args.index(name) + 1] if name in args else None
if os.environ.get("PYTHONPATH", "").split(":")[0] != os.environ["FAKE_PEER_DIR"]:
    print(json.dumps({"name": "check", "error": "peer dir not first in PYTHONPATH"}))
    sys.exit(1)
if "--check" in args:
    print(json.dumps({"name": "check", "mamba_ssm": "fake", "torch": "none", "gpu": "FakeGPU"}))
    sys.exit(0)
w = arg("--workload")
shapes = (arg("--arch"), arg("--d-model"), arg("--n-layer"), arg("--tokens"), arg("--reads"),
          arg("--read-len"), arg("--reads-per-call"), arg("--decode-steps"), arg("--repeats"))
if shapes != ("mamba1", "32", "2", "96", "4", "16", "2", "2", "1"):
    print(json.dumps({"name": w, "error": "wrong shapes " + repr(shapes)}))
elif w == "decode:2":
    print(json.dumps({"name": w, "error": "OutOfMemoryError: CUDA out of memory | table-breaker"}))
elif w == "decode:3":
    sys.exit(3)  # a crash: no answer at all
else:
    print("some library's chatter on stdout")
    print(json.dumps({"name": w, "tok_per_s": 1000.0, "ms_per_token": 1.0, "peak_gib": 1.5}))
EOF

B=(bench --arch mamba1 --d-model 32 --n-layer 2 --tokens 96 --chunk 32 --reads 4 --read-len 16
   --reads-per-call 2 --decode 1,2,3 --decode-steps 2 --threads 1)
FAKE_PEER_DIR="$PEER" MAMBA_STREAM_PEER_SCRIPT="$TMP/fake_peer.py" \
    "$BIN" "${B[@]}" --peer "$PEER" > "$TMP/peer.md" 2> "$TMP/peer.err"
rc=$?
check "bench with a fake peer exits 0" test $rc -eq 0
check "the peer's identity is printed" grep -qF "peer: mamba_ssm fake (torch none) on FakeGPU, from $PEER" "$TMP/peer.md"
check "the header names the peer's columns" \
    grep -qF "| peak GiB | floor % | mamba_ssm tok/s | mamba_ssm peak GiB | ours / mamba_ssm |" "$TMP/peer.md"
# every row has 9 cells; the ratio is our tok/s / 1000 where the peer answered
check "rows: 9 cells, ratio = ours / peer, failures as 'fails'" awk -F'|' '
    /^\| Mamba-1/ { n++
        if (NF != 11) { print "cells: " $0; bad = 1 }
        w = $3; gsub(/^ +| +$/, "", w); ours = $4 + 0; peer = $8; ratio = $10
        if (w ~ /batch 2$/) { if (peer !~ /fails: OutOfMemoryError: CUDA out of memory  *table-breaker/) { print "oom: " $0; bad = 1 } }
        else if (w ~ /batch 3$/) { if (peer !~ /fails: exit 3, no result/) { print "crash: " $0; bad = 1 } }
        else {
            if (peer + 0 != 1000 || $9 + 0 != 1.5) { print "peer cells: " $0; bad = 1 }
            # (ours is printed rounded to a whole token/s, the ratio to 3 digits)
            want = ours / 1000; d = ratio - want; if (d < 0) d = -d
            if (ratio !~ /^ [0-9.]+x $/ || d > 0.006 * want + 0.001) { print "ratio " ratio " vs ours " ours ": " $0; bad = 1 } } }
    END { if (n != 5) { print n " rows"; bad = 1 } exit bad }' "$TMP/peer.md"
check "no error lines from the bench itself" test ! -s "$TMP/peer.err"

# the real script, here where mamba_ssm (and a GPU) are missing
SCRIPT="$MS_SRC/bench/peer_mamba_ssm.py"
check "peer_mamba_ssm.py --help" eval 'python3 "$SCRIPT" --help | grep -q -- "--workload"'
check "peer_mamba_ssm.py rejects an unknown workload" eval '! python3 "$SCRIPT" --workload nope 2>/dev/null'
EMPTY="$TMP/empty-peer"
mkdir -p "$EMPTY"
if PYTHONPATH="$EMPTY" python3 -c "import torch, mamba_ssm" 2>/dev/null; then
    echo "skip - mamba_ssm imports from python3's own path: an empty --peer DIR still finds it"
else
    check "the script's --check answers one JSON error" eval \
        'PYTHONPATH="$EMPTY" python3 "$SCRIPT" --json --check 2>/dev/null | python3 -c "import json,sys; l=sys.stdin.read().splitlines(); assert len(l)==1 and \"error\" in json.loads(l[0])"'
    "$BIN" "${B[@]}" --peer "$EMPTY" > "$TMP/empty.out" 2> "$TMP/empty.err"
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l < "$TMP/empty.err")" -eq 1 ] \
        && grep -qF -- "--peer $EMPTY: cannot import mamba_ssm" "$TMP/empty.err" && [ ! -s "$TMP/empty.out" ]; then
        ok "empty --peer DIR: one line, exit $rc, nothing timed: $(cat "$TMP/empty.err")"
    else
        fail "empty --peer DIR (exit $rc): $(cat "$TMP/empty.err") / $(head -3 "$TMP/empty.out")"
    fi
fi
"$BIN" "${B[@]}" --peer "$TMP/no-such-dir" > /dev/null 2> "$TMP/nodir.err"
rc=$?
check "a --peer DIR that does not exist: one line naming it, exit $rc" \
    eval '[ $rc -ne 0 ] && [ "$(wc -l < "$TMP/nodir.err")" -eq 1 ] && grep -qF "no-such-dir" "$TMP/nodir.err"'

# without a peer: the per-workload columns, '-' for memory and floor on the CPU
"$BIN" "${B[@]}" > "$TMP/plain.md"
check "plain CPU table: 6 cells per row, '-' for peak and floor" awk -F'|' '
    /^\| model/ { if ($4 !~ /tok\/s/ || $6 !~ /peak/ || $7 !~ /floor/) bad = 1 }
    /^\| Mamba-1/ { n++; if (NF != 8 || $4 + 0 <= 0 || $5 + 0 <= 0 || $6 != " - " || $7 != " - ") { print; bad = 1 } }
    END { exit bad || n != 5 }' "$TMP/plain.md"
finish
