#!/bin/sh
# `make gpu-check` without make: on a real NVIDIA host with python3 (torch with CUDA, nvidia-ml-py, numpy,
# transformers), no Docker and no network. The wheelhouse .whl/ (`make gpu-wheels`, made where there is network,
# then carried) is unpacked without pip (bench/gpu_check_unpack.py) into a temporary folder put first on
# PYTHONPATH; then bench/gpu_check.py runs.
#   GPU_CHECK_PYTHON (python3), GPU_CHECK_WHEELS (.whl), GPU_CHECK_SITE (/tmp/greenrt-gpu-check-site);
#   arguments go to bench/gpu_check.py (e.g. --fresh, --budget-s 420).
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${GPU_CHECK_PYTHON:-python3}
WHEELS=${GPU_CHECK_WHEELS:-.whl}
SITE=${GPU_CHECK_SITE:-/tmp/greenrt-gpu-check-site}

if ! command -v "$PY" >/dev/null 2>&1; then
	echo "gpu-check: cannot run on this host: no $PY on PATH (set GPU_CHECK_PYTHON)" >&2
	exit 2
fi
# CUDA, NVML, torch and transformers first: a host without them is told so in one line, before any install.
"$PY" bench/gpu_check.py --preflight || exit $?

if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
	# No pip needed (the lent GPU machine's python3 has none): the wheels are zip files, unpacked with the standard
	# library into $SITE, which goes first on PYTHONPATH; then the host-side packages must import from it.
	"$PY" bench/gpu_check_unpack.py "$WHEELS" "$SITE" --check polars,pydantic,typer,rich || exit 2
	PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
	export PYTHONPATH
elif ! "$PY" -c 'import polars, pydantic, typer, rich' >/dev/null 2>&1; then
	echo "gpu-check: cannot run on this host: polars/pydantic/typer/rich missing and no wheelhouse in $WHEELS/" \
		"(run \`make gpu-wheels\` where there is network, then bring .whl/ along)" >&2
	exit 2
fi
PYTHONUNBUFFERED=1
export PYTHONUNBUFFERED
exec "$PY" bench/gpu_check.py "$@"
