"""Image bookkeeping that needs no engine: which wheels an image takes, what makes it stale, which launcher runs."""
from __future__ import annotations

import subprocess

import pytest

from orchestrator import paths
from orchestrator.planning.config import parse_config
from orchestrator.errors import UserError
from orchestrator.provisioning.images import (ImageBuildError, ImageManager, image_names, matching_wheels, requirement_names,
                                 source_digest)
from orchestrator.execution.launchers.choice import choose_launcher
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from orchestrator.execution.preparation import Preparation
from testkit.sweep_helpers import GREENRT


def test_every_environment_has_a_dockerfile_with_the_shared_entrypoint_and_a_pinned_cuda_base():
    assert image_names() == paths.environment_names()
    for name in image_names():
        text = (paths.PROJECT_ROOT / "images" / name / "Dockerfile").read_text()
        base = next(line for line in text.splitlines() if line.startswith("ARG BASE_IMAGE="))
        image, _, tag = base.split("=", 1)[1].partition(":")
        assert image == "nvidia/cuda" and tag[0].isdigit() and "latest" not in tag, name
        assert 'ENTRYPOINT ["python", "-m", "runners"]' in text and "USER 10001:10001" in text, name


def test_requirement_names_skip_comments_and_options(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# a comment\n--extra-index-url https://example.org\nonnxruntime-gpu[cuda]==1.31.1\n"
                            "Torch==2.13.0\ntyping_extensions==4.16.0\n")
    assert requirement_names(requirements) == {"onnxruntime-gpu", "torch", "typing-extensions"}


def test_only_the_wheels_an_image_names_are_taken(tmp_path):
    for wheel in ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "somethingelse-1.0-py3-none-any.whl"):
        (tmp_path / wheel).write_bytes(b"")
    assert [w.name for w in matching_wheels([tmp_path], "torch")] == [
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"]
    assert matching_wheels([tmp_path], "onnxruntime") == []
    with pytest.raises(UserError, match="is not a directory"):
        matching_wheels([tmp_path / "absent"], "torch")


def test_the_source_digest_follows_the_wheels_and_differs_between_images():
    assert source_digest("torch") == source_digest("torch")
    assert source_digest("torch") != source_digest("torch", ["torch-2.13.0+cpu-cp311-none-any.whl"])
    assert source_digest("torch") != source_digest("onnxruntime")


def test_an_unknown_image_names_the_valid_ones():
    # The valid names in order, whatever other environments sort between them.
    with pytest.raises(UserError, match="unknown image 'pytorch'; valid: (.*, )?litert, (.*, )?mxnet, onnxruntime"):
        ImageManager(client=object()).state("pytorch")


@pytest.mark.parametrize("requested, problem, states, expected", [
    ("auto", None, {"torch": "ready", "onnxruntime": "ready"}, "docker"),
    ("auto", None, {"torch": "ready", "onnxruntime": "stale"}, "local"),
    ("auto", None, {"torch": "ready"}, "local"),
    ("auto", "connection refused", {}, "local"),
    ("docker", None, {}, "docker"),
    ("local", None, {"torch": "ready", "onnxruntime": "ready"}, "local"),
])
def test_auto_takes_docker_only_when_every_needed_image_is_ready(requested, problem, states, expected):
    name, why = choose_launcher(requested, problem, states, ["torch", "onnxruntime"])
    assert name == expected
    if requested == "auto" and expected == "local":
        assert ("onnxruntime" in why) or ("connection refused" in why)


def test_an_unknown_launcher_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="valid: auto, docker, local"):
        choose_launcher("podman", None, {}, [])


@pytest.mark.process
def test_a_bad_launcher_on_the_command_line_exits_2(tmp_path):
    done = subprocess.run([GREENRT, "sweep", "--launcher", "podman", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown launcher 'podman'; valid: auto, docker, local" in done.stderr
    assert not (tmp_path / "o").exists()


def test_an_image_that_cannot_be_prepared_fails_only_its_runs(tmp_path, logged_lines):
    class NoImages:
        name = "docker"

        def prepare(self, environment):
            raise ImageBuildError(f"image greenrt/{environment}:latest is absent: `greenrt images build {environment}`")

    config = parse_config({"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [1],
                           "runtimes": ["torch/native/cpu"]}, source="test")
    Preparation(config, NoImages(), artifacts=None).prepare(plan_sweep(config, HostCapabilities()).runs)
    assert logged_lines == ["environment torch: FAILED: image greenrt/torch:latest is absent: `greenrt images build torch`"]


def test_an_environments_pins_constrain_sdist_builds_without_extras_or_options():
    from orchestrator.provisioning.environments import build_constraints

    text = ("# CUDA 13 from the wheels\n--extra-index-url https://example.org/simple\n"
            "onnxruntime-gpu[cuda,cudnn]==1.31.1\nnumpy==2.4.6  # comment kept\n  -c other.txt\n")
    assert build_constraints(text) == "# CUDA 13 from the wheels\nonnxruntime-gpu==1.31.1\nnumpy==2.4.6  # comment kept\n"
