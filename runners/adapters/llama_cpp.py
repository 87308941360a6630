"""llama.cpp/gguf-from-hf/{cpu,cuda}: llama.cpp through llama-cpp-python on the GGUF file greenrt converted
(models/llm/convert_gguf.py; artifact_path is its folder, holding model.gguf).

One iteration is one greedy generation of exactly N new tokens from the P prompt ids, end-of-sequence ignored:
`Llama.reset()` (the high-level API otherwise keeps the KV cache of a matching prefix, so a repeated prompt would
be a cache hit and its "prefill" free), `Llama.eval(prompt)`, then N - 1 times the argmax of the last logits fed
back with `eval([token])`, end-of-sequence masked at every step as the reference masks it. The argmax is taken from llama.cpp's logits of the last position
(llama_get_logits_ith(ctx, -1)); `Llama.generate` is not used: it stops at nothing and samples through a sampler
chain built per call. first_token_ns is stamped after the prompt's eval and the first argmax: the first new token
is then known. logits_all stays off (it would compute the vocabulary projection for every prompt position, a cost
no deployment pays), so the prefill logits are those of the last prompt position, read the same way.

Batch: the high-level API holds one sequence, so batch_size must be 1 (batch_refusal: the runtime's row in
runners/runtimes_table.py, Family.limits, which the planner reads before a run is planned); a batch would need the
low-level llama_batch API with one sequence id per prompt, which this adapter does not implement.

Settings are llama-cpp-python's defaults except what the request fixes: the threads (n_threads for decode and
n_threads_batch for the prompt, both request.threads), n_ctx = P + N (the KV cache for exactly this workload),
n_batch >= P (the prompt in one llama_decode), and on cuda every layer offloaded (n_gpu_layers = -1). What the
context really uses is recorded from llama.cpp itself (llama_n_ctx, llama_n_batch, the system info line).
"""
from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from runners.adapters.contract import import_framework
from runners.adapters.generative import GenerativeAdapter
from runners.failures import BadRequestError, RunnerError, UnsupportedError
from runners.hostinfo import cpu_device
from runners.protocol import RunRequest
from runners.runtimes_table import find

GGUF_NAME = "model.gguf"  # models/llm/convert_gguf.py writes this name into the artifact folder
# Provider options this adapter reads (anything else is refused before loading).
PROVIDER_OPTIONS = {"flash_attn": bool}


def batch_refusal(batch_size: int) -> str | None:
    """Why llama.cpp/gguf-from-hf cannot run `batch_size` sequences at once (None when it can). Pure, standard
    library: the rule is the runtime's row (runtimes_table Family.limits), which the planner reads too."""
    return find("llama.cpp", "gguf-from-hf").batch_refusal(batch_size)


def provider_option_refusal(options: dict[str, Any]) -> str | None:
    """Why these provider options cannot configure llama.cpp here (one line), or None. Pure."""
    for key, value in options.items():
        if key not in PROVIDER_OPTIONS:
            return (f"llama.cpp: unknown provider option {key!r}; valid: "
                    + ", ".join(f"{k} ({t.__name__})" for k, t in PROVIDER_OPTIONS.items()))
        if type(value) is not PROVIDER_OPTIONS[key]:
            return f"llama.cpp: provider option {key} = {value!r} is not a {PROVIDER_OPTIONS[key].__name__}"
    return None


def gguf_file(artifact_path: str | None) -> Path:
    """The GGUF file of an artifact folder (or the file itself); "load" when absent."""
    if not artifact_path:
        raise BadRequestError("llama.cpp needs artifact_path (the converted GGUF folder)")
    path = Path(artifact_path)
    path = path / GGUF_NAME if path.is_dir() else path
    if not path.is_file():
        raise RunnerError(f"artifact {path} does not exist", kind="load")
    return path


def converted_scheme(gguf: Path) -> str | None:
    """The llama.cpp type the converter wrote this file in (its greenrt-conversion.json), None where unrecorded."""
    record = gguf.parent / "greenrt-conversion.json"
    if not record.is_file():
        return None
    return json.loads(record.read_text()).get("quantization", {}).get("scheme")


class LlamaCppAdapter(GenerativeAdapter):
    def __init__(self) -> None:
        self.llama_cpp = None
        self.llm = None
        self.facts: dict[str, Any] | None = None
        self.n_vocab = 0
        self.eos = -1

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        refusal = batch_refusal(request.batch_size)
        if refusal:
            raise UnsupportedError(refusal)
        refusal = provider_option_refusal(request.provider_options)
        if refusal:
            raise BadRequestError(refusal)

    def load(self, request: RunRequest) -> None:
        llama_cpp = self.llama_cpp = import_framework("llama_cpp")
        path = gguf_file(request.artifact_path)
        expected = find(request.framework, request.model_format).schemes.get(request.precision)
        written = converted_scheme(path)
        if written is not None and written != expected:
            raise RunnerError(f"artifact {path} was converted to {written}, not {expected} (precision "
                              f"{request.precision})", kind="load")
        gpu = request.provider == "cuda"
        if gpu and not llama_cpp.llama_supports_gpu_offload():
            raise UnsupportedError("this llama-cpp-python build has no GPU backend (llama_supports_gpu_offload() "
                                   "is false): the cuda runtime needs the image's GGML_CUDA build")
        prompt, new = self.workload.prompt_tokens, self.workload.new_tokens
        settings = {"n_ctx": prompt + new, "n_batch": max(512, prompt), "n_gpu_layers": -1 if gpu else 0,
                    "flash_attn": request.provider_options.get("flash_attn", False), "logits_all": False,
                    "verbose": False}
        if request.threads is not None:
            settings.update(n_threads=request.threads, n_threads_batch=request.threads)
        t0 = time.monotonic_ns()
        self.llm = llama_cpp.Llama(model_path=str(path), **settings)
        t1 = time.monotonic_ns()
        self.n_vocab = self.llm.n_vocab()
        self.eos = self.llm.token_eos()
        self.provider = request.provider
        self.n_threads = self.llm.n_threads
        ctx = self.llm.ctx
        metadata_ = self.llm.metadata
        self.facts = {
            "gguf": path.name,
            "file_type": metadata_.get("general.file_type"),
            "architecture": metadata_.get("general.architecture"),
            "load_model_seconds": (t1 - t0) / 1e9,
            "requested": {k: v for k, v in settings.items() if k != "verbose"},
            "context": {"n_ctx": llama_cpp.llama_n_ctx(ctx), "n_batch": llama_cpp.llama_n_batch(ctx),
                        "n_ubatch": llama_cpp.llama_n_ubatch(ctx), "n_threads": self.llm.n_threads,
                        "n_threads_batch": self.llm.n_threads_batch},
            "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload()),
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            # What greenrt turned off or fixed so that every iteration does the whole work (docs/generative.md).
            "scheme": written or expected,
            "cache_defeated": "Llama.reset() before every generation: the KV cache of the previous (identical) "
                              "prompt is never reused",
            "sampling": "greedy: argmax of llama.cpp's last-position logits with end-of-sequence masked, exactly N "
                        "tokens",
            "batch": "one sequence per generation (batch 1)",
        }

    def prepare(self, inputs: dict[str, Any]) -> Any:
        ids = inputs["input_ids"]
        return [int(t) for t in ids[0]]

    def _last_logits(self):
        import numpy as np

        pointer = self.llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _next_token(self) -> int:
        """The greedy choice among every token but end-of-sequence (masked, as the reference masks it until N
        tokens are made): llama.cpp's logits buffer is overwritten by the next decode, so it is masked in place."""
        import numpy as np

        logits = self._last_logits()
        logits[self.eos] = -np.inf
        return int(np.argmax(logits))

    def run(self, prepared: Any) -> Any:
        import numpy as np

        llm = self.llm
        llm.reset()
        llm.eval(prepared)
        token = self._next_token()
        self.first_token_ns = time.monotonic_ns()
        tokens = [token]
        for _ in range(self.workload.new_tokens - 1):
            llm.eval([token])
            token = self._next_token()
            tokens.append(token)
        return np.asarray([tokens], dtype=np.int64)

    def prefill_logits(self, prepared: Any):
        import numpy as np

        self.llm.reset()
        self.llm.eval(prepared)
        return np.array(self._last_logits(), dtype=np.float32, copy=True)[None, :]

    def to_numpy(self, outputs: Any) -> dict[str, Any]:
        return {"tokens": outputs}

    def generation_facts(self) -> dict[str, Any]:
        return {key: self.facts[key] for key in ("scheme", "cache_defeated", "sampling", "batch")} if self.facts else {}

    def versions(self) -> dict[str, str]:
        out = {}
        if self.llama_cpp is not None:
            out["llama_cpp_python"] = self.llama_cpp.__version__
        try:
            out["llama_cpp_python_package"] = metadata.version("llama_cpp_python")
        except metadata.PackageNotFoundError:
            pass
        return out

    def devices(self) -> list[str]:
        if not self.provider:
            return []
        return ["cuda"] if self.provider == "cuda" else [cpu_device()]

    def runtime_facts(self) -> dict[str, Any] | None:
        return self.facts
