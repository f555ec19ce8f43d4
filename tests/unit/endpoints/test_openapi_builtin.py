"""Built-in kinds' OpenAPI schemas are served as Kubernetes publishes them: named components and references."""
from __future__ import annotations

from kapi.app import build_scheme
from kapi.endpoints import openapi
from kapi.endpoints import openapi_common as common


def test_v3_serves_published_components_with_references() -> None:
    schemas = common.group_version_schemas(build_scheme([]), "apps", "v1", common.V3)
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert "io.k8s.api.core.v1.PodSpec" in schemas and "io.k8s.api.apps.v1.DeploymentList" in schemas
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]


def test_v2_spells_references_and_int_or_string_as_swagger() -> None:
    schemas = common.group_version_schemas(build_scheme([]), "apps", "v1", openapi.V2)
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy" and "allOf" not in strategy
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["type"] == "string" and int_or_string["format"] == "int-or-string"
    assert "oneOf" not in int_or_string
