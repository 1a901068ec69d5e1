#!/usr/bin/env python3
"""live_latency.py - end-to-end latency of mamba-stream's live mode, audio to output line.

Feeds raw 16-bit PCM to `mamba-stream --audio - --raw s16le:RATE:1 --mode live
--posteriors` through a pipe at real time (10 ms blocks, paced by the clock), reads its
per-frame lines as they come, and for each frame measures

    latency = (wall time its line arrived) - (wall time the block holding the frame's last
              sample was written)

A frame's time in the output is the end of its window, which locates that block. This is
the delay from the end of a word's audio to a detection line (a detection is printed in the
same step as the posteriors of the frame that triggers it), once the capture device has
delivered the audio: capture in 10 ms blocks adds up to 10 ms before that (5 ms on average
for 25 ms windows every 10 ms).
Standard library only.

    bench/live_latency.py --bin build/mamba-stream --model DIR [--seconds 10]
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/mamba-stream")
    ap.add_argument("--model", required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--extra", default="", help="more mamba-stream options")
    a = ap.parse_args()
    cmd = [a.bin, "--model", a.model, "--audio", "-", "--raw", f"s16le:{a.rate}:1",
           "--mode", "live", "--posteriors"] + a.extra.split()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    block = a.rate // 100
    n_blocks = int(a.seconds * 100)
    arrivals = []
    written = []  # wall time block b was written

    def reader():
        for line in p.stdout:
            if line.startswith(b"#"):
                continue
            arrivals.append((time.perf_counter(), float(line.split(b"\t")[2])))

    t = threading.Thread(target=reader)
    t.start()
    start = time.perf_counter()
    for b in range(n_blocks):
        # a 440 Hz tone; each block written when its last sample would have been captured
        samples = bytearray()
        for i in range(block):
            v = int(8000 * math.sin(2 * math.pi * 440 * (b * block + i) / a.rate))
            samples += v.to_bytes(2, "little", signed=True)
        due = start + (b + 1) * block / a.rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        p.stdin.write(bytes(samples))
        written.append(time.perf_counter())
    p.stdin.close()
    t.join()
    p.wait()
    lat = sorted((arr - written[min(len(written) - 1, math.ceil(round(tm * a.rate) / block) - 1)]) * 1000
                 for arr, tm in arrivals)
    if not lat:
        sys.exit("no output lines")
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
    print(f"{len(lat)} frames over {a.seconds:.0f} s of real-time input: latency from a frame's "
          f"last sample to its line: median {statistics.median(lat):.2f} ms, p90 {q(0.9):.2f}, "
          f"p99 {q(0.99):.2f}, max {lat[-1]:.2f} ms")


if __name__ == "__main__":
    main()
