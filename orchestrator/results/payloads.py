"""The run record's nested payloads, typed: energy (and its channels), fidelity, protocol, launch, artifact and
the preparation before it.

Energy, fidelity and artifact are built by their classmethods; launch and protocol facts by the execution room
(execution/run.py's launch_facts, execution/measurement_protocol.py's MeasurementProtocol.facts). All are read by
attribute. Each writes exactly the keys it was built or read with, as the dicts it replaces did: a CPU channel has
no `assigned`, an energy that was never accounted has no `warning`, a launch that never started has no `startup_s`,
and a null written is a null kept. So a journal line reads back to the same JSON object, whichever greenrt wrote
it; keys a newer greenrt adds are kept (extra="allow").
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_serializer(mode="wrap")
    def _as_built(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in type(self).model_fields.keys() - self.model_fields_set:
            data.pop(name, None)
        return data

    def __bool__(self) -> bool:
        """An empty payload is as falsy as the `{}` it stands for (a launch never attempted)."""
        return bool(self.model_fields_set or self.model_extra)


class ChannelTemperature(Payload):
    """A GPU's temperature at the samples nearest the window's edges, and its maximum inside (°C)."""

    start: float
    end: float
    max: float


class EnergyChannel(Payload):
    """One sensor channel's energy over the run's window (orchestrator/measurement/accounting.py)."""

    domain: str
    status: str
    raw_j: Optional[float] = None
    dynamic_j: Optional[float] = None  # raw minus the idle baseline over the window
    idle_w: Optional[float] = None
    method: Optional[str] = None  # counter | power-integral
    mean_power_w: Optional[float] = None
    samples_in_window: Optional[int] = None
    reason: str = ""
    # GPU channels only. assigned: given to the run (None: written before per-GPU attribution, when every GPU counted).
    assigned: Optional[bool] = None
    temperature_c: Optional[ChannelTemperature] = None
    edge_uncertainty_j: Optional[float] = None
    counter_period_s: Optional[float] = None
    counter_period_source: Optional[str] = None
    edge_note: Optional[str] = None

    @property
    def counted(self) -> bool:
        """Whether the run's energy counts this channel: a GPU only when given to the run (or not known to be not)."""
        return self.domain != "gpu" or self.assigned is not False


class Energy(Payload):
    """The run's energy: per channel, and whether it can be trusted (ok | partial | invalid | unavailable)."""

    status: str
    reason: str = ""
    channels: dict[str, EnergyChannel] = {}
    warning: Optional[str] = None  # a short window on a GPU that averages its power
    # The run's own GPUs' edge uncertainty together: the +- beside its GPU energy (None: none, or not known).
    edge_uncertainty_j: Optional[float] = None

    @classmethod
    def unavailable(cls, reason: str) -> Energy:
        return cls(status="unavailable", reason=reason, channels={})

    @classmethod
    def accounted(cls, channels: dict[str, EnergyChannel], warning: str | None) -> Energy:
        valid = [c for c in channels.values() if c.status == "ok"]
        status = "ok" if valid and len(valid) == len(channels) else ("partial" if valid else "invalid")
        reasons = sorted({f"{n}: {c.reason}" for n, c in channels.items() if c.status != "ok"})
        own = [c.edge_uncertainty_j for c in channels.values() if c.domain == "gpu" and c.assigned]
        return cls(status=status, reason="; ".join(reasons), channels=channels, warning=warning,
                   edge_uncertainty_j=float(sum(own)) if own and None not in own else None)

    @property
    def note(self) -> str:
        return self.reason or self.warning or ""


class Fidelity(Payload):
    """How the run's outputs compare with its source framework's (models.fidelity), or why they were not."""

    status: Optional[str] = None
    reason: Optional[str] = None
    faithful: Optional[bool] = None
    acceptable: Optional[bool] = None
    criterion: Optional[str] = None  # fp32 | fp16 | quantized
    precision: Optional[str] = None
    max_abs_error: Optional[float] = None
    min_cosine_similarity: Optional[float] = None
    top1_agreement: Optional[float] = None
    verdict: Optional[str] = None
    tolerance: Optional[dict[str, Any]] = None
    outputs: Optional[list[dict[str, Any]]] = None

    @classmethod
    def unavailable(cls, reason: str) -> Fidelity:
        return cls(status="unavailable", reason=reason)

    @classmethod
    def compared(cls, report: dict[str, Any]) -> Fidelity:
        """models.fidelity.compare_output_files's report (floor 1 keeps its own dict)."""
        return cls.model_validate(report)


class BaselineRef(Payload):
    """Which idle baseline (baseline.json's history) a run's dynamic energy used."""

    index: Optional[int] = None
    measured_at: Optional[str] = None
    status: Optional[str] = None


class Protocol(Payload):
    """The baseline and cooldown a run was measured under (built by MeasurementProtocol.facts, execution/)."""

    baseline: Optional[BaselineRef] = None
    cooldown_before: Optional[dict[str, Any]] = None  # orchestrator/measurement/cooldown.py's facts

    @property
    def baseline_index(self) -> int | None:
        return self.baseline.index if self.baseline else None


class Prepared(Payload):
    """What a sweep did before its first run measured in this invocation (execution/preparation.py): when its
    preparation began (UTC) and how long it took, its environments, exports, int8 copies and reference outputs."""

    started_at: str
    seconds: float


class Launch(Payload):
    """How the runner was started, and what starting it cost: outside the measured window, but worth knowing
    (built by execution/run.py's launch_facts from the launcher's outcome and the runner's clock readings)."""

    seconds: Optional[float] = None
    exit_code: Optional[int] = None
    startup_s: Optional[float] = None
    start_to_first_inference_s: Optional[float] = None
    python: Optional[str] = None  # the local launcher's interpreter
    cuda_visible_devices: Optional[str] = None
    # The Docker launcher's: the container, the image id it ran, which build (reference, flavor) and runtime.
    container: Optional[str] = None
    container_id: Optional[str] = None  # the engine's full id, as the container's cgroup names it
    image: Optional[str] = None
    image_reference: Optional[str] = None
    image_flavor: Optional[str] = None
    container_runtime: Optional[str] = None
    gpus: Optional[str] = None  # what Docker was asked for: "" (none), "all", or the CUDA_VISIBLE_DEVICES list


class ArtifactFacts(Payload):
    """The converted model a run loaded (orchestrator/execution/artifacts.py; int8 copies add their quantization)."""

    path: Optional[str] = None
    key: Optional[str] = None
    opset: Optional[int] = None
    exporter: Optional[str] = None
    versions: Optional[dict[str, str]] = None
    export_seconds: Optional[float] = None
    precision: Optional[str] = None
    source_path: Optional[str] = None
    source_key: Optional[str] = None
    quantization: Optional[dict[str, Any]] = None
    quantize_seconds: Optional[float] = None
    host_cpu: Optional[Any] = None  # int8 only: whether this host's CPU runs it fast (runners.runtimes_table)

    @classmethod
    def of(cls, artifact: dict[str, Any], host_cpu: Any = None) -> ArtifactFacts:
        """artifact: the Artifact (or QuantizedArtifact) dataclass as a dict; host_cpu only for an int8 copy."""
        return cls.model_validate(artifact if host_cpu is None else {**artifact, "host_cpu": host_cpu})
