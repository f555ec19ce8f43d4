"""Talk to a running instance: readiness (`/readyz`) and object counts, over HTTPS when it has it.

Credentials come from the instance's root, as a kubeconfig would use them:
the kubectl token (`<root>/kubectl.token`), else the client certificate
(`<root>/cert/client.crt`/`client.key`). They are used as request headers or
TLS material only, never printed.
"""
from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from kapi_certs.layout import CertPaths
from kapi_cli.state import InstanceState

if TYPE_CHECKING:  # httpx is imported where it is used: `kapi start` should not pay for it
    import httpx

PROBE_TIMEOUT = 2.0
LIST_TIMEOUT = 3.0


def read_token(root: Path) -> Optional[str]:
    """The kubectl token stored under `root`, or None."""
    try:
        token = (root / "kubectl.token").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def tls_context(root: Path, client_cert: bool = False) -> Optional[ssl.SSLContext]:
    """A context trusting the instance's CA (None when there is no CA yet), with the client cert if asked."""
    paths = CertPaths(root / "cert")
    if not paths.ca_crt.is_file():
        return None
    ctx = ssl.create_default_context(cafile=str(paths.ca_crt))
    if client_cert:
        ctx.load_cert_chain(str(paths.client_crt), str(paths.client_key))
    return ctx


def readyz(url: str, verify: ssl.SSLContext | bool = True, timeout: float = PROBE_TIMEOUT) -> bool:
    import httpx

    try:
        return httpx.get(url.rstrip("/") + "/readyz", verify=verify, timeout=timeout).status_code == 200
    except (httpx.HTTPError, ssl.SSLError, OSError):
        return False


def is_ready(root: Path, https: Optional[str], http: Optional[str], timeout: float = PROBE_TIMEOUT) -> bool:
    """`/readyz` answers 200 on every port: HTTPS verified against the instance's CA, and HTTP.

    Every port, not one: the server opens its listeners one after the other.
    """
    if not https and not http:
        return False
    if https:
        ctx = tls_context(root)
        if ctx is None or not readyz(https, ctx, timeout):
            return False
    return not http or readyz(http, False, timeout)


def api_client(state: InstanceState, timeout: float = LIST_TIMEOUT) -> Optional[httpx.Client]:
    """An authenticated client for the instance, or None when kapi holds no usable credentials."""
    import httpx

    root = state.root
    token = read_token(root)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if state.https_url:
        paths = CertPaths(root / "cert")
        use_cert = not token and paths.client_crt.is_file() and paths.client_key.is_file()
        try:
            ctx = tls_context(root, client_cert=use_cert)
        except (OSError, ssl.SSLError):
            ctx = None
        if ctx is not None and (token or use_cert):
            return httpx.Client(base_url=state.https_url, verify=ctx, headers=headers, timeout=timeout)
    if state.http_url:
        # A token goes over plain HTTP only to loopback; without one, localhost allowance may still apply.
        loopback = httpx.URL(state.http_url).host in ("127.0.0.1", "::1", "localhost")
        return httpx.Client(base_url=state.http_url, headers=headers if loopback else {}, timeout=timeout)
    return None


def _count(client: httpx.Client, path: str) -> Optional[int]:
    resp = client.get(path, params={"limit": 1})
    if resp.status_code != 200:
        return None
    body = resp.json()
    meta = body.get("metadata") or {}
    items = len(body.get("items") or [])
    if not meta.get("continue"):
        return items
    if isinstance(meta.get("remainingItemCount"), int):
        return items + int(meta["remainingItemCount"])
    total, cont = 0, ""
    while True:  # no remainingItemCount: page through
        params: dict[str, Any] = {"limit": 500}
        if cont:
            params["continue"] = cont
        resp = client.get(path, params=params)
        if resp.status_code != 200:
            return None
        body = resp.json()
        total += len(body.get("items") or [])
        cont = (body.get("metadata") or {}).get("continue") or ""
        if not cont:
            return total


def _resources(client: httpx.Client) -> list[tuple[str, str]]:
    """(display name, list path) for every listable resource in discovery, namespaces first."""
    out: list[tuple[str, str]] = []
    groups: list[tuple[str, str]] = [("", "/api/v1")]
    resp = client.get("/apis")
    if resp.status_code == 200:
        for group in resp.json().get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            if preferred:
                groups.append((group.get("name", ""), f"/apis/{preferred}"))
    for group, base in groups:
        resp = client.get(base)
        if resp.status_code != 200:
            continue
        for res in resp.json().get("resources") or []:
            name = res.get("name", "")
            if "/" in name or "list" not in (res.get("verbs") or []):
                continue
            out.append((f"{name}.{group}" if group else name, f"{base}/{name}"))
    out.sort(key=lambda r: (r[0] != "namespaces", r[0]))
    return out


def object_counts(state: InstanceState) -> Optional[dict[str, int]]:
    """Objects per resource (cluster-wide), or None when the instance cannot be listed."""
    import httpx

    client = api_client(state)
    if client is None:
        return None
    try:
        with client:
            resources = _resources(client)
            if not resources:
                return None
            with ThreadPoolExecutor(max_workers=8) as pool:
                counts = list(pool.map(lambda r: _count(client, r[1]), resources))
    except (httpx.HTTPError, ssl.SSLError, OSError, ValueError):
        return None
    result = {name: n for (name, _), n in zip(resources, counts) if n is not None}
    return result or None


def storage_report(state: InstanceState) -> Optional[dict[str, Any]]:
    """The server's own report on its backend (`/kapi/storage`): etcd endpoints, leader, revision, db size."""
    import httpx

    client = api_client(state, timeout=PROBE_TIMEOUT + 1)
    if client is None:
        return None
    try:
        with client:
            resp = client.get("/kapi/storage")
            report = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ssl.SSLError, OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


@dataclass
class Probe:
    ready: bool
    objects: Optional[dict[str, int]]
    storage: Optional[dict[str, Any]] = None


def probe(state: InstanceState, counts: bool = True) -> Probe:
    """Readiness, and with `counts` the objects and the backend's report (asked even when not ready:
    an unready server says why, e.g. etcd unreachable)."""
    ready = is_ready(state.root, state.https_url, state.http_url)
    if not counts:
        return Probe(ready, None)
    return Probe(ready, object_counts(state) if ready else None, storage_report(state))
