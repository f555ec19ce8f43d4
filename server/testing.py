"""Start a kapi server inside the current Python process, for tests.

    from server.testing import start_server

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

This module is public; its surface is `__all__`. It never imports `kapi_cli`.
"""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
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

from server.app import create_app
from server.config import ServerConfig
from server.testing_files import (
    KapiStartError,
    documents,
    staged_resource_dirs,
    user_tokens,
    write_kubeconfig,
    write_token_file,
)

__all__ = ["KapiStartError", "RunningServer", "start_server", "write_kubeconfig"]

_log = logging.getLogger(__name__)
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


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
class RunningServer:
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

    # -- clients ------------------------------------------------------------------------------------------------
    def api_client(self, *, user: str | None = None, service_account: str | None = None) -> Any:
        """A `kubernetes.client.ApiClient` for this server (needs the `kubernetes` package). Close it after use.

        Without arguments it is `system:masters`. `user` is one of the `users=` given to `start_server`
        (its bearer token); `service_account` ("namespace/name", created when missing) gets a real
        token from the TokenRequest API, so RBAC sees exactly what it would see in production.
        """
        try:
            from kubernetes import client
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("api_client() needs the `kubernetes` package: pip install kubernetes") from exc
        configuration = client.Configuration()
        configuration.host = self.url
        token = self.token(user=user, service_account=service_account)
        if token is not None:
            configuration.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(configuration)

    def token(self, *, user: str | None = None, service_account: str | None = None) -> str | None:
        """The bearer token `api_client` uses for `user` or `service_account` (None for neither)."""
        if user is not None and service_account is not None:
            raise ValueError("give user or service_account, not both")
        if user is not None:
            if user not in self._tokens:
                raise ValueError(f"unknown user {user!r}: declare it with start_server(users={{{user!r}: [groups]}})")
            return self._tokens[user]
        if service_account is None:
            return None
        namespace, _, name = service_account.partition("/")
        if not namespace or not name:
            raise ValueError(f"service_account must be 'namespace/name', not {service_account!r}")
        self.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}})
        status, body = self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        if status != 201:
            raise RuntimeError(f"a token for {service_account} was refused ({status}): {body}")
        return str(body["status"]["token"])

    def kubeconfig_for(self, *, user: str | None = None, groups: Sequence[str] = (),
                       service_account: str | None = None, path: str | Path | None = None) -> Path:
        """A kubeconfig in which kubectl (and client-go) act as `user` (with `groups`) or as
        `service_account` ("namespace/name"), by kube's impersonation: no credential is needed over
        loopback HTTP, and RBAC decides every request as for that identity."""
        if (user is None) == (service_account is None):
            raise ValueError("give exactly one of user or service_account")
        if service_account is not None:
            namespace, _, name = service_account.partition("/")
            user = f"system:serviceaccount:{namespace}:{name}"
        assert user is not None
        target = Path(path) if path is not None else self.root / f"kubeconfig-{uuid.uuid4().hex[:8]}"
        return write_kubeconfig(target, self.url, impersonate=user, impersonate_groups=tuple(groups))

    def apply(self, *objects: dict[str, Any] | str | Path) -> list[dict[str, Any]]:
        """Create each object (dicts, or YAML files of one or more documents), replacing one that exists.

        Objects are written as `system:masters`, in order: a Role before its RoleBinding.
        """
        written = []
        for obj in documents(objects):
            path = self._collection_path(obj)
            name = obj["metadata"]["name"]
            status, body = self.request("POST", path, obj)
            if status == 409:
                status, current = self.request("GET", f"{path}/{name}")
                if status == 200:
                    replacement = {**obj, "metadata": {**obj["metadata"],
                                                       "resourceVersion": current["metadata"]["resourceVersion"]}}
                    status, body = self.request("PUT", f"{path}/{name}", replacement)
            if status not in (200, 201):
                raise RuntimeError(f"applying {obj.get('kind')} {name!r} failed ({status}): {body}")
            written.append(body)
        return written

    def _collection_path(self, obj: dict[str, Any]) -> str:
        """The collection URL of `obj`'s kind, found through discovery."""
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        status, listing = self.request("GET", base)
        found = [r for r in (listing or {}).get("resources", []) if r.get("kind") == kind and "/" not in r["name"]]
        if status != 200 or not found:
            raise RuntimeError(f"this server does not serve {kind} in {api_version or 'no apiVersion'}")
        resource = found[0]
        if not resource.get("namespaced"):
            return f"{base}/{resource['name']}"
        namespace = obj["metadata"].setdefault("namespace", "default")
        return f"{base}/namespaces/{namespace}/{resource['name']}"

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json", timeout: float = 10.0,
                token: str | None = None) -> tuple[int, Any]:
        """One HTTP request with a JSON body (or none); returns (status, decoded JSON body or None).

        Without `token` the request is the test's own, `system:masters`."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            if payload is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = data.decode(errors="replace")
        return response.status, decoded

    # -- conveniences -------------------------------------------------------------------------------------------
    def clock(self) -> dict[str, Any]:
        """The simulated clock (`simulate=True`): now, speed, and whether it is manual."""
        return self._simulation_clock("GET")

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the simulated clock forward (`simulate=True`; with `simulate_manual_clock=True` it moves only
        so): due CronJobs fire, grace periods and minReadySeconds end. Returns the clock after the move."""
        return self._simulation_clock("POST", {"advance": seconds})

    def _simulation_clock(self, method: str, body: Any = None) -> dict[str, Any]:
        status, answer = self.request(method, "/kapi/simulation/clock", body)
        if status != 200:
            raise RuntimeError(f"the simulated clock refused ({status}): {answer}")
        return dict(answer)

    def create_namespace(self, name: str | None = None, *, prefix: str = "test-") -> str:
        """Create a namespace (default: a random name with `prefix`) and return its name."""
        name = name or f"{prefix}{uuid.uuid4().hex[:8]}"
        status, body = self.request("POST", "/api/v1/namespaces",
                                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        if status != 201:
            raise RuntimeError(f"creating namespace {name!r} failed ({status}): {body}")
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace; a missing one is fine. Does not wait for it to go away."""
        status, body = self.request("DELETE", f"/api/v1/namespaces/{name}")
        if status not in (200, 202, 404):
            raise RuntimeError(f"deleting namespace {name!r} failed ({status}): {body}")

    def apply_crds(self, *paths: str | Path, timeout: float = 10.0) -> list[str]:
        """Create (or replace) the CRDs in manifest files or directories; wait until each is Established.

        Returns the CRD names. For a session-wide server this is how a test adds definitions late.
        """
        from server.scheme.crd import crd_files, load_crd_manifests

        manifests = []
        for p in map(Path, paths):
            for f in crd_files(p) if p.is_dir() else [p]:
                manifests.extend(load_crd_manifests(f))
        names = [crd["metadata"]["name"] for crd in self.apply(*manifests)]
        deadline = time.monotonic() + timeout
        for name in names:
            while not self._established(name):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name!r} was not Established within {timeout}s")
                time.sleep(0.01)
        return names

    def _established(self, name: str) -> bool:
        status, body = self.request("GET", f"{CRDS}/{name}")
        conditions = ((body or {}).get("status", {}).get("conditions") or []) if status == 200 else []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)




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





