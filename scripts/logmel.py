#!/usr/bin/env python3
"""logmel.py - the numpy twin of mamba-stream's log-mel front end (docs/model-format.md).

Independent of the C code: float64 numpy throughout (numpy.fft.rfft), written from the
definition, so a training pipeline can compute the same features the engine computes.

    import logmel, json
    cfg = json.load(open("MODEL/config.json"))["mamba_stream"]["frontend"]
    feats = logmel.logmel(samples, cfg)      # samples: mono float in [-1, 1) at cfg rate

As a program, it checks the engine's frames (`mamba-stream features ... -o f.npy`) against
its own for a WAV file (16-bit PCM or float, at the model's rate, mono or down-mixed):

    logmel.py --config MODEL/config.json --wav x.wav --check f.npy [--tol 1e-4] [--etol 1e-5]
"""
import argparse
import json
import sys
import wave

import numpy as np

DEFAULTS = dict(sample_rate=16000, win_length=400, hop_length=160, n_fft=512, window="hann",
                n_mels=40, fmin=20.0, fmax=7600.0, preemphasis=0.97, log_floor=1e-6,
                mel_scale="htk", normalize=None)


def hz_to_mel(f, scale):
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, logstep = 200.0 / 3, np.log(6.4) / 27.0
    return np.where(f < 1000.0, f / f_sp, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep)


def mel_to_hz(m, scale):
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, logstep = 200.0 / 3, np.log(6.4) / 27.0
    return np.where(m < 15.0, m * f_sp, 1000.0 * np.exp(logstep * (m - 15.0)))


def mel_filterbank(c):
    """[n_mels][n_fft//2 + 1]: triangles in Hz between mel-spaced points (norm=None)."""
    n_bins = c["n_fft"] // 2 + 1
    m = np.linspace(hz_to_mel(c["fmin"], c["mel_scale"]), hz_to_mel(c["fmax"], c["mel_scale"]),
                    c["n_mels"] + 2)
    f_pts = mel_to_hz(m, c["mel_scale"])
    f = np.arange(n_bins) * c["sample_rate"] / c["n_fft"]
    up = (f[None, :] - f_pts[:-2, None]) / (f_pts[1:-1] - f_pts[:-2])[:, None]
    down = (f_pts[2:, None] - f[None, :]) / (f_pts[2:] - f_pts[1:-1])[:, None]
    return np.maximum(0.0, np.minimum(up, down))


def logmel(x, cfg):
    """Frames [T][n_mels] of mono samples x; T = 0 if len(x) < win else 1 + (len-win)//hop."""
    c = dict(DEFAULTS)
    c.update({k: v for k, v in cfg.items() if k != "type"})
    x = np.asarray(x, dtype=np.float64)
    y = x.copy()
    y[1:] -= c["preemphasis"] * x[:-1]               # x[-1] = 0: y[0] = x[0]
    W, H = c["win_length"], c["hop_length"]
    T = 0 if len(y) < W else 1 + (len(y) - W) // H
    i = np.arange(W)
    a = 0.5 if c["window"] == "hann" else 0.54
    window = a - (1 - a) * np.cos(2 * np.pi * i / W)  # periodic
    frames = np.stack([y[t * H:t * H + W] for t in range(T)]) if T else np.zeros((0, W))
    spec = np.abs(np.fft.rfft(frames * window, n=c["n_fft"], axis=1)) ** 2
    mel = spec @ mel_filterbank(c).T
    out = np.log(np.maximum(mel, c["log_floor"]))
    if c.get("normalize"):
        out = (out - np.asarray(c["normalize"]["mean"])) / np.asarray(c["normalize"]["std"])
    return out


def read_wav(path):
    """Mono float64 samples and rate of a 16-bit PCM WAV (int / 32768, channels averaged)."""
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, "16-bit PCM WAV only"
        a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        return a.reshape(-1, w.getnchannels()).mean(axis=1), w.getframerate()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--wav", required=True)
    ap.add_argument("--check", required=True, help="the engine's frames (.npy)")
    ap.add_argument("--tol", type=float, default=1e-4, help="log units, bins within 60 dB of the peak")
    ap.add_argument("--etol", type=float, default=1e-5, help="energy error / frame peak energy")
    a = ap.parse_args()
    cfg = json.load(open(a.config))["mamba_stream"]["frontend"]
    x, rate = read_wav(a.wav)
    if rate != cfg.get("sample_rate", 16000):
        sys.exit(f"{a.wav}: {rate} Hz, the model's front end is at {cfg['sample_rate']} Hz")
    ref = logmel(x, cfg)
    got = np.load(a.check).astype(np.float64)
    if got.shape != ref.shape:
        sys.exit(f"shape {got.shape} vs numpy {ref.shape}")
    # The engine's FFT is float32: its error is ~1e-7 of the frame's energy, so a mel bin
    # far below the frame's peak carries a relative error that grows as its energy falls.
    # Hence two tolerances: log values within `tol` where the bin is within 60 dB of the
    # frame's peak mel energy, and energies within `etol` x that peak everywhere.
    err = np.abs(got - ref)
    if ref.size == 0:
        print("no frames")
        sys.exit(0)
    e_ref, e_got = np.exp(ref), np.exp(got)
    peak = e_ref.max(axis=1, keepdims=True)
    near = e_ref >= 1e-6 * peak
    log_err = err[near].max()
    e_err = (np.abs(e_got - e_ref) / peak).max()
    print(f"frames {ref.shape[0]} x {ref.shape[1]}: max |engine - numpy| = {log_err:.3g} within "
          f"60 dB of the frame peak (tol {a.tol:g}), {err.max():.3g} anywhere; max energy error "
          f"{e_err:.3g} x peak (tol {a.etol:g})")
    sys.exit(0 if log_err <= a.tol and e_err <= a.etol else 1)


if __name__ == "__main__":
    main()
