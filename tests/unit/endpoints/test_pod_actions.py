"""pods/binding, pods/eviction, pods/ephemeralcontainers and the namespace defaults, through the whole app."""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import httpx

from kapi_certs.pki import cert_pem, make_ca
from kapi.app import create_app
from kapi.config import ServerConfig

PODS = "/api/v1/namespaces/default/pods"


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, **kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path, authn_allow_localhost=True,
                                  load_examples=False, **kw))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def binding(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": node}}


async def test_binding_assigns_a_node_once(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        assert (await http.post(PODS, json=pod("p"))).status_code == 201
        bound = await http.post(f"{PODS}/p/binding", json=binding("p", "n1"))
        assert bound.status_code == 201 and bound.json()["status"] == "Success"
        stored = (await http.get(f"{PODS}/p")).json()
        assert stored["spec"]["nodeName"] == "n1"
        assert stored["status"]["conditions"][0]["type"] == "PodScheduled"
        again = await http.post(f"{PODS}/p/binding", json=binding("p", "n2"))
        assert again.status_code == 409
        assert again.json()["message"] == 'Operation cannot be fulfilled on pods/binding "p": pod p is already ' \
                                          'assigned to node "n1"'
        assert (await http.get(f"{PODS}/p")).json() == stored
        assert (await http.get(f"{PODS}/p/binding")).status_code == 405
        assert (await http.post(f"{PODS}/nope/binding", json=binding("nope", "n1"))).status_code == 404


async def test_eviction_deletes_unless_a_budget_forbids(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json=pod("free"))
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "free"}}
        evicted = await http.post(f"{PODS}/free/eviction", json=eviction)
        assert evicted.status_code == 201 and (await http.get(f"{PODS}/free")).status_code == 404
        await http.post(PODS, json=pod("guarded", app="db"))
        await http.patch(f"{PODS}/guarded/status", json={"status": {"phase": "Running"}},
                         headers={"Content-Type": "application/merge-patch+json"})
        pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
               "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}
        assert (await http.post("/apis/policy/v1/namespaces/default/poddisruptionbudgets", json=pdb)).status_code == 201
        refused = await http.post(f"{PODS}/guarded/eviction", json={**eviction, "metadata": {"name": "guarded"}})
        assert refused.status_code == 429
        body = refused.json()
        assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
        assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
        assert (await http.get(f"{PODS}/guarded")).status_code == 200


async def test_ephemeral_containers_subresource(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json=pod("p"))
        patch = {"spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox"}]}}
        done = await http.patch(f"{PODS}/p/ephemeralcontainers", json=patch,
                                headers={"Content-Type": "application/strategic-merge-patch+json"})
        assert done.status_code == 200, done.text
        assert done.json()["spec"]["ephemeralContainers"][0]["name"] == "debug"
        resources = {r["name"]: r for r in (await http.get("/api/v1")).json()["resources"]}
        assert resources["pods/ephemeralcontainers"]["verbs"] == ["get", "patch", "update"]
        assert resources["pods/binding"]["verbs"] == ["create"] and resources["pods/binding"]["kind"] == "Binding"
        assert resources["pods/eviction"]["kind"] == "Eviction"


async def test_every_namespace_gets_its_defaults(tmp_path: Path) -> None:
    (tmp_path / "cert").mkdir()
    (tmp_path / "cert" / "ca.crt").write_bytes(cert_pem(make_ca()[0]))
    async with serve(tmp_path, secure_port=8443) as http:
        for ns in ("default", "kube-system"):
            assert (await http.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default")).status_code == 200
            ca = (await http.get(f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt")).json()
            assert ca["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
        kubernetes = (await http.get("/api/v1/namespaces/default/services/kubernetes")).json()
        assert kubernetes["spec"]["clusterIP"] == "10.0.0.1"
        assert kubernetes["spec"]["ports"][0]["port"] == 443 and kubernetes["spec"]["ports"][0]["targetPort"] == 8443
        await http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
        for _ in range(100):  # the controller sees the new namespace through its watch
            if (await http.get("/api/v1/namespaces/t/serviceaccounts/default")).status_code == 200:
                break
            await asyncio.sleep(0.02)
        assert (await http.get("/api/v1/namespaces/t/serviceaccounts/default")).status_code == 200
