#!/usr/bin/env bash
# e2e_audio.sh - the audio path of the CLI on audio made here with sox and espeak-ng.
#
# Clip mode on tones, chirps, silence, speech, 8/16/24-bit, float, stereo and 8 / 22.05 /
# 44.1 / 48 kHz files; the same labels whatever --batch and --chunk (posteriors within
# 1e-5); file and stdin, WAV and raw PCM give the same frames and posteriors; the engine's
# log-mel frames against the numpy twin (scripts/logmel.py: 1e-4 in log units within 60
# dB of each frame's peak, 1e-5 of the peak energy anywhere); live detections, one line
# each; --on-overrun drop counts what it drops and keeps the clock true; bad input gives
# one line and a non-zero exit. The model has random weights: plumbing, not accuracy.
source "$(dirname "$0")/lib_e2e.sh"
for tool in sox espeak-ng; do
    command -v $tool >/dev/null || { echo "SKIP: $tool not installed (scripts/install-deps.sh)"; exit 77; }
done
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy not installed"; exit 77; }

M=$TMP/kws
"$BIN" bench-audio --write-model "$M" || { echo "cannot write the test model"; exit 1; }
A=$TMP/a
mkdir -p "$A"
cd "$A" || exit 1
sox -n -r 16000 -b 16 -c 1 tone.wav synth 1 sine 1000 vol 0.5
sox -n -r 16000 -b 16 -c 1 chirp.wav synth 1.5 sine 100-7000 vol 0.5
sox -D -n -r 16000 -b 16 -c 1 silence.wav trim 0 0.5   # -D: no dither, true zeros
sox -n -r 16000 -b 16 -c 1 clipped.wav synth 0.5 sine 300 vol 3 2>/dev/null
sox -n -r 16000 -b 8 -c 1 u8.wav synth 0.5 sine 440 vol 0.5
sox -n -r 16000 -b 24 -c 1 s24.wav synth 0.5 sine 440 vol 0.5
sox -n -r 16000 -e floating-point -b 32 -c 1 f32.wav synth 0.5 sine 440 vol 0.5
sox -n -r 16000 -b 16 -c 2 stereo.wav synth 0.5 sine 440 sine 880 vol 0.5
for r in 8000 44100 48000; do sox -n -r $r -b 16 -c 1 r$r.wav synth 0.5 sine 1000 vol 0.5; done
sox -n -r 16000 -b 16 -c 1 tone.flac synth 1 sine 1000 vol 0.5
espeak-ng -v en-us -w yes.wav yes            # 22,050 Hz
espeak-ng -v en-us+f3 -s 150 -w stop.wav stop
sox yes.wav -r 16000 yes16.wav
ALL="tone.wav chirp.wav silence.wav clipped.wav u8.wav s24.wav f32.wav stereo.wav r8000.wav r44100.wav r48000.wav tone.flac yes.wav stop.wav"

# ---- clip mode
"$BIN" --model "$M" --audio $ALL > clips.tsv 2> err.txt
check "clip mode: every input classified (14 lines + header), nothing on stderr" \
    test "$(wc -l < clips.tsv)" -eq 15 -a ! -s err.txt
check "clip TSV: file, frames, seconds, 3 label/p pairs" \
    awk -F'\t' 'NR > 1 && (NF != 9 || $2 < 1 || $5 < $7) { exit 1 }' clips.tsv
check "tone.wav: 1 s = 98 frames of 25 ms every 10 ms" \
    awk -F'\t' '$1 == "tone.wav" && $2 == 98 && $3 == "1.000" { f = 1 } END { exit !f }' clips.tsv
"$BIN" --model "$M" --audio $ALL --format jsonl > clips.jsonl
check "JSONL: one valid object per input" $PY -c "
import json, sys
rows = [json.loads(l) for l in open('clips.jsonl')]
sys.exit(not (len(rows) == 14 and all(len(r['top']) == 3 for r in rows)))"
printf '%s\n' $ALL > list.txt
"$BIN" --model "$M" --audio-list list.txt -o labels.tsv --batch 3
check "--audio-list -o: same lines as --audio, whatever --batch" cmp -s labels.tsv clips.tsv

# posteriors per frame agree within 1e-5 (6 significant digits printed)
same_post() {
    awk -F'\t' 'NR == FNR { a[FNR] = $0; n = FNR; next }
        FNR > 1 { split(a[FNR], x, "\t"); if (x[2] != $2) { bad = 1; exit 1 }
          for (i = 4; i <= NF; i++) { d = x[i] - $i; if (d < 0) d = -d; if (d > 1e-5) { print "line " FNR; bad = 1; exit 1 } } }
        END { exit bad || FNR != n }' "$1" "$2"
}
"$BIN" --model "$M" --audio chirp.wav yes.wav --posteriors > p_ref.tsv
"$BIN" --model "$M" --audio chirp.wav yes.wav --posteriors --chunk 1 --batch 1 > p_c1.tsv
"$BIN" --model "$M" --audio chirp.wav yes.wav --posteriors --chunk 7 --batch 2 > p_c7.tsv
check "chunk invariance: --chunk 1 --batch 1 = default" same_post p_ref.tsv p_c1.tsv
check "chunk invariance: --chunk 7 --batch 2 = default" same_post p_ref.tsv p_c7.tsv

# ---- file vs stdin, WAV vs raw
"$BIN" --model "$M" --audio yes16.wav --posteriors > p_file.tsv
"$BIN" --model "$M" --audio - --mode clip --posteriors < yes16.wav > p_redir.tsv
cat yes16.wav | "$BIN" --model "$M" --audio - --mode clip --posteriors > p_pipe.tsv
sox yes16.wav -t raw -e signed -b 16 -L yes16.raw
cat yes16.raw | "$BIN" --model "$M" --audio - --raw s16le:16000:1 --mode clip --posteriors > p_raw.tsv
check "stdin (redirected file) = file" same_post p_file.tsv p_redir.tsv
check "stdin (pipe) = file" same_post p_file.tsv p_pipe.tsv
check "raw PCM on a pipe = WAV file" same_post p_file.tsv p_raw.tsv
sox yes16.wav -t ogg - | "$BIN" --model "$M" --audio - --mode clip > ogg_pipe.tsv
check "Ogg/Vorbis on a pipe: classified" test "$(wc -l < ogg_pipe.tsv)" -eq 2
"$BIN" features --model "$M" --audio yes16.wav -o f_file.npy
cat yes16.wav | "$BIN" features --model "$M" --audio - -o f_pipe.npy
"$BIN" features --model "$M" --audio yes16.raw --raw s16le:16000:1 -o f_raw.npy
check "features: file, pipe and raw give identical frames" \
    $PY -c "import numpy as n; a, b, c = (n.load(f) for f in ('f_file.npy', 'f_pipe.npy', 'f_raw.npy')); exit(not (a.shape[0] > 0 and (a == b).all() and (a == c).all()))"

# ---- the front end against the numpy twin
for w in tone chirp silence clipped yes16 stereo; do
    "$BIN" features --model "$M" --audio $w.wav -o $w.npy
    check "log-mel of $w.wav = numpy's" $PY "$MS_SRC/scripts/logmel.py" --config "$M/config.json" --wav $w.wav --check $w.npy
done
check "tone 1 kHz: peak in the mel bin centred nearest 1 kHz (HTK, 40 bins: 13)" \
    $PY -c "import numpy as n; a = n.load('tone.npy'); exit(not (a.argmax(axis=1) == 13).all())"
"$BIN" features --model "$M" --audio r44100.wav -o r44.npy
"$BIN" features --model "$M" --audio r8000.wav -o r8.npy
check "1 kHz at 44.1 and 8 kHz, resampled: same peak bin, level within 0.1 dB of 16 kHz" $PY -c "
import numpy as n
t = n.load('tone.npy')[5:45]; a = n.load('r44.npy')[5:45]; b = n.load('r8.npy')[5:45]
ok = all((x.argmax(axis=1) == 13).all() and abs(x[:, 13].mean() - t[:, 13].mean()) * 10 / n.log(10) < 0.1 for x in (a, b))
exit(not ok)"

# ---- mu-law model
MU=$TMP/kws-mulaw
"$BIN" bench-audio --write-model "$MU" --frontend mulaw
"$BIN" --model "$MU" --audio tone.wav yes.wav > mu.tsv
check "mu-law model: clip mode runs" test "$(wc -l < mu.tsv)" -eq 3
"$BIN" features --model "$MU" --audio silence.wav > mu_sil.txt
check "mu-law: silence is token 128 (8000 samples)" \
    test "$(sort -u mu_sil.txt)" = 128 -a "$(wc -l < mu_sil.txt)" -eq 8000

# ---- live
sox yes16.wav silence.wav stop.wav silence.wav -r 16000 -b 16 stream.wav 2>/dev/null ||
    sox yes16.wav silence.wav silence.wav -r 16000 -b 16 stream.wav
cat stream.wav | "$BIN" --model "$M" --audio - --threshold 0 --min-count 1 > live.tsv 2> live.err
check "live: detections, one line each: time label score" \
    awk -F'\t' '{ n++ } NF != 3 || $1 !~ /^[0-9]+\.[0-9][0-9][0-9]$/ { exit 1 } END { exit n < 1 }' live.tsv
"$BIN" --model "$M" --audio stream.wav --mode live --threshold 0 --min-count 1 > live_file.tsv
check "live: stdin and file give the same detections" cmp -s live.tsv live_file.tsv
"$BIN" --model "$M" --audio stream.wav --mode live --threshold 0.99 > none.tsv
check "live: nothing detected above an unreachable threshold" test ! -s none.tsv
"$BIN" --model "$M" --audio stream.wav --mode live --posteriors > lp.tsv
"$BIN" --model "$M" --audio stream.wav --posteriors > cp.tsv
check "live posteriors = clip posteriors (one stream, any cut)" same_post cp.tsv lp.tsv

# overrun: a slow model fed faster than it runs (a pipe from a file)
BIG=$TMP/kws-big
"$BIN" bench-audio --write-model "$BIG" --d-model 256 --layers 6
sox -n -r 16000 -b 16 -c 1 long.wav synth 20 sine 300-3000 vol 0.3
frames=$(( (320000 - 400) / 160 + 1 ))
cat long.wav | "$BIN" --model "$BIG" --audio - --posteriors --on-overrun drop --queue 4 --threads 1 > drop.tsv 2> drop.err
rc=$?
n=$(( $(wc -l < drop.tsv) - 1 ))
check "drop: exit 0, frames dropped ($((frames - n)) of $frames), counted on stderr" \
    sh -c "[ $rc -eq 0 ] && [ $n -lt $frames ] && grep -q 'frames (.* s) dropped in all' drop.err"
check "drop: the count on stderr is exactly the frames missing from the output" \
    grep -q "live input: $((frames - n)) frames" drop.err
check "drop: the clock stays true (last frame at 20 s, times increasing)" \
    awk -F'\t' 'NR > 1 { if ($3 <= last) exit 1; last = $3 } END { exit !(last > 19.9 && last <= 20.0) }' drop.tsv
cat long.wav | "$BIN" --model "$M" --audio - --posteriors --on-overrun block --queue 2 > block.tsv
check "block: every frame processed" test $(( $(wc -l < block.tsv) - 1 )) -eq $frames

# ---- bad input: one line on stderr, non-zero exit, no crash
one_line_fail() { # what expected-text command...
    local what=$1 want=$2; shift 2
    "$@" > /dev/null 2> bad.err
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l < bad.err)" -eq 1 ] && grep -q -- "$want" bad.err; then
        ok "$what"
    else
        fail "$what (rc $rc: $(cat bad.err))"
    fi
}
echo "this is not audio" > text.wav
: > empty.wav
head -c 20000 tone.wav > cut.wav
sox -n -r 16000 -b 16 -c 1 -t raw short.raw synth 0.01 sine 440
one_line_fail "not audio" "text.wav: not audio" "$BIN" --model "$M" --audio text.wav
one_line_fail "zero-length file" "empty.wav: empty file" "$BIN" --model "$M" --audio empty.wav
one_line_fail "truncated file" "cut.wav: truncated" "$BIN" --model "$M" --audio cut.wav
espeak-ng --stdout no | cat > streamed.wav   # header sizes are "unknown" placeholders
check "a streamed WAV saved to a file (placeholder sizes) is not called truncated" \
    "$BIN" --model "$M" --audio streamed.wav -o /dev/null
one_line_fail "unsupported rate" "sample rate 20 Hz is unsupported" "$BIN" --model "$M" --audio short.raw --raw s16le:20:1
one_line_fail "FLAC on a pipe" "FLAC cannot be read from a pipe" sh -c "cat tone.flac | '$BIN' --model '$M' --audio -"
one_line_fail "empty stdin" "stdin: empty input" sh -c "'$BIN' --model '$M' --audio - < /dev/null"
one_line_fail "clip shorter than a frame" "shorter than one frame" "$BIN" --model "$M" --audio short.raw --raw s16le:16000:1
one_line_fail "model without a front end section" "not an audio classifier" \
    "$BIN" --model "$MS_SRC/examples/models/dna-tiny-untrained" --audio tone.wav
one_line_fail "bad --raw" "--raw: 's16:16000:1'" "$BIN" --model "$M" --audio - --raw s16:16000:1
"$BIN" --model "$M" --audio tone.wav text.wav -o out.tsv 2> /dev/null
check "a failed run leaves no output file" test ! -e out.tsv
finish
