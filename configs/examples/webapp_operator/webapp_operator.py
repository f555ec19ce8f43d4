"""A small kopf operator: every WebApp runs as a Deployment, and its status says when that is Available.

The WebApp's spec (image, replicas) becomes a Deployment it owns; whenever the
Deployment's status changes, the WebApp's `status.phase` (`Progressing` or
`Available`, from the Deployment's `Available` condition) and
`status.readyReplicas` follow. Run it against any cluster, or against
`kapi start --simulate` (kube-apiserver alone has no controllers: the
Deployment would never get pods):

    kopf run --standalone -A configs/examples/webapp_operator/webapp_operator.py

Its test, `test_webapp_operator.py`, runs it against kapi's pytest fixtures with the simulation on.
"""
from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "examples.kapi.dev", "v1", "webapps"
OWNER_LABEL = "examples.kapi.dev/webapp"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # keep the example about the Deployment, not about Events
    settings.watching.server_timeout = 60
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()  # the KUBECONFIG kopf uses too


def deployment_for(name: str, spec: kopf.Spec) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, OWNER_LABEL: name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": dict(labels)},
                         "spec": {"containers": [{"name": "web", "image": spec["image"],
                                                  "ports": [{"containerPort": 80}]}]}},
        },
    }


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def run_as_deployment(name: str, namespace: str | None, spec: kopf.Spec, logger: kopf.Logger, **_: Any) -> None:
    assert namespace, "WebApps are namespaced"
    deployment = deployment_for(name, spec)
    kopf.adopt(deployment)  # owned by the WebApp: deleting it deletes the Deployment
    apps = client.AppsV1Api()
    try:
        apps.create_namespaced_deployment(namespace, deployment)  # type: ignore[arg-type]  # a dict is fine
        logger.info(f"created Deployment {name}")
    except ApiException as exc:
        if exc.status != 409:
            raise
        apps.patch_namespaced_deployment(name, namespace, {"spec": deployment["spec"]})
        logger.info(f"updated Deployment {name}")


def rolled_out(deployment: kopf.Body) -> bool:
    """What `kubectl rollout status` waits for: the newest spec seen, every replica updated and available."""
    status, replicas = deployment.get("status") or {}, deployment["spec"].get("replicas", 1)
    available = [c for c in status.get("conditions") or [] if c.get("type") == "Available"]
    return (status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
            and bool(available) and available[0].get("status") == "True"
            and status.get("updatedReplicas", 0) == status.get("availableReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas)


@kopf.on.event("apps", "v1", "deployments", labels={OWNER_LABEL: kopf.PRESENT})
def follow_deployment(type: str, body: kopf.Body, namespace: str | None, logger: kopf.Logger, **_: Any) -> None:
    """The WebApp's status follows its Deployment's (set here only, so no two writers race)."""
    if type == "DELETED" or not namespace:
        return
    phase = "Available" if rolled_out(body) else "Progressing"
    webapp = body["metadata"]["labels"][OWNER_LABEL]
    ready = (body.get("status") or {}).get("readyReplicas", 0)
    try:
        client.CustomObjectsApi().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, webapp, {"status": {"phase": phase, "readyReplicas": ready}})
    except ApiException as exc:
        if exc.status != 404:  # the WebApp is gone: its Deployment follows
            raise
        return
    logger.info(f"WebApp {webapp} is {phase} ({ready} ready)")
