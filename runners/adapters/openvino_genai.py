"""openvino-genai/ir-from-hf/cpu: OpenVINO GenAI's LLMPipeline on the CPU plugin, on the OpenVINO IR greenrt exported
with optimum-intel (models/llm/convert_openvino.py; artifact_path is its folder, openvino_model.xml and its config).

One iteration is one `LLMPipeline.generate` of the B prompts (TokenizedInputs: ids and an all-ones attention mask;
no tokenizer is needed, nor loaded) with greedy decoding and exactly N new tokens: max_new_tokens = min_new_tokens
= N and ignore_eos. Three of OpenVINO's defaults would distort the measurement (FINDINGS), and are set otherwise:
- prefix caching (on by default in the paged-attention pipeline) would make the repeated prompt a cache hit: the
  SchedulerConfig asks enable_prefix_caching = False;
- the CPU plugin's KV cache is u8 by default, and on a bf16 CPU its inference precision bf16: an fp32 cell asks
  KV_CACHE_PRECISION = f32 and INFERENCE_PRECISION_HINT = f32 (int8/int4 cells keep the plugin's defaults, which are
  part of how OpenVINO ships weight-compressed models; the device's defaults are recorded either way);
- PerfMetrics.get_tpot() divides by the batch size: greenrt takes no per-token figure from OpenVINO, its TPOT is
  the loop's (decode time over N).

first_token_ns: at batch 1 a streamer (StreamerBase.write, called with the first new token) stamps
time.monotonic_ns(); at batch > 1 GenAI refuses a streamer, so it is the pipeline's own time point of its first
generation step (PerfMetrics raw m_new_token_times[0], milliseconds on the steady clock, which is CLOCK_MONOTONIC
like time.monotonic_ns(): checked here against time.monotonic_ns() around generate). runtime_facts says which, and
at batch 1 how far the streamer's stamp lagged the pipeline's own time point.

Prefill logits: LLMPipeline returns tokens only, so they come from the same IR compiled by openvino.Core with the
same properties, one forward of the prompt with a fresh state (outside the window).
"""
from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from runners.adapters.contract import import_framework
from runners.adapters.generative import GenerativeAdapter
from runners.failures import RunnerError, UnsupportedError
from runners.hostinfo import cpu_device
from runners.protocol import RunRequest

DEVICE = "CPU"
MODEL_XML = "openvino_model.xml"
# Properties an fp32 cell sets (see the module's docstring); other precisions keep the plugin's defaults.
FP32_PROPERTIES = {"KV_CACHE_PRECISION": "f32", "INFERENCE_PRECISION_HINT": "f32"}
DEVICE_DEFAULTS = ("KV_CACHE_PRECISION", "INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT")


def pipeline_properties(precision: str, threads: int | None) -> dict[str, Any]:
    """The CPU plugin properties LLMPipeline is given for this cell (pure)."""
    properties: dict[str, Any] = dict(FP32_PROPERTIES) if precision == "fp32" else {}
    if threads is not None:
        properties["INFERENCE_NUM_THREADS"] = threads
    return properties


def pipeline_first_token_ns(perf_metrics: Any) -> int | None:
    """When the pipeline made the first new token of every sequence, as time.monotonic_ns(): its raw metrics'
    m_new_token_times (one steady-clock time point per generation step, in milliseconds, the batch's step
    together); the steady clock is CLOCK_MONOTONIC, time.monotonic_ns()'s clock. None where it recorded none."""
    times = list(perf_metrics.raw_metrics.m_new_token_times)
    return int(round(float(times[0]) * 1e6)) if times else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    name = getattr(value, "get_type_name", None)
    if callable(name):
        return name()
    return getattr(value, "name", None) or str(value)


class OpenvinoGenaiAdapter(GenerativeAdapter):
    def __init__(self) -> None:
        self.ov = None
        self.genai = None
        self.pipe = None
        self.config = None
        self.properties: dict[str, Any] = {}
        self.folder: Path | None = None
        self.facts: dict[str, Any] | None = None
        self._streamer = None
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._last_metrics = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        if request.provider_options:
            raise UnsupportedError(f"openvino-genai takes no provider options (have "
                                   f"{', '.join(sorted(request.provider_options))}); threads come from `threads`")

    def load(self, request: RunRequest) -> None:
        ov = self.ov = import_framework("openvino")
        genai = self.genai = import_framework("openvino_genai")
        folder = self.folder = Path(request.artifact_path)
        if not (folder / MODEL_XML).is_file():
            raise RunnerError(f"artifact {folder} holds no {MODEL_XML} (the IR models/llm/convert_openvino.py writes)",
                              kind="load")
        conversion = folder / "greenrt-conversion.json"
        converted = json.loads(conversion.read_text()) if conversion.is_file() else None
        if converted is not None and converted.get("precision") != request.precision:
            raise RunnerError(f"artifact {folder} was converted at {converted.get('precision')}, not "
                              f"{request.precision}", kind="load")
        core = ov.Core()
        defaults = {}
        for key in DEVICE_DEFAULTS:
            try:
                defaults[key.lower()] = _jsonable(core.get_property(DEVICE, key))
            except Exception as exc:  # noqa: BLE001 - a property this version lacks is said, never fatal
                defaults[key.lower()] = {"unavailable": f"{type(exc).__name__}"}
        self.properties = pipeline_properties(request.precision, request.threads)
        scheduler = genai.SchedulerConfig()
        scheduler.enable_prefix_caching = False
        t0 = time.monotonic_ns()
        self.pipe = genai.LLMPipeline(str(folder), DEVICE, scheduler_config=scheduler, **self.properties)
        t1 = time.monotonic_ns()
        workload = self.workload
        config = self.pipe.get_generation_config()
        config.max_new_tokens = workload.new_tokens
        config.min_new_tokens = workload.new_tokens
        config.ignore_eos = True
        config.do_sample = False
        config.num_beams = 1
        config.num_return_sequences = 1
        self.config = config
        self._streamer = _first_token_streamer(genai)() if workload.batch_size == 1 else None
        self.provider = request.provider
        self.n_threads = request.threads
        self.facts = {
            "device": DEVICE,
            "pipeline_seconds": (t1 - t0) / 1e9,  # LLMPipeline: read and compile the IR
            "requested": dict(self.properties),
            "device_defaults": defaults,
            "scheduler": {"enable_prefix_caching": scheduler.enable_prefix_caching,
                          "cache_size": getattr(scheduler, "cache_size", None)},
            "generation_config": {"max_new_tokens": config.max_new_tokens, "min_new_tokens": config.min_new_tokens,
                                  "ignore_eos": config.ignore_eos, "do_sample": config.do_sample},
            "first_token_source": ("a streamer's first write (time.monotonic_ns)" if self._streamer is not None else
                                   "the pipeline's own first-step time point (PerfMetrics raw m_new_token_times[0], "
                                   "steady clock = CLOCK_MONOTONIC): batch > 1 refuses a streamer"),
            "scheme": converted["quantization"] if converted else None,
        }

    def generation_facts(self) -> dict[str, Any]:
        if not self.facts:
            return {}
        lag = None
        metrics = self._last_metrics
        if self._streamer is not None and metrics is not None and self._streamer.first_ns is not None:
            made = pipeline_first_token_ns(metrics)
            lag = self._streamer.first_ns - made if made is not None else None
        return {"scheme": (self.facts["scheme"] or {}).get("scheme"),
                # batch 1: how much later the streamer's stamp came than the pipeline's own time point (last run)
                "streamer_lag_ns": lag,
                "cache_defeated": "SchedulerConfig.enable_prefix_caching = False (the paged-attention pipeline's "
                                  "prefix cache would serve the repeated prompt)",
                "kv_cache_precision": self.properties.get("KV_CACHE_PRECISION",
                                                          self.facts["device_defaults"].get("kv_cache_precision")),
                "inference_precision": self.properties.get("INFERENCE_PRECISION_HINT",
                                                           self.facts["device_defaults"].get(
                                                               "inference_precision_hint")),
                "first_token_source": self.facts["first_token_source"]}

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        ov = self.ov
        ids = np.ascontiguousarray(inputs["input_ids"], dtype=np.int64)
        mask = np.ones_like(ids)
        self._arrays = (ids, mask)  # the tensors share these arrays' memory: kept alive here
        return self.genai.TokenizedInputs(ov.Tensor(ids, shared_memory=True), ov.Tensor(mask, shared_memory=True))

    def run(self, prepared: Any) -> Any:
        streamer = self._streamer
        if streamer is not None:
            streamer.first_ns = None
            result = self.pipe.generate(prepared, self.config, streamer)
            self.first_token_ns = streamer.first_ns
        else:
            result = self.pipe.generate(prepared, self.config)
            self.first_token_ns = pipeline_first_token_ns(result.perf_metrics)
        self._last_metrics = result.perf_metrics
        tokens = result.tokens
        lengths = {len(sequence) for sequence in tokens}
        if len(lengths) != 1:
            raise RunnerError(f"generate made sequences of different lengths {sorted(lengths)}", kind="runtime")
        return np.asarray(tokens, dtype=np.int64)

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        return {"tokens": outputs}

    def prefill_logits(self, prepared: Any) -> np.ndarray:
        """One forward of the prompt through the same IR, compiled by openvino.Core with the pipeline's properties
        (minus nothing: KV_CACHE_PRECISION applies to the stateful model's cache as well)."""
        ov = self.ov
        ids, mask = self._arrays
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(self.folder / MODEL_XML)), DEVICE, self.properties)
        request = compiled.create_infer_request()
        request.reset_state()
        batch, length = ids.shape
        feeds = {"input_ids": ids, "attention_mask": mask,
                 "position_ids": np.broadcast_to(np.arange(length, dtype=np.int64), (batch, length)).copy(),
                 "beam_idx": np.arange(batch, dtype=np.int32)}
        names = {name for port in compiled.inputs for name in port.get_names()}
        missing = sorted(names - set(feeds))
        if missing:
            raise RunnerError(f"the IR wants inputs {missing} that a prompt's forward does not provide", kind="runtime")
        request.infer({name: array for name, array in feeds.items() if name in names})
        logits = request.get_tensor("logits").data
        return np.array(logits[:, -1, :], dtype=np.float32, copy=True)

    def versions(self) -> dict[str, str]:
        out = {}
        if self.ov is not None:
            out["openvino"] = self.ov.get_version()
        for dist in ("openvino", "openvino-genai", "openvino-tokenizers"):
            try:
                out[f"{dist}_package"] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return out

    def devices(self) -> list[str]:
        return [cpu_device()] if self.provider else []

    def runtime_facts(self) -> dict[str, Any] | None:
        return self.facts


def _first_token_streamer(genai: Any) -> type:
    """A StreamerBase that stamps time.monotonic_ns() at its first write (the first new token) and never stops
    the generation."""

    class FirstTokenStreamer(genai.StreamerBase):
        def __init__(self) -> None:
            super().__init__()
            self.first_ns: int | None = None

        def write(self, token: Any) -> Any:
            if self.first_ns is None:
                self.first_ns = time.monotonic_ns()
            return genai.StreamingStatus.RUNNING

        def end(self) -> None:
            pass

    return FirstTokenStreamer
