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
from typing import Any, Callable, Iterable, Sequence

import uvicorn
import yaml

from server.app import create_app
from server.config import ServerConfig

__all__ = ["KapiStartError", "RunningServer", "start_server", "write_kubeconfig"]

_log = logging.getLogger(__name__)
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class KapiStartError(RuntimeError):
    """The server could not start (bad manifest, lifespan failure, not ready in time)."""


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handlers: it runs in a non-main thread, stopped by `should_exit`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def write_kubeconfig(path: Path, url: str, *, name: str = "kapi", namespace: str | None = None) -> Path:
    """Write a credential-free kubeconfig (cluster, user and context `name`) for `url`; returns `path`."""
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


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
    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` for this server (needs the `kubernetes` package). Close it after use."""
        try:
            from kubernetes import client
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("api_client() needs the `kubernetes` package: pip install kubernetes") from exc
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json", timeout: float = 10.0) -> tuple[int, Any]:
        """One HTTP request with a JSON body (or none); returns (status, decoded JSON body or None)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
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
        names = []
        for manifest in manifests:
            name = manifest["metadata"]["name"]
            status, body = self.request("POST", CRDS, manifest)
            if status == 409:
                status, current = self.request("GET", f"{CRDS}/{name}")
                replacement = {**manifest, "metadata": {**manifest["metadata"],
                                                        "resourceVersion": current["metadata"]["resourceVersion"]}}
                status, body = self.request("PUT", f"{CRDS}/{name}", replacement)
            if status not in (200, 201):
                raise RuntimeError(f"applying CRD {name!r} failed ({status}): {body}")
            names.append(name)
        deadline = time.monotonic() + timeout
        for name in names:
            while not self._established(name):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name!r} was not Established within {timeout}s")
                time.sleep(0.01)
        return names

    def _established(self, name: str) -> bool:
        status, body = self.request("GET", f"{CRDS}/{name}")
        conditions = (body or {}).get("status", {}).get("conditions", []) if status == 200 else []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _staged_resource_dirs(resources: Iterable[str | Path], root: Path) -> tuple[Path, ...]:
    """Directories as they are; single manifest files are copied into one staging directory under `root`."""
    dirs: list[Path] = []
    files: list[Path] = []
    for item in map(lambda r: Path(r).expanduser().resolve(), resources):
        if item.is_dir():
            dirs.append(item)
        elif item.is_file():
            files.append(item)
        else:
            raise KapiStartError(f"resources: {item} is neither a file nor a directory")
    if files:
        staging = root / "resources"
        staging.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            shutil.copyfile(f, staging / f"{i:03d}-{f.name}")
        dirs.append(staging)
    return tuple(dirs)


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
    **config: Any,
) -> RunningServer:
    """Start kapi in a background thread and return once `/readyz` answers 200.

    backend: "memory" (default) or "file" (objects under `root`).
    resources: CRD manifest directories or files applied at start-up.
    examples: also load the shipped examples (the foos and pizza-router plugins, pizza and JenkinsService CRDs).
    root: the server's `file_rootpath`; default a temporary directory removed by `stop()`.
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
        cfg = ServerConfig(
            name=settings.pop("name", f"test-{bound_port}"),
            backend=backend,
            file_rootpath=root_path,
            bind_address=host,
            insecure_port=bound_port,
            secure_port=0,
            resource_dirs=_staged_resource_dirs(resources, root_path),
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
                            server, thread, sock, cleanup)
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
    return running
