"""The shape a journal record's `result` (the runner's RunResult as JSON, runners/protocol.py) must have to be read
as data: every field the tables, the report and re-accounting read, typed. The record keeps `result` as the plain
object the runner wrote; this only decides whether a line is a record or a damaged line, so a line whose latencies
are a string or whose window is a list is counted as damage instead of reaching numpy or polars.

Fields are optional (results of older runners lack some); keys a newer runner adds are allowed.
"""
from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

Number = Union[int, float]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class Placement(_Shape):
    """ONNX Runtime's node placement, as tables.placement_columns reads it."""

    status: Optional[str] = None
    verdict: Optional[str] = None
    reason: Optional[str] = None
    note: Optional[str] = None
    cpu_fallback_nodes: Optional[int] = None
    cpu_shape_nodes: Optional[int] = None
    cuda_fallback_nodes: Optional[int] = None
    cpu_op_types: Optional[dict[str, int]] = None
    cuda_op_types: Optional[dict[str, int]] = None


class OutputDigest(_Shape):
    sha256: Optional[str] = None


class RuntimeFacts(_Shape):
    compiles_in_window: Optional[int] = None


class RunnerResult(_Shape):
    status: Optional[str] = None
    error: Optional[dict[str, Any]] = None
    versions: Optional[dict[str, str]] = None
    devices: Optional[list[str]] = None
    provider_used: Optional[str] = None
    threads: Optional[int] = None
    window_start_ns: Optional[int] = None
    window_end_ns: Optional[int] = None
    iterations: Optional[int] = None
    latencies_ns: Optional[list[Number]] = None
    load_seconds: Optional[float] = None
    warmup_seconds: Optional[float] = None
    warmup_iterations: Optional[int] = None
    engine_build_seconds: Optional[float] = None
    peak_host_rss_bytes: Optional[Number] = None
    peak_device_bytes: Optional[Number] = None
    output_digest: Optional[OutputDigest] = None
    process_start_ns: Optional[int] = None
    first_inference_ns: Optional[int] = None
    node_placement: Optional[Placement] = None
    runtime_facts: Optional[RuntimeFacts] = None


RESULT_SHAPE: TypeAdapter[Optional[RunnerResult]] = TypeAdapter(Optional[RunnerResult])
