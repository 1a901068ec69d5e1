# lib_e2e.sh - shared by the tests/e2e_*.sh scripts (sourced, not run).
# Environment from CTest: MS_BIN (the CLI), MS_FIXTURES, MS_SRC, MS_DATA_CACHE.
set -u
BIN=${MS_BIN:?MS_BIN not set}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ms-e2e-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILS=0
PASSES=0

ok()   { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
    exit $?
}

# deb_file PKG PATH_INSIDE: print the cached path of a file shipped in a Debian package,
# downloading the package on first use; exit 77 (skip) when apt cannot fetch it.
deb_file() {
    local pkg=$1 inside=$2 dir="$MS_DATA_CACHE/$1"
    if [ ! -e "$dir/$inside" ]; then
        mkdir -p "$dir"
        if ! (cd "$dir" && apt-get download "$pkg" >/dev/null 2>&1 && dpkg -x "$pkg"_*.deb .); then
            echo "SKIP: cannot fetch Debian package $pkg (apt-get update first?)" >&2
            exit 77
        fi
    fi
    echo "$dir/$inside"
}

# same_scores A B: TSV files agree line by line: same coordinates and bases, numbers within
# 1e-4 relative + 1e-5 absolute (outputs are printed with 6 significant digits).
same_scores() {
    awk -F'\t' 'NR == FNR { a[FNR] = $0; n = FNR; next }
        { if (!(FNR in a)) { print "extra line " FNR; bad = 1; exit 1 }
          split(a[FNR], x, "\t")
          if (x[1] != $1 || x[2] != $2 || x[3] != $3 || x[10] != $10 && FNR > 1) { print "line " FNR ": " a[FNR] " vs " $0; bad = 1; exit 1 }
          for (i = 4; i <= 9; i++) { d = x[i] - $i; if (d < 0) d = -d; m = $i < 0 ? -$i : $i
            if (FNR > 1 && d > 1e-5 + 1e-4 * m) { print "line " FNR " col " i ": " x[i] " vs " $i; bad = 1; exit 1 } } }
        END { if (!bad && FNR != n) { print "line counts " n " vs " FNR; exit 1 } exit bad }' "$1" "$2"
}

# same_track A B: bedGraph files agree: same lines and coordinates, values within 1e-4
# relative + 1e-5 absolute (batching changes float rounding in the last printed digit).
same_track() {
    awk -F'\t' 'NR == FNR { a[FNR] = $0; n = FNR; next }
        { split(a[FNR], x, "\t")
          if (x[1] != $1 || x[2] != $2 || x[3] != $3) { print "line " FNR ": " a[FNR] " vs " $0; bad = 1; exit 1 }
          d = x[4] - $4; if (d < 0) d = -d; m = $4 < 0 ? -$4 : $4
          if (d > 1e-5 + 1e-4 * m) { print "line " FNR ": " a[FNR] " vs " $0; bad = 1; exit 1 } }
        END { if (!bad && FNR != n) { print "line counts " n " vs " FNR; exit 1 } exit bad }' "$1" "$2"
}

# The test model: the shared tiny Mamba-1 fixture with a plant-dnamamba vocab.txt (so it has
# an alphabet and a <bos> token), made per run.
make_dna_model() {
    local m="$TMP/dna-model"
    mkdir -p "$m"
    cp "$MS_FIXTURES/hf/mamba1-tiny-hf/config.json" "$MS_FIXTURES/hf/mamba1-tiny-hf/model.safetensors" "$m/"
    printf '<unk>\n<pad>\n<mask>\n<cls>\nA\nT\nC\nG\nN\n<eos>\n<bos>\n' > "$m/vocab.txt"
    echo "$m"
}
