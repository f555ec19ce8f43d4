"""The pytest plugin as users get it: a fresh `python -m pytest` picks it up through the `pytest11` entry point.

Each test runs pytest in a subprocess on a throwaway project (or on the shipped
kopf example), so nothing here depends on this test session's own plugins.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOO_CRD = REPO / "tests" / "data" / "foos.hello.zeng.dev.yaml"
EXAMPLE = REPO / "configs" / "examples" / "kopf_operator"
WEBAPP_EXAMPLE = REPO / "configs" / "examples" / "webapp_operator"

CONFTEST = '''
import os


def pytest_sessionfinish(session):
    print("KUBECONFIG-AFTER-SESSION=" + os.environ.get("KUBECONFIG", "<unset>"))
'''

TESTS = '''
import os
import threading

import pytest
from kubernetes import client, config


def test_nothing_starts_without_the_fixtures():
    assert not [t for t in threading.enumerate() if t.name.startswith("kapi-server-")]


def test_kubeconfig_and_namespace(kapi_server, kapi_namespace, kapi_kubeconfig):
    assert os.environ["KUBECONFIG"] == str(kapi_server.kubeconfig) == str(kapi_kubeconfig)
    assert kapi_server.config.backend == os.environ["EXPECTED_BACKEND"]
    config.load_kube_config()  # the kubernetes client finds the server through KUBECONFIG alone
    ns = client.CoreV1Api().read_namespace(kapi_namespace)
    assert ns.metadata.name == kapi_namespace
    pytest.namespaces_seen.append(kapi_namespace)


def test_each_test_gets_a_fresh_namespace(kapi_server, kapi_namespace):
    assert kapi_namespace not in pytest.namespaces_seen
    status, _ = kapi_server.request("GET", "/api/v1/namespaces/" + pytest.namespaces_seen[0])
    assert status in (404, 200)  # deleted (or still terminating)
    status, body = kapi_server.request("GET", "/apis/hello.zeng.dev/v1")
    assert status == 200, body  # loaded by --kapi-resources


@pytest.mark.kapi_resources("crds")
def test_marker_applies_crds(kapi_server, kapi_namespace):
    status, body = kapi_server.request(
        "POST", f"/apis/example.kapi.dev/v1/namespaces/{kapi_namespace}/bars",
        {"apiVersion": "example.kapi.dev/v1", "kind": "Bar", "metadata": {"name": "b"}})
    assert status == 201, body


pytest.namespaces_seen = []
'''

BAR_CRD = '''
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: bars.example.kapi.dev}
spec:
  group: example.kapi.dev
  scope: Namespaced
  names: {kind: Bar, listKind: BarList, plural: bars, singular: bar}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
'''


def run_pytest(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "KUBECONFIG")}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180, env=environment)


@pytest.mark.parametrize("backend", ["memory", "file", "etcd"])
def test_a_throwaway_project_uses_the_fixtures(tmp_path: Path, backend: str) -> None:
    project = tmp_path / "project"
    (project / "crds").mkdir(parents=True)
    (project / "crds" / "bar.yaml").write_text(BAR_CRD)
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_with_kapi.py").write_text(TESTS)
    result = run_pytest(["-v", "-s", "--kapi-backend", backend, "--kapi-resources", str(FOO_CRD)], project,
                        EXPECTED_BACKEND=backend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout, result.stdout
    assert "KUBECONFIG-AFTER-SESSION=<unset>" in result.stdout, result.stdout  # restored after the session


def test_the_plugin_shows_its_options(tmp_path: Path) -> None:
    result = run_pytest(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--kapi-resources", "--kapi-backend", "--kapi-examples", "--kapi-user", "--kapi-simulate",
                   "--kapi-simulate-nodes", "--kapi-simulate-manual-clock", "--kapi-simulate-node-capacity"):
        assert option in result.stdout


def test_the_kopf_example_passes(tmp_path: Path) -> None:
    result = run_pytest(["-v", str(EXAMPLE)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_operator_greets_a_new_greeting PASSED" in result.stdout, result.stdout


def test_the_webapp_example_passes_on_a_simulated_cluster(tmp_path: Path) -> None:
    """Its `kapi_simulate` marker alone turns the simulation on: the operator's Deployment becomes Available."""
    result = run_pytest(["-v", str(WEBAPP_EXAMPLE)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_webapp_becomes_available_and_scales PASSED" in result.stdout, result.stdout


SIMULATION_INI = '''
[pytest]
kapi_simulate = true
kapi_simulate_nodes = 2
kapi_simulate_manual_clock = true
'''

SIMULATION_TESTS = '''
import time


def test_the_session_server_simulates(kapi_server):
    config = kapi_server.config
    assert config.simulate and config.simulate_manual_clock
    assert config.simulate_nodes == 1  # --kapi-simulate-nodes wins over the ini's 2
    assert dict(config.simulate_node_capacity) == {"cpu": "2", "memory": "256Gi", "pods": "110"}
    deadline = time.monotonic() + 10
    while True:
        status, nodes = kapi_server.request("GET", "/api/v1/nodes")
        if status == 200 and len(nodes["items"]) == 1:
            break
        assert time.monotonic() < deadline, nodes
        time.sleep(0.1)
    assert nodes["items"][0]["status"]["capacity"]["cpu"] == "2"
    before = kapi_server.clock()["epochSeconds"]
    assert kapi_server.advance(90)["epochSeconds"] >= before + 90
'''


def test_simulation_from_ini_and_options(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text(SIMULATION_INI)
    (project / "test_simulated.py").write_text(SIMULATION_TESTS)
    result = run_pytest(["-v", "--kapi-simulate-nodes", "1", "--kapi-simulate-node-capacity", "cpu=2"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout, result.stdout


OPERATOR_RBAC = '''
apiVersion: v1
kind: ServiceAccount
metadata: {name: operator, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: operator, namespace: default}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch, create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operator, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: operator}
subjects:
- {kind: ServiceAccount, name: operator, namespace: default}
'''

RBAC_TESTS = '''
import json

import pytest
from kubernetes import client


@pytest.mark.kapi_objects("rbac.yaml")
def test_the_operator_sees_its_roles_403(kapi_api_client):
    core = client.CoreV1Api(kapi_api_client(service_account="default/operator"))
    core.create_namespaced_config_map("default", {"metadata": {"name": "mine"}})
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_secret("default")
    assert caught.value.status == 403
    message = json.loads(caught.value.body)["message"]
    assert 'User "system:serviceaccount:default:operator" cannot list resource "secrets"' in message
    with pytest.raises(client.ApiException) as elsewhere:
        core.list_namespaced_config_map("kube-system")
    assert elsewhere.value.status == 403


def test_a_declared_user_is_refused_and_the_admin_is_not(kapi_api_client):
    with pytest.raises(client.ApiException) as caught:
        client.CoreV1Api(kapi_api_client(user="bob")).list_namespaced_pod("default")
    assert caught.value.status == 403 and 'User "bob"' in json.loads(caught.value.body)["message"]
    assert client.CoreV1Api(kapi_api_client()).list_namespaced_pod("default").items == []
'''


def test_an_operator_test_runs_as_its_service_account(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "rbac.yaml").write_text(OPERATOR_RBAC)
    (project / "test_rbac.py").write_text(RBAC_TESTS)
    result = run_pytest(["-v", "--kapi-user", "bob=viewers"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout
