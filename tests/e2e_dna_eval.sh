#!/usr/bin/env bash
# The DNA evaluation script (train/dna/eval_dna.py): Markov baselines on inputs whose answer
# is known (order-2 de Bruijn cycle, i.i.d. uniform, unseen contexts, record/N boundaries)
# and the whole script, with the engine, on a tiny synthetic data set. Python 3 + numpy only;
# skipped when no python3 has numpy.
set -u
SRC=${MS_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
PY=
for p in python3 /usr/bin/python3; do
    if command -v "$p" > /dev/null && "$p" -c 'import numpy' 2> /dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    echo "SKIP: no python3 with numpy (scripts/install-deps.sh installs python3-numpy)" >&2
    exit 77
fi
export MS_SRC="$SRC"
cd "${TMPDIR:-/tmp}" && "$PY" "$SRC/tests/dna_eval_test.py" 2>&1 | grep -v '^\[ *[0-9.]* s\]'
exit "${PIPESTATUS[0]}"
