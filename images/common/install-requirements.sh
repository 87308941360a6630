#!/bin/sh
# Installs an image's pinned requirements into the runner's venv: the same file that builds the runtime's local
# venv, or requirements-<flavor>.txt where the GPU build needs other packages (MXNet's CUDA wheel).
# Wheels in /opt/greenrt/wheelhouse win over the index for the same version (a host's CPU build of torch).
# The paths can be overridden (GREENRT_VENV, GREENRT_IMAGE_DIR, GREENRT_WHEELHOUSE) so that
# images/check_cuda_layers.py runs this same script into a plain venv; GREENRT_POST_INSTALL=skip leaves out the
# image's post-install.sh there (it configures the image's dynamic loader).
set -eu
flavor="$1"
venv="${GREENRT_VENV:-/opt/greenrt/venv}"
wheelhouse="${GREENRT_WHEELHOUSE:-/opt/greenrt/wheelhouse}"
cd "${GREENRT_IMAGE_DIR:-/opt/greenrt/build/image}"
requirements=requirements.txt
if [ -f "requirements-$flavor.txt" ]; then
    requirements="requirements-$flavor.txt"
fi
# The same pins constrain what pip installs into an sdist's isolated build environment (gluonnlp's Cython and
# setuptools), but a constraint cannot carry extras or options: `onnxruntime-gpu[cuda,cudnn]==1.31.1` becomes
# `onnxruntime-gpu==1.31.1` there (else every sdist's build fails with "Constraints cannot have extras").
build_constraints="$(mktemp)"
sed -e '/^[[:space:]]*-/d' -e 's/\[[^]]*\]//' "$requirements" > "$build_constraints"
echo "greenrt: installing $requirements ($flavor build)"
"$venv/bin/python" -m pip install --no-cache-dir -q --find-links "$wheelhouse" \
    -r "$requirements" --build-constraint "$build_constraints"
rm -f "$build_constraints"
if [ -f post-install.sh ] && [ "${GREENRT_POST_INSTALL:-run}" != skip ]; then
    sh post-install.sh
fi
"$venv/bin/python" -m pip check
