#!/bin/sh
# TensorRT's libraries live inside the tensorrt_libs package; the dynamic loader must find libnvinfer.so.10 there
# when ONNX Runtime's TensorRT provider is loaded.
set -eu
/opt/greenrt/venv/bin/python -c 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))' \
    > /etc/ld.so.conf.d/greenrt-tensorrt.conf
ldconfig
