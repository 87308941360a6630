#!/bin/sh
# Build greenrt-torch-runner against the libtorch of an environment's torch wheel and install it into that
# environment's bin/: `sh runners/cpp/build.sh PYTHON` (PYTHON: the environment's interpreter). The build folder is
# BUILD_DIR (default: the environment's greenrt-torch-runner.build/), kept between builds, so cmake rebuilds only
# what changed.
set -eu
python=${1:?usage: build.sh PYTHON}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$python")
build=${BUILD_DIR:-$(dirname "$bin")/greenrt-torch-runner.build}
prefix=$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
cmake -S "$here" -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$(dirname "$bin")" -Wno-dev > "$build.configure.log" 2>&1 || {
  cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j "${JOBS:-2}"
cmake --install "$build" > /dev/null
