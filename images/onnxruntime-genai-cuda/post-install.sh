#!/bin/sh
# The CUDA provider dlopens cuDNN 9 (libcudnn.so.9), which only the nvidia-cudnn-cu13 wheel brings (the CUDA 13
# runtime base has none), and onnxruntime-gpu does not preload the wheels' libraries on Linux unless the runner
# calls onnxruntime.preload_dlls(): the dynamic loader is told where they are instead.
set -eu
"${GREENRT_VENV:-/opt/greenrt/venv}/bin/python" /opt/greenrt/build/wheel-library-dirs.py \
    > /etc/ld.so.conf.d/greenrt-nvidia-wheels.conf
ldconfig
