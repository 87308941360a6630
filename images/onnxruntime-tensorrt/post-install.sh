#!/bin/sh
# TensorRT's libraries live inside the tensorrt_libs package, cuDNN 9 inside nvidia-cudnn-cu13's: the dynamic loader
# must find libnvinfer.so.10 and libcudnn.so.9 there when ONNX Runtime's TensorRT and CUDA providers are loaded
# (the CUDA 13 runtime base has neither).
set -eu
"${GREENRT_VENV:-/opt/greenrt/venv}/bin/python" /opt/greenrt/build/wheel-library-dirs.py \
    > /etc/ld.so.conf.d/greenrt-nvidia-wheels.conf
ldconfig
