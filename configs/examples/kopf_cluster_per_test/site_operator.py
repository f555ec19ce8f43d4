"""A small kopf operator: every Site gets a ConfigMap `<name>-site` with its domain.

Creating the ConfigMap can fail (a 409 Conflict, a 5xx): the error propagates, kopf
retries the handler after `backoff` seconds, and the status says how many attempts
it took. One that already exists (a previous attempt got through) is fine.
Run it against any cluster with
`kopf run --standalone -A configs/examples/kopf_cluster_per_test/site_operator.py`.
"""
from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client, config

GROUP, VERSION, PLURAL = "examples.kapi.dev", "v1", "sites"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False
    settings.watching.server_timeout = 60


@kopf.on.create(GROUP, VERSION, PLURAL, backoff=0.2)
def provision(name: str, namespace: str, spec: kopf.Spec, retry: int, patch: kopf.Patch, **_: Any) -> None:
    config.load_kube_config()  # the cluster kopf logged in to: KUBECONFIG's
    core = client.CoreV1Api()
    config_map = {"metadata": {"name": f"{name}-site", "namespace": namespace},
                  "data": {"domain": spec["domain"]}}
    kopf.adopt(config_map)
    try:
        core.create_namespaced_config_map(namespace, config_map)
    except client.ApiException as exc:
        if '"reason":"AlreadyExists"' not in (exc.body or "").replace(" ", ""):
            raise  # a conflict, a 5xx: kopf retries the handler after `backoff` seconds
    patch.status["configMap"] = f"{name}-site"
    patch.status["attempts"] = retry + 1
