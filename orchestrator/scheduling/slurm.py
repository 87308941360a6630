"""Slurm through its command-line tools: sbatch scripts rendered as text (pure), then sbatch/scontrol/scancel.

Every call is an argument list, never a shell string; what reaches the scripts from the command line is quoted
(shlex) or refused when a #SBATCH line cannot carry it. No Python binding: pyslurm has no build for the Slurm
Debian ships, and the tools are what every cluster has.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import UserError

# States a job leaves by itself; anything else (PENDING, RUNNING, COMPLETING, ...) is still in progress.
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                   "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
ARRAY_SCRIPT, MERGE_SCRIPT, SUBMIT_SCRIPT = "shards.sbatch", "merge.sbatch", "submit.sh"


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_node: int | None = None
    time: str | None = None
    extra: tuple[str, ...] = ()  # further sbatch options, one per #SBATCH line, for the shards' array only


@dataclass(frozen=True)
class ShardCommand:
    """What every array task runs: greenrt sweep of the same config, its own shard, into the shared directory."""
    greenrt: str
    config: Path
    out: Path
    count: int
    policy: str
    launcher: str = "local"
    python: str | None = None
    powercap_root: str | None = None
    gpus: str = "all"

    def argv(self, shard: str) -> list[str]:
        argv = [self.greenrt, "sweep", "--config", str(self.config), "--out", str(self.out), "--shard", shard,
                "--shard-policy", self.policy, "--launcher", self.launcher, "--gpus", self.gpus]
        if self.python:
            argv += ["--python", self.python]
        if self.powercap_root:
            argv += ["--powercap-root", self.powercap_root]
        return argv


@dataclass(frozen=True)
class TaskState:
    state: str
    exit_code: str | None = None  # Slurm's "code:signal"
    node: str | None = None
    reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


def _sbatch_value(what: str, value: str) -> str:
    # A #SBATCH line ends at the newline and sbatch splits it at whitespace; % is a filename pattern in --output.
    if not value or re.search(r"[\s%]", value):
        raise UserError(f"{what} {value!r}: must be non-empty, without whitespace or '%', to go on an #SBATCH line")
    return value


def check_options(options: SlurmOptions) -> SlurmOptions:
    if options.partition is not None:
        _sbatch_value("--partition", options.partition)
    if options.time is not None:
        _sbatch_value("--time", options.time)
    if options.gpus_per_node is not None and options.gpus_per_node < 0:
        raise UserError(f"--gpus-per-node {options.gpus_per_node}: must be 0 or more")
    for arg in options.extra:
        if not arg.startswith("-") or "\n" in arg or "\r" in arg:
            raise UserError(f"--sbatch-arg {arg!r}: must be one sbatch option starting with '-' (e.g. --account=x), "
                            f"on one line")
    return options


def array_spec(tasks: list[int]) -> str:
    """Task ids as Slurm's --array wants them: ranges where contiguous (1-4, or 2,4-5)."""
    parts, ids = [], sorted(set(tasks))
    start = prev = ids[0]
    for i in ids[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if i is not None:
            start = prev = i
    return ",".join(parts)


def _common_lines(name: str, workdir: Path, options: SlurmOptions) -> list[str]:
    lines = [f"#SBATCH --job-name={_sbatch_value('job name', name)}",
             f"#SBATCH --chdir={_sbatch_value('working directory', str(workdir))}"]
    if options.partition:
        lines.append(f"#SBATCH --partition={options.partition}")
    if options.time:
        lines.append(f"#SBATCH --time={options.time}")
    return lines


def render_array_script(sweep_name: str, tasks: list[int], command: ShardCommand, options: SlurmOptions,
                        workdir: Path) -> str:
    shards_dir = command.out / "shards"
    lines = ["#!/bin/bash",
             f"# greenrt sweep {sweep_name}: shards {array_spec(tasks)} of {command.count} ({command.policy}), one "
             "array task per shard.",
             "# --exclusive: a node runs one task at a time, since two measurements on one node would corrupt each",
             "# other's energy. Resubmit by hand with submit.sh beside this file (it adds the merge job).",
             *_common_lines(f"greenrt-{sweep_name}", workdir, options),
             f"#SBATCH --array={array_spec(tasks)}",
             "#SBATCH --nodes=1",
             "#SBATCH --ntasks=1",
             "#SBATCH --exclusive",
             f"#SBATCH --output={_sbatch_value('--out', str(shards_dir))}/%a/slurm-%A_%a.out"]
    if options.gpus_per_node:
        lines.append(f"#SBATCH --gres=gpu:{options.gpus_per_node}")
    lines += [f"#SBATCH {arg}" for arg in options.extra]
    argv = command.argv("SHARD")
    shard_at = argv.index("SHARD")
    quoted = [shlex.quote(a) for a in argv]
    quoted[shard_at] = f'"${{SLURM_ARRAY_TASK_ID}}/{command.count}"'
    lines += ["set -euo pipefail", "exec " + " ".join(quoted)]
    return "\n".join(lines) + "\n"


def render_merge_script(sweep_name: str, greenrt: str, out: Path, options: SlurmOptions, workdir: Path) -> str:
    lines = ["#!/bin/bash",
             f"# greenrt sweep {sweep_name}: after every shard ended (afterany: finished, failed or cancelled), union",
             "# the shards' journals into runs.jsonl, count the missing runs, write the tables and the report.",
             *_common_lines(f"greenrt-{sweep_name}-merge", workdir, options),
             "#SBATCH --nodes=1",
             "#SBATCH --ntasks=1",
             f"#SBATCH --output={_sbatch_value('--out', str(out / 'shards'))}/merge-%j.out",
             "set -euo pipefail",
             "exec " + " ".join(shlex.quote(a) for a in (greenrt, "merge", str(out)))]
    return "\n".join(lines) + "\n"


def render_submit_script() -> str:
    return "\n".join([
        "#!/bin/bash",
        "# Submit the shards and their merge again, by hand; `greenrt sweep --scheduler slurm` does the same, and",
        "# submits only the shards with runs left. jobs.jsonl tells `greenrt status` and the merge which jobs.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        f"array=$(sbatch --parsable {ARRAY_SCRIPT})",
        'array="${array%%;*}"',
        f'merge=$(sbatch --parsable --dependency="afterany:${{array}}" {MERGE_SCRIPT})',
        'merge="${merge%%;*}"',
        "printf '{\"array_job\": \"%s\", \"merge_job\": \"%s\", \"by\": \"submit.sh\"}\\n' \"$array\" \"$merge\" >> jobs.jsonl",
        'echo "shards: array job ${array}; merge: job ${merge}"',
    ]) + "\n"


# A task cancelled while still pending leaves no record at all, and finished jobs are purged after MinJobAge.
NOT_KNOWN = "not known to Slurm: cancelled while pending, or forgotten after MinJobAge"


def require_tool(name: str) -> str:
    """The Slurm client tool's path, or a UserError saying it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} not found: the Slurm client tools (slurm-client) must be on PATH of the submitting "
                        f"host")
    return path


def sbatch(script: Path, dependency: str | None = None) -> str:
    argv = [require_tool("sbatch"), "--parsable"]
    if dependency:
        argv.append(f"--dependency={dependency}")
    done = subprocess.run([*argv, str(script)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise UserError(f"sbatch {script.name} refused: {(done.stderr or done.stdout).strip()[:500]}")
    return done.stdout.strip().split(";")[0]


def scancel(job: str) -> None:
    subprocess.run([require_tool("scancel"), job], capture_output=True, text=True, timeout=60, check=True)


def _task_ids(text: str) -> list[int]:
    """ArrayTaskId of scontrol: 3, or a pending remainder such as 2-4, 1,3 or 1-8%2."""
    ids = []
    for part in text.split("%")[0].split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            ids += range(int(a), int(b) + 1)
        elif part.isdigit():
            ids.append(int(part))
    return ids


def parse_scontrol(text: str) -> dict[int | None, TaskState]:
    """`scontrol show job ID -o`: one line per job or array task; key=value fields. Keyed by array task id."""
    states: dict[int | None, TaskState] = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(?:^|\s)([A-Za-z:/]+)=(\S*)", line))
        if "JobState" not in fields:
            continue
        node = fields.get("NodeList") if fields.get("NodeList") not in (None, "(null)", "") else None
        reason = fields.get("Reason") if fields.get("Reason") not in (None, "None") else None
        state = TaskState(fields["JobState"], fields.get("ExitCode"), node, reason)
        ids = _task_ids(fields["ArrayTaskId"]) if "ArrayTaskId" in fields else [None]
        for task in ids:
            states[task] = state
    return states


@dataclass
class JobQuery:
    states: dict[int | None, TaskState] = field(default_factory=dict)
    problem: str | None = None  # why nothing is known (no tools, job forgotten by slurmctld)


def job_states(job: str) -> JobQuery:
    """The state of a job, or of each task of an array job, as slurmctld knows it now."""
    tool = shutil.which("scontrol")
    if tool is None:
        return JobQuery(problem="scontrol not found")
    try:
        done = subprocess.run([tool, "show", "job", job, "-o"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return JobQuery(problem="scontrol timed out")
    if done.returncode != 0:
        # Finished jobs are forgotten after MinJobAge (300 s by default); without slurmdbd nothing remembers them.
        return JobQuery(problem=(done.stderr or done.stdout).strip()[:300] or f"scontrol exited {done.returncode}")
    return JobQuery(parse_scontrol(done.stdout))


def submit_shards(out: Path, sweep_name: str, tasks: list[int], command: ShardCommand, options: SlurmOptions,
                  workdir: Path) -> tuple[str, str]:
    """Write the scripts under out/shards/ and submit the array, then the merge after it: (array id, merge id)."""
    folder = out / "shards"
    for task in tasks:
        (folder / str(task)).mkdir(parents=True, exist_ok=True)  # sbatch does not create --output's folder
    (folder / ARRAY_SCRIPT).write_text(render_array_script(sweep_name, tasks, command, options, workdir))
    (folder / MERGE_SCRIPT).write_text(render_merge_script(sweep_name, command.greenrt, out, options, workdir))
    (folder / SUBMIT_SCRIPT).write_text(render_submit_script())
    (folder / SUBMIT_SCRIPT).chmod(0o755)
    array = sbatch(folder / ARRAY_SCRIPT)
    try:
        merge = sbatch(folder / MERGE_SCRIPT, dependency=f"afterany:{array}")
    except UserError as exc:
        raise UserError(f"{exc} (the shards run as job {array}: `scancel {array}`, or merge later with "
                        f"`greenrt merge {out}`)") from None
    return array, merge
