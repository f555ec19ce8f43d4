"""Start a kapi server inside the current Python process, for tests.

    from kapi.testing import start_server

    with start_server(resources=["crds/"]) as kapi:
        kapi.url          # "http://127.0.0.1:<free port>"
        kapi.kubeconfig   # path of a kubeconfig for it (no credentials needed)
        kapi.api_client() # a kubernetes.client.ApiClient, if `kubernetes` is installed

The server runs `create_app(config)` under uvicorn in a background thread with
its own event loop, listening on a free loopback port over plain HTTP with
loopback trust (`authn_allow_localhost`): the Python client, kopf and kubectl
reach it through the written kubeconfig without any credentials. `stop()` (or
leaving the `with` block) shuts it down gracefully, joins the thread and
closes the port; a temporary root (`file_rootpath`) is removed.

Authorization is kube's RBAC, and the test itself is `system:masters`. To see
what a controller would see in production, give the server its RBAC objects and
act as its identity:

    with start_server(objects=["deploy/rbac.yaml"], users={"bob": ["viewers"]}) as kapi:
        kapi.api_client(service_account="operators/my-operator")  # a real ServiceAccount token
        kapi.api_client(user="bob")                               # bob's bearer token
        kapi.kubeconfig_for(service_account="operators/my-operator")  # kubectl, by impersonation

Every test can have a cluster of its own, in the same server, in a few milliseconds; a prepared state
is saved once and forked per test; faults are asked for on purpose:

    base = kapi.create_cluster("base"); base.apply_crds("crds/"); base.apply("fixtures.yaml")
    kapi.save_snapshot("prepared", cluster="base")
    with kapi.create_cluster(snapshot="prepared") as cluster:   # deleted at the end of the block
        cluster.kubeconfig, cluster.api_client()                # as for the server itself
        cluster.faults.conflict("configmaps", count=2)          # the next 2 writes get 409
        cluster.faults.expire_watches()                         # open watches end with 410 Expired

This module is public; its surface is `__all__`. It never imports `kapi_cli`.
"""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import uvicorn

from kapi.app import create_app
from kapi.config import ServerConfig
from kapi.testing_client import ApiEndpoint, FaultInjector
from kapi.testing_files import (
    KapiStartError,
    staged_resource_dirs,
    user_tokens,
    write_kubeconfig,
    write_token_file,
)

__all__ = ["FaultInjector", "KapiStartError", "LogicalCluster", "RunningServer", "start_server", "write_kubeconfig"]

_log = logging.getLogger(__name__)


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handlers: it runs in a non-main thread, stopped by `should_exit`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield




def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency through uvicorn[standard]
        return asyncio.new_event_loop
    return uvloop.new_event_loop


@dataclass
class RunningServer(ApiEndpoint):
    """A kapi server running in a background thread of this process. Use `stop()` or `with`."""

    config: ServerConfig
    url: str
    kubeconfig: Path
    _server: _ThreadServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _sock: socket.socket = field(repr=False)
    _cleanup_root: bool = field(default=False, repr=False)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)  # user → bearer token (`users=`)

    @property
    def host(self) -> str:
        return self.config.bind_address

    @property
    def port(self) -> int:
        return self.config.insecure_port

    @property
    def root(self) -> Path:
        """The server's `file_rootpath` (file backend data, the kubeconfig)."""
        return self.config.file_rootpath

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- life cycle ---------------------------------------------------------------------------------------------
    def stop(self, timeout: float = 15.0) -> None:
        """Shut down gracefully and wait for the thread; idempotent."""
        self._server.should_exit = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        self._sock.close()
        if self._cleanup_root:
            shutil.rmtree(self.root, ignore_errors=True)
            self._cleanup_root = False

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logical clusters -----------------------------------------------------------------------------------
    def create_cluster(self, name: str | None = None, *, snapshot: str | None = None) -> LogicalCluster:
        """A new isolated cluster in this server (`/clusters/<name>/`), empty or forked from a saved `snapshot`.

        Its objects, CRDs, namespaces, RBAC and resourceVersions are its own; delete it with `delete()` (or
        use it as a context manager)."""
        body = {"name": name or f"test-{uuid.uuid4().hex[:10]}", **({"snapshot": snapshot} if snapshot else {})}
        status, answer = self.request("POST", "/kapi/clusters", body)
        if status != 201:
            raise RuntimeError(f"creating cluster {body['name']!r} failed ({status}): {answer}")
        return self.cluster(answer["name"])

    def cluster(self, name: str) -> LogicalCluster:
        """The client side of existing cluster `name` (its kubeconfig written under the server's root)."""
        url = f"{self.url}/clusters/{name}"
        return LogicalCluster(self, name, url, write_kubeconfig(self.root / f"kubeconfig-cluster-{name}", url,
                                                                name=f"kapi-{name}"), self._tokens)

    def save_snapshot(self, name: str, *, cluster: str = "root") -> dict[str, Any]:
        """Save `cluster`'s objects (and CRDs) as snapshot `name`, to fork clusters from."""
        status, answer = self.request("POST", "/kapi/snapshots", {"name": name, "cluster": cluster})
        if status != 201:
            raise RuntimeError(f"saving snapshot {name!r} failed ({status}): {answer}")
        return dict(answer)

    def has_snapshot(self, name: str) -> bool:
        return self.request("GET", f"/kapi/snapshots/{name}")[0] == 200

    def delete_snapshot(self, name: str) -> None:
        status, answer = self.request("DELETE", f"/kapi/snapshots/{name}")
        if status not in (200, 404):
            raise RuntimeError(f"deleting snapshot {name!r} failed ({status}): {answer}")


@dataclass
class LogicalCluster(ApiEndpoint):
    """One isolated cluster of a `RunningServer`: its own objects, CRDs, RBAC and faults, at `url`."""

    server: RunningServer = field(repr=False)
    name: str
    url: str
    kubeconfig: Path
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def root(self) -> Path:
        return self.server.root

    @property
    def prefix(self) -> str:
        return f"/clusters/{self.name}"

    def save_snapshot(self, name: str) -> dict[str, Any]:
        """Save this cluster's state as snapshot `name` (fork it with `create_cluster(snapshot=name)`)."""
        return self.server.save_snapshot(name, cluster=self.name)

    def connection_info(self) -> Any:
        """A `kopf.ConnectionInfo` for this cluster, for an operator's `@kopf.on.login()` handler."""
        import kopf

        return kopf.ConnectionInfo(server=self.url, default_namespace="default")

    def delete(self) -> None:
        """Delete the cluster and everything in it; a missing one is fine."""
        status, answer = self.server.request("DELETE", f"/kapi/clusters/{self.name}")
        if status not in (200, 404):
            raise RuntimeError(f"deleting cluster {self.name!r} failed ({status}): {answer}")
        self.kubeconfig.unlink(missing_ok=True)

    def __enter__(self) -> LogicalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()



def _ready(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start_server(
    *,
    backend: str = "memory",
    resources: Sequence[str | Path] = (),
    examples: bool = False,
    root: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    access_log: bool = False,
    shutdown_timeout: int = 2,
    ready_timeout: float = 10.0,
    objects: Sequence[dict[str, Any] | str | Path] = (),
    users: dict[str, Sequence[str]] | None = None,
    **config: Any,
) -> RunningServer:
    """Start kapi in a background thread and return once `/readyz` answers 200.

    backend: "memory" (default) or "file" (objects under `root`).
    resources: CRD manifest directories or files applied at start-up.
    examples: also load the shipped examples (the foos and pizza-router plugins, pizza and JenkinsService CRDs).
    root: the server's `file_rootpath`; default a temporary directory removed by `stop()`.
    objects: manifests (dicts or YAML files) created once the server is ready: RBAC objects, ServiceAccounts, ...
    users: user name → groups; each gets a bearer token (`RunningServer.token(user=...)`, `api_client(user=...)`).
    port: 0 picks a free loopback port. Further keyword arguments are `ServerConfig` fields.
    """
    cleanup = root is None
    root_path = Path(tempfile.mkdtemp(prefix="kapi-")) if root is None else Path(root).expanduser().resolve()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        root_path.mkdir(parents=True, exist_ok=True)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
        bound_port = int(sock.getsockname()[1])
        settings = {"kubectl_disabled": True, "authn_allow_localhost": True, **config}
        tokens = user_tokens(users or {})
        if tokens:
            settings["token_auth_file"] = write_token_file(root_path / "test-users.csv", tokens, users or {})
        cfg = ServerConfig(
            name=settings.pop("name", f"test-{bound_port}"),
            backend=backend,
            file_rootpath=root_path,
            bind_address=host,
            insecure_port=bound_port,
            secure_port=0,
            resource_dirs=staged_resource_dirs(resources, root_path),
            load_examples=examples,
            **settings,
        )
        app = create_app(cfg)  # manifests are read here: a bad one raises before any thread starts
        server = _ThreadServer(uvicorn.Config(
            app, host=host, port=bound_port, http="httptools", log_level=log_level, log_config=None,
            access_log=access_log, lifespan="on", proxy_headers=False, timeout_graceful_shutdown=shutdown_timeout,
        ))
    except BaseException:
        sock.close()
        if cleanup:
            shutil.rmtree(root_path, ignore_errors=True)
        raise

    failure: list[BaseException] = []

    def target() -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the starting thread (or logged if it has gone)
            failure.append(exc)
            _log.exception("kapi server thread failed")

    url_host = f"[{host}]" if ":" in host else host
    thread = threading.Thread(target=target, name=f"kapi-server-{bound_port}", daemon=True)
    running = RunningServer(cfg, f"http://{url_host}:{bound_port}",
                            write_kubeconfig(root_path / "kubeconfig", f"http://{url_host}:{bound_port}"),
                            server, thread, sock, cleanup, tokens)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            running.stop()
            reason = f": {failure[0]!r}" if failure else " (see the log for the application's start-up error)"
            raise KapiStartError(f"kapi did not start on {running.url}{reason}")
        time.sleep(0.001)
    while not _ready(host, bound_port):
        if time.monotonic() > deadline:
            running.stop()
            raise KapiStartError(f"kapi on {running.url} never answered /readyz")
        time.sleep(0.005)
    if objects:
        try:
            running.apply(*objects)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            running.stop()
            raise KapiStartError(f"kapi on {running.url} could not apply its objects: {exc}") from exc
    return running





