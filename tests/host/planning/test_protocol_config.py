"""The protocol's config keys: defaults, refusals, digests that still resume old sweeps, warnings, provenance."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import paths
from orchestrator.planning.config import load_config, parse_config
from orchestrator.errors import UserError
from orchestrator.planning.planner import HostCapabilities, Plan, plan_sweep, protocol_warnings
from orchestrator.report.provenance import baseline_facts, config_facts, sweep_facts
from orchestrator.results.store import ResultsDir

VALID = {"name": "t", "models": ["resnet50"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"]}
GPU = {**VALID, "runtimes": ["torch/native/cuda", "torch/native/cpu"]}
GREENRT = str(Path(sys.executable).with_name("greenrt"))


def test_defaults_keep_the_old_protocol():
    config = parse_config(VALID)
    assert (config.cooldown.mode, config.cooldown.seconds, config.baseline.recheck_minutes) == ("fixed", 0.0, 0.0)


@pytest.mark.parametrize("change, expected", [
    ({"cooldown": {"mode": "auto"}}, "cooldown.mode: Input should be 'fixed' or 'adaptive'"),
    ({"cooldown": {"mode": "adaptive"}, "baseline": {"seconds": 0}}, "it needs baseline.seconds > 0"),
    ({"cooldown": {"mode": "adaptive", "seconds": 60, "max_seconds": 30}},
     "cooldown.max_seconds (30) is below the minimum cooldown.seconds (60)"),
    ({"cooldown": {"max_seconds": 0}}, "cooldown.max_seconds: Input should be greater than or equal to 0.001, not 0; valid: from 0.001"),
    ({"cooldown": {"temperature_margin_c": -1}}, "cooldown.temperature_margin_c: Input should be greater than or equal"),
    ({"cooldown": {"margin": 3}}, "cooldown.margin: unknown key; valid keys here: max_seconds, mode, "
                                  "power_margin_fraction, power_margin_w, seconds, temperature_margin_c"),
    ({"baseline": {"recheck_minutes": 30, "seconds": 0}}, "baseline.recheck_minutes re-measures the idle baseline"),
    ({"baseline": {"recheck_minutes": -1}}, "baseline.recheck_minutes: Input should be greater than or equal to 0"),
])
def test_bad_protocol_values_are_refused_in_one_line(change, expected):
    with pytest.raises(UserError) as error:
        parse_config({**VALID, **change}, source="x.toml")
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_digests_of_configs_without_the_new_keys_are_unchanged():
    # Pinned before the protocol keys existed: results directories written then must still resume.
    assert parse_config(VALID).digest() == "0e9847a59556ba42"
    assert load_config(paths.PROJECT_ROOT / "configs/quick.toml").digest() == "8c7f9dcbb1c7b57e"
    explicit = {**VALID, "cooldown": {"mode": "fixed"}, "baseline": {"recheck_minutes": 0}}
    assert parse_config(explicit).digest() == "0e9847a59556ba42"
    assert parse_config({**VALID, "cooldown": {"mode": "adaptive"}}).digest() != "0e9847a59556ba42"
    assert parse_config({**VALID, "baseline": {"recheck_minutes": 5}}).digest() != "0e9847a59556ba42"


def test_study_cools_down_adaptively_and_quick_does_not_wait():
    study = load_config(paths.PROJECT_ROOT / "configs/study.toml")
    assert study.cooldown.mode == "adaptive" and 0 < study.cooldown.seconds < study.cooldown.max_seconds <= 600
    assert study.baseline.recheck_minutes > 0
    assert study.measure.min_seconds >= 5.0 and not protocol_warnings(study)
    quick = load_config(paths.PROJECT_ROOT / "configs/quick.toml")
    assert (quick.cooldown.mode, quick.cooldown.seconds, quick.baseline.recheck_minutes) == ("fixed", 0.0, 0.0)


def test_short_windows_are_warned_about_only_with_gpu_runtimes():
    short = {"measure": {"min_seconds": 2.0}}
    [warning] = protocol_warnings(parse_config({**GPU, **short}))
    assert "measure.min_seconds = 2 s is shorter than 5 s" in warning and "torch/native/cuda" in warning
    assert "torch/native/cpu" not in warning
    assert protocol_warnings(parse_config({**VALID, **short})) == []
    assert protocol_warnings(parse_config({**GPU, "measure": {"min_seconds": 5.0}})) == []


@pytest.mark.process
def test_plan_command_warns_on_stderr_and_keeps_json_clean(tmp_path):
    config = tmp_path / "gpu.toml"
    config.write_text('name = "g"\nmodels = ["resnet50"]\nbatch_sizes = [1]\nruntimes = ["torch/native/cuda"]\n'
                      '[measure]\nmin_seconds = 1.0\n')
    done = subprocess.run([GREENRT, "plan", "--config", str(config), "--json", "--powercap-root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "warning: measure.min_seconds = 1 s is shorter than 5 s" in done.stderr
    plan = json.loads(done.stdout)
    assert plan["config"]["measure"]["min_seconds"] == 1.0


def test_plan_keeps_the_resolved_config_and_resumes_by_digest(tmp_path):
    config = parse_config({**VALID, "cooldown": {"mode": "adaptive", "seconds": 2}, "baseline": {"seconds": 1}})
    plan = plan_sweep(config, HostCapabilities())
    assert plan.config["cooldown"] == {"mode": "adaptive", "seconds": 2.0, "max_seconds": 300.0,
                                       "temperature_margin_c": 3.0, "power_margin_w": 10.0,
                                       "power_margin_fraction": 0.1}
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    results = ResultsDir(tmp_path / "out")
    results.open_for(plan)
    assert json.loads(results.plan_path.read_text())["config"] == plan.config
    results.open_for(plan_sweep(config, HostCapabilities()))  # the same sweep resumes
    other = plan_sweep(parse_config({**VALID, "baseline": {"seconds": 1}}), HostCapabilities())
    with pytest.raises(UserError, match="holds another sweep"):
        results.open_for(other)


def test_a_plan_written_before_the_config_was_kept_still_loads():
    old = {"config_name": "t", "config_digest": "0e9847a59556ba42", "seed": 0, "runs": [], "skipped": []}
    assert Plan.from_dict(old).config == {}
    assert config_facts(old) == [("config (resolved)", "not recorded (plan.json written by an older greenrt)")]


def test_provenance_shows_the_resolved_config_and_every_baseline():
    plan = plan_sweep(parse_config({**VALID, "cooldown": {"mode": "adaptive"}}), HostCapabilities()).to_dict()
    facts = dict(config_facts(plan))
    assert facts["config cooldown"].startswith('{"max_seconds":300.0,"mode":"adaptive"')
    assert facts["config runtimes"] == '["torch/native/cpu"]' and facts["config name"] == "t"
    history = [{"status": "ok", "measured_at": f"T{i}", "idle_w": {"gpu-0": w}, "idle_temperature_c": {"gpu-0": 33.0}}
               for i, w in enumerate((80.0, 84.5))]
    baseline = dict(baseline_facts({"latest": history[-1], "history": history}))
    assert baseline["idle baseline"] == "gpu-0 84.50 W 33 °C"
    assert baseline["idle baselines (2 measured)"] == "T0 to T1: gpu-0 80.00-84.50 W"
    table = sweep_facts({}, plan, {"latest": history[0], "history": history[:1]})
    assert "config warmup" in table["what"].to_list() and "idle baselines (1 measured)" not in table["what"].to_list()


def test_provenance_says_when_repetitions_were_added_to_a_sweep():
    plan = {**plan_sweep(parse_config(VALID), HostCapabilities()).to_dict(),
            "extended": [{"from": 5, "to": 6, "at": 1796140800.0}]}
    facts = dict(zip(*sweep_facts({}, plan, None).to_dict(as_series=False).values()))
    assert facts["repetitions added"] == ("5 -> 6 at 2026-12-01 16:00 UTC: the added repetitions were measured after "
                                          "the earlier ones")
    assert "repetitions added" not in sweep_facts({}, {**plan, "extended": []}, None)["what"].to_list()
