"""The run record's typed payloads (orchestrator/results/payloads.py) write the JSON the dicts before them wrote.

tests/host/fixtures/journal-schema2 was written by greenrt before the payloads were typed (its README says how):
every line must read back to the same object and be written again byte for byte, and the tables must read its
figures by attribute. journal-schema1 (older still) must keep every key it had.
"""
from __future__ import annotations

import json

import pytest

from orchestrator.measurement.accounting import account_energy
from orchestrator.measurement.sampler import Reading, SampleSeries
from orchestrator.measurement.sensors.base import SensorStatus
from orchestrator.planning.gpus import GpuDescription
from orchestrator.results.payloads import ArtifactFacts, Energy, EnergyChannel, Fidelity, Launch, Protocol
from orchestrator.results.record import RunRecord, from_journal
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import run_row, runs_table
from testkit.paths import FIXTURES

SCHEMA2 = FIXTURES / "journal-schema2"
S = 1_000_000_000


def _lines(*names: str) -> list[bytes]:
    return [line for name in names for line in (SCHEMA2 / name).read_bytes().splitlines()]


@pytest.mark.parametrize("line", _lines("runs.jsonl", "crashed.jsonl"), ids=["onnxruntime", "torch", "crashed"])
def test_a_line_written_before_the_typed_payloads_reads_back_identically(line):
    original = json.loads(line)
    record = from_journal(original)
    assert record.to_journal() == original
    assert json.dumps(record.to_journal(), sort_keys=True, allow_nan=False).encode() == line


def test_the_store_appends_a_record_read_from_the_old_journal_byte_for_byte(tmp_path):
    results = ResultsDir(tmp_path / "again")
    results.root.mkdir()
    records, problems = ResultsDir(SCHEMA2).records()
    assert problems == [] and len(records) == 2
    for record in records:
        results.append(record)
    assert results.journal_path.read_bytes() == (SCHEMA2 / "runs.jsonl").read_bytes()


def test_the_payloads_read_from_a_journal_are_typed():
    ort, torch = ResultsDir(SCHEMA2).records()[0]
    assert isinstance(ort.energy, Energy) and isinstance(ort.fidelity, Fidelity)
    assert isinstance(ort.launch, Launch) and isinstance(ort.protocol, Protocol)
    assert isinstance(ort.artifact, ArtifactFacts) and torch.artifact is None and torch.fidelity is None
    gpu, package = ort.energy.channels["gpu-0"], ort.energy.channels["package-0"]
    assert isinstance(gpu, EnergyChannel) and gpu.assigned is False and not gpu.counted and package.counted
    assert gpu.temperature_c is not None and gpu.temperature_c.max >= gpu.temperature_c.end
    assert ort.protocol.baseline_index == 0 and ort.artifact.opset == 20 and ort.launch.exit_code == 0
    assert ort.fidelity.faithful is True and ort.fidelity.criterion == "fp32"


def test_the_tables_read_the_old_journals_figures():
    records, _ = ResultsDir(SCHEMA2).records()
    rows = {r["runtime"]: r for r in runs_table(records).to_dicts()}
    for record in records:
        row, channels = rows[record.runtime], record.energy.channels
        assert row["cpu_energy_j"] == pytest.approx(channels["package-0"].raw_j)
        assert row["dram_dynamic_j"] == pytest.approx(channels["dram-0"].dynamic_j)
        # The simulated H100 was not given to a CPU run: kept beside it, never in its energy per inference.
        assert row["gpu_energy_j"] is None and row["other_gpus_energy_j"] == pytest.approx(channels["gpu-0"].raw_j)
        assert row["total_energy_j"] == pytest.approx(channels["package-0"].raw_j + channels["dram-0"].raw_j)
        assert row["temperature_max_gpu-0_c"] == channels["gpu-0"].temperature_c.max
        assert row["edge_uncertainty_gpu-0_j"] == pytest.approx(channels["gpu-0"].edge_uncertainty_j)
        assert row["energy_status"] == "ok" and row["energy_note"] == ""
    assert rows["onnxruntime/onnx-from-torch/cpu"]["fidelity_faithful"] is True
    assert rows["onnxruntime/onnx-from-torch/cpu"]["fidelity_verdict"].startswith("faithful")
    assert rows["torch/native/cpu"]["fidelity_note"] == "not a converted model"


def test_a_crashed_runs_row_says_why_it_has_no_energy():
    row = run_row(json.loads(_lines("crashed.jsonl")[0]))
    assert row["status"] == "failed" and row["failure_kind"] == "crash"
    assert row["energy_status"] == "unavailable" and row["energy_note"].startswith("no readable energy sensor")
    assert row["cpu_energy_j"] is None and row["fidelity_note"] == ""


def test_a_schema_1_journal_keeps_every_key_it_had():
    for line in (FIXTURES / "journal-schema1" / "runs.jsonl").read_bytes().splitlines():
        original = json.loads(line)
        written = from_journal(original).to_journal()
        assert {k: written[k] for k in original} == original
        # What schema 2 added, at its defaults (as before the payloads were typed).
        assert set(written) - set(original) == {"gpus", "reference_outputs", "shard", "host_signature", "reaccounted"}


def test_keys_a_newer_greenrt_writes_survive_a_read_and_a_write():
    line = json.loads(_lines("runs.jsonl")[0])
    line["energy"]["per_core"] = {"0": 1.5}
    line["energy"]["channels"]["gpu-0"]["clock_mhz"] = 1980
    line["fidelity"]["psnr_db"] = 90.0
    line["launch"]["numa_node"] = 1
    line["protocol"]["baseline"]["drift_w"] = 0.3
    line["artifact"]["graph_sha256"] = "ab" * 32
    assert from_journal(line).to_journal() == line


def test_a_null_collection_still_reads_as_its_empty_default():
    line = json.loads(_lines("crashed.jsonl")[0])
    line["energy"], line["launch"] = None, None
    record = from_journal(line)
    assert record.energy.model_dump() == {"status": "unavailable", "reason": "not recorded", "channels": {}}
    assert record.launch.model_dump() == {} and not record.launch


def _series() -> SampleSeries:
    series = SampleSeries(channels={"package-0": "cpu", "gpu-0": "gpu"})
    for i in range(41):
        t = i * S // 10
        series.append(t, Reading("package-0", 20.0 * t / S), "cpu")
        series.append(t, Reading("gpu-0", 300.0 * t / S, power_w=300.0, temperature_c=40.0 + i / 10), "gpu")
    return series


def test_accounted_energy_writes_the_keys_it_always_wrote():
    gpu = GpuDescription(index=0, name="NVIDIA H100", uuid="GPU-0", pci_bus_id=None, energy_counter=True,
                         power_is_1s_average=True)
    energy = account_energy(_series(), (1 * S, 3 * S), {"package-0": 10.0}, [SensorStatus("rapl", True, "ok")],
                            (gpu,))
    written = RunRecord(run_id="r", model="m", batch_size=1, runtime="torch/native/cuda",
                        energy=energy).to_journal()["energy"]
    assert set(written) == {"status", "reason", "channels", "warning", "edge_uncertainty_j"}
    # A CPU channel knows nothing of GPUs; a GPU channel always says whether it was the run's, even when null.
    assert set(written["channels"]["package-0"]) == {"domain", "status", "raw_j", "dynamic_j", "idle_w", "method",
                                                     "mean_power_w", "samples_in_window", "reason"}
    assert set(written["channels"]["gpu-0"]) - set(written["channels"]["package-0"]) == {
        "assigned", "temperature_c", "edge_uncertainty_j", "counter_period_s", "counter_period_source", "edge_note"}
    assert written["channels"]["gpu-0"]["assigned"] is True and written["channels"]["gpu-0"]["idle_w"] is None
    assert written["channels"]["package-0"]["dynamic_j"] == pytest.approx(20.0)  # (20 - 10 W) over 2 s
    assert written["edge_uncertainty_j"] == written["channels"]["gpu-0"]["edge_uncertainty_j"]


def test_energy_that_was_never_accounted_writes_three_keys():
    for energy in (Energy.unavailable("the run was interrupted"),
                   account_energy(None, None, None, [SensorStatus("rapl", False, "no powercap tree")])):
        assert set(energy.model_dump(mode="json")) == {"status", "reason", "channels"}
        assert energy.status == "unavailable" and energy.channels == {}


def test_an_int8_artifact_is_written_as_its_dataclass_plus_what_the_host_cpu_makes_of_it():
    from orchestrator.execution.quantized import QuantizedArtifact
    from runners.protocol import to_dict

    artifact = QuantizedArtifact(path="/cache/int8/model.onnx", key="k8", opset=20, exporter="quantize_static",
                                 versions={"onnxruntime": "1.32.0"}, export_seconds=None, source_path="/cache/m.onnx",
                                 source_key="k", quantization={"calibration": "minmax"}, quantize_seconds=3.5)
    host_cpu = {"fast": False, "reason": "no VNNI"}
    written = RunRecord(run_id="r", model="m", batch_size=1, runtime="onnxruntime/onnx-from-torch/cpu",
                        artifact=ArtifactFacts.of(to_dict(artifact), host_cpu)).to_journal()["artifact"]
    assert written == {**to_dict(artifact), "host_cpu": host_cpu}
    assert ArtifactFacts.of(to_dict(artifact)).model_dump() == to_dict(artifact)


def test_fidelity_that_could_not_be_judged_writes_its_status_and_reason_only():
    assert Fidelity.unavailable("no reference").model_dump() == {"status": "unavailable", "reason": "no reference"}
