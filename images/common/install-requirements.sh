#!/bin/sh
# Installs an image's pinned requirements into the runner's venv: the same file that builds the runtime's local
# venv, or requirements-<flavor>.txt where the GPU build needs other packages (MXNet's CUDA wheel).
# Wheels in /opt/greenrt/wheelhouse win over the index for the same version (a host's CPU build of torch).
set -eu
flavor="$1"
cd /opt/greenrt/build/image
requirements=requirements.txt
if [ -f "requirements-$flavor.txt" ]; then
    requirements="requirements-$flavor.txt"
fi
echo "greenrt: installing $requirements ($flavor build)"
/opt/greenrt/venv/bin/python -m pip install --no-cache-dir -q --find-links /opt/greenrt/wheelhouse \
    -r "$requirements" --build-constraint "$requirements"
if [ -f post-install.sh ]; then
    sh post-install.sh
fi
/opt/greenrt/venv/bin/python -m pip check
