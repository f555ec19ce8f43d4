"""The main API server a delegating kapi asks: reached through a kubeconfig, or in-cluster from a Pod.

kube's extension servers (`--authentication-kubeconfig`, `--authorization-kubeconfig`)
send TokenReviews and SubjectAccessReviews to the cluster's kube-apiserver and read
`kube-system/extension-apiserver-authentication` from it. `in-cluster` means the
Pod's service account: the token and CA that kubelet mounts, and the
`KUBERNETES_SERVICE_HOST`/`_PORT` environment it sets.

Every failure to ask (unreadable kubeconfig, connect, TLS, non-2xx, a body that is
not JSON) is a `MainServerError` whose text says what went wrong.
"""
from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import orjson
import yaml

if TYPE_CHECKING:
    import httpx

IN_CLUSTER = "in-cluster"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT_SECONDS = 10.0  # kube's delegating ClientTimeout


class MainServerError(Exception):
    """The main server could not be asked, or its answer could not be read."""


@dataclass(frozen=True)
class Connection:
    """Where the main server is and how to talk to it (a kubeconfig's current context, resolved)."""

    server: str
    ca_pem: str = ""
    insecure: bool = False
    token: str = field(default="", repr=False)
    client_cert_pem: str = ""
    client_key_pem: str = field(default="", repr=False)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_pem or None)
        if self.insecure:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if self.client_cert_pem:
            _load_client_pair(context, self.client_cert_pem, self.client_key_pem)
        return context

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _load_client_pair(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """`load_cert_chain` reads files only: hand it a private temporary one."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".pem") as handle:
        os.chmod(handle.name, 0o600)
        handle.write(cert_pem + "\n" + key_pem)
        handle.flush()
        context.load_cert_chain(handle.name)


def _data_or_file(entry: Mapping[str, Any], key: str, base: Path) -> str:
    """A kubeconfig's `<key>-data` (base64) or `<key>` (a path relative to the kubeconfig)."""
    data = entry.get(f"{key}-data")
    if isinstance(data, str) and data:
        return base64.b64decode(data).decode("ascii")
    path = entry.get(key)
    if isinstance(path, str) and path:
        return (base / path).read_text() if not Path(path).is_absolute() else Path(path).read_text()
    return ""


def _named(items: Any, name: str, what: str) -> Mapping[str, Any]:
    for item in items or ():
        if isinstance(item, Mapping) and item.get("name") == name:
            found = item.get(what)
            return found if isinstance(found, Mapping) else {}
    raise MainServerError(f"no {what} named {name!r}")


def from_kubeconfig(path: Path) -> Connection:
    """The current context of a kubeconfig file; `MainServerError` when it is unusable."""
    try:
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, Mapping):
            raise MainServerError("not a kubeconfig")
        context = _named(doc.get("contexts"), doc.get("current-context", ""), "context")
        cluster = _named(doc.get("clusters"), context.get("cluster", ""), "cluster")
        user = _named(doc.get("users"), context.get("user", ""), "user") if context.get("user") else {}
        base = path.parent
        token = user.get("token") or ""
        if not token and user.get("tokenFile"):
            token = (base / user["tokenFile"]).read_text().strip()
        server = cluster.get("server")
        if not isinstance(server, str) or not server:
            raise MainServerError("its cluster has no server")
        return Connection(server.rstrip("/"), _data_or_file(cluster, "certificate-authority", base),
                          bool(cluster.get("insecure-skip-tls-verify")), str(token),
                          _data_or_file(user, "client-certificate", base), _data_or_file(user, "client-key", base))
    except (OSError, ValueError, yaml.YAMLError, TypeError) as exc:
        raise MainServerError(f"kubeconfig {path}: {exc}") from None
    except MainServerError as exc:
        raise MainServerError(f"kubeconfig {path}: {exc}") from None


def in_cluster(env: Mapping[str, str] = os.environ, directory: Path = SERVICE_ACCOUNT_DIR) -> Connection:
    """The Pod's service account, as client-go's InClusterConfig reads it."""
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise MainServerError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                              "KUBERNETES_SERVICE_PORT must be defined")
    try:
        token = (directory / "token").read_text().strip()
        ca = (directory / "ca.crt").read_text()
    except OSError as exc:
        raise MainServerError(f"in-cluster service account: {exc}") from None
    host = f"[{host}]" if ":" in host else host
    return Connection(f"https://{host}:{port}", ca, token=token)


def connection_for(where: str) -> Connection:
    """`--authentication-kubeconfig`/`--authorization-kubeconfig`: a path or `in-cluster`."""
    return in_cluster() if where == IN_CLUSTER else from_kubeconfig(Path(where))


def _answer(response: httpx.Response, what: str) -> dict[str, Any]:
    if not 200 <= response.status_code < 300:
        raise MainServerError(f"{what}: the server answered {response.status_code}: {response.text[:200]}")
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise MainServerError(f"{what}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise MainServerError(f"{what}: the answer is not an object")
    return body


class MainServer:
    """An HTTP client of the main server: async POSTs while serving, one sync GET at start-up."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"MainServer({self.connection.server!r})"

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(verify=self.connection.ssl_context(), timeout=TIMEOUT_SECONDS,
                                             headers=self.connection.headers())
        url = self.connection.server + path
        try:
            response = await self._client.post(url, content=orjson.dumps(body),
                                               headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise MainServerError(f'Post "{url}": {exc}') from None
        return _answer(response, f'Post "{url}"')

    def get_sync(self, path: str) -> dict[str, Any]:
        import httpx

        url = self.connection.server + path
        try:
            response = httpx.get(url, verify=self.connection.ssl_context(), timeout=TIMEOUT_SECONDS,
                                 headers=self.connection.headers())
        except httpx.HTTPError as exc:
            raise MainServerError(f'Get "{url}": {exc}') from None
        return _answer(response, f'Get "{url}"')

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
