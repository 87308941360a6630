"""The run record: what the journal keeps of one run, typed, and the only place it is written and read.

One JSON line per finished or failed run (runs.jsonl). The sweep, the guard, the merge and re-accounting build
records; the tables and the report read them. Energy, fidelity, protocol, launch and artifact are typed payloads
(orchestrator/results/payloads.py) that write the same JSON the dicts before them did; `result` stays the runner's
RunResult as JSON, versioned where it is made (runners/protocol.py).

Schema versions: 1 (before per-GPU attribution: no `gpus`, GPU channels without `assigned`, every GPU counted as
the run's) and 2 (now). A journal of either version resumes and reports; a record from a newer greenrt keeps the
keys this version does not know.
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.results.generation_payload import Generation
from orchestrator.results.interference_payload import Interference
from orchestrator.results.payloads import ArtifactFacts, Energy, Fidelity, Launch, Prepared, Protocol
from orchestrator.results.runner_result import RESULT_SHAPE

RECORD_SCHEMA = 2
READABLE_SCHEMAS = (1, 2)

OK, FAILED, INTERRUPTED = "ok", "failed", "interrupted"


class Failure(BaseModel):
    """Why a run has no figures: its kind (start, crash, timeout, oom, export, accounting, ...) and the words."""

    model_config = ConfigDict(extra="allow")

    kind: str
    message: str
    log_tail: str = ""


class RunRecord(BaseModel):
    # validate_assignment: a payload assigned as a dict (the protocol facts) is typed like one read from a journal.
    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=True)

    schema_version: int = Field(RECORD_SCHEMA, alias="schema")
    run_id: str
    index: Optional[int] = None  # position in the plan's run order
    repetition: Optional[int] = None
    model: str
    batch_size: int
    runtime: str
    framework: Optional[str] = None
    model_format: Optional[str] = None
    provider: Optional[str] = None
    precision: str = "fp32"
    started_at: Optional[str] = None
    launcher: Optional[str] = None
    environment: Optional[str] = None
    env_vars: dict[str, str] = Field(default_factory=dict)
    gpus: list[dict[str, Any]] = Field(default_factory=list)  # GpuDescription dicts: the GPUs given to the run
    artifact: Optional[ArtifactFacts] = None  # the converted model (ONNX) the run loaded
    provider_options: dict[str, Any] = Field(default_factory=dict)
    result: Optional[dict[str, Any]] = None  # the runner's RunResult
    failure: Optional[Failure] = None
    samples_path: Optional[str] = None  # relative to the results directory
    energy: Energy = Field(default_factory=lambda: Energy.unavailable("not recorded"))
    fidelity: Optional[Fidelity] = None
    # The cached reference outputs (a native CPU run) this run's outputs are compared with; None for a native run.
    reference_outputs: Optional[str] = None
    launch: Launch = Field(default_factory=Launch)
    protocol: Optional[Protocol] = None  # the baseline and cooldown this run was measured under
    # What else used the host while the runner ran (measurement/interference.py), and whether that flags the run;
    # None where it was not observed (a journal written before it; an interrupted run). Left out of the journal line
    # while None, so that older records are written back byte for byte.
    interference: Optional[Interference] = None
    # The preparation this sweep invocation did before it (when it began, how long it took): on the first run
    # measured after a preparation only, absent elsewhere and in journals written before it (report/time_spent.py).
    prepared: Optional[Prepared] = None
    # A generative run's TTFT, TPOT, tokens/s and energy by phase (results/generation_payload.py); absent for the
    # classifiers and in journals written before it.
    generation: Optional[Generation] = None
    status: str = FAILED
    wall_seconds: Optional[float] = None
    shard: Optional[int] = None  # set by the merge of a sharded sweep
    host_signature: Optional[str] = None
    reaccounted: Optional[dict[str, Any]] = None  # accounted again by `greenrt report` after an accounting failure

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any) -> Any:
        """A null where a collection belongs (a hand-written or older journal) reads as the empty default."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k not in _COLLECTIONS}
        return data

    @property
    def ok(self) -> bool:
        return self.status == OK

    def fail(self, kind: str, message: str, log_tail: str = "") -> None:
        self.failure = Failure(kind=kind, message=message, log_tail=log_tail)
        self.status = FAILED

    def to_journal(self) -> dict[str, Any]:
        """The JSON object of one journal line."""
        line = self.model_dump(mode="json", by_alias=True)
        for key in _ADDED_LATER:
            if line.get(key) is None:
                del line[key]
        return line


_COLLECTIONS = ("env_vars", "gpus", "provider_options", "energy", "launch")
# Keys added to schema 2 after journals were written with it: absent (not null) while unset.
_ADDED_LATER = ("interference", "prepared", "generation")


class UnreadableRecord(ValueError):
    """A journal line that is JSON but not a run record this greenrt can read."""


def from_journal(data: Any) -> RunRecord:
    if not isinstance(data, dict) or "run_id" not in data:
        raise UnreadableRecord("not a run record")
    schema = data.get("schema", 1)
    if schema not in READABLE_SCHEMAS:
        raise UnreadableRecord(f"record schema {schema!r}: this greenrt reads {', '.join(map(str, READABLE_SCHEMAS))}")
    try:
        record = RunRecord.model_validate(data)
    except ValidationError as exc:
        raise UnreadableRecord(_first_error(exc)) from None
    try:  # the runner's result stays the object it wrote, but only one of the shape the readers read is data
        RESULT_SHAPE.validate_python(record.result)
    except ValidationError as exc:
        raise UnreadableRecord(_first_error(exc, "result")) from None
    return record


def _first_error(exc: ValidationError, *prefix: str) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(map(str, (*prefix, *first['loc'])))}: {first['msg']}"


def as_record(record: RunRecord | dict[str, Any]) -> RunRecord:
    """A record, or a journal line's object read as one (tables and tests hand either)."""
    return record if isinstance(record, RunRecord) else from_journal(record)
