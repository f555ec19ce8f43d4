"""Loads run in this process, or spread over several client processes.

Why: one Python client process can saturate one core, and on a small
machine that may be the limit of a figure rather than the server. With
`--client-procs N` each load is split over N long-lived worker processes:
each opens its share of the connections, waits at a start barrier, runs its
share of the requests and sends back its latencies, clock readings and CPU
time. The merged figure spans the first start to the last finish
(`time.perf_counter` is the system-wide monotonic clock on Linux, so the
processes' readings compare), and its client CPU is the sum over processes.

Workers are started with `spawn` once per run (a fork of a process holding
event loops and gRPC channels is not safe) and reused for every load.
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Protocol

from kapi_cli.bench.client import Plan, Result, Share, Target, merge_shares, run, run_load, run_share


@dataclass(frozen=True)
class Job:
    """One process's part of a load (pickled to the worker)."""

    target: Target
    connections: int
    indices: range
    plan: Plan


class Loader(Protocol):
    """Runs one load and says how it was run."""

    procs: int

    def load(self, name: str, target: Target, concurrency: int, total: int, plan: Plan) -> Result: ...

    def close(self) -> None: ...


class InProcessLoader:
    """The whole load on one event loop in this process (the default)."""

    procs = 1

    def load(self, name: str, target: Target, concurrency: int, total: int, plan: Plan) -> Result:
        return run(run_load(name, target, concurrency, total, plan))

    def close(self) -> None:
        pass


def split(concurrency: int, total: int, procs: int) -> list[tuple[int, range]]:
    """(connections, request indices) for each process that gets at least one connection.

    Connections and requests are both dealt out round robin, so the shares
    differ by at most one connection and one request.
    """
    used = min(procs, concurrency)
    conns = [concurrency // used + (k < concurrency % used) for k in range(used)]
    return [(conns[k], range(k, total, used)) for k in range(used)]


def _worker(pipe: Connection) -> None:
    """A client process: run jobs until told to stop (None)."""
    while True:
        job = pipe.recv()
        if job is None:
            return

        async def barrier() -> None:
            pipe.send("ready")
            pipe.recv()  # "go": every process has its connections open

        try:
            share = run(run_share(job.target, job.connections, job.indices, job.plan, barrier))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        pipe.send(share)


class ProcessPoolLoader:
    """Each load split over `procs` worker processes that start together."""

    def __init__(self, procs: int) -> None:
        self.procs = procs
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._workers = []
        for _ in range(procs):
            parent, child = context.Pipe()
            worker = context.Process(target=_worker, args=(child,), daemon=True)
            worker.start()
            self._pipes.append(parent)
            self._workers.append(worker)

    def load(self, name: str, target: Target, concurrency: int, total: int, plan: Plan) -> Result:
        parts = split(concurrency, total, self.procs)
        pipes = self._pipes[: len(parts)]
        for pipe, (connections, indices) in zip(pipes, parts):
            pipe.send(Job(target, connections, indices, plan))
        greetings = [pipe.recv() for pipe in pipes]
        ready = [pipe for pipe, said in zip(pipes, greetings) if said == "ready"]
        for pipe in ready:
            pipe.send("go")
        replies = [pipe.recv() for pipe in ready]  # drained even on failure: the pipes stay in step
        failed = [said for said in greetings if said != "ready"]
        if failed:
            raise RuntimeError(f"a client process failed before the load: {failed[0]}")
        return merge_shares(name, total, [self._share(reply) for reply in replies])

    @staticmethod
    def _share(message: object) -> Share:
        if not isinstance(message, Share):
            raise RuntimeError(f"a client process failed during the load: {message}")
        return message

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for worker in self._workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()


def make_loader(procs: int) -> Loader:
    return InProcessLoader() if procs <= 1 else ProcessPoolLoader(procs)
