"""Prints, one a line, the folders of the venv's site-packages that hold the NVIDIA wheels' shared libraries
(nvidia/*/lib: cuDNN, cuBLAS, the CUDA runtime; tensorrt_libs: TensorRT).

An image's post-install.sh writes them to /etc/ld.so.conf.d/ so that the dynamic loader finds what ONNX Runtime's
providers load at run time (the CUDA provider dlopens libcudnn.so.9, which a CUDA runtime base has not got; the
TensorRT provider links libnvinfer.so.10). images/check_cuda_layers.py puts the same folders on LD_LIBRARY_PATH.
Run it with the venv's own Python.
"""
import os
import site
import sys

folders = set()
for packages in site.getsitepackages():
    for top in ("nvidia", "tensorrt_libs"):
        for root, _, files in os.walk(os.path.join(packages, top)):
            if any(".so" in name for name in files):
                folders.add(root)
if not folders:
    sys.exit("no NVIDIA wheel libraries in " + ", ".join(site.getsitepackages()))
print("\n".join(sorted(folders)))
