# greenrt: `make sweep` measures, `make test` tests, `make bench` measures the harness itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
GREENRT := $(BIN)/greenrt
PIP_VERSION := 26.3
# Runtime environments the tests need (each built once from images/<env>/requirements.txt, cached in .cache/).
TEST_ENVS := torch onnxruntime tensorflow mxnet openvino onnxruntime-openvino litert onnxruntime-genai ctranslate2 \
	openvino-genai llama-cpp onnxruntime-node
FRAMEWORK_TESTS := $(addprefix test-,torch tensorflow mxnet openvino litert onnxruntime-genai ctranslate2 openvino-genai \
	llama-cpp)

.PHONY: setup system-packages engine envs images cpu-images sweep test lint test-unit test-host $(FRAMEWORK_TESTS) bench clean gpu-wheels gpu-check
.PHONY: test-node-client
.PHONY: cpp-runner test-cpp-client

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==$(PIP_VERSION)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# System libraries the frameworks' wheels link against (MXNet: libgomp, libquadmath), gcc for gluonnlp's
# source build, and debootstrap for the local base image of the CPU images; installed only where missing.
# torch/inductor/cpu compiles C++ kernels as Python extensions at run time: g++ and Python's headers (python3-dev
# for Debian's python3; a pyenv or python.org build brings its own include/ folder). chromium: the report's test
# opens report.html in a real headless browser (tests/host/report/test_report_in_browser.py).
SYSTEM_PACKAGES := libgomp1 libquadmath0 gcc g++ python3-dev debootstrap chromium
# The C++ client of PyTorch (runners/cpp/) builds with CMake against the torch wheel's libtorch, nlohmann/json, OpenSSL's
# SHA-256 and zlib's CRC-32.
SYSTEM_PACKAGES += cmake nlohmann-json3-dev libssl-dev zlib1g-dev
# Node.js and npm for the onnxruntime-node environment (npm ci of its lockfile): Debian's, where none is on PATH
# (checked by command, not package: a NodeSource nodejs provides npm itself).
system-packages:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $(SYSTEM_PACKAGES))
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq nodejs npm)

# A running Docker engine: installed (Debian's docker.io) and started here when none answers.
engine:
	sh images/start-engine.sh

# The runtimes' images FROM NVIDIA's CUDA bases (an NVIDIA host with the container toolkit); IMAGES=... for some.
IMAGES ?=
images: setup engine
	$(GREENRT) images build $(IMAGES)

# CPU builds of the same images FROM a local Debian base (no registry needed); pip's find-links wheels (a CPU
# torch) are preferred where the requirements name them.
FIND_LINKS = $(shell $(BIN)/python -m pip config get global.find-links 2>/dev/null)
cpu-images: setup engine system-packages
	$(GREENRT) images base
	$(GREENRT) images build $(IMAGES) --base-image greenrt/base:bookworm --flavor cpu \
		$(foreach dir,$(FIND_LINKS),--wheelhouse $(dir))

# The CUDA images' Python layers without a GPU (not part of `make test`): each CUDA flavor's requirements installed
# once into a venv of the image's Python, then imports, CUDA/cuDNN build versions, ONNX Runtime's providers and ldd;
# .cache/cuda-layers/summary.json and a table (docs/cuda-layers.md). IMAGES=... for some; resumable.
.PHONY: cuda-layers
cuda-layers: system-packages
	$(PYTHON) images/check_cuda_layers.py $(IMAGES)

# Which GPU architectures each CUDA image's runtime ships machine code and PTX for, read with cuobjdump from the
# pinned wheels (downloaded into .cache/gpu-coverage/, ~2 GB): rewrites runners/cuda_binaries.json, which the planner
# and `greenrt doctor` read (docs/gpu-coverage.md). ENVS=... for some.
.PHONY: gpu-coverage
gpu-coverage: setup
	$(BIN)/python -m orchestrator.provisioning.cuda_binaries $(ENVS)

envs: setup system-packages
	$(GREENRT) env build $(TEST_ENVS)

# The default config fits the host: the study's GPU matrix where NVML sees a GPU, else the quick CPU sweep.
# CONFIG=configs/x.toml and OUT=results/x override; PYTHON_RUNTIME=/path/python runs every runtime in that
# interpreter instead of building venvs.
sweep: setup system-packages
	$(GREENRT) sweep $(if $(CONFIG),--config $(CONFIG)) $(if $(OUT),--out $(OUT)) \
		$(if $(PYTHON_RUNTIME),--python $(PYTHON_RUNTIME))

test: lint test-host $(FRAMEWORK_TESTS) test-node-client test-cpp-client

# ruff (pinned in the dev extra; rules in pyproject.toml): pyflakes and syntax errors everywhere, docstrings on the
# public Python API. It checks, it never rewrites.
lint: setup
	$(BIN)/ruff check .

# The fast tier alone: pure functions and in-process parts of the host side (no engine, cluster, runner or GPU).
UNIT_TIER := not (process or docker or slurm or root or slow)
test-unit: setup
	$(BIN)/pytest -q -m "$(UNIT_TIER)" tests/host

# The host's tests include the Docker launcher's, against a real engine (images built by the tests themselves).
# --durations: the slowest tests in every CI log, to see where its time goes.
test-host: envs engine cpp-runner
	$(BIN)/pytest --durations=25 tests/host

# Debian's Slurm for the scale-out tests, installed only where missing; tests/host/testkit/slurm_cluster.py starts a private
# single-host cluster (munged, slurmctld, one slurmd per node name) and stops it by its daemons' PIDs.
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
.PHONY: slurm
slurm:
	@dpkg -s $(SLURM_PACKAGES) >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SLURM_PACKAGES))
test-host: slurm

# Each framework's tests run inside that framework's own environment (tests/<framework>/).
$(FRAMEWORK_TESTS): test-%: envs
	python=$$($(GREENRT) env python $*) && \
	$$python -m pip install -q pytest==9.2.0 pytest-timeout==2.4.0 && \
	$$python -m pytest tests/$*

# The Node.js client of ONNX Runtime (runners/node/) against the Python client of the same ONNX Runtime, in the
# onnxruntime-node environment (its Python and the node_modules/ that npm ci put beside it).
test-node-client: envs
	python=$$($(GREENRT) env python onnxruntime-node) && $$python -m pytest tests/node-client

# The C++ client of PyTorch: greenrt-torch-runner built against the torch environment's libtorch into its bin/
# (runners/cpp/build.sh; cmake's build folder beside the environment, so only what changed is rebuilt).
cpp-runner: envs system-packages
	python=$$($(GREENRT) env python torch) && sh runners/cpp/build.sh $$python

# Its tests, in the torch environment: the protocol, and its outputs against the Python client of the same artifact.
test-cpp-client: cpp-runner
	python=$$($(GREENRT) env python torch) && \
	$$python -m pip install -q pytest==9.2.0 pytest-timeout==2.4.0 && \
	$$python -m pytest tests/cpp-client

# The harness's own cost: runner loop against a bare loop per framework, and the sampler's CPU use; each runner
# against the benchmark tool its runtime's wheel ships (bench/vendor_tools.py).
# Start-up per launcher uses the Docker images where they are built (`make cpu-images` / `make images`).
# Each client language's runner against a bare loop in that language (bench/client_overhead.py, 10 to 15 minutes).
bench: envs engine cpp-runner
	mkdir -p bench/out
	$(BIN)/python bench/sampler_cost.py --out bench/out/sampler.json
	torch_python=$$($(GREENRT) env python torch) && ort_python=$$($(GREENRT) env python onnxruntime) && \
	$$torch_python bench/overhead.py --runtime torch/native/cpu --out bench/out/overhead-torch.json && \
	$$torch_python bench/overhead.py --runtime onnxruntime/onnx-from-torch/cpu --artifact-dir bench/out/artifacts \
		--export-only && \
	$$ort_python bench/overhead.py --runtime onnxruntime/onnx-from-torch/cpu --artifact-dir bench/out/artifacts \
		--out bench/out/overhead-ort.json
	node_python=$$($(GREENRT) env python onnxruntime-node) && torch_python=$$($(GREENRT) env python torch) && \
	$(BIN)/python bench/client_overhead.py --ort-python $$node_python --torch-python $$torch_python \
		--artifact-dir bench/out/artifacts --out bench/out/client-overhead.json
	$(BIN)/python bench/vendor_tools.py --out bench/out/vendor-tools.json
	$(BIN)/python bench/startup.py --out bench/out/startup.json
	$(BIN)/python bench/sampler_cost.py --simulated-gpus 8 --out bench/out/sampler-8gpu.json
	$(BIN)/python bench/scale.py --out bench/out/scale.json
	$(BIN)/python bench/adaptive_simulation.py --out bench/out/adaptive.json > /dev/null
	$(BIN)/python bench/time_share.py --out bench/out/time-share.json
	$(BIN)/python bench/write_report.py bench/out BENCHMARKS.md

# How close `greenrt plan`'s time estimate comes to `make sweep` from a fresh clone and with everything built
# (bench/plan_accuracy.py, about 25 minutes on 2 cores, alone on the host): BENCHMARKS.md's section of it.
.PHONY: bench-plan
bench-plan: setup
	mkdir -p bench/out
	$(BIN)/python bench/plan_accuracy.py --out bench/out/plan-accuracy.json
	$(BIN)/python bench/write_report.py bench/out BENCHMARKS.md plan-accuracy

# `make gpu-check` on a real NVIDIA host without Docker or network (bench/gpu_check.py; docs/nvidia-host.md says what it
# checks). What greenrt's host side needs beyond that machine's python3 travels as CPython wheels in .whl/
# (git-ignored), at the versions of this host venv (bench/gpu_check_wheels.py lists them): `make gpu-wheels` here,
# where there is network, then carry .whl/ there and run `make gpu-check` (or `sh bench/gpu-check.sh`), which
# unpacks them with the standard library (bench/gpu_check_unpack.py): that machine's python3 has no pip.
GPU_WHEELS_PYTHON ?= 3.12
GPU_WHEELS_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
GPU_WHEELS_MAX_MIB := 60
gpu-wheels: setup
	pins=$$($(BIN)/python bench/gpu_check_wheels.py) && rm -rf .whl && mkdir -p .whl && \
	$(BIN)/python -m pip download -q --only-binary=:all: --no-deps --python-version $(GPU_WHEELS_PYTHON) \
		--implementation cp $(addprefix --platform ,$(GPU_WHEELS_PLATFORMS)) -d .whl $$pins
	@ls .whl
	@size=$$(du -sm .whl | cut -f1); echo "wheelhouse .whl: $$size MiB (limit $(GPU_WHEELS_MAX_MIB))"; \
		test $$size -lt $(GPU_WHEELS_MAX_MIB)

gpu-check:
	sh bench/gpu-check.sh

clean:
	rm -rf $(VENV) .cache bench/out
