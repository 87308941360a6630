"""The generative configs and `greenrt run --model DIR` through the real CLI: each shipped llm config plans without
error (every cell planned or skipped with its reason, llama.cpp's batches above 1 among the skipped), a checkpoint
folder greenrt does not measure is refused in one line before anything is written, and a Llama checkpoint folder made
here with transformers (outside greenrt) is measured on transformers and every other generative CPU runtime this
checkout has, printing TTFT, TPOT, tokens/s and the fidelity verdict per runtime.

The last test needs the torch environment (built by `make test`) and the environments of the generative runtimes.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from orchestrator import paths
from testkit.powercap import make_powercap_tree
from testkit.sweep_helpers import GREENRT, greenrt, steady_draw

pytestmark = pytest.mark.process

LLM_CONFIGS = ("llm-cpu", "llm-quick", "llm-gpu")

MAKE_CHECKPOINT = """
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
config = LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=1024, max_position_embeddings=256, tie_word_embeddings=True)
LlamaForCausalLM(config).eval().save_pretrained(sys.argv[1], safe_serialization=True)
"""


@pytest.mark.parametrize("name", LLM_CONFIGS)
def test_the_shipped_llm_configs_plan_every_cell_or_say_why_not(name):
    done = subprocess.run([GREENRT, "plan", "--config", str(paths.PROJECT_ROOT / "configs" / f"{name}.toml"),
                           "--launcher", "local", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["left_out"] is None
    cells = {(r["cell"]["runtime"], r["cell"]["batch_size"], r["cell"]["precision"]) for r in plan["runs"]}
    skipped = {(s["cell"]["runtime"], s["cell"]["batch_size"], s["cell"]["precision"]): s["reason"]
               for s in plan["skipped"]}
    config = plan["config"]
    expected = len(config["runtimes"]) * len(config["batch_sizes"]) * len(config["precisions"])
    assert len(cells) + len(skipped) == expected and all(skipped.values())
    assert not any(runtime.startswith("llama.cpp/") and batch > 1 for runtime, batch, _ in cells)


def test_a_folder_that_is_not_a_llama_checkpoint_is_refused_in_one_line_before_anything_is_written(tmp_path):
    folder = tmp_path / "gpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (folder / "model.safetensors").write_bytes(b"w")
    out = tmp_path / "results"
    done = greenrt("run", "--model", str(folder), "--out", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "model_type 'gpt2' is not a Llama-style decoder" in lines[0], done.stderr
    assert not out.exists()


def env_python(env: str) -> str:
    done = subprocess.run([GREENRT, "env", "python", env], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_run_model_dir_measures_a_checkpoint_made_outside_greenrt_on_every_generative_cpu_runtime(tmp_path):
    folder = tmp_path / "my-llama"
    made = subprocess.run([env_python("torch"), "-c", MAKE_CHECKPOINT, str(folder)], capture_output=True, text=True,
                          timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    root = tmp_path / "powercap"
    with steady_draw(make_powercap_tree(root, packages=1, dram=True)):
        done = greenrt("run", "--model", str(folder), "--prompt-tokens", "16", "--new-tokens", "8",
                       "--warmup-iterations", "1", "--min-iterations", "3", "--min-seconds", "0",
                       "--baseline-seconds", "0.5", "--powercap-root", str(root), "--out", str(tmp_path / "out"),
                       timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout[done.stdout.index("generation (medians"):]
    for column in ("TTFT ms", "TPOT ms", "tokens/s", "fidelity"):
        assert column in table, table
    rows = [json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines()]
    by_runtime = {r["runtime"]: r for r in rows}
    assert by_runtime["torch/transformers/cpu"]["status"] == "ok", by_runtime["torch/transformers/cpu"].get("failure")
    assert "the reference" in table
    for runtime, row in by_runtime.items():
        assert row["status"] == "ok", (runtime, row.get("failure"))
        assert row["generation"]["ttft_ms"]["median"] > 0 and row["generation"]["output_tokens_per_s"]["median"] > 0
        if runtime != "torch/transformers/cpu":
            assert row["fidelity"]["verdict"], row["fidelity"]
            assert runtime.split("/")[0] in table
    print(f"measured on {', '.join(by_runtime)}", file=sys.stderr)
