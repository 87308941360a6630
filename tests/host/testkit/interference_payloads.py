"""Interference payloads shaped as the observer makes them, for tests of the policy, the record and the tables."""
from __future__ import annotations

from orchestrator.measurement.interference import verdict_reasons
from orchestrator.results.interference_payload import CpuFrequency, GpuOthers, Interference, ProcessShare, Thresholds


def payload(others_share: float, *, comm: str = "python3", pid: int = 4242, cores: int = 2,
            window_s: float = 2.0, steal: float | None = 0.0) -> Interference:
    """A window in which one other process used `others_share` of the machine; flagged as the observer would."""
    cpu_s = others_share * window_s * cores
    top = [ProcessShare(pid=pid, comm=comm, cpu_s=round(cpu_s, 3), share=others_share)] if others_share else []
    made = Interference(window_s=window_s, looks=5, cores=cores, others_cpu_s=round(cpu_s, 3),
                        others_share=others_share, top=top, excluded_pids=[1000, 1001], host_busy_share=0.9,
                        steal_share=steal, load_1m_max=2.0,
                        frequency=CpuFrequency(status="unreadable", reason="no cpufreq in this test"),
                        gpu=GpuOthers(status="not observed", reason="the run was given no GPU"),
                        thresholds=Thresholds(), flagged=False)
    made.reasons = verdict_reasons(made)
    made.flagged = bool(made.reasons)
    return made
