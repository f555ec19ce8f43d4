"""Shared by the RBAC end-to-end tests (tests/e2e/test_rbac_*.py): a `kapi start` with the example token
users and an HTTPS port, kubectl and the Python client as one of those users, and small manifest builders.

Test modules cannot import their siblings under pytest's importlib import mode, so each one loads this
file with `load()` below.

kubectl sends no bearer token over plain HTTP (client-go keeps tokens to TLS), so a user's kubectl goes to
the HTTPS port with the server's CA; the administrator (loopback without credentials, system:masters under
`--authn-allow-localhost=true`) uses the HTTP port, as tests/e2e/conftest.py's servers do.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

KUBECTL = "/usr/bin/kubectl"
REPO = Path(__file__).resolve().parents[2]
TOKEN_CSV = REPO / "configs" / "token.csv"
RBAC_USERS_YAML = REPO / "configs" / "examples" / "rbac-token-users.yaml"

# Users added to configs/token.csv's three for these tests: no groups at all, so only what a test binds
# (and the bootstrap bindings of system:authenticated) applies to them.
EXTRA_USERS = {"carol": "kapi-e2e-token-carol", "dave": "kapi-e2e-token-dave", "erin": "kapi-e2e-token-erin"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def example_tokens() -> dict[str, str]:
    """configs/token.csv as {user: token} (token,user,uid,"groups")."""
    with TOKEN_CSV.open(newline="") as f:
        return {row[1]: row[0] for row in csv.reader(f) if row}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class RbacServer:
    """A `kapi start` with configs/token.csv's users (plus EXTRA_USERS), HTTP for the admin, HTTPS for users."""

    base: Path
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    secure_port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"e2e-rbac-{uuid.uuid4().hex[:8]}")
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.tokens = {**example_tokens(), **EXTRA_USERS}
        self.token_file = self.base / "token.csv"
        lines = TOKEN_CSV.read_text().rstrip("\n").splitlines()
        lines += [f"{token},{user},{2000 + i}" for i, (user, token) in enumerate(EXTRA_USERS.items())]
        self.token_file.write_text("\n".join(lines) + "\n")

    # -- process -------------------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.secure_port}"

    @property
    def ca(self) -> Path:
        return self.root / "cert" / "ca.crt"

    @property
    def log_path(self) -> Path:
        return self.base / "kapi.log"

    def start(self, timeout: float = 30.0) -> "RbacServer":
        cmd = [sys.executable, "-m", "kapi_cli.main", "start", "--insecure-port", str(self.port),
               "--secure-port", str(self.secure_port), "--authn-allow-localhost=true", "--name", self.name,
               "--file-rootpath", str(self.root), "--token-auth-file", str(self.token_file), *self.args]
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "KAPI_HOME": str(self.base / "kapi-home")}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"kapi exited early:\n{self.log_path.read_text()[-6000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kapi did not become ready:\n{self.log_path.read_text()[-6000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- kubectl -------------------------------------------------------------------------------------------
    def kubectl(self, *args: str, user: str | None = None, token: str | None = None, input: str | None = None,
                cache: str | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
        """kubectl as `user` (a token-file user, over HTTPS), with a raw `token`, or as the admin (loopback HTTP)."""
        if user is not None:
            token = self.tokens[user]
        cache_dir = self.base / "kube-cache" / (cache or user or ("token" if token else "admin"))
        if token is not None:
            conn = ["--server", self.https, "--certificate-authority", str(self.ca), "--token", token]
        else:
            conn = ["--server", self.url]
        cmd = [KUBECTL, "--kubeconfig", "/dev/null", "--cache-dir", str(cache_dir), *conn, *args]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} (as {user or 'admin'}) failed ({result.returncode}):\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def admin(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.kubectl(*args, input=input, check=True)

    def apply(self, *objects: dict[str, Any]) -> None:
        """`kubectl apply` as the admin."""
        self.admin("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def apply_example_bindings(self) -> None:
        self.admin("apply", "-f", str(RBAC_USERS_YAML))

    def namespace(self, prefix: str = "rbac") -> str:
        name = unique(prefix)
        self.admin("create", "namespace", name)
        return name

    # -- HTTP ----------------------------------------------------------------------------------------------
    def http(self, user: str | None = None, token: str | None = None) -> httpx.Client:
        """httpx on the HTTP port as `user` (its bearer token), a raw token, or the admin (no credentials)."""
        if user is not None:
            token = self.tokens[user]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=15)

    # -- the Python client ---------------------------------------------------------------------------------
    def api_client(self, user: str | None = None, token: str | None = None) -> Any:
        """kubernetes.client.ApiClient over HTTPS with the user's bearer token (admin: ci-bot, system:masters)."""
        from kubernetes import client

        if user is not None:
            token = self.tokens[user]
        if token is None:
            token = self.tokens["ci-bot"]
        config = client.Configuration(host=self.https, api_key={"authorization": f"Bearer {token}"})
        config.ssl_ca_cert = str(self.ca)
        return client.ApiClient(config)


@contextlib.contextmanager
def started(base: Path, *args: str) -> Iterator[RbacServer]:
    """For module fixtures: a started server, stopped on the way out whatever happened."""
    server = RbacServer(base, list(args))
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- manifests -----------------------------------------------------------------------------------------------
RBAC_V1 = "rbac.authorization.k8s.io/v1"


def rule(verbs: list[str], resources: list[str], groups: list[str] | None = None,
         names: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"apiGroups": groups if groups is not None else [""], "resources": resources,
                           "verbs": verbs}
    if names:
        out["resourceNames"] = names
    return out


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": RBAC_V1, "kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": list(rules)}


def cluster_role(name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": RBAC_V1, "kind": "ClusterRole", "metadata": meta, "rules": list(rules)}


def subject(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def role_binding(name: str, namespace: str, role_kind: str, role_name: str,
                 *subjects: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": RBAC_V1, "kind": "RoleBinding", "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": list(subjects)}


def cluster_role_binding(name: str, role_name: str, *subjects: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": list(subjects)}


def configmap(name: str, namespace: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data or {"k": "v"}}


def secret(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "stringData": {"password": "hunter2"}}


def service_account(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


# -- kube's words --------------------------------------------------------------------------------------------
def forbidden(user: str, verb: str, resource: str, group: str = "", namespace: str | None = None,
              name: str | None = None) -> str:
    """kube-apiserver's 403 message (responsewriters.forbiddenMessage wrapped by apierrors.NewForbidden).

    kube's RequestInfo reads /api/v1/namespaces/NAME as namespace NAME, so a named namespace request is
    "in the namespace" of itself (`namespaces "x" is forbidden: ... in the namespace "x"`).
    """
    if resource == "namespaces" and name and namespace is None:
        namespace = name
    base = resource.split("/")[0]
    qualified = f"{base}.{group}" if group else base
    head = f'{qualified} "{name}" is forbidden' if name else f"{qualified} is forbidden"
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return f'{head}: User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {where}'


def forbidden_path(user: str, path: str, verb: str = "get") -> str:
    return f'forbidden: User "{user}" cannot {verb} path "{path}"'


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_kubectl_forbidden(result: subprocess.CompletedProcess[str], message: str, prefix: str = "") -> None:
    """kubectl failed, and one stderr line is exactly `prefix + message` (or, with no prefix, any kubectl
    framing around kube's message: `Error from server (Forbidden): ` or `error: failed to create x: `)."""
    assert result.returncode != 0, f"expected a 403, kubectl succeeded:\n{result.stdout}"
    lines = error_lines(result)
    if prefix:
        assert prefix + message in lines, f"expected line {prefix + message!r} in stderr:\n{result.stderr}"
    else:
        assert any(line.endswith(message) for line in lines), \
            f"expected a line ending with {message!r} in stderr:\n{result.stderr}"


GET_FORBIDDEN = "Error from server (Forbidden): "



def covers(rules: list[dict[str, Any]], verb: str, resource: str, group: str = "") -> bool:
    """Whether a rule (without resourceNames) allows `verb` on `resource` in `group` (kube's RuleAllows)."""
    for r in rules or []:
        if r.get("resourceNames"):
            continue
        if ((group in r.get("apiGroups", []) or "*" in r.get("apiGroups", []))
                and (resource in r.get("resources", []) or "*" in r.get("resources", []))
                and (verb in r.get("verbs", []) or "*" in r.get("verbs", []))):
            return True
    return False


def covers_url(rules: list[dict[str, Any]], url: str, verb: str = "get") -> bool:
    for r in rules or []:
        urls = r.get("nonResourceURLs", [])
        if (verb in r.get("verbs", []) or "*" in r.get("verbs", [])) and any(
                u == url or u == "*" or (u.endswith("*") and url.startswith(u[:-1])) for u in urls):
            return True
    return False


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.2) -> bool:
    """Poll `predicate()` until it is true (True) or the time is up (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def get_json(server: RbacServer, *args: str) -> Any:
    return json.loads(server.admin("get", *args, "-o", "json").stdout)
