"""Where ONNX Runtime put a session's graph nodes, read from its VERBOSE construction log, and the verdict on it.

Pure functions over log lines (plus the fd-2 capture that collects them); no onnxruntime import.

The verdict separates three things a GPU session's placement can hold:
- ORT's deliberate CPU placement of shape computations.  The CUDA EP's GetCapability hands its candidate nodes to
  GetCpuPreferredNodes (core/framework/fallback_cpu_capability.cc), which moves the small subgraphs fed by CPU
  tensors (Shape's output, graph inputs, small initializers) to the CPU "because the CPU execution path is deemed
  faster"; session_state.cc then warns "Some nodes were not assigned to the preferred execution providers ...
  ORT explicitly assigns shape related ops to CPU to improve perf".  That is how ORT is meant to run a model
  (BERT from every exporter has such nodes): not a fallback.
- Fallback of compute nodes: nodes the requested provider has no kernel for ("<EP> kernel not found in registries
  for Op type: ..."), or rejects ("CUDA kernel not supported. Fallback to CPU execution provider ...").
- In a tensorrt session, nodes TensorRT did not take and the CUDA EP ran (the chain is TensorRT -> CUDA -> CPU):
  that part of the model is not a TensorRT measurement.

A CPU node is classed by what ORT's log says about it by name; a node the log names no reason for (a log without
ORT's INFO records) is classed by its op type (SHAPE_OP_TYPES), and the summary says how many were.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections import Counter
from typing import Any, Iterable

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TENSORRT_EP = "TensorrtExecutionProvider"
OPENVINO_EP = "OpenVINOExecutionProvider"

# ---------------------------------------------------------------------------------------------------------------
# The log lines read.
#
# onnxruntime/core/framework/session_state.cc, VerifyEachNodeIsAssignedToAnEp (1.32 prints it from line 1598ff):
#   LOGS(logger, VERBOSE) << "Node placements";
#   one provider:  LOGS(logger, VERBOSE) << " All nodes placed on [" << provider << "]. Number of nodes: " << n;
#   otherwise, per provider (unordered_map order):
#                  LOGS(logger, VERBOSE) << " Node(s) placed on [" << provider << "]. Number of nodes: " << n;
#                  and per node LOGS(logger, VERBOSE) << "  " << node.OpType() + " (" + node.Name() + ")";
# Each message follows ORT's default sink prefix "<time> [V:onnxruntime:<logid>, session_state.cc:<line> <function>] ".
# Nodes of subgraphs (If/Loop/Scan bodies) are counted with the main graph's; a TensorRT engine is one fused node.
#
# Why a node is on the CPU (the strings as the onnxruntime 1.32.0 library carries them):
#   fallback_cpu_capability.cc, GetCpuPreferredNodes:
#     "ORT optimization- Force fallback to CPU execution for node: " << name << " because the CPU execution path is
#     deemed faster than overhead involved with execution on other EPs capable of executing this node"
#   cuda_execution_provider.cc, GetCapability:
#     "CUDA kernel not found in registries for Op type: " << op << " node name: " << name
#     "CUDA kernel not supported. Fallback to CPU execution provider for Op type: " << op << " node name: " << name
#     "Dropping the ConvTranspose node: " << name << " to CPU because it requires asymmetric padding ..."

_PLACEMENT_MESSAGE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\] (?P<message>.*?)(?:\x1b\[m)?\s*$")
_ALL_PLACED = re.compile(r"^\s*All nodes placed on \[(?P<ep>[^\]]+)\]\. Number of nodes: (?P<n>\d+)\s*$")
_SOME_PLACED = re.compile(r"^\s*Node\(s\) placed on \[(?P<ep>[^\]]+)\]\. Number of nodes: (?P<n>\d+)\s*$")
_NODE = re.compile(r"^  (?P<op>\S+?) \((?P<name>.*)\)$")
_CPU_PREFERRED = re.compile(r"ORT optimization- Force fallback to CPU execution for node: (?P<name>.*?) because the "
                            r"CPU execution path is deemed faster")
_NO_KERNEL = re.compile(r"kernel not found in registries for Op type: (?P<op>[A-Za-z0-9_.]+)"
                        r"(?: node name: (?P<name>[^\x1b\n]*))?")
_NOT_SUPPORTED = re.compile(r"kernel not supported\. Fallback to CPU execution provider for Op type: "
                            r"(?P<op>[A-Za-z0-9_.]+) node name: (?P<name>[^\x1b\n]*)")
_DROPPED = re.compile(r"Dropping the \w+ node: (?P<name>.*?) to CPU because")
_ORT_RECORD = re.compile(r"\[(?P<severity>[VIWEF]):onnxruntime:")
_PY_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")
_MEMCPY_OPS = ("MemcpyToHost", "MemcpyFromHost")

# Op types of shape computations: what GetCpuPreferredNodes moves to the CPU in practice (a Shape's output feeding
# Gather/Unsqueeze/Concat/Slice/Cast/arithmetic into a Reshape, Expand or ConstantOfShape).  Used only for a CPU
# node ORT's log gives no reason for; elementwise arithmetic is left out: on its own it says nothing.
SHAPE_OP_TYPES = frozenset({"Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Reshape",
                            "ConstantOfShape", "Range", "Expand", "Equal", "Where"})

PLACED, CPU_FALLBACK, CUDA_FALLBACK, BOTH_FALLBACK = "placed", "cpu-fallback", "cuda-fallback", "cpu-and-cuda-fallback"


class PlacementParseError(ValueError):
    """ORT's construction log has no usable "Node placements" section."""


def parse_node_placements(lines: Iterable[str] | str) -> dict[str, Any]:
    """The last "Node placements" section of an ORT VERBOSE log (pure).

    Returns {"by_provider": {ep: nodes}, "op_types": {ep: {op_type: n}}, "nodes": {ep: [(op_type, name)]},
    "listed": bool, "mismatch": [str]}; nodes are only listed by ORT when more than one provider holds nodes
    ("listed" False otherwise); "mismatch" names providers whose listed nodes do not add up to ORT's count.
    Raises PlacementParseError.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    section: dict[str, Any] | None = None
    current: str | None = None
    for line in lines:
        match = _PLACEMENT_MESSAGE.search(line)
        if not match:
            continue
        message = match["message"]
        if message.strip() == "Node placements":
            section, current = {"by_provider": {}, "op_types": {}, "nodes": {}, "listed": False}, None
            continue
        if section is None:
            continue
        if (m := _ALL_PLACED.match(message)) is not None:
            section["by_provider"][m["ep"]] = int(m["n"])
            current = None
        elif (m := _SOME_PLACED.match(message)) is not None:
            current = m["ep"]
            section["by_provider"][current] = int(m["n"])
            section["op_types"].setdefault(current, Counter())
            section["nodes"].setdefault(current, [])
            section["listed"] = True
        elif current is not None and message.startswith("  ") and message.strip():
            node = _NODE.match(message.rstrip())
            op, name = (node["op"], node["name"]) if node else (message.strip().split(" (", 1)[0], "")
            section["op_types"][current][op] += 1
            section["nodes"][current].append((op, name))
    if section is None:
        raise PlacementParseError("ONNX Runtime's VERBOSE session log has no 'Node placements' section "
                                  "(a minimal build, or a log format this parser does not know)")
    if not section["by_provider"]:
        raise PlacementParseError("ONNX Runtime's 'Node placements' section names no provider")
    # The counts are ORT's; a listing that does not add up to them (a node name across lines) is said, not trusted.
    counts = section["by_provider"]
    section["mismatch"] = [f"ORT lists {sum(ops.values())} of the {counts[ep]} node(s) on {ep}"
                           for ep, ops in section["op_types"].items() if sum(ops.values()) != counts[ep]]
    section["op_types"] = {ep: dict(ops) for ep, ops in section["op_types"].items()}
    return section


def cpu_reasons(lines: Iterable[str]) -> dict[str, str]:
    """Node name -> why ORT's log says it went to the CPU: "shape" (GetCpuPreferredNodes' deliberate choice),
    "no-kernel" or "not-supported" (the provider could not take it).  A fallback reason wins over "shape"."""
    reasons: dict[str, str] = {}
    for line in lines:
        if (m := _CPU_PREFERRED.search(line)) is not None:
            reasons.setdefault(m["name"], "shape")
        elif (m := _NO_KERNEL.search(line)) is not None and m["name"]:
            reasons[m["name"].rstrip()] = "no-kernel"
        elif (m := _NOT_SUPPORTED.search(line)) is not None or (m := _DROPPED.search(line)) is not None:
            reasons[m["name"].rstrip()] = "not-supported"
    return reasons


def _by_count(counts: dict[str, int] | Counter) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _split_cpu_nodes(nodes: list[tuple[str, str]], reasons: dict[str, str],
                     by_op_type: bool) -> tuple[Counter, Counter, Counter]:
    """(shape op types, fallback op types, fallback reasons) of the nodes on the CPU provider; a node ORT's log
    names no reason for is judged by its op type only where `by_op_type` (a provider that places shape
    computations on the CPU on purpose), else it is a fallback."""
    shape, fallback, why = Counter(), Counter(), Counter()
    for op, name in nodes:
        reason = reasons.get(name)
        if reason is None:  # ORT's log names no reason for this node: its op type decides, where that means something
            reason = "shape-by-op-type" if by_op_type and op in SHAPE_OP_TYPES else "unattributed"
        if reason.startswith("shape"):
            shape[op] += 1
            if reason != "shape":
                why[reason] += 1
        else:
            fallback[op] += 1
            why[reason] += 1
    return shape, fallback, why


def placement_summary(lines: Iterable[str] | str, requested_ep: str) -> dict[str, Any]:
    """What the run records as node_placement (pure; never raises: an unreadable log is status "unknown").

    cpu_fallback_nodes counts the compute nodes on CPUExecutionProvider when another provider was requested (0 for
    a cpu run: there the CPU is no fallback), cpu_op_types their op types, most frequent first; cpu_shape_nodes
    (and cpu_shape_op_types) the nodes ORT put on the CPU on purpose (shape computations).  A tensorrt run also
    records cuda_fallback_nodes / cuda_op_types: nodes the CUDA EP ran because TensorRT did not take them.
    cpu_reasons (where any) counts the CPU nodes not placed by ORT's own named shape choice: "no-kernel",
    "not-supported", "unattributed" (fallbacks) and "shape-by-op-type" (judged by op type: the log named no reason).
    verdict: "placed" | "cpu-fallback" | "cuda-fallback" | "cpu-and-cuda-fallback".
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    lines = list(lines)
    try:
        parsed = parse_node_placements(lines)
        reasons = cpu_reasons(lines)
    except PlacementParseError as exc:
        return {"status": "unknown", "reason": str(exc), "requested": requested_ep}
    except Exception as exc:  # noqa: BLE001 - recording the placement must never fail a run
        return {"status": "unknown", "reason": f"parsing ONNX Runtime's log failed: {type(exc).__name__}: {exc}",
                "requested": requested_ep}
    by_provider = _by_count(parsed["by_provider"])
    fallback = requested_ep != CPU_EP
    on_cpu = by_provider.get(CPU_EP, 0) if fallback else 0
    # Only the CUDA EP (also behind TensorRT) moves shape computations to the CPU on purpose.
    by_op_type = requested_ep in (CUDA_EP, TENSORRT_EP)
    shape, compute, why = (_split_cpu_nodes(parsed["nodes"].get(CPU_EP, []), reasons, by_op_type) if fallback
                           else (Counter(), Counter(), Counter()))
    # Nodes ORT counted but did not list (one provider has all of them) are compute nodes as far as anyone can tell.
    unlisted = on_cpu - sum(shape.values()) - sum(compute.values())
    summary: dict[str, Any] = {
        "status": "ok", "requested": requested_ep, "by_provider": by_provider,
        "cpu_fallback_nodes": on_cpu - sum(shape.values()) if unlisted >= 0 else sum(compute.values()),
        "cpu_op_types": _by_count(compute),
        "cpu_shape_nodes": sum(shape.values()),
        "cpu_shape_op_types": _by_count(shape),
        "memcpy_nodes": sum(n for ops in parsed["op_types"].values() for op, n in ops.items() if op in _MEMCPY_OPS),
    }
    if why:
        summary["cpu_reasons"] = _by_count(why)
    cuda_nodes = 0
    if requested_ep == TENSORRT_EP:
        cuda_ops = Counter({op: n for op, n in parsed["op_types"].get(CUDA_EP, {}).items() if op not in _MEMCPY_OPS})
        listed_memcpy = sum(n for op, n in parsed["op_types"].get(CUDA_EP, {}).items() if op in _MEMCPY_OPS)
        cuda_nodes = by_provider.get(CUDA_EP, 0) - listed_memcpy
        summary["cuda_fallback_nodes"], summary["cuda_op_types"] = cuda_nodes, _by_count(cuda_ops)
    cpu_flag = summary["cpu_fallback_nodes"] > 0
    summary["verdict"] = (BOTH_FALLBACK if cpu_flag and cuda_nodes else CPU_FALLBACK if cpu_flag else
                          CUDA_FALLBACK if cuda_nodes else PLACED)
    notes = list(parsed["mismatch"])
    if fallback and on_cpu and not parsed["listed"]:
        notes.append("every node is on CPUExecutionProvider; ORT lists no op types when one provider has all")
    if why.get("shape-by-op-type"):
        notes.append(f"{why['shape-by-op-type']} CPU node(s) counted as shape computations by op type: ORT's log "
                     f"names no reason for them")
    if requested_ep == OPENVINO_EP and by_provider.get(OPENVINO_EP):
        notes.append(f"{OPENVINO_EP} runs each subgraph it takes as one fused node: its count is subgraphs, not the "
                     f"model's ONNX nodes")
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


def placement_line(summary: dict[str, Any]) -> str:
    """One line for runner.log."""
    if summary.get("status") != "ok":
        return f"onnxruntime: node placement unknown: {summary.get('reason')}"
    counts = ", ".join(f"{ep} {n}" for ep, n in summary["by_provider"].items())
    line = f"onnxruntime: node placement: {counts}"
    if summary.get("cpu_shape_nodes"):
        ops = ", ".join(f"{op}:{n}" for op, n in summary["cpu_shape_op_types"].items())
        line += f"; shape computations on the CPU by ORT's design: {summary['cpu_shape_nodes']} node(s) ({ops})"
    if summary["cpu_fallback_nodes"]:
        ops = ", ".join(f"{op}:{n}" for op, n in summary["cpu_op_types"].items())
        line += f"; CPU fallback: {summary['cpu_fallback_nodes']} node(s)" + (f" ({ops})" if ops else "")
    if summary.get("cuda_fallback_nodes"):
        ops = ", ".join(f"{op}:{n}" for op, n in summary["cuda_op_types"].items())
        line += (f"; CUDA fallback inside the TensorRT run: {summary['cuda_fallback_nodes']} node(s)"
                 + (f" ({ops})" if ops else ""))
    return line


def log_passthrough(lines: Iterable[str]) -> list[str]:
    """The captured lines worth keeping in runner.log: ORT warnings and errors, and anything not ORT's VERBOSE/INFO.

    A line without an ORT record prefix continues the record before it (multi-line messages), except Python
    warnings, which are kept.
    """
    keep, out = True, []
    for line in lines:
        record = _ORT_RECORD.search(line[:160])
        if record:
            keep = record["severity"] in "WEF"
        elif _PY_WARNING.match(line):
            keep = True
        if keep:
            out.append(line)
    return out


def missing_kernel_ops(lines: Iterable[str]) -> list[str]:
    """Op types an execution provider logged "kernel not found in registries" for (a hint when a session fails)."""
    return sorted({m["op"] for line in lines if (m := _NO_KERNEL.search(line))})


@contextlib.contextmanager
def captured_stderr_fd(lines: list[str]):
    """Capture what is written to file descriptor 2 inside the block (ORT's C++ logger writes there) into `lines`.

    fd 2 is restored on the way out, also when the block raises; where fd 2 cannot be duplicated nothing is
    captured (the placement is then recorded as unknown).
    """
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines[:] = tmp.read().decode("utf-8", errors="replace").splitlines()
