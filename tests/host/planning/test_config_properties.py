"""Property: any document made by mutating the shipped configs (wrong types, missing and unknown keys at every level,
non-finite, zero, negative and huge numbers, long and non-ASCII strings, duplicates) is either planned or refused
with one clear line per mistake; nothing else escapes the loader and the planner.

In process (the loader and the planner are pure), so that hundreds of examples run in seconds; the CLI's exit 2 and
untouched results folder are tested on a handful of such documents in test_config_cli.py. The profile in conftest.py
derandomizes the examples and prints the blob that replays a failure.
"""
from __future__ import annotations

import copy
import datetime as dt
import tomllib

import pytest
from hypothesis import given, settings, strategies as st

from orchestrator import paths
from orchestrator.errors import UserError
from orchestrator.planning.config import parse_config
from orchestrator.planning.gpus import GpuDescription
from orchestrator.planning.planner import HostCapabilities, plan_sweep

SHIPPED = {name: tomllib.loads((paths.PROJECT_ROOT / "configs" / f"{name}.toml").read_text())
           for name in ("quick", "study")}
# A host of this kind (24 GiB, no GPU), and one with a GPU, so that GPU cells are planned too.
HOSTS = (HostCapabilities(memory_bytes=24 * 2**30),
         HostCapabilities(gpus=(GpuDescription(0, "NVIDIA H200", "GPU-0", "00000000:19:00.0", True, True),),
                          memory_bytes=2 * 2**40))
SOURCE = "mutated.toml"

finite = st.floats(allow_nan=False, allow_infinity=False)
hostile_numbers = st.one_of(st.sampled_from([0, -1, 0.0, -0.0, -1.5, float("inf"), float("-inf"), float("nan"),
                                             2**63 - 1, -(2**63), 10**30, 1e308, 1e-308, True, False]),
                            st.integers(), finite)
hostile_strings = st.one_of(st.sampled_from(["", " ", "ünïcødé", "名前", "\n", "a\nb", "\x00", "\x1b[31m", "[red]x[/]",
                                             "../escape", "x" * 2_000, "torch/native/cpu", "resnet50", "MKLDNN"]),
                            st.text(max_size=80))
scalars = st.one_of(hostile_numbers, hostile_strings, st.booleans(),
                    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1)))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(hostile_strings, inner, max_size=3)),
                      max_leaves=6)


def _paths(node, prefix=()):
    """Every place in a document: each key of each table, each item of each list."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _parent(doc, path):
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated_documents(draw):
    doc = copy.deepcopy(SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))])
    for _ in range(draw(st.integers(1, 4))):
        places = list(_paths(doc))
        path = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "delete", "unknown key", "duplicate", "wrap"]))
        if not path:  # the document itself: add a key at the top
            doc[draw(hostile_strings)] = draw(values)
            continue
        parent, last = _parent(doc, path), path[-1]
        if action == "replace":
            parent[last] = draw(values)
        elif action == "delete":
            del parent[last]
        elif action == "unknown key":
            target = parent[last] if isinstance(parent[last], dict) else parent
            if isinstance(target, dict):
                target[draw(hostile_strings)] = draw(values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif action == "wrap":  # the right value inside the wrong type
            parent[last] = [parent[last]] if draw(st.booleans()) else {"value": parent[last]}
    return doc


def _assert_clear_refusal(message: str) -> None:
    lines = message.split("\n")
    assert lines and len(lines) == len(set(lines)), message  # one line per mistake, none twice
    for line in lines:
        assert line.isprintable(), repr(line)  # nothing breaks the line or the terminal
        assert ": " in line and line.split(": ", 1)[1].strip(), repr(line)  # names where, then says what


@pytest.mark.slow  # many generated configs, each planned
@settings(max_examples=500)
@given(doc=mutated_documents(), host=st.sampled_from(HOSTS))
def test_a_mutated_config_is_planned_or_refused_in_one_line_per_mistake(doc, host):
    try:
        config = parse_config(doc, source=SOURCE)
    except UserError as exc:
        _assert_clear_refusal(str(exc))
        assert all(line.startswith(f"{SOURCE}: ") for line in str(exc).split("\n"))
        return
    try:
        plan = plan_sweep(config, host)
    except UserError as exc:  # a batch that cannot fit this host
        _assert_clear_refusal(str(exc))
        assert "batch_sizes" in str(exc)
        return
    assert len(plan.runs) + len(plan.skipped) * config.repetitions >= 0
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)


@given(name=hostile_strings, seed=hostile_numbers, min_seconds=hostile_numbers, batch=hostile_numbers)
def test_every_mistake_of_a_document_is_listed(name, seed, min_seconds, batch):
    doc = copy.deepcopy(SHIPPED["quick"])
    doc.update(name=name, seed=seed, batch_sizes=[batch])
    doc["measure"]["min_seconds"] = min_seconds
    try:
        parse_config(doc, source=SOURCE)
    except UserError as exc:
        _assert_clear_refusal(str(exc))
        refused = {line.split(": ", 2)[1].split(" = ")[0] for line in str(exc).split("\n")}
    else:
        refused = set()
    # Each of the four keys is judged on its own: a mistake in one never hides another's.
    for key, ok in (("name", isinstance(name, str) and parse_ok({"name": name})),
                    ("seed", parse_ok({"seed": seed})),
                    ("measure.min_seconds", parse_ok({"measure": {**doc["measure"], "min_seconds": min_seconds}})),
                    ("batch_sizes.0", parse_ok({"batch_sizes": [batch]}))):
        assert (key not in refused) == ok, (key, refused)


def parse_ok(change: dict) -> bool:
    try:
        parse_config({**SHIPPED["quick"], **change})
    except UserError:
        return False
    return True
