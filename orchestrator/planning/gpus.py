"""What an NVIDIA GPU is to greenrt, wherever one travels: a typed description, and which GPUs a run is given.

NVML numbers GPUs in PCI bus order; CUDA, by default, fastest first. So a GPU is handed to a runner by its UUID
(CUDA_VISIBLE_DEVICES accepts UUIDs), and a run's energy is matched to NVML's handles by UUID or PCI bus id, never
by position. Pure: no NVML here, only the descriptions the sensor made.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# GPUs whose nvmlDeviceGetPowerUsage is a 1-second average: Ampere and newer, except GA100 (A100, A30, A800), for
# which NVIDIA documents an instantaneous reading. Patterns, not bare substrings, because "A10" is inside "A100".
AVERAGED_POWER_GPUS: tuple[str, ...] = (
    r"\bG?H(100|200|800|20)\b",  # Hopper: H100, H200, H800, H20, GH200
    r"\bG?B(100|200|300)\b",  # Blackwell data centre: B100, B200, GB200, B300
    r"\bL(4|20|40S?)\b",  # Ada data centre: L4, L20, L40, L40S
    r"\bA(2|10G?|10M|16|40)\b",  # Ampere GA10x data centre: A2, A10, A10G, A16, A40
    r"\bRTX A\d{4}",  # Ampere workstation: RTX A4000 ... A6000
    r"\bRTX (30|40|50)\d\d",  # GeForce RTX 30xx (Ampere), 40xx (Ada), 50xx (Blackwell)
    r"\bAda\b",  # "RTX 6000 Ada Generation" and other Ada workstation cards
    r"\bBlackwell\b",  # "RTX PRO 6000 Blackwell ..."
)
_AVERAGED_RE = re.compile("|".join(f"(?:{p})" for p in AVERAGED_POWER_GPUS), re.IGNORECASE)

ALL_GPUS = "all"
# Below this, a 1-second-averaged power reading cannot follow the load; the counter is unaffected.
SHORT_WINDOW_S = 5.0


def power_reading_is_averaged(gpu_name: str) -> bool:
    return _AVERAGED_RE.search(gpu_name) is not None


@dataclass(frozen=True)
class GpuDescription:
    index: int  # NVML's index (PCI bus order), as nvidia-smi and Docker's device requests number GPUs
    name: str
    uuid: str | None
    pci_bus_id: str | None
    energy_counter: bool  # nvmlDeviceGetTotalEnergyConsumption works (Volta and newer)
    power_is_1s_average: bool
    memory_bytes: int | None = None  # nvmlDeviceGetMemoryInfo's total; None where NVML did not say
    # nvmlDeviceGetCudaComputeCapability as "major.minor" ("9.0" on Hopper): which machine code or PTX a CUDA
    # runtime's binaries need to carry to run here. None where NVML did not say.
    compute_capability: str | None = None
    # MIG mode currently enabled (nvmlDeviceGetMigMode); None where the GPU has no MIG (or NVML did not say).
    mig_enabled: bool | None = None

    @property
    def channel(self) -> str:
        """The sampler's channel of this GPU."""
        return f"gpu-{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> GpuDescription:
        return GpuDescription(int(data["index"]), str(data["name"]), data.get("uuid"), data.get("pci_bus_id"),
                              bool(data.get("energy_counter")), bool(data.get("power_is_1s_average")),
                              int(data["memory_bytes"]) if data.get("memory_bytes") else None,
                              str(data["compute_capability"]) if data.get("compute_capability") else None,
                              data.get("mig_enabled"))

    def label(self) -> str:
        return f"{self.channel} {self.name}"


class GpuSelectionError(ValueError):
    """--gpus names a GPU this host does not have; the message lists the valid choices."""


def _normalise_bus_id(bus_id: str) -> str:
    # NVML writes 00000000:19:00.0; lspci and CUDA write 0000:19:00.0: compare the tail.
    return bus_id.lower().split(":", 1)[-1] if bus_id.count(":") == 2 else bus_id.lower()


def _matches(gpu: GpuDescription, token: str) -> bool:
    if token.isdigit():
        return gpu.index == int(token)
    if gpu.uuid and token.lower() == gpu.uuid.lower():
        return True
    return bool(gpu.pci_bus_id) and _normalise_bus_id(token) == _normalise_bus_id(gpu.pci_bus_id)


def select_gpus(spec: str, gpus: Sequence[GpuDescription]) -> tuple[GpuDescription, ...]:
    """The GPUs `--gpus` names: "all", or comma-separated NVML indices, UUIDs or PCI bus ids, in NVML order."""
    spec = spec.strip()
    if spec == ALL_GPUS:
        return tuple(gpus)
    chosen: list[GpuDescription] = []
    for token in filter(None, (t.strip() for t in spec.split(","))):
        found = [g for g in gpus if _matches(g, token)]
        if not found:
            valid = "; ".join(f"{g.index} = {g.uuid or '?'} ({g.pci_bus_id or '?'}, {g.name})" for g in gpus)
            raise GpuSelectionError(f"--gpus {spec!r}: no GPU {token!r} on this host; valid: {ALL_GPUS}, or "
                                    f"indices/UUIDs/PCI bus ids of {valid or 'no GPU (NVML sees none)'}")
        chosen.extend(g for g in found if g not in chosen)
    if not chosen:
        raise GpuSelectionError(f"--gpus {spec!r} names no GPU; valid: {ALL_GPUS}, or comma-separated indices")
    return tuple(sorted(chosen, key=lambda g: g.index))


# Why greenrt hands no MIG-enabled GPU to a run: said by doctor, plan and sweep alike.
MIG_EXPLANATION = ("MIG mode is enabled: NVML's energy counter covers the whole GPU (every MIG instance together), "
                   "and a parent GPU's UUID gives CUDA no device, so greenrt hands it to no run")


def mig_note(gpu: GpuDescription) -> str:
    return f"{gpu.label()}: {MIG_EXPLANATION}"


def usable_for_runs(gpus: Sequence[GpuDescription]) -> tuple[GpuDescription, ...]:
    """The GPUs a run may be given: every one but those in MIG mode."""
    return tuple(g for g in gpus if not g.mig_enabled)


def all_mig_reason(gpus: Sequence[GpuDescription]) -> str | None:
    """Why no GPU run can go ahead on these (selected) GPUs: all of them are MIG-enabled; None otherwise."""
    if not gpus or usable_for_runs(gpus):
        return None
    return (f"every selected GPU is MIG-enabled ({', '.join(g.channel for g in gpus)}): NVML's energy counter "
            "covers the whole GPU and a parent GPU's UUID gives CUDA no device, so greenrt hands none to a run")


def gpus_per_run_refusal(selected: Sequence[GpuDescription], per_run: int) -> str | None:
    """Why `gpus_per_run` cannot be met by the selected GPUs (one line, naming the valid range); None: it can."""
    usable = usable_for_runs(selected)
    if not usable or per_run <= len(usable):
        return None  # no usable GPU: the planner skips the GPU cells, with that reason
    mig = len(selected) - len(usable)
    return (f"gpus_per_run = {per_run}, but --gpus selects {len(usable)} GPU(s) a run can be given"
            + (f" ({mig} more in MIG mode)" if mig else "") + f"; valid: 1..{len(usable)}, or select more GPUs")


def assign_gpus(selected: Sequence[GpuDescription], per_run: int = 1) -> tuple[GpuDescription, ...]:
    """The GPUs one GPU run is given: the first `per_run` of the selection, in NVML order, skipping MIG-enabled ones.

    Every selected GPU is still sampled; only these are charged to the run.
    """
    return usable_for_runs(sorted(selected, key=lambda g: g.index))[:per_run]


def sm_architecture(compute_capability: str | None) -> str | None:
    """"9.0" -> "sm_90": how CUDA binaries name the machine code a GPU of this compute capability runs."""
    if not compute_capability:
        return None
    major, _, minor = compute_capability.partition(".")
    return f"sm_{major}{minor or '0'}"


def cuda_visible_devices(gpus: Iterable[GpuDescription]) -> str:
    """CUDA_VISIBLE_DEVICES for these GPUs: UUIDs where NVML gave them (order-proof), else NVML indices."""
    return ",".join(g.uuid or str(g.index) for g in gpus)


def from_details(details: Iterable[dict[str, Any]]) -> tuple[GpuDescription, ...]:
    return tuple(GpuDescription.from_dict(d) for d in details)
