"""Which launcher a sweep uses: the one asked for, or with "auto", Docker where its images are ready, else local."""
from __future__ import annotations

from typing import Iterable, Mapping

LAUNCHERS = ("auto", "docker", "local")


def choose_launcher(requested: str, engine_problem: str | None, image_states: Mapping[str, str],
                    environments: Iterable[str]) -> tuple[str, str]:
    """(launcher, why). `image_states` maps environment -> "ready" | "stale" | "absent"; pure, for testing."""
    if requested not in LAUNCHERS:
        raise ValueError(f"unknown launcher {requested!r}; valid: {', '.join(LAUNCHERS)}")
    needed = sorted(set(environments))
    if requested == "local":
        return "local", "asked for (--launcher local)"
    if requested == "docker":
        return "docker", ("asked for (--launcher docker); stale images are rebuilt as they were built, runs whose "
                          "image is absent fail with the command that builds it")
    if engine_problem:
        return "local", f"no Docker engine ({engine_problem})"
    not_ready = [f"{env} ({image_states.get(env, 'absent')})" for env in needed if image_states.get(env) != "ready"]
    if not_ready:
        return "local", (f"images not ready: {', '.join(not_ready)}; `greenrt images build` them to measure in "
                         "containers")
    return "docker", f"Docker engine and images ready for {', '.join(needed)}"
