#!/bin/sh
# A running Docker engine for image builds and the Docker launcher's tests: nothing to do where `docker info`
# answers; on Debian/Ubuntu as root, installs Debian's docker.io and starts dockerd in the background, logging to
# $GREENRT_CACHE/dockerd.log. Elsewhere it says what is missing.
set -eu
cache="${GREENRT_CACHE:-$(pwd)/.cache}"
if docker info >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "no Docker engine answers, and installing one needs root on Debian/Ubuntu: start Docker, then retry" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
mkdir -p "$cache"
echo "starting dockerd (log: $cache/dockerd.log)"
setsid dockerd >"$cache/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.5
done
echo "dockerd did not answer within 60 s; see $cache/dockerd.log" >&2
exit 1
