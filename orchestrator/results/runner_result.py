"""The shape a journal record's `result` (the runner's RunResult as JSON, runners/protocol.py) must have to be read
as data: every field the tables, the report and re-accounting read, typed. The record keeps `result` as the plain
object the runner wrote; this only decides whether a line is a record or a damaged line, so a line whose latencies
are a string or whose window is a list is counted as damage instead of reaching numpy or polars.

Fields are optional (results of older runners lack some); keys a newer runner adds are allowed.
"""
from __future__ import annotations

from typing import Any, Optional, Union, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from runners.protocol import RunResult

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


class GenerationTimes(_Shape):
    """RunResult.generation, loosely: a stamp list the accounting refuses (out of order, a null first token) is
    still a record, failed in accounting with the reason, not a damaged line."""

    prompt_tokens: Optional[int] = None
    new_tokens: Optional[int] = None
    batch_size: Optional[int] = None
    phases_ns: Optional[list[list[Optional[int]]]] = None


class RuntimeFacts(_Shape):
    compiles_in_window: Optional[int] = None


# The runner's own RunResult names the fields and their types (one list of them, in runners/protocol.py); each is
# optional here, since results of older runners lack some. Where the tables read inside a field, its shape is
# spelled out above; an error is read as the plain object it is.
_READ_AS = {"error": dict[str, Any], "latencies_ns": list[Number], "peak_host_rss_bytes": Number,
            "peak_device_bytes": Number, "output_digest": OutputDigest, "node_placement": Placement,
            "runtime_facts": RuntimeFacts, "generation": GenerationTimes}
RunnerResult = create_model(
    "RunnerResult", __base__=_Shape,
    **{name: (Optional[_READ_AS.get(name, hint)], None) for name, hint in get_type_hints(RunResult).items()
       if name != "schema"})  # BaseModel has its own `schema`; the protocol reads the result's version itself


RESULT_SHAPE: TypeAdapter[Optional[RunnerResult]] = TypeAdapter(Optional[RunnerResult])
