"""The official JavaScript client, @kubernetes/client-node, works against kapi on memory and on etcd.

tests/clients/node/main.mjs drives the client the way Node programs do (typed CoreV1Api/AppsV1Api calls, patches
with an explicit Content-Type, status subresources, CRDs through ApiextensionsV1Api and CustomObjectsApi, the generic
KubernetesObjectApi, Watch and makeInformer) and prints one line per passed check. This module installs it with
`npm ci` from the committed package-lock.json and asserts every expected check line, so a check the program stops
making fails here too.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"
NPM_CACHE = Path.home() / ".cache" / "kapi-clients" / "node"

CRUD_CHECKS = [
    "namespace create",
    "namespace read",
    "namespace list labelSelector",
    "configmap create (and AlreadyExists 409)",
    "configmap read",
    "configmap list labelSelector",
    "configmap replace",
    "configmap replace stale resourceVersion 409 Conflict",
    "configmap merge patch",
    "configmap json patch (and failed test op 422)",
    "configmap delete, read 404 NotFound",
    "secret create",
    "secret read (stringData folded into data)",
    "secret list labelSelector",
    "secret replace",
    "secret replace stale resourceVersion 409 Conflict",
    "secret merge patch",
    "secret json patch",
    "secret delete, read 404 NotFound",
    "deployment create",
    "deployment read (defaults applied)",
    "deployment list labelSelector",
    "deployment replace (generation bumped)",
    "deployment replace stale resourceVersion 409 Conflict",
    "deployment merge patch",
    "deployment json patch",
    "deployment status read",
    "deployment status patch (merge and json; spec ignored)",
    "deployment delete, read 404 NotFound",
    "crd create",
    "crd Established",
    "custom object create (and schema violation 422 Invalid)",
    "custom object read",
    "custom object list labelSelector",
    "custom object replace (stale resourceVersion 409 Conflict)",
    "custom object merge and json patch",
    "custom object status subresource",
    "custom object delete, read 404 NotFound",
    "generic KubernetesObjectApi create/read/list/delete ConfigMap",
    "generic KubernetesObjectApi create/read/list/delete Deployment",
    "generic KubernetesObjectApi create/read/list/delete Widget",
    "generic KubernetesObjectApi server-side apply ConfigMap",
    "crd delete",
    "namespace delete, read 404 NotFound",
]

WATCH_CHECKS = [
    "namespace create",
    "watch opened",
    "watch ADDED, MODIFIED, DELETED in order",
    "watch aborted, done callback called",
    "made 26 writes (more than the watch event window)",
    "watch too-old resourceVersion: ERROR event, Status 410 Expired",
    "watch stream closed after the 410 ERROR event, done callback without error",
    "rewatch from a fresh resourceVersion",
    "informer started, initial list delivered as add",
    "informer add/update/delete handlers called",
    "informer cache list() and get() match the server",
    "informer stopped",
    "namespace delete",
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: this test needs Node.js 20+ with npm to run @kubernetes/client-node")
    return path


@pytest.fixture(scope="module")
def node_program() -> list[str]:
    """Installs the pinned client once per module (`npm ci`, cached packages under ~/.cache/kapi-clients/node).

    `npm ci` installs exactly package-lock.json, so CI runs the same client-node as the committed lock.
    """
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < 20:
        pytest.fail(f"node {version} is too old: @kubernetes/client-node 1.4.0 here needs Node.js 20 or newer")
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "npm_config_cache": str(NPM_CACHE), "npm_config_update_notifier": "false"}
    started = time.monotonic()
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=NODE_DIR, env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"npm ci in {NODE_DIR} failed ({result.returncode}) after {time.monotonic() - started:.1f}s:\n"
                    f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return [node, str(NODE_DIR / "main.mjs")]


@pytest.fixture(params=["memory", "etcd"])
def server(request: pytest.FixtureRequest, kapi_factory: Any) -> Any:
    """A kapi per backend, keeping only 20 past watch events so the program can provoke a 410 with a few writes."""
    window = ("--watch-event-window", "20")
    if request.param == "etcd":
        return kapi_factory(*window, name="node-etcd", etcd_prefix=f"/kapi-node-{uuid.uuid4().hex[:10]}")
    return kapi_factory("--backend", "memory", *window, name="node-memory")


def write_kubeconfig(path: Path, url: str) -> Path:
    """A kubeconfig with no credentials: kapi trusts loopback clients.

    client-node refuses an http:// server unless the cluster says insecure-skip-tls-verify (it then uses a plain
    HTTP agent), so the flag is set although no TLS is involved.
    """
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: kapi
  cluster:
    server: {url}
    insecure-skip-tls-verify: true
users:
- name: local
  user: {{}}
contexts:
- name: kapi
  context:
    cluster: kapi
    user: local
current-context: kapi
""")
    return path


def run_program(program: list[str], subcommand: str, server: Any, tmp_path: Path) -> list[str]:
    """Runs one subcommand and returns its check lines; on failure shows its output and kapi's log tail."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    result = subprocess.run([*program, subcommand], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        log = server.log_path.read_text(errors="replace").splitlines()[-40:]
        pytest.fail(f"node main.mjs {subcommand} exited {result.returncode}\nstdout:\n{result.stdout}\n"
                    f"stderr:\n{result.stderr}\nkapi log tail:\n" + "\n".join(log))
    lines = result.stdout.splitlines()
    assert lines[-1:] == [f"PASSED {subcommand}"], result.stdout
    prefix = f"ok {subcommand}: "
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def test_crud(node_program: list[str], server: Any, tmp_path: Path) -> None:
    assert run_program(node_program, "crud", server, tmp_path) == CRUD_CHECKS


def test_watch(node_program: list[str], server: Any, tmp_path: Path) -> None:
    assert run_program(node_program, "watch", server, tmp_path) == WATCH_CHECKS
