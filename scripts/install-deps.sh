#!/usr/bin/env bash
# Install what mamba-stream needs to build and test on Debian 12 (bookworm). The CUDA
# backend is built when nvcc is found (the CUDA toolkit is not a Debian package here).
# Audio: libsndfile, libsamplerate and kissfft to build; espeak-ng, sox and python3-numpy
# make and check the test audio.
# libbigwig-dev: bigWig output; bcftools: the VCF tests.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config ca-certificates python3 \
    libhts-dev zlib1g-dev libcjson-dev libopenblas-dev libcmocka-dev \
    tabix samtools bcftools dpkg-dev libbigwig-dev \
    libsndfile1-dev libsamplerate0-dev libkissfft-dev \
    espeak-ng sox python3-numpy >/dev/null
echo "install-deps: done"
