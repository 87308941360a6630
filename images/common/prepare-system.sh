#!/bin/sh
# Shared first step of every greenrt image: a Python 3 that can make a venv, the runner's venv with a current pip,
# and the unprivileged user the runner runs as. Works on NVIDIA's Ubuntu CUDA images and on a plain Debian base
# (the local CPU base built by `greenrt images base`); extra apt packages an image needs are passed as arguments.
set -eu
packages="python3 python3-venv ca-certificates $*"
missing=""
for package in $packages; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
    rm -rf /var/lib/apt/lists/*
fi
python3 -m venv /opt/greenrt/venv
# The venv's bundled pip (23.x) crashes resolving transformers' tree, and --build-constraint needs pip >= 25.3.
/opt/greenrt/venv/bin/python -m pip install --no-cache-dir -q pip==26.3
# uid 10001: outside the range of host users, so files it writes into bind mounts are recognisably the runner's.
if command -v useradd >/dev/null 2>&1; then
    useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin greenrt
else
    echo "greenrt:x:10001:" >> /etc/group
    echo "greenrt:x:10001:10001::/tmp:/usr/sbin/nologin" >> /etc/passwd
fi
