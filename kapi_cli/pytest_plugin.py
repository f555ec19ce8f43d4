"""kapi's pytest plugin, registered through the `pytest11` entry point: installing kapi is enough.

Fixtures (nothing starts unless a test asks for one of them):

- `kapi_server` (session): a `kapi.testing.RunningServer` on a free loopback port, HTTP,
  no credentials needed; `KUBECONFIG` points at its kubeconfig for the session (restored afterwards; an already
  imported `kubernetes` client, which reads it only at import, is pointed there too).
- `kapi_namespace` (function): the name of a fresh namespace in it, deleted after the test.
- `kapi_kubeconfig` (session): the kubeconfig path, for tests that only need that.
- `kapi_cluster` (function): a `kapi.testing.LogicalCluster` of `kapi_server` for this test alone (its own
  objects, CRDs, namespaces, RBAC and resourceVersions; a few milliseconds to make), deleted after the test;
  `KUBECONFIG` points at it during the test, so the `kubernetes` client and kopf's default login reach it
  (`kapi_cluster.api_client()`, `kapi_cluster.connection_info()` for an explicit kopf login).
  `@pytest.mark.kapi_snapshot("name")` forks it from a saved snapshot; when no snapshot of that name exists
  yet, a fixture of that name is requested first (it prepares a cluster and saves the snapshot, once).
- `kapi_faults` (function): the faults of the test's cluster (`kapi_cluster` when the test uses it, else
  `kapi_server`): `fail`, `delay`, `conflict`, `webhook_timeout`, `pause_storage`, `expire_watches`,
  `compact` (`kapi.testing_client.FaultInjector`); every fault is taken back when the test ends.
- `kapi_api_client` (function): a factory: `kapi_api_client(service_account="ns/name")` gives a
  `kubernetes` ApiClient acting with that ServiceAccount's real token, `kapi_api_client(user="bob")`
  one with a `--kapi-user` user's token, `kapi_api_client()` the administrator; closed after the test.
  RBAC decides what each may do, as in production.

Options: `--kapi-resources PATH` (repeatable; CRD manifest file or directory loaded at
start-up), `--kapi-backend memory|file|etcd` (etcd: `--kapi-etcd-servers URLS`, or a private etcd
started for the session), `--kapi-examples` (also load kapi's shipped example CRDs and plugins),
`--kapi-plugin MODULE` (repeatable; a Python API-group plugin module, as `kapi start --plugin`),
`--kapi-user NAME=GROUP,GROUP` (repeatable; a user with a bearer token, for `kapi_api_client(user=...)`),
`--kapi-simulate` (nodes, scheduler, kubelets and workload controllers, as `kapi start --simulate`: a
Deployment becomes Available), with `--kapi-simulate-nodes N`, `--kapi-simulate-speed X`,
`--kapi-simulate-manual-clock` (move it with `kapi_server.advance(seconds)`) and
`--kapi-simulate-node-capacity cpu=4,memory=8Gi`; each also an ini option (`kapi_simulate = true`).
Markers: `@pytest.mark.kapi_resources("crds/", ...)` applies CRD manifests (paths relative to the
test file) to the session server before the test, and waits until they are Established;
`@pytest.mark.kapi_objects("rbac.yaml", ...)` creates (or replaces) any objects, such as an
operator's ServiceAccount, Role and RoleBinding, before the test (both go to `kapi_cluster` when the test uses
it, else to the session server); `@pytest.mark.kapi_simulate` says a
test needs the simulation: when any collected test has it, the session server simulates.

This module imports only pytest at import time, so pytest start-up pays nothing for it.
"""
from __future__ import annotations

import contextlib
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from kapi_cli.etcd_local import LocalEtcd
    from kapi.testing import LogicalCluster, RunningServer
    from kapi.testing_client import FaultInjector

MARKER = "kapi_resources"
OBJECTS_MARKER = "kapi_objects"
SIMULATE_MARKER = "kapi_simulate"
SNAPSHOT_MARKER = "kapi_snapshot"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kapi", "kapi: a local Kubernetes API server for tests")
    group.addoption("--kapi-resources", action="append", default=[], metavar="PATH",
                    help="CRD manifest file or directory for the kapi_server fixture (repeatable).")
    group.addoption("--kapi-backend", choices=("memory", "file", "etcd"), default="memory",
                    help="Storage backend of the kapi_server fixture (default: memory).")
    group.addoption("--kapi-etcd-servers", default="", metavar="URLS",
                    help="etcd for --kapi-backend etcd (default: a private etcd started for the session).")
    group.addoption("--kapi-examples", action="store_true", default=False,
                    help="Also load kapi's shipped example CRDs into the kapi_server fixture.")
    group.addoption("--kapi-plugin", action="append", default=[], metavar="MODULE",
                    help="Python plugin module (API groups, admission, routers) for kapi_server (repeatable).")
    group.addoption("--kapi-user", action="append", default=[], metavar="NAME=GROUPS",
                    help="A user of kapi_server with a bearer token, groups comma-separated (repeatable).")
    group.addoption("--kapi-simulate", action="store_true", default=None,
                    help="Simulate nodes, scheduler, kubelets and workload controllers in kapi_server "
                         "(ini: kapi_simulate).")
    group.addoption("--kapi-simulate-nodes", type=int, default=None, metavar="N",
                    help="Simulated nodes (default 3; ini: kapi_simulate_nodes).")
    group.addoption("--kapi-simulate-speed", type=float, default=None, metavar="X",
                    help="Simulated seconds per real second (default 1; ini: kapi_simulate_speed).")
    group.addoption("--kapi-simulate-manual-clock", action="store_true", default=None,
                    help="The simulated clock moves only by kapi_server.advance() (ini: kapi_simulate_manual_clock).")
    group.addoption("--kapi-simulate-node-capacity", default=None, metavar="NAME=QTY,...",
                    help="Each simulated node's capacity, e.g. cpu=4,memory=8Gi (ini: kapi_simulate_node_capacity).")
    parser.addini("kapi_simulate", "Simulate workloads in kapi_server (as --kapi-simulate).", type="bool",
                  default=False)
    parser.addini("kapi_simulate_nodes", "Simulated nodes (as --kapi-simulate-nodes).", default="")
    parser.addini("kapi_simulate_speed", "Simulated clock speed (as --kapi-simulate-speed).", default="")
    parser.addini("kapi_simulate_manual_clock", "Manual simulated clock (as --kapi-simulate-manual-clock).",
                  type="bool", default=False)
    parser.addini("kapi_simulate_node_capacity", "Simulated node capacity (as --kapi-simulate-node-capacity).",
                  default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(*paths): apply CRD manifests (files or directories, relative to the test file) "
                   "to the kapi_server fixture before the test")
    config.addinivalue_line(
        "markers", f"{OBJECTS_MARKER}(*paths): create or replace the objects of YAML manifests (relative to the "
                   "test file) in the kapi_server fixture before the test")
    config.addinivalue_line(
        "markers", f"{SNAPSHOT_MARKER}(name): fork the test's kapi_cluster from the saved snapshot `name` (made "
                   "first by the fixture of that name when it does not exist yet)")
    config.addinivalue_line(
        "markers", f"{SIMULATE_MARKER}: the test needs simulated workloads (nodes, kubelets, controllers): "
                   "the session's kapi_server simulates when any collected test has this marker")


@pytest.fixture(scope="session")
def kapi_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A kapi server for the whole session; `KUBECONFIG` points at it while it runs."""
    from kapi.testing import start_server

    opts = request.config.option
    root = tmp_path_factory.mktemp("kapi")
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if opts.kapi_backend == "etcd":
            servers = opts.kapi_etcd_servers or stack.enter_context(_private_etcd(root / "etcd")).endpoints
            extra = {"etcd_servers": tuple(servers.split(",")), "etcd_prefix": f"/kapi-test-{uuid.uuid4().hex[:12]}"}
        extra.update(_simulation(request))
        server = start_server(backend=opts.kapi_backend, resources=opts.kapi_resources,
                              examples=opts.kapi_examples, root=root, plugins=tuple(opts.kapi_plugin),
                              users=_users(opts.kapi_user), **extra)
        stack.callback(server.stop)
        with pytest.MonkeyPatch.context() as patch:
            _point_kubeconfig_at(patch, str(server.kubeconfig))
            yield server


def _simulation(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ServerConfig simulation fields from options, ini and `kapi_simulate` markers ({} when off).

    An option wins over its ini value; a marker on any collected test turns the simulation on, since
    the one session server must already simulate when that test runs."""
    config = request.config

    def setting(name: str) -> Any:
        value = config.getoption(name)
        return config.getini(name) if value is None else value

    marked = any(item.get_closest_marker(SIMULATE_MARKER) for item in request.session.items)
    if not (setting("kapi_simulate") or marked):
        return {}
    from kapi_cli.simulate_flags import DEFAULT_CAPACITY_TEXT, DEFAULT_NODES, parse_capacity

    try:
        nodes = int(_or(setting("kapi_simulate_nodes"), DEFAULT_NODES))
        speed = float(_or(setting("kapi_simulate_speed"), 1.0))
        capacity = parse_capacity(_or(setting("kapi_simulate_node_capacity"), DEFAULT_CAPACITY_TEXT))
    except ValueError as exc:
        raise pytest.UsageError(f"kapi simulation settings: {exc}") from None
    if nodes < 0 or not speed > 0:
        raise pytest.UsageError("kapi simulation settings: nodes must be 0 or more and the speed positive")
    return {"simulate": True, "simulate_nodes": nodes, "simulate_speed": speed,
            "simulate_manual_clock": bool(setting("kapi_simulate_manual_clock")),
            "simulate_node_capacity": capacity}


def _or(value: Any, default: Any) -> Any:
    """An unset ini value is "": the default then (while an explicit 0 stays 0)."""
    return default if value is None or value == "" else value


def _users(specs: list[str]) -> dict[str, list[str]]:
    """`--kapi-user bob=viewers,devs` → {"bob": ["viewers", "devs"]}."""
    users: dict[str, list[str]] = {}
    for spec in specs:
        name, _, groups = spec.partition("=")
        if not name.strip():
            raise pytest.UsageError(f"--kapi-user {spec!r}: expected NAME=GROUP,GROUP")
        users[name.strip()] = [g.strip() for g in groups.split(",") if g.strip()]
    return users


def _private_etcd(path: Path) -> LocalEtcd:
    """A single-member etcd on free loopback ports, for this session only."""
    from kapi_cli.etcd_local import LocalEtcd

    return LocalEtcd.create(path)


def _point_kubeconfig_at(patch: pytest.MonkeyPatch, path: str) -> None:
    """Set `KUBECONFIG`; the `kubernetes` client reads it once, at import, so an imported one is told too."""
    patch.setenv("KUBECONFIG", path)
    for module_name in ("kubernetes.config.kube_config", "kubernetes.config"):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "KUBE_CONFIG_DEFAULT_LOCATION"):
            patch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", path)


@pytest.fixture(scope="session")
def kapi_kubeconfig(kapi_server: RunningServer) -> Path:
    """Path of the kubeconfig of `kapi_server` (HTTP, no credentials)."""
    return kapi_server.kubeconfig


@pytest.fixture
def kapi_namespace(kapi_server: RunningServer) -> Iterator[str]:
    """A fresh namespace in `kapi_server`, deleted after the test."""
    name = kapi_server.create_namespace()
    try:
        yield name
    finally:
        kapi_server.delete_namespace(name)


@pytest.fixture
def kapi_api_client(kapi_server: RunningServer) -> Iterator[Any]:
    """A factory of `kubernetes` ApiClients for `kapi_server`, as a ServiceAccount, a user or the admin."""
    made: list[Any] = []

    def make(*, user: str | None = None, service_account: str | None = None) -> Any:
        made.append(kapi_server.api_client(user=user, service_account=service_account))
        return made[-1]

    try:
        yield make
    finally:
        for api_client in made:
            api_client.close()


@pytest.fixture
def kapi_cluster(request: pytest.FixtureRequest, kapi_server: RunningServer) -> Iterator[LogicalCluster]:
    """An isolated cluster of `kapi_server` for this test; `KUBECONFIG` points at it while the test runs."""
    cluster = kapi_server.create_cluster(snapshot=_snapshot(request, kapi_server))
    try:
        with pytest.MonkeyPatch.context() as patch:
            _point_kubeconfig_at(patch, str(cluster.kubeconfig))
            yield cluster
    finally:
        cluster.delete()


def _snapshot(request: pytest.FixtureRequest, server: RunningServer) -> str | None:
    """The snapshot `@pytest.mark.kapi_snapshot(name)` names, made by the fixture `name` if it is missing."""
    marker = request.node.get_closest_marker(SNAPSHOT_MARKER)
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        raise pytest.UsageError(f"@pytest.mark.{SNAPSHOT_MARKER} takes one snapshot name")
    name = marker.args[0]
    if not server.has_snapshot(name):
        try:
            request.getfixturevalue(name)
        except pytest.FixtureLookupError:
            pytest.fail(f"no snapshot {name!r} was saved, and no fixture {name!r} saves it", pytrace=False)
        if not server.has_snapshot(name):
            pytest.fail(f"the fixture {name!r} did not save snapshot {name!r} "
                        f"(kapi_server.save_snapshot({name!r}, cluster=...))", pytrace=False)
    return name


@pytest.fixture
def kapi_faults(request: pytest.FixtureRequest, kapi_server: RunningServer) -> Iterator[FaultInjector]:
    """The faults of this test's cluster (`kapi_cluster` if the test uses it, else `kapi_server`), all taken
    back when the test ends."""
    target: Any = request.getfixturevalue("kapi_cluster") if "kapi_cluster" in request.fixturenames else kapi_server
    faults = target.faults
    try:
        yield faults
    finally:
        faults.clear()


@pytest.fixture(autouse=True)
def _kapi_markers(request: pytest.FixtureRequest) -> None:
    """Apply the CRDs of `@pytest.mark.kapi_resources(...)` (waiting until Established), then create the
    objects of `@pytest.mark.kapi_objects(...)`, in the test's `kapi_cluster` if it uses one, else in
    `kapi_server`; does nothing (starts nothing) without them."""
    base = Path(str(request.node.fspath)).parent
    for marker_name, method in ((MARKER, "apply_crds"), (OBJECTS_MARKER, "apply")):
        markers = list(request.node.iter_markers(marker_name))
        if markers:
            name = "kapi_cluster" if "kapi_cluster" in request.fixturenames else "kapi_server"
            target: Any = request.getfixturevalue(name)
            getattr(target, method)(*[base / p for marker in reversed(markers) for p in marker.args])
