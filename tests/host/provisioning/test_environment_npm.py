"""An environment folder with a package.json gets its lockfile installed by npm ci into the venv's folder."""
from __future__ import annotations

import pytest

from orchestrator import paths
from orchestrator.provisioning import environments
from orchestrator.provisioning.environments import EnvironmentBuildError, npm_steps, requirements_digest


def _folder(tmp_path, files):
    folder = tmp_path / "images" / "some-env"
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text("numpy==2.4.6\n")
    for name in files:
        (folder / name).write_text("{}")
    return folder


def test_a_folder_without_package_json_has_no_npm_step(tmp_path):
    assert npm_steps(_folder(tmp_path, []), tmp_path / "venv") == []


def test_the_lockfile_is_installed_exactly_with_install_scripts_off(tmp_path, monkeypatch):
    monkeypatch.setattr(environments.shutil, "which", lambda name: f"/usr/bin/{name}")
    folder, venv = _folder(tmp_path, ["package.json", "package-lock.json"]), tmp_path / "venv"
    steps = npm_steps(folder, venv)
    assert steps[:2] == [["cp", str(folder / n), str(venv / n)] for n in ("package.json", "package-lock.json")]
    assert steps[2] == ["/usr/bin/npm", "ci", "--prefix", str(venv), "--ignore-scripts", "--no-audit", "--no-fund"]


def test_a_package_json_without_lockfile_or_npm_is_a_clear_build_error(tmp_path, monkeypatch):
    with pytest.raises(EnvironmentBuildError, match="no package-lock.json"):
        npm_steps(_folder(tmp_path, ["package.json"]), tmp_path / "venv")
    monkeypatch.setattr(environments.shutil, "which", lambda name: None)
    folder = _folder(tmp_path / "other", ["package.json", "package-lock.json"])
    with pytest.raises(EnvironmentBuildError, match="needs npm"):
        npm_steps(folder, tmp_path / "venv")


def test_a_changed_lockfile_makes_the_environment_stale(tmp_path):
    folder = _folder(tmp_path, ["package.json", "package-lock.json"])
    before = requirements_digest(folder / "requirements.txt")
    (folder / "package-lock.json").write_text('{"lockfileVersion": 3}')
    assert requirements_digest(folder / "requirements.txt") != before


def test_the_onnxruntime_node_environment_pins_the_same_onnxruntime_in_python_and_node():
    import json

    folder = paths.requirements_file("onnxruntime-node").parent
    lock = json.loads((folder / "package-lock.json").read_text())
    node_version = lock["packages"]["node_modules/onnxruntime-node"]["version"]
    assert f"onnxruntime=={node_version}" in (folder / "requirements.txt").read_text().splitlines()
