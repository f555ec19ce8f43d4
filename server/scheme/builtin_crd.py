"""`apiextensions.k8s.io/v1` CustomResourceDefinitions, served as a resource like any other."""
from __future__ import annotations

from kapi.scheme.definitions import ResourceDef, VersionDef

_CRD_SCHEMA = {
    "type": "object",
    "description": "CustomResourceDefinition represents a resource that should be exposed on the API server. "
                   "Its name MUST be in the format <.spec.name>.<.spec.group>.",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "description": "spec describes how the user wants the resources to appear",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "group": {"type": "string", "description": "group is the API group of the defined custom resource."},
                "names": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                          "description": "names specify the resource and kind names for the custom resource."},
                "scope": {"type": "string", "description": "scope indicates whether the defined custom resource "
                                                           "is cluster- or namespace-scoped."},
                "versions": {
                    "type": "array",
                    "description": "versions is the list of all API versions of the defined custom resource.",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
                "conversion": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                               "description": "conversion defines conversion settings for the CRD."},
                "preserveUnknownFields": {"type": "boolean"},
            },
        },
        "status": {
            "type": "object",
            "description": "status indicates the actual state of the CustomResourceDefinition",
            "x-kubernetes-preserve-unknown-fields": True,
        },
    },
}

CUSTOM_RESOURCE_DEFINITIONS = ResourceDef(
    group="apiextensions.k8s.io",
    kind="CustomResourceDefinition",
    plural="customresourcedefinitions",
    singular="customresourcedefinition",
    namespaced=False,
    short_names=("crd", "crds"),
    categories=("api-extensions",),
    builtin=True,
    versions=(VersionDef(name="v1", storage=True, schema=_CRD_SCHEMA, status_subresource=True),),
    returns_deleted_object=True,  # kube marks a CRD for cleanup and answers with it
)
