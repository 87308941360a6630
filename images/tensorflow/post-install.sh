#!/bin/sh
# XLA on CUDA needs ptxas and libdevice: the CUDA build's nvidia-cuda-nvcc-cu12 wheel brings them inside the venv's
# site-packages; a fixed link lets the Dockerfile name the folder (XLA_FLAGS=--xla_gpu_cuda_data_dir, PATH) without
# knowing the image's Python version. The CPU build has no such wheel and no link (XLA on the CPU needs neither).
set -eu
venv="${GREENRT_VENV:-/opt/greenrt/venv}"
link="${GREENRT_CUDA_NVCC_LINK:-/opt/greenrt/cuda-nvcc}"  # the Dockerfile's XLA_FLAGS and PATH name this path
nvcc="$("$venv/bin/python" -c 'import nvidia.cuda_nvcc as m; print(list(m.__path__)[0])' 2>/dev/null || true)"
if [ -n "$nvcc" ] && [ -x "$nvcc/bin/ptxas" ] && [ -f "$nvcc/nvvm/libdevice/libdevice.10.bc" ]; then
    ln -sfn "$nvcc" "$link"
    echo "greenrt: XLA's CUDA data dir $link -> $nvcc ($("$nvcc/bin/ptxas" --version | tail -1))"
elif [ -n "$nvcc" ]; then
    echo "greenrt: $nvcc lacks bin/ptxas or nvvm/libdevice/libdevice.10.bc: XLA on CUDA cannot compile" >&2
    exit 1
fi
