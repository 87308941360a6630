"""The exporter ("torch", "hf-checkpoint-view"): a user's own checkpoint folder as the generative runtimes' converters
need it, without changing or copying the user's weights.

Every file of the folder is linked (a symbolic link to the user's file; config.json is copied, with RoPE's base also
written at the top level as checkpoint.py does for converters written against older configs), and where the folder
has no tokenizer (tokenizer.json or tokenizer.model) the tokenizer files are generated from the vocabulary size
(models/llm/tokenizer_files.py): the converters insist on them, while every runtime is fed token ids, so no
tokenizer's vocabulary matters. transformers' generate loads the user's folder itself; only conversions read this one.
Runs in the torch environment (tokenizers, transformers).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from models.llm.checkpoint import _legacy_rope_theta, distribution_versions, failed_export
from runners.failures import RunnerError
from runners.protocol import ExportRequest, ExportResult

EXPORTER = "links to the user's checkpoint files, config.json copied, tokenizer files generated where absent"
TOKENIZERS = ("tokenizer.json", "tokenizer.model")


def export_checkpoint_view(request: ExportRequest) -> ExportResult:
    """Write request.output_path: the view of the checkpoint folder request.source_path."""
    t0 = time.monotonic()
    try:
        if not request.source_path or not Path(request.source_path, "config.json").is_file():
            raise RunnerError(f"source_path {request.source_path!r} is no checkpoint folder with a config.json",
                              kind="bad-request")
        source = Path(request.source_path).resolve()
        out = Path(request.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        try:
            linked = []
            for file in sorted(p for p in source.iterdir() if p.is_file()):
                if file.name == "config.json":
                    shutil.copyfile(file, stage / file.name)
                else:
                    (stage / file.name).symlink_to(file)
                    linked.append(file.name)
            _legacy_rope_theta(stage / "config.json")
            generated = []
            if not any((source / name).exists() for name in TOKENIZERS):
                from models.llm.tokenizer_files import write_all

                generated = write_all(stage, json.loads((stage / "config.json").read_text()))
            stage.chmod(0o755)  # a container's runner runs as another uid; the links' targets are the user's
            for name in ["config.json", *generated]:
                (stage / name).chmod(0o644)
            os.replace(stage, out)
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
        return ExportResult(framework=request.framework, model=request.model, status="ok",
                            output_path=request.output_path, exporter=EXPORTER, target=request.target,
                            versions=distribution_versions("transformers", "tokenizers"),
                            seconds=time.monotonic() - t0, precision="fp32",
                            checks={"source": str(source), "linked": linked, "tokenizer_files": generated})
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result with its kind
        return failed_export(request, exc)
