"""Storage test fixtures: one real etcd for the whole session, and etcd-backed stores on it.

The conformance suites run against etcd as a third backend. Starting etcd
costs about half a second, so the session shares one single-member etcd
(started only when a test first needs it); each store gets its own key
prefix (`--etcd-prefix`), so tests cannot see each other's objects. etcd's
revision is global to the etcd, though: tests take a base revision first
(`await storage.current_revision()`) and assert relative to it.

Tests that kill, partition or compact etcd start one of their own
(`local_etcd`: one member, three, or TLS), stopped at teardown.

A missing etcd binary fails the etcd tests with a message saying how to get
one; it never skips them.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import pathlib
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest

from kapi_cli.etcd_local import EtcdNotFound, LocalEtcd, TLSFiles, etcd_binary
from kapi.storage.etcd import EtcdStorage
from kapi.storage.file import FileStorage
from kapi.storage.memory import MemoryStorage
from kapi.storage.etcd_client import EtcdClient, parse_endpoints

MakeEtcd = Callable[..., Awaitable[EtcdStorage]]


def require_etcd() -> None:
    """Fail (never skip) the calling test when there is no etcd binary."""
    try:
        binary = etcd_binary()
    except EtcdNotFound as exc:
        pytest.fail(f"the etcd storage tests need a real etcd: {exc}", pytrace=False)
    if not os.access(binary, os.X_OK):
        pytest.fail(f"the etcd storage tests need a real etcd: {binary} is not an executable "
                    "(install Debian's etcd-server, or point ETCD_BIN at an etcd)", pytrace=False)


def unique_prefix() -> str:
    return f"/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def etcd_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The client URL of one single-member etcd shared by the session's storage tests."""
    require_etcd()
    etcd = LocalEtcd.create(tmp_path_factory.mktemp("etcd-session"), size=1)
    try:
        etcd.start()
        yield etcd.endpoints
    finally:
        etcd.stop()


@pytest.fixture
def local_etcd(tmp_path: pathlib.Path) -> Iterator[Callable[..., LocalEtcd]]:
    """`start(size=1, tls=None)`: an etcd of the test's own (for tests that kill or compact it).

    Every etcd started is stopped at teardown, whatever the test did to it.
    """
    require_etcd()
    started: list[LocalEtcd] = []

    def start(size: int = 1, tls: TLSFiles | None = None) -> LocalEtcd:
        etcd = LocalEtcd.create(tmp_path / f"etcd{len(started)}", size=size, tls=tls)
        started.append(etcd)
        return etcd.start()

    try:
        yield start
    finally:
        for etcd in started:
            etcd.stop()


@pytest.fixture
def new_etcd_storage(etcd_endpoints: str) -> Callable[..., EtcdStorage]:
    """`build(**kwargs)`: an `EtcdStorage` on the session etcd, not started yet.

    Keyword arguments go to `EtcdStorage` (`prefix`, `event_window`,
    `watch_queue_size`, ...), plus `endpoints` for another etcd; the prefix
    is a fresh one unless given. A plain fixture, so async fixtures can get
    it with `request.getfixturevalue`; the caller starts and closes the store.
    """

    def build(endpoints: str = etcd_endpoints, **kwargs: Any) -> EtcdStorage:
        kwargs.setdefault("prefix", unique_prefix())
        return EtcdStorage(EtcdClient(parse_endpoints([endpoints])), **kwargs)

    return build


@pytest.fixture
async def make_etcd_storage(new_etcd_storage: Callable[..., EtcdStorage]) -> AsyncIterator[MakeEtcd]:
    """`await make(**kwargs)`: a started `new_etcd_storage(**kwargs)`, closed at teardown."""
    made: list[EtcdStorage] = []

    async def build(**kwargs: Any) -> EtcdStorage:
        store = new_etcd_storage(**kwargs)
        made.append(store)
        await store.start()
        return store

    try:
        yield build
    finally:
        for store in made:
            await store.close()


async def caught_up(storage: Any, timeout: float = 5.0) -> None:
    """Wait until the store's watch log holds every committed event.

    The in-process backends publish each event as the write commits; the
    etcd backend's log is fed by an etcd watch, a moment after the write
    returned. Its `health()` reports how far the feed got.
    """
    target = await storage.current_revision()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        health = await storage.health()
        reached = health.get("watch", {}).get("revision", target)
        if reached >= target:
            return
        if loop.time() > deadline:
            raise AssertionError(f"the watch feed stayed at {reached}, etcd is at {target}")
        await asyncio.sleep(0.01)


@pytest.fixture
def settle() -> Callable[[Any], Awaitable[None]]:
    """`await settle(storage)`: `caught_up` for tests (conftest modules are not importable)."""
    return caught_up


@pytest.fixture(params=["memory", "file", "etcd"])
async def make(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Any:
    """A factory of started stores of the parametrised backend, all closed at teardown.

    Keyword arguments (`event_window`, `watch_queue_size`) go to the backend;
    each etcd store is on the session's etcd, under a prefix of its own.
    """
    new_etcd = request.getfixturevalue("new_etcd_storage") if request.param == "etcd" else None
    made: list[Any] = []
    counter = itertools.count()

    async def build(**kwargs: Any) -> Any:
        store: Any
        if request.param == "memory":
            store = MemoryStorage(**kwargs)
        elif request.param == "file":
            store = FileStorage(tmp_path / f"data{next(counter)}", **kwargs)
        else:
            assert new_etcd is not None
            store = new_etcd(**kwargs)
        made.append(store)
        await store.start()
        return store

    try:
        yield build
    finally:
        for store in made:
            await store.close()
