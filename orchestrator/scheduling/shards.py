"""Splitting a plan into shards: pure functions of the plan, the shard count and the policy.

Every shard is the same plan (same config digest) filtered to its runs, so a shard's journal is an ordinary
journal, a resumed shard skips what it recorded, and merging is a union by run id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from orchestrator.analysis.adaptive import group_of
from orchestrator.errors import UserError
from orchestrator.planning.planner import Plan, PlannedRun

# by-repetition first: each host measures every runtime, so runtime comparisons stay paired within one host.
# by-group: each shard holds whole groups (model, batch size, precision: the runtimes that compete), every
# repetition of them, so that an adaptive sweep's shard runs its own rounds and decides what it holds alone.
POLICIES = ("by-repetition", "by-cell", "by-group")
DEFAULT_POLICY = POLICIES[0]
ADAPTIVE_POLICY = "by-group"


@dataclass(frozen=True)
class ShardSpec:
    index: int  # 1-based, as Slurm's array task ids are here
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UserError(f"--shard {text!r}: expected i/N with 1 <= i <= N, e.g. 2/4")
    return ShardSpec(int(match[1]), int(match[2]))


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise UserError(f"unknown shard policy {policy!r}; valid: {', '.join(POLICIES)}")
    return policy


def policy_for(policy: str | None, adaptive: dict | None) -> str:
    """The policy a sweep's shards split by: as asked, or by default by-repetition, and by-group for an adaptive
    sweep (`adaptive`: its repetitions table), whose rounds need every repetition of a group in one shard."""
    if policy is None:
        return ADAPTIVE_POLICY if adaptive else DEFAULT_POLICY
    check_policy(policy)
    if not adaptive or policy == "by-group":
        return policy
    stop = adaptive.get("stop")
    if policy == "by-cell" and stop == "precision":  # a precision rule judges each cell alone
        return policy
    apart = "each repetition" if policy == "by-repetition" else "a group's runtimes"
    also = ", or by-cell with stop = 'precision'" if policy == "by-repetition" else ""
    raise UserError(f"--shard-policy {policy}: an adaptive sweep (stop = {stop!r}) decides each round from the "
                    f"rounds before it, and {policy} puts {apart} in different shards; valid: by-group (the "
                    f"default for an adaptive sweep){also}")


def _balanced_blocks(items: list, count: int) -> list[list]:
    """Contiguous blocks whose sizes differ by at most one, the larger ones first."""
    size, extra = divmod(len(items), count)
    blocks, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        blocks.append(items[start:end])
        start = end
    return blocks


def split_runs(plan: Plan, count: int, policy: str = DEFAULT_POLICY) -> list[tuple[PlannedRun, ...]]:
    """The runs of each of `count` shards, each in the plan's order; together exactly the plan's runs."""
    check_policy(policy)
    if count < 1:
        raise UserError(f"--shards {count}: needs at least 1")
    if policy == "by-repetition":
        units = sorted({run.repetition for run in plan.runs})
        key = lambda run: run.repetition  # noqa: E731
        what = "repetitions"
    elif policy == "by-group":
        units = sorted({group_of(run.cell.key) for run in plan.runs})
        key = lambda run: group_of(run.cell.key)  # noqa: E731
        what = "groups (model, batch size, precision)"
    else:
        units = sorted({run.cell.key for run in plan.runs})
        key = lambda run: run.cell.key  # noqa: E731
        what = "runnable cells"
    if count > max(len(units), 1):
        hint = "; use fewer shards or --shard-policy by-cell" if policy == "by-repetition" else "; use fewer shards"
        what = what.split(" (")[0]
        raise UserError(f"{count} shards by {policy.removeprefix('by-')} need at least {count} {what}, "
                        f"the plan has {len(units)}{hint}")
    if policy == "by-repetition":
        owner = {unit: i for i, block in enumerate(_balanced_blocks(units, count)) for unit in block}
    else:
        # Round-robin over the sorted cells (or groups) spreads each model's cells (and their costs) over the shards.
        owner = {unit: i % count for i, unit in enumerate(units)}
    shards: list[list[PlannedRun]] = [[] for _ in range(count)]
    for run in plan.runs:
        shards[owner[key(run)]].append(run)
    return [tuple(s) for s in shards]


def shard_plan(plan: Plan, spec: ShardSpec, policy: str = DEFAULT_POLICY) -> Plan:
    """The plan as one shard runs it: same digest and skipped cells, only its runs."""
    return replace(plan, runs=split_runs(plan, spec.count, policy)[spec.index - 1])
