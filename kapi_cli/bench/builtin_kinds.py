"""Bodies for the built-in kinds' rows: a Pod and a Deployment as `kubectl run`/`create deployment` make them."""
from __future__ import annotations

import json


def pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def deployments(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


def pod_body(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"run": name}},
                       "spec": {"containers": [{"name": name, "image": "nginx:1.27",
                                                "ports": [{"containerPort": 80}]}]}}).encode()


def deployment_body(name: str) -> bytes:
    labels = {"app": name}
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
                       "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                                "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                                    {"name": "nginx", "image": "nginx:1.27"}]}}}}).encode()
