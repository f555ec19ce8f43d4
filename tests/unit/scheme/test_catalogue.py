"""The built-in catalogue: Kubernetes 1.32's stable kinds, read from the published OpenAPI documents."""
from __future__ import annotations

from kapi.app import build_scheme
from kapi.scheme import catalogue
from kapi.scheme.validation import validate


def by_key() -> dict:
    return {(d.group, d.plural): d for d in catalogue.definitions()}


def test_every_stable_group_version_is_served() -> None:
    gvs = set(catalogue.group_versions())
    assert {("", "v1"), ("apps", "v1"), ("batch", "v1"), ("autoscaling", "v1"), ("autoscaling", "v2"),
            ("networking.k8s.io", "v1"), ("policy", "v1"), ("rbac.authorization.k8s.io", "v1"),
            ("storage.k8s.io", "v1"), ("discovery.k8s.io", "v1"), ("scheduling.k8s.io", "v1"),
            ("node.k8s.io", "v1"), ("certificates.k8s.io", "v1"), ("coordination.k8s.io", "v1"),
            ("flowcontrol.apiserver.k8s.io", "v1")} <= gvs
    assert catalogue.load()["release"] == catalogue.RELEASE == "v1.32.0"


def test_resources_carry_kubes_discovery_facts() -> None:
    found = by_key()
    pods, deploy, ns = found[("", "pods")], found[("apps", "deployments")], found[("", "namespaces")]
    assert pods.kind == "Pod" and pods.namespaced and pods.short_names == ("po",) and pods.categories == ("all",)
    assert [a.name for a in pods.actions] == ["binding", "eviction", "log"]
    assert pods.part_subresources == ("ephemeralcontainers",)
    assert deploy.short_names == ("deploy",) and deploy.storage_version.scale is not None
    assert deploy.storage_version.status_subresource
    assert "deletecollection" not in ns.served_verbs and not ns.namespaced
    assert ("", "componentstatuses") not in found and ("", "bindings") not in found
    hpa = found[("autoscaling", "horizontalpodautoscalers")]
    assert [v.name for v in hpa.versions] == ["v1", "v2"] and hpa.storage_version.name == "v2"
    assert hpa.converter is not None
    assert "spec.nodeName" in pods.selectable_fields


def test_resolved_schemas_keep_patch_keys_and_share_nodes() -> None:
    found = by_key()
    pod_spec = found[("", "pods")].storage_version.schema["properties"]["spec"]
    containers = pod_spec["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name" and containers["x-kubernetes-list-type"] == "map"
    template = found[("apps", "deployments")].storage_version.schema["properties"]["spec"]["properties"]["template"]
    # the PodSpec graph node is shared, never copied
    assert template["properties"]["spec"]["properties"] is pod_spec["properties"]
    port = containers["items"]["properties"]["ports"]["items"]["properties"]
    assert port["protocol"]["default"] == "TCP" and "default" not in port["containerPort"]  # zero defaults dropped
    int_or_string = port["containerPort"]  # an int
    assert int_or_string["type"] == "integer"


def test_schemas_validate_like_kubes_decoder() -> None:
    schema = by_key()[("apps", "deployments")].storage_version.schema
    good = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i",
                                                           "resources": {"limits": {"cpu": 0.5}}}]}}}}
    assert validate(good, schema) == []
    bad = {**good, "spec": {**good["spec"], "replicas": "two"}}
    assert [c.field for c in validate(bad, schema)] == ["spec.replicas"]


def test_api_groups_narrow_the_catalogue() -> None:
    only = {(d.group, d.plural) for d in build_scheme([], api_groups=("apps",)).definitions}
    assert ("apps", "deployments") in only and ("", "namespaces") in only
    assert ("", "pods") not in only and ("batch", "jobs") not in only
    everything = {(d.group, d.plural) for d in build_scheme([]).definitions}
    assert {(d.group, d.plural) for d in catalogue.definitions()} <= everything and len(catalogue.definitions()) == 44


def test_groups_constant_matches_the_data() -> None:
    assert catalogue.GROUPS == {g for g, _ in catalogue.group_versions()}
