"""Every field of a Pod, Deployment, Service, Job and CronJob replaced by a value of the wrong shape:
kube's 4xx Status, never a 500, and a refused create stores nothing."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from kapi.app import create_app
from kapi.config import ServerConfig

BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/namespaces/default/pods": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                        "livenessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "v", "secret": {"secretName": "s"}}], "tolerations": [{"key": "k"}]}},
    "/apis/apps/v1/namespaces/default/deployments": {"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}}, "strategy": {"type": "RollingUpdate",
                                                                  "rollingUpdate": {"maxSurge": 1}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
    "/api/v1/namespaces/default/services": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "NodePort", "clusterIP": "10.0.0.77", "selector": {"a": "b"},
                 "ports": [{"port": 80, "nodePort": 30100, "targetPort": 8080}]}},
    "/apis/batch/v1/namespaces/default/jobs": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}},
    "/apis/batch/v1/namespaces/default/cronjobs": {"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "cj"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}},
}
WRONG: list[Any] = [None, "x", -1, 2.5, True, [], {}, [1], {"a": 1}, 2**70]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if prefix or key not in ("apiVersion", "kind", "metadata"):
            yield prefix + (key,)
            yield from paths(value, prefix + (key,))


@pytest.mark.parametrize("url", list(BODIES), ids=lambda u: u.rsplit("/", 1)[1])
async def test_wrong_shapes_are_refused_in_kubes_words(tmp_path: Path, url: str) -> None:
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path, authn_allow_localhost=True,
                                  load_examples=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as client:
            await _probe(client, url, BODIES[url])


async def _probe(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    for path in paths(body):
        for wrong in WRONG:
            sent = copy.deepcopy(body)
            node = sent
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = wrong
            created = await client.post(url, content=json.dumps(sent))
            assert created.status_code < 500, (path, wrong, created.text)
            name = sent["metadata"]["name"]
            if created.status_code >= 400:
                assert created.json()["kind"] == "Status"
                assert (await client.get(f"{url}/{name}")).status_code == 404, (path, wrong)
                continue
            patched = await client.patch(f"{url}/{name}", content=json.dumps({"spec": wrong}),
                                         headers={"Content-Type": "application/merge-patch+json"})
            assert patched.status_code < 500, (path, wrong, patched.text)
            if patched.status_code >= 400:
                assert (await client.get(f"{url}/{name}")).json()["spec"] == created.json()["spec"]
            assert (await client.delete(f"{url}/{name}")).status_code == 200
