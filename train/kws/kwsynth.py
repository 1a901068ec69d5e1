"""kwsynth.py - the synthesis shared by make_dataset.py and make_stream.py.

Words come from espeak-ng (English voices x variants x speed x pitch), are shaped by sox
(tempo, pitch, reverb, resampling to 16 kHz) and are trimmed here by energy, so that the
placement of the trimmed utterance gives the word's exact sample range. Background noise
comes from a bank that sox synthesises once (`-R`: repeatable), from which clips take
segments at random offsets.

Everything random is decided by the caller (a numpy Generator): the functions here are
deterministic given their arguments, so a dataset does not depend on how many worker
processes made it.
"""
import hashlib
import json
import os
import re
import subprocess
import wave

import numpy as np

RATE = 16000                     # the model's rate (frontend.json); clips are at this rate
HERE = os.path.dirname(os.path.abspath(__file__))
FRONTEND_JSON = os.path.join(HERE, "frontend.json")

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off",
          "stop", "go"]
KEYWORDS = LABELS[2:]
# Speech Commands' auxiliary words, and near-misses of the keywords (so that "_unknown_"
# teaches the model what a keyword is *not*, not only what other long words sound like).
UNKNOWN_WORDS = ["bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house",
                 "marvin", "nine", "one", "seven", "sheila", "six", "three", "tree", "two",
                 "wow", "zero", "backward", "follow", "forward", "learn", "visual",
                 "yet", "note", "cup", "town", "light", "write", "own", "of", "top", "show"]

# Noise bank: kinds of background, each `BANK_SECONDS` long at unit RMS. Every split takes
# its segments from its own region of each bank (BANK_REGIONS), so a test clip never
# carries the very noise samples a training clip did.
NOISE_KINDS = ["white", "pink", "brown", "hum50", "hum60", "band"]
BANK_SECONDS = 120
BANK_REGIONS = {"train": (0.0, 0.7), "val": (0.7, 0.85), "test": (0.85, 1.0)}

TRIM_DB = -45.0                  # trim: 10 ms frames within this of the loudest frame


def load_frontend():
    """The front end of the dataset: train/kws/frontend.json (a copy of the block in
    examples/models/kws-tiny-untrained/config.json), the single source of truth."""
    with open(FRONTEND_JSON) as f:
        cfg = json.load(f)
    assert cfg["sample_rate"] == RATE, "kwsynth assumes a 16 kHz front end"
    return cfg


# ------------------------------------------------------------------ speakers

def espeak_data_dir():
    """espeak-ng's data folder, as `espeak-ng --version` reports it."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"Data at:\s*(\S+)", out)
    if not m:
        raise RuntimeError("espeak-ng --version did not say where its data is")
    return m.group(1)


def english_voices():
    """Language codes of espeak-ng's own English voices (gmw/ files). The mb/ ones need
    mbrola, which is not installed."""
    out = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True).stdout
    voices = []
    for line in out.splitlines()[1:]:
        f = line.split()
        # columns: Pty Language Age/Gender VoiceName File [Other languages]
        if len(f) >= 5 and f[4].startswith("gmw/"):
            voices.append(f[1])
    return sorted(set(voices))


def variant_names():
    """Every voice variant file in espeak-ng-data/voices/!v (f1, m3, klatt2, whisper, ...)."""
    d = os.path.join(espeak_data_dir(), "voices", "!v")
    return sorted(os.listdir(d), key=str.lower)


def speaker_families(variants):
    """Group variants that are the same speaker under another name, so that a held-out
    speaker has no near-twin in training: names equal once lower-cased and stripped of
    trailing digits (klatt, klatt2..klatt6; robosoft..robosoft8; f1..f5; m1..m8), and
    variants whose output for a probe word is bit-identical (caleb = klatt = klatt6)."""
    parent = {v: v for v in variants}

    def root(v):
        while parent[v] != v:
            v = parent[v]
        return v

    def join(a, b):
        parent[root(a)] = root(b)

    by_key = {}
    for v in variants:
        key = "name:" + re.sub(r"\d+$", "", v.lower())
        by_key.setdefault(key, []).append(v)
        probe = subprocess.run(["espeak-ng", "--stdout", "-v", "en-us+" + v, "-s", "160",
                                "seven"], capture_output=True).stdout
        by_key.setdefault("audio:" + hashlib.sha1(probe).hexdigest(), []).append(v)
    for group in by_key.values():
        for v in group[1:]:
            join(v, group[0])
    families = {}
    for v in variants:
        families.setdefault(root(v), []).append(v)
    return sorted(families.values(), key=lambda g: g[0].lower())


def split_speakers(seed, frac_val=0.1, frac_test=0.1):
    """{'train','val','test'} -> variant names, and the families. Whole families are held
    out (shuffled by `seed`), test first, then val, each until it has >= its fraction of
    the variants; the rest train."""
    families = speaker_families(variant_names())
    n = sum(len(g) for g in families)
    order = np.random.default_rng([seed, 7]).permutation(len(families))
    split = {"test": [], "val": [], "train": []}
    for i in order:
        g = families[i]
        if len(split["test"]) < frac_test * n:
            split["test"] += g
        elif len(split["val"]) < frac_val * n:
            split["val"] += g
        else:
            split["train"] += g
    return {k: sorted(v, key=str.lower) for k, v in split.items()}, families


# ------------------------------------------------------------------ one utterance

def _wav_payload(data):
    """(samples, rate) of a 16-bit mono WAV in memory. espeak-ng --stdout writes a header
    whose sizes are placeholders, so read the 'data' chunk to the end of the bytes."""
    rate = int.from_bytes(data[24:28], "little")
    i = data.find(b"data")
    if data[:4] != b"RIFF" or i < 0:
        raise RuntimeError("espeak-ng wrote no WAV")
    pcm = data[i + 8:]
    pcm = pcm[:len(pcm) // 2 * 2]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, rate


def trim(x, rate, rel_db=TRIM_DB):
    """x cut to the span of its 10 ms frames within rel_db of the loudest one (an empty
    array if x is silent). Frames, not samples, so a click in the silence does not count."""
    hop = rate // 100
    n = len(x) // hop
    if n == 0:
        return x[:0]
    rms = np.sqrt(np.mean(x[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    if rms.max() <= 0:
        return x[:0]
    on = np.nonzero(rms >= rms.max() * 10 ** (rel_db / 20))[0]
    return x[on[0] * hop:(on[-1] + 1) * hop]


def espeak(word, voice, variant, speed, pitch):
    """The dry, trimmed utterance (float32) and espeak-ng's rate (22050)."""
    r = subprocess.run(["espeak-ng", "--stdout", "-v", f"{voice}+{variant}", "-s", str(speed),
                        "-p", str(pitch), word], capture_output=True, check=True)
    x, rate = _wav_payload(r.stdout)
    return trim(x, rate), rate


def sox_effects(x, rate, tempo, cents, reverb=None):
    """x (at `rate`) through sox: tempo (speed, pitch kept), pitch (cents), an optional
    light reverb (reverberance %, room scale %), resampled to 16 kHz mono float32."""
    cmd = ["sox", "-R", "-t", "f32", "-r", str(rate), "-c", "1", "-",
           "-t", "f32", "-r", str(RATE), "-c", "1", "-",
           "tempo", "-s", f"{tempo:.4f}", "pitch", f"{cents:.1f}"]
    if reverb:
        cmd += ["reverb", f"{reverb[0]:.0f}", "50", f"{reverb[1]:.0f}"]
    r = subprocess.run(cmd, input=x.astype("<f4").tobytes(), capture_output=True, check=True)
    return np.frombuffer(r.stdout, dtype="<f4").copy()


def utterance(word, p, max_seconds=0.95):
    """One word as said by speaker params p (voice, variant, speed, pitch, tempo, cents,
    reverb), 16 kHz, trimmed, peak 1. The tempo is raised where needed so that the word
    fits in max_seconds (slow speakers saying "backward" would not fit a 1 s clip)."""
    dry, rate = espeak(word, p["voice"], p["variant"], p["speed"], p["pitch"])
    if len(dry) == 0:
        raise RuntimeError(f"espeak-ng said nothing for {word!r} with {p}")
    tempo = max(p["tempo"], len(dry) / rate / (max_seconds * 0.97))
    y = trim(sox_effects(dry, rate, tempo, p["cents"], p.get("reverb")), RATE)
    y = y[:int(max_seconds * RATE)]          # the tempo cap makes this a no-op but for rounding
    return y / max(np.abs(y).max(), 1e-9)


# ------------------------------------------------------------------ background

def make_noise_bank(seconds=BANK_SECONDS):
    """{kind: float32 [seconds * RATE]} at unit RMS, synthesised by sox (-R: repeatable).
    hum = mains hum with harmonics over a little pink noise; band = pink noise through a
    300-3400 Hz band-pass (a telephone-like murmur)."""
    synth = {
        "white": ["synth", str(seconds), "whitenoise"],
        "pink": ["synth", str(seconds), "pinknoise"],
        "brown": ["synth", str(seconds), "brownnoise"],
        "band": ["synth", str(seconds), "pinknoise", "sinc", "300-3400"],
    }
    bank = {}
    for kind, effects in synth.items():
        bank[kind] = _sox_synth(1, effects)
    for kind, f0 in (("hum50", 50), ("hum60", 60)):
        # four channels (three harmonics and pink noise) mixed down with their own gains
        hum = _sox_synth(4, ["synth", str(seconds), "sine", str(f0), "sine", str(2 * f0),
                             "sine", str(3 * f0), "pinknoise", "remix", "1v0.6,2v0.3,3v0.2,4v0.05"])
        bank[kind] = hum
    return {k: (v / np.sqrt(np.mean(v.astype(np.float64) ** 2))).astype(np.float32)
            for k, v in bank.items()}


def _sox_synth(channels, effects):
    # the channel count is the input's (one generator each); the output is mono
    cmd = ["sox", "-R", "-r", str(RATE), "-c", str(channels), "-n",
           "-t", "f32", "-c", "1", "-"] + effects
    r = subprocess.run(cmd, capture_output=True, check=True)
    return np.frombuffer(r.stdout, dtype="<f4").copy()


def noise_segment(bank, kind, n, pos, split):
    """n samples of `kind` at unit RMS, starting at fraction `pos` of the split's region."""
    x = bank[kind]
    lo, hi = BANK_REGIONS[split]
    a, b = int(lo * len(x)), int(hi * len(x)) - n
    start = a + int(pos * (b - a))
    return x[start:start + n]


def rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))) if len(x) else 0.0


def db(x):
    return 10 ** (x / 20)


def to_pcm16(x):
    """x as a 16-bit WAV would hold it (what the engine reads back: int / 32768)."""
    q = np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768), -32768, 32767).astype("<i2")
    return q


def write_wav(path, pcm16):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm16.astype("<i2").tobytes())


def tool_versions():
    es = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    sx = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout.strip()
    return {"espeak-ng": es, "sox": sx}
