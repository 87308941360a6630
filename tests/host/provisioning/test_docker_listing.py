"""Listing greenrt's containers survives a container removed while it is listed.

The Docker SDK lists container ids, then inspects each one. A container removed in between (another sweep's run
ending, its container auto-removed) answered 404, and the listing raised NotFound: a sweep starting beside another
one died in its leftover check (seen in CI, in test_faults_interrupt). The SDK's own ContainerCollection runs here
over an engine API that removes one container between the two calls.
"""
from __future__ import annotations

import os

import docker.errors
from docker.models.containers import ContainerCollection

from orchestrator.execution.launchers.docker import RUN_LABEL, greenrt_containers, leftover_containers
from orchestrator.provisioning.images import LABEL_PREFIX

DEAD_OWNER = "999999999"  # above any pid_max: no process has it


class EngineRemovingOneWhileListed:
    """The engine's API as the SDK calls it: `containers` lists, `inspect_container` answers for each id."""

    def __init__(self, containers: dict[str, dict]) -> None:
        self.containers_by_id = containers
        self.removed_while_listing = "gone"
        self.filters_asked: list[dict] = []

    def containers(self, all=False, filters=None, **_):
        self.filters_asked.append(filters)
        listed = [{"Id": cid} for cid in self.containers_by_id]
        self.containers_by_id.pop(self.removed_while_listing)  # auto-removed after the listing, before inspection
        return listed

    def inspect_container(self, container_id):
        if container_id not in self.containers_by_id:
            raise docker.errors.NotFound(f"No such container: {container_id}")
        return self.containers_by_id[container_id]


class Client:
    def __init__(self, api) -> None:
        self.api = api
        self.containers = ContainerCollection(client=self)


def _container(cid: str, owner: str) -> dict:
    return {"Id": cid, "Name": f"/greenrt-{cid}", "State": {"Status": "exited"},
            "Config": {"Labels": {RUN_LABEL: "1", LABEL_PREFIX + "owner-pid": owner}}}


def test_a_container_removed_while_listed_is_left_out_and_the_others_are_listed():
    api = EngineRemovingOneWhileListed({"gone": _container("gone", DEAD_OWNER),
                                        "ours": _container("ours", str(os.getpid()))})
    listed = greenrt_containers(Client(api))
    assert [c.id for c in listed] == ["ours"]
    assert api.filters_asked == [{"label": RUN_LABEL}]  # greenrt's containers only, not the engine's others


def test_the_leftover_check_of_a_starting_sweep_survives_the_race():
    api = EngineRemovingOneWhileListed({"gone": _container("gone", str(os.getpid())),
                                        "killed": _container("killed", DEAD_OWNER)})
    assert [c.name for c in leftover_containers(Client(api))] == ["greenrt-killed"]
