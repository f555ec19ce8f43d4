"""The client side of the testing API: what a test does with a running kapi server or one of its clusters.

`RunningServer` (the server itself, `kapi.testing`) and `LogicalCluster`
(one of its `/clusters/<name>/` clusters) share it: HTTP requests as the
administrator, manifests applied, namespaces, CRDs, clients for users and
ServiceAccounts, and the cluster's injected faults.
"""
from __future__ import annotations

import http.client
import json
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from kapi.testing_files import documents, write_kubeconfig

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class ApiEndpoint:
    """A server or one of its logical clusters, as a test reaches it (`url`, `kubeconfig`)."""

    url: str
    kubeconfig: Path
    _tokens: dict[str, str]

    @property
    def host(self) -> str:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def root(self) -> Path:
        """Where this endpoint's kubeconfigs are written (the server's `file_rootpath`)."""
        raise NotImplementedError

    @property
    def prefix(self) -> str:
        """The path every request of this endpoint starts with ("" for the server, `/clusters/<name>`)."""
        return ""

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
            conn.request(method, self.prefix + path, body=payload, headers=headers)
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
        from kapi.scheme.crd import crd_files, load_crd_manifests

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

    # -- faults -------------------------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultInjector:
        """This cluster's faults: `faults.conflict("configmaps", count=2)`, `faults.expire_watches()`, ..."""
        return FaultInjector(self)


class FaultInjector:
    """Ask one cluster for faults (`kapi.api.faults`), each scoped to it; `clear()` takes them all back.

    Each method that injects a lasting fault returns its id (for `remove(id)`).
    """

    def __init__(self, endpoint: ApiEndpoint) -> None:
        self._endpoint = endpoint

    def inject(self, spec: dict[str, Any]) -> str:
        """Any fault spec, as `POST /kapi/faults` takes it."""
        status, body = self._endpoint.request("POST", "/kapi/faults", spec)
        if status != 201:
            raise RuntimeError(f"the fault was refused ({status}): {body}")
        return str(body["id"])

    def fail(self, code: int, *, verbs: Sequence[str] = (), resource: str = "", user: str = "",
             message: str = "", count: int | None = None, delay: float = 0.0) -> str:
        """Requests matching `verbs`/`resource` ("plural" or "plural.group")/`user` get a `code` Status."""
        return self.inject(_spec("Fail", code=code, verbs=list(verbs), resource=resource, user=user,
                                 message=message, count=count, delaySeconds=delay))

    def delay(self, seconds: float, *, verbs: Sequence[str] = (), resource: str = "", user: str = "",
              count: int | None = None) -> str:
        """Matching requests wait `seconds` before they are served."""
        return self.inject(_spec("Delay", delaySeconds=seconds, verbs=list(verbs), resource=resource, user=user,
                                 count=count))

    def conflict(self, resource: str, *, count: int = 1, verbs: Sequence[str] = ()) -> str:
        """The next `count` writes to `resource` get 409 Conflict ("the object has been modified")."""
        return self.inject(_spec("Conflict", resource=resource, count=count, verbs=list(verbs)))

    def webhook_timeout(self, webhook: str = "", *, count: int | None = None) -> str:
        """Calls to the admission webhook named `webhook` (all, when empty) time out; failurePolicy decides."""
        return self.inject(_spec("WebhookTimeout", webhook=webhook, count=count))

    def pause_storage(self) -> str:
        """Resource requests get 503 as if etcd were away, open watches stall, /readyz fails; `resume_storage()`."""
        return self.inject({"type": "PauseStorage"})

    def resume_storage(self) -> None:
        for fault in self.in_force():
            if fault["type"] == "PauseStorage":
                self.remove(fault["id"])

    def expire_watches(self, resource: str = "") -> int:
        """End the open watches (of `resource`, else all) with 410 Expired; returns how many ended."""
        return int(self._action(_spec("ExpireWatches", resource=resource))["ended"])

    def compact(self) -> int:
        """Drop the history: watches and list continuations from an older resourceVersion get 410."""
        return int(self._action({"type": "Compact"})["revision"])

    def in_force(self) -> list[dict[str, Any]]:
        status, body = self._endpoint.request("GET", "/kapi/faults")
        if status != 200:
            raise RuntimeError(f"listing faults failed ({status}): {body}")
        return list(body["faults"])

    def remove(self, fault_id: str) -> None:
        status, body = self._endpoint.request("DELETE", f"/kapi/faults/{fault_id}")
        if status not in (200, 404):
            raise RuntimeError(f"removing fault {fault_id} failed ({status}): {body}")

    def clear(self) -> None:
        """Take back every fault (the storage resumes, webhooks answer again)."""
        status, body = self._endpoint.request("DELETE", "/kapi/faults")
        if status != 200:
            raise RuntimeError(f"clearing the faults failed ({status}): {body}")

    def _action(self, spec: dict[str, Any]) -> dict[str, Any]:
        status, body = self._endpoint.request("POST", "/kapi/faults", spec)
        if status != 200:
            raise RuntimeError(f"{spec['type']} was refused ({status}): {body}")
        return dict(body)


def _spec(kind: str, **fields: Any) -> dict[str, Any]:
    """A fault spec without the fields left at their defaults."""
    return {"type": kind, **{k: v for k, v in fields.items() if v not in (None, "", [], 0, 0.0)}}
