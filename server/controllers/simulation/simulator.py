"""The simulation as one piece: informer, clock and every simulated controller, started by `create_app`.

Opt-in (`kapi start --simulate`): without it kapi is kube-apiserver alone,
where a Deployment never gets a ReplicaSet and a Pod stays Pending. With it,
nodes, a scheduler, kubelets and kube-controller-manager's workload
controllers run in-process against the same stores any client writes to.
"""
from __future__ import annotations

import asyncio
from typing import Any

from kapi.controllers.simulation.clock import SimClock
from kapi.controllers.simulation.informer import Informer, Kind
from kapi.controllers.simulation.runtime import Cluster, Controller, SimulationSettings
from kapi.registry.store import Store
from kapi.storage.interfaces import Storage


def _controller_types() -> list[type[Controller]]:
    """Imported when a simulation starts: a server without --simulate never loads them."""
    from kapi.controllers.simulation.cronjobs import CronJobController
    from kapi.controllers.simulation.daemonsets import DaemonSetController
    from kapi.controllers.simulation.deployments import DeploymentController
    from kapi.controllers.simulation.endpointslices import EndpointsController
    from kapi.controllers.simulation.jobs import JobController
    from kapi.controllers.simulation.kubelet import Kubelet
    from kapi.controllers.simulation.nodes import NodeSimulator
    from kapi.controllers.simulation.replicasets import ReplicaSetController
    from kapi.controllers.simulation.scheduler import Scheduler
    from kapi.controllers.simulation.statefulsets import StatefulSetController

    return [NodeSimulator, Scheduler, Kubelet, ReplicaSetController, DeploymentController, StatefulSetController,
            DaemonSetController, JobController, CronJobController, EndpointsController]


class Simulation:
    def __init__(self, stores: dict[Kind, Store], storage: Storage, settings: SimulationSettings) -> None:
        self.settings = settings
        self.clock = SimClock(settings.speed, settings.manual_clock)
        self.informer = Informer(stores, storage)
        self.cluster = Cluster(stores, self.informer, self.clock, settings)
        self.controllers = [kind(self.cluster) for kind in _controller_types()]

    async def start(self) -> list[asyncio.Task[Any]]:
        """Sync the informer, then run the clock, the watch and every controller as tasks."""
        revision = await self.informer.sync()
        return [asyncio.create_task(self.clock.run()), asyncio.create_task(self.informer.run(revision)),
                *(asyncio.create_task(c.run()) for c in self.controllers)]

    def describe(self) -> dict[str, Any]:
        """What GET /kapi/simulation/clock answers."""
        return {"kind": "SimulationClock", "apiVersion": "kapi.dev/v1", "now": self.clock.rfc3339(),
                "epochSeconds": round(self.clock.now(), 3), "speed": self.clock.speed, "manual": self.clock.manual,
                "nodes": self.settings.nodes}

    def advance(self, seconds: float) -> dict[str, Any]:
        self.clock.advance(seconds)
        return self.describe()
