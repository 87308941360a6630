"""A generative cell's preparation (orchestrator/execution/preparation.py over llm_artifacts.py): the checkpoint made
once in the torch environment, each runtime's conversion made in the runtime's own environment from it and cached by
checkpoint digest, target, precision and converter versions, `Missing` with the converter's reason failing only the
runs that need that conversion, and the requests: the converted folder, the prompt and new tokens, and the reference
run (transformers, CPU, fp32) on the checkpoint. A launcher stand-in plays the environments."""
from __future__ import annotations

import json
from pathlib import Path

from orchestrator.execution.artifacts import ArtifactCache
from orchestrator.execution.launchers.base import LaunchOutcome
from orchestrator.execution.llm_artifacts import GenerativeArtifact
from orchestrator.execution.preparation import Missing, Preparation, build_request, reference_path
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import Cell, PlannedRun
from runners.protocol import ExportRequest, ExportResult, RunError, read_json, to_dict, write_json_atomic

CT2, ORT, TORCH = "ctranslate2/ct2-from-hf/cpu", "onnxruntime-genai/genai-from-hf/cpu", "torch/transformers/cpu"


class Environments:
    """Each environment as a launcher sees it: `versions` prints packages, `export` writes the requested folder
    (or fails for the targets in `failing`), `run` writes the reference's outputs file."""

    def __init__(self, failing: tuple[str, ...] = (), versions: dict[str, str] | None = None) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.failing = failing
        self.versions = versions or {"numpy": "2"}

    def prepare(self, environment: str) -> str:
        return "ready"

    def launch(self, environment, argv, *, workdir, timeout_s, env_vars, log_path, readonly=(), **_):
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if argv == ["versions"]:
            log_path.write_text("noise\n" + json.dumps({**self.versions, "env": environment}))
            self.calls.append((environment, "versions", {}))
            return LaunchOutcome(0, False, 0.1, log_path, "")
        request = json.loads(Path(argv[2]).read_text())
        self.calls.append((environment, argv[0], request))
        if argv[0] == "export":
            output = Path(request["output_path"])
            ok = request["target"] not in self.failing
            if ok:
                output.mkdir(parents=True)
                (output / "weights.bin").write_bytes(f"{request['target']}:{request['precision']}".encode())
            result = ExportResult(framework=request["framework"], model=request["model"], status="ok" if ok else "error",
                                  output_path=str(output), target=request["target"], precision=request["precision"],
                                  error=None if ok else RunError("export", f"{request['target']} converter: no such op"),
                                  quantization={"scheme": "int8"} if request["precision"] == "int8" else {})
            write_json_atomic(Path(request["result_path"]), to_dict(result))
            log_path.write_text("converted" if ok else "Traceback: no such op")
            return LaunchOutcome(0 if ok else 1, False, 0.1, log_path, "" if ok else "Traceback: no such op")
        Path(request["outputs_path"]).write_bytes(b"npz")  # the reference run
        return LaunchOutcome(0, False, 0.1, log_path, "")

    def exports(self, target: str | None = None) -> list[dict]:
        return [r for _, c, r in self.calls if c == "export" and (target is None or r["target"] == target)]


def sweep_config(**extra) -> object:
    return parse_config({"name": "t", "models": ["llama-tiny"], "batch_sizes": [1], "runtimes": [TORCH, CT2, ORT],
                         "precisions": ["fp32", "int8"], "seed": 3,
                         "model_options": {"llama-tiny": {"prompt_tokens": 16, "new_tokens": 4}}, **extra})


def planned(runtime: str, precision: str = "fp32") -> PlannedRun:
    return PlannedRun(f"r-{runtime.split('/')[0]}-{precision}", 0, 0, Cell("llama-tiny", 1, runtime, precision))


def preparation(tmp_path: Path, envs: Environments, config=None) -> Preparation:
    return Preparation(config or sweep_config(), envs, ArtifactCache(envs, root=tmp_path / "cache" / "artifacts"))


def test_the_checkpoint_is_made_once_in_torch_and_each_conversion_in_its_runtime_environment_from_it(tmp_path):
    envs = Environments()
    prep = preparation(tmp_path, envs)
    checkpoint = prep.artifact_for(planned(TORCH))
    int8 = prep.artifact_for(planned(CT2, "int8"))
    fp32 = prep.artifact_for(planned(CT2, "fp32"))

    assert isinstance(checkpoint, GenerativeArtifact) and isinstance(int8, GenerativeArtifact)
    [made] = envs.exports("hf-checkpoint")
    assert [e for e, c, _ in envs.calls if c == "export"][0] == "torch"
    assert (made["framework"], made["source_path"], made["weights"]["seed"]) == ("torch", None, 3)
    conversions = envs.exports("ct2")
    assert [(r["framework"], r["precision"]) for r in conversions] == [("ctranslate2", "int8"), ("ctranslate2", "fp32")]
    assert {e for e, c, r in envs.calls if c == "export" and r["target"] == "ct2"} == {"ctranslate2"}
    assert all(r["source_path"] == checkpoint.path for r in conversions)
    assert conversions[0]["model_options"] == {"prompt_tokens": 16, "new_tokens": 4}
    assert int8.path != fp32.path and Path(int8.path).is_dir() and int8.source_key == checkpoint.source_key
    assert (int8.precision, int8.quantization, int8.source_path) == ("int8", {"scheme": "int8"}, checkpoint.path)
    assert checkpoint.source_key == json.loads((Path(checkpoint.path).parent / "digest.json").read_text())["sha256"]


def test_conversions_are_cached_across_sweeps_and_keyed_by_precision_and_converter_versions(tmp_path):
    envs = Environments()
    first = preparation(tmp_path, envs).artifact_for(planned(CT2, "int8"))
    again = preparation(tmp_path, envs).artifact_for(planned(CT2, "int8"))  # another sweep, same cache
    assert again.path == first.path and len(envs.exports()) == 2  # the checkpoint and one conversion, once each

    upgraded = Environments(versions={"numpy": "3"})  # a new converter (and torch) version: new folders
    newer = preparation(tmp_path, upgraded).artifact_for(planned(CT2, "int8"))
    assert newer.path != first.path and len(upgraded.exports()) == 2


def test_a_failed_conversion_is_missing_with_the_converters_reason_for_the_runs_needing_it_only(tmp_path):
    envs = Environments(failing=("ort-genai",))
    prep = preparation(tmp_path, envs)
    prep.prepare([planned(TORCH), planned(ORT), planned(CT2, "int8"), planned(ORT)])

    missing = prep.artifact_for(planned(ORT))
    assert isinstance(missing, Missing) and "no such op" in missing.reason and "ort-genai" in missing.reason
    assert "Traceback" in missing.log_tail
    assert len(envs.exports("ort-genai")) == 1  # asked once, remembered for the other runs
    assert isinstance(prep.artifact_for(planned(CT2, "int8")), GenerativeArtifact)
    assert isinstance(prep.artifact_for(planned(TORCH)), GenerativeArtifact)
    # The converted runs' reference: transformers on the CPU at fp32, in the torch environment, on the checkpoint.
    references = [(e, r) for e, c, r in envs.calls if c == "run"]
    assert len(references) == 1 and references[0][0] == "torch"
    assert references[0][1]["runtime"] == TORCH and references[0][1]["precision"] == "fp32"
    assert references[0][1]["artifact_path"] == prep.artifact_for(planned(TORCH)).path


def test_the_requests_carry_the_converted_folder_and_the_prompt_and_new_tokens(tmp_path):
    config = sweep_config()
    prep = preparation(tmp_path, Environments(), config)
    run = planned(CT2, "int8")
    artifact = prep.artifact_for(run)
    measured = build_request(config, run, tmp_path / "runs" / run.run_id, artifact)
    assert measured.artifact_path == artifact.path and measured.precision == "int8"
    assert measured.model_options == {"prompt_tokens": 16, "new_tokens": 4}
    assert measured.outputs_path is not None  # compared with the reference

    checkpoint = prep.artifact_for(planned(TORCH))
    folder = tmp_path / "refs"
    reference = build_request(config, run, folder, checkpoint, reference_outputs=reference_path(folder, 1, 3))
    assert (reference.runtime, reference.precision, reference.artifact_path) == (TORCH, "fp32", checkpoint.path)
    assert reference.model_options == measured.model_options and reference.input_seed == measured.input_seed
    # The reference runtime itself is not compared with anything.
    assert build_request(config, planned(TORCH), tmp_path / "runs" / "t", checkpoint).outputs_path is None


def test_a_users_checkpoint_folder_is_used_as_is_and_keys_its_conversions_by_its_digest(tmp_path):
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "num_hidden_layers": 2,
        "vocab_size": 1000, "max_position_embeddings": 2048, "intermediate_size": 512}))
    (folder / "model.safetensors").write_bytes(b"weights")
    config = parse_config({"name": "u", "user_models": {"mine": {"hf_checkpoint": str(folder)}}, "models": ["mine"],
                           "batch_sizes": [1], "runtimes": [TORCH, CT2]})
    envs = Environments()
    prep = preparation(tmp_path, envs, config)
    run = PlannedRun("r", 0, 0, Cell("mine", 1, CT2, "fp32"))
    converted = prep.artifact_for(run)
    assert prep.artifact_for(PlannedRun("t", 0, 0, Cell("mine", 1, TORCH, "fp32"))).path == str(folder.resolve())
    # No checkpoint made: the user's folder is the checkpoint transformers loads; its converters read a view of it
    # made in the torch environment (links, tokenizer files where it has none), keyed by the folder's digest.
    view, conversion = envs.exports()
    assert (view["framework"], view["target"], view["source_path"]) == ("torch", "hf-checkpoint-view",
                                                                         str(folder.resolve()))
    assert [e for e, c, r in envs.calls if c == "export"] == ["torch", "ctranslate2"]
    assert conversion["source_path"] == view["output_path"].replace(".partial", "")
    assert conversion["user_model"]["name"] == "mine" and converted.source_key == config.user_model("mine").sha256

    (folder / "model.safetensors").write_bytes(b"other weights")  # another checkpoint in the same folder
    changed = parse_config({**config.model_dump(mode="json"), "user_models": {"mine": {"hf_checkpoint": str(folder)}}})
    assert preparation(tmp_path, envs, changed).artifact_for(run).path != converted.path


def test_export_requests_read_back_as_the_protocol_has_them(tmp_path):
    envs = Environments()
    preparation(tmp_path, envs).artifact_for(planned(CT2, "int8"))
    for request in envs.exports():
        path = tmp_path / "r.json"
        path.write_text(json.dumps(request))
        assert read_json(ExportRequest, path).target in ("hf-checkpoint", "ct2")
