# greenrt: `make sweep` measures, `make test` tests, `make bench` measures the harness itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
GREENRT := $(BIN)/greenrt
PIP_VERSION := 26.3
# Runtime environments the tests need (each built once from images/<env>/requirements.txt, cached in .cache/).
TEST_ENVS := torch onnxruntime

.PHONY: setup envs sweep test test-host test-torch bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==$(PIP_VERSION)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

envs: setup
	$(GREENRT) env build $(TEST_ENVS)

# The default config fits the host: the study's GPU matrix where NVML sees a GPU, else the quick CPU sweep.
# CONFIG=configs/x.toml and OUT=results/x override; PYTHON_RUNTIME=/path/python runs every runtime in that
# interpreter instead of building venvs.
sweep: setup
	$(GREENRT) sweep $(if $(CONFIG),--config $(CONFIG)) $(if $(OUT),--out $(OUT)) \
		$(if $(PYTHON_RUNTIME),--python $(PYTHON_RUNTIME))

test: test-host test-torch

test-host: envs
	$(BIN)/pytest tests/host

# Framework tests run inside the framework's own environment.
test-torch: envs
	torch_python=$$($(GREENRT) env python torch) && \
	$$torch_python -m pip install -q pytest==9.2.0 pytest-timeout==2.4.0 && \
	$$torch_python -m pytest tests/torch

# The harness's own cost: runner loop against a bare loop per framework, and the sampler's CPU use.
bench: envs
	mkdir -p bench/out
	$(BIN)/python bench/sampler_cost.py --out bench/out/sampler.json
	torch_python=$$($(GREENRT) env python torch) && ort_python=$$($(GREENRT) env python onnxruntime) && \
	$$torch_python bench/overhead.py --runtime torch/native/cpu --out bench/out/overhead-torch.json && \
	$$torch_python bench/overhead.py --runtime onnxruntime/onnx-from-torch/cpu --artifact-dir bench/out/artifacts \
		--export-only && \
	$$ort_python bench/overhead.py --runtime onnxruntime/onnx-from-torch/cpu --artifact-dir bench/out/artifacts \
		--out bench/out/overhead-ort.json
	$(BIN)/python bench/write_report.py bench/out BENCHMARKS.md

clean:
	rm -rf $(VENV) .cache bench/out
