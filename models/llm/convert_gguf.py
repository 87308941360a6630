"""A Hugging Face Llama checkpoint folder -> a GGUF file for llama.cpp (target "gguf"), in the llama-cpp environment.

The conversion is llama.cpp's own: convert_hf_to_gguf.py (and its conversion/ package) writes an f32 GGUF from the
checkpoint, then llama.cpp's quantizer (llama_model_quantize, through llama-cpp-python's bindings) makes the
precision asked for from it:

    greenrt precision  fp32   fp16   int8   int4
    llama.cpp ftype    f32    f16    q8_0   q4_K_M

q4_K_M is llama.cpp's mixed K-quant (most matrices Q4_K, some Q6_K); K-quants fall back to other types where a
row is not a multiple of 256, so the tensor types written are counted from the file and recorded, not assumed.

The converter script is not installed by pip: it ships in llama-cpp-python's sdist under vendor/llama.cpp/. It is
taken from the sdist of the installed version (sha256-pinned below), once, into the environment itself
(<venv>/share/greenrt/); the image does that at build time (`python convert_gguf.py fetch-scripts`), a local venv on
its first conversion. The script reads the checkpoint with torch and transformers and refuses a plain BPE
tokenizer.json, so a checkpoint without tokenizer.model is converted from a staged copy (links to its files) with
a small SentencePiece model added (models/llm/sentencepiece_files.py); token ids, which greenrt feeds, are the
model's either way.

What was written is loaded by llama.cpp and one short prompt evaluated (finite logits) before the folder is
renamed into place.  Standard library only at import time: the image runs this file alone to fetch the scripts.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path

# greenrt precision -> llama.cpp's file type name (LLAMA_FTYPE_MOSTLY_<NAME> in llama.h; "f32" is ALL_F32).
SCHEMES: dict[str, str] = {"fp32": "f32", "fp16": "f16", "int8": "q8_0", "int4": "q4_K_M"}
FTYPE_CONSTANTS: dict[str, str] = {"f32": "LLAMA_FTYPE_ALL_F32", "f16": "LLAMA_FTYPE_MOSTLY_F16",
                                   "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
GGUF_NAME = "model.gguf"
# llama-cpp-python's sdists (PyPI), by version: the converter scripts come from the installed version's own sdist.
SDISTS: dict[str, tuple[str, str]] = {
    "0.3.36": ("https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe"
               "7cf3/llama_cpp_python-0.3.36.tar.gz",
               "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"),
}
SCRIPT = "convert_hf_to_gguf.py"
# What is taken from the sdist's vendor/llama.cpp/: the script, its package, the gguf-py it is written against (PyPI's
# gguf 0.19.0 lacks what this script uses, e.g. gguf.LazyChunkedTensor), and llama.cpp's licence.
GGUF_PY = "gguf-py/"
SCRIPT_MEMBERS = (SCRIPT, "conversion/", GGUF_PY, "LICENSE")
CHECKPOINT_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")
VERSIONED = ("llama_cpp_python", "gguf", "torch", "transformers", "sentencepiece", "numpy")
PROBE_TOKENS = [1, 3, 4, 5]  # bos and three ordinary ids: what the load check evaluates


def installed_llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        raise RuntimeError("llama-cpp-python is not installed in this environment") from None


def scripts_dir(version: str) -> Path:
    """Where this environment keeps the converter scripts of llama-cpp-python `version`."""
    return Path(sys.prefix) / "share" / "greenrt" / f"llama.cpp-scripts-{version}"


def fetch_scripts(version: str | None = None) -> Path:
    """The folder holding convert_hf_to_gguf.py for `version` (default: the installed one), taken from its sdist the
    first time (downloaded, sha256-checked, only SCRIPT_MEMBERS extracted, renamed into place when complete)."""
    version = version or installed_llama_cpp_version()
    target = scripts_dir(version)
    if all((target / member.rstrip("/")).exists() for member in SCRIPT_MEMBERS):
        return target
    shutil.rmtree(target, ignore_errors=True)  # an older or partial layout: taken again
    if version not in SDISTS:
        raise RuntimeError(f"no pinned sdist for llama-cpp-python {version} (known: {', '.join(SDISTS)}): add its URL "
                           f"and sha256 to SDISTS in {Path(__file__).name}")
    url, sha256 = SDISTS[version]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        archive = Path(tmp) / "sdist.tar.gz"
        with urllib.request.urlopen(url, timeout=120) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != sha256:
            raise RuntimeError(f"{url}: sha256 {digest}, expected {sha256}")
        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        staged = Path(tmp) / "scripts"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(prefix)
                       and m.name[len(prefix):].startswith(SCRIPT_MEMBERS)]
            for member in members:
                member.name = member.name[len(prefix):]
            tar.extractall(staged, members=members, filter="data")
        if not (staged / SCRIPT).is_file():
            raise RuntimeError(f"{url} has no vendor/llama.cpp/{SCRIPT}")
        os.replace(staged, target)
    return target


def stage_checkpoint(source: Path, staged: Path, config: dict) -> dict:
    """A folder the converter accepts: the checkpoint's files linked, and a tokenizer.model where it has none.
    Returns what was done, for the result's checks."""
    from models.llm.sentencepiece_files import write_sentencepiece_model

    if (source / "tokenizer.model").is_file():
        return {"checkpoint": "as is (it has a tokenizer.model)", "folder": str(source)}
    staged.mkdir()
    for name in [*CHECKPOINT_FILES, *(p.name for p in source.glob("model-*.safetensors"))]:
        if (source / name).is_file():
            (staged / name).symlink_to((source / name).resolve())
    write_sentencepiece_model(staged, int(config["vocab_size"]), unk_id=0, bos_id=int(config.get("bos_token_id", 1)),
                              eos_id=int(config.get("eos_token_id", 2)))
    return {"checkpoint": "staged: its config and weights, and a SentencePiece tokenizer.model written for the "
                          "converter (models/llm/sentencepiece_files.py)"}


def run_converter(scripts: Path, checkpoint: Path, outfile: Path) -> float:
    """convert_hf_to_gguf.py checkpoint -> outfile (f32); its seconds. The script puts the sdist's own gguf-py first
    on its path (the gguf it is written against; greenrt reads GGUF headers with the pip-installed gguf)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(scripts / SCRIPT), str(checkpoint), "--outfile", str(outfile),
                           "--outtype", "f32"], capture_output=True, text=True,
                          env={**{k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"},
                               "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0 or not outfile.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise ConversionError(f"{SCRIPT} failed (exit {proc.returncode}):\n{tail}")
    return time.perf_counter() - t0


def quantize(source: Path, output: Path, scheme: str) -> float:
    """llama.cpp's quantizer: source (f32 GGUF) -> output in `scheme`; its seconds."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPE_CONSTANTS[scheme])
    params.nthread = os.cpu_count() or 1
    t0 = time.perf_counter()
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(output).encode(), ctypes.byref(params))
    if status != 0 or not output.is_file():
        raise ConversionError(f"llama_model_quantize to {scheme} failed (status {status})")
    return time.perf_counter() - t0


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each ggml type the GGUF file holds, read from its header."""
    import gguf

    counts: dict[str, int] = {}
    for tensor in gguf.GGUFReader(str(path)).tensors:
        counts[tensor.tensor_type.name] = counts.get(tensor.tensor_type.name, 0) + 1
    return dict(sorted(counts.items()))


def load_check(path: Path) -> dict:
    """The GGUF loaded by llama.cpp and PROBE_TOKENS evaluated: what it reports of the file."""
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_batch=64, n_threads=1, verbose=False)
    try:
        llm.eval(PROBE_TOKENS)
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
        if not np.isfinite(logits).all():
            raise ConversionError(f"{path.name}: llama.cpp's logits of a short prompt are not finite")
        return {"loads": True, "n_vocab": llm.n_vocab(), "file_type": llm.metadata.get("general.file_type"),
                "architecture": llm.metadata.get("general.architecture"), "probe_tokens": len(PROBE_TOKENS)}
    finally:
        llm.close()


class ConversionError(RuntimeError):
    """The conversion failed: the message says where (converter, quantizer, load check)."""


def export_gguf(request):
    """`python -m runners export` for (framework "llama.cpp", target "gguf"): the checkpoint folder
    request.source_path -> request.output_path/model.gguf at request.precision (ExportResult)."""
    from models.llm.checkpoint import distribution_versions, failed_export, staged_folder
    from models.llm.converter_common import checkpoint_source
    from runners.failures import RunnerError
    from runners.protocol import ExportResult

    started = time.perf_counter()
    try:
        scheme = SCHEMES.get(request.precision)
        if scheme is None:
            raise RunnerError(f"llama.cpp: precision {request.precision!r} has no GGUF type here; valid: "
                              + ", ".join(f"{p} ({s})" for p, s in SCHEMES.items()), kind="unsupported")
        source = checkpoint_source(request.source_path)
        config = json.loads((source / "config.json").read_text())
        scripts = fetch_scripts()
        with tempfile.TemporaryDirectory() as work, staged_folder(request.output_path) as written:
            checks = stage_checkpoint(source, Path(work) / "checkpoint", config)
            checkpoint = Path(checks.pop("folder", Path(work) / "checkpoint"))
            gguf_path = written / GGUF_NAME
            f32 = gguf_path if scheme == "f32" else Path(work) / "model-f32.gguf"
            seconds = {"convert_hf_to_gguf": run_converter(scripts, checkpoint, f32)}
            if scheme != "f32":
                seconds["llama_model_quantize"] = quantize(f32, gguf_path, scheme)
            checks["load"] = load_check(gguf_path)
            quantization = {"scheme": scheme, "tool": "convert_hf_to_gguf.py (f32)"
                            + ("" if scheme == "f32" else f", then llama_model_quantize ({FTYPE_CONSTANTS[scheme]})"),
                            "tensor_types": tensor_types(gguf_path), "bytes": gguf_path.stat().st_size}
            (written / "greenrt-conversion.json").write_text(json.dumps(
                {"precision": request.precision, "quantization": quantization, "source": str(source)}, indent=1))
    except Exception as exc:  # noqa: BLE001 - every failure becomes the result's error, with its kind and words
        return failed_export(request, exc)
    return ExportResult(framework=request.framework, model=request.model, status="ok",
                        output_path=request.output_path, target=request.target, precision=request.precision,
                        exporter="convert_hf_to_gguf.py", versions=distribution_versions(*VERSIONED),
                        seconds=time.perf_counter() - started, quantization={**quantization, "seconds": seconds},
                        checks=checks)


def main(argv: list[str]) -> int:
    """`python convert_gguf.py fetch-scripts [VERSION]`: what the image runs at build time."""
    if not argv or argv[0] != "fetch-scripts" or len(argv) > 2:
        print("usage: convert_gguf.py fetch-scripts [LLAMA_CPP_PYTHON_VERSION]", file=sys.stderr)
        return 2
    try:
        where = fetch_scripts(argv[1] if len(argv) == 2 else None)
    except (RuntimeError, OSError) as exc:
        print(f"convert_gguf: {exc}", file=sys.stderr)
        return 1
    print(f"convert_gguf: {SCRIPT} in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
