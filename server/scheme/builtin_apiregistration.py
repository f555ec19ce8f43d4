"""`apiregistration.k8s.io/v1` APIService: which server answers a group-version.

Served as kube-aggregator serves it: cluster-scoped, with a status subresource
whose `Available` condition the aggregator keeps, and the columns of
`kubectl get apiservices` (NAME, SERVICE, AVAILABLE, AGE). An APIService
without `spec.service` is local (this server answers); with one, requests for
its group-version are proxied (`kapi.endpoints.proxy`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from kapi.scheme.builtin_printers_common import AGE, Obj, col, dct
from kapi.scheme.definitions import ResourceDef, VersionDef

GROUP = "apiregistration.k8s.io"
Schema = dict[str, Any]

_CONDITION: Schema = {
    "type": "object",
    "description": "APIServiceCondition describes the state of an APIService at a particular point",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string", "description": "Type is the type of the condition."},
        "status": {"type": "string", "description": "Status is the status of the condition. Can be True, False, Unknown."},
        "lastTransitionTime": {"type": "string", "format": "date-time",
                               "description": "Last time the condition transitioned from one status to another."},
        "reason": {"type": "string", "description": "Unique, one-word, CamelCase reason for the condition's last transition."},
        "message": {"type": "string", "description": "Human-readable message indicating details about last transition."},
    },
}

_SCHEMA: Schema = {
    "type": "object",
    "description": "APIService represents a server for a particular GroupVersion. Name must be \"version.group\".",
    "properties": {
        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
        "metadata": {"type": "object", "description": "Standard object's metadata."},
        "spec": {
            "type": "object",
            "description": "APIServiceSpec contains information for locating and communicating with a server. Only https "
                           "is supported, though you are able to disable certificate verification.",
            "properties": {
                "service": {
                    "type": "object",
                    "description": "Service is a reference to the service for this API server.  It must communicate on "
                                   "port 443. If the Service is nil, that means the handling for the API groupversion is "
                                   "handled locally on this server.",
                    "properties": {
                        "namespace": {"type": "string", "description": "Namespace is the namespace of the service"},
                        "name": {"type": "string", "description": "Name is the name of the service"},
                        "port": {"type": "integer", "format": "int32", "default": 443,
                                 "description": "If specified, the port on the service that hosting webhook. "
                                                "Default to 443 for backward compatibility."},
                    },
                },
                "group": {"type": "string", "description": "Group is the API group name this server hosts"},
                "version": {"type": "string", "description": "Version is the API version this server hosts.  For example, \"v1\""},
                "insecureSkipTLSVerify": {"type": "boolean", "description": "InsecureSkipTLSVerify disables TLS certificate "
                                                                            "verification when communicating with this server."},
                "caBundle": {"type": "string", "format": "byte", "x-kubernetes-list-type": "atomic",
                             "description": "CABundle is a PEM encoded CA bundle which will be used to validate an API "
                                            "server's serving certificate."},
                "groupPriorityMinimum": {"type": "integer", "format": "int32",
                                         "description": "GroupPriorityMinimum is the priority this group should have at "
                                                        "least. Higher priority means that the group is preferred by clients "
                                                        "over lower priority ones."},
                "versionPriority": {"type": "integer", "format": "int32",
                                    "description": "VersionPriority controls the ordering of this API version inside of its "
                                                   "group.  Must be greater than zero."},
            },
        },
        "status": {
            "type": "object",
            "description": "APIServiceStatus contains derived information about an API server",
            "properties": {
                "conditions": {"type": "array", "items": _CONDITION, "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-patch-strategy": "merge",
                               "x-kubernetes-patch-merge-key": "type",
                               "description": "Current service state of apiService."},
            },
        },
    },
}


def _service(obj: Obj, now: datetime) -> str:
    service = dct(dct(obj.get("spec")).get("service"))
    if not service:
        return "Local"
    return f"{service.get('namespace', '')}/{service.get('name', '')}"


def _available(obj: Obj, now: datetime) -> str:
    for condition in dct(obj.get("status")).get("conditions") or ():
        if dct(condition).get("type") == "Available":
            status = str(condition.get("status", ""))
            return status if status == "True" else f"{status} ({condition.get('reason', '')})"
    return "Unknown"


API_SERVICES = ResourceDef(
    group=GROUP,
    kind="APIService",
    plural="apiservices",
    singular="apiservice",
    namespaced=False,
    builtin=True,
    categories=("api-extensions",),
    versions=(VersionDef(
        name="v1", storage=True, schema=_SCHEMA, status_subresource=True,
        printer_columns=(
            col("Service", "string", ".spec.service", _service, "The reference to the service that hosts this API endpoint."),
            col("Available", "string", ".status.conditions[?(@.type=='Available')].status", _available,
                "Whether this service is available."),
            AGE,
        ),
    ),),
)
