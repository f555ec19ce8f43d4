"""`admissionregistration.k8s.io/v1` Mutating- and ValidatingWebhookConfigurations.

Served like kube-apiserver serves them: cluster-scoped, one version. kube's
v1 defaults live in the schema (`default`), so they are filled in on every
write and read exactly as kube's defaulting funcs do: failurePolicy Fail,
matchPolicy Equivalent, timeoutSeconds 10, empty namespace and object
selectors, rules scope `*`, service port 443 and, for mutating webhooks,
reinvocationPolicy Never. kube's field validation (required name,
clientConfig, sideEffects, admissionReviewVersions, with its wording) is
the strategy's (`kapi.registry.webhook_config_strategy`), not `required`
here, because the schema's generic messages differ from kube's.
"""
from __future__ import annotations

from typing import Any

from kapi.scheme.definitions import PrinterColumn, ResourceDef, VersionDef

GROUP = "admissionregistration.k8s.io"
Schema = dict[str, Any]

_STRINGS: Schema = {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"}

_LABEL_SELECTOR: Schema = {
    "type": "object",
    "description": "A label selector is a label query over a set of resources. An empty label selector matches all objects.",
    "x-kubernetes-map-type": "atomic",
    "default": {},
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "matchLabels is a map of {key,value} pairs."},
        "matchExpressions": {
            "type": "array",
            "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
            "x-kubernetes-list-type": "atomic",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string", "description": "In, NotIn, Exists and DoesNotExist."},
                    "values": _STRINGS,
                },
            },
        },
    },
}

_CLIENT_CONFIG: Schema = {
    "type": "object",
    "description": "ClientConfig defines how to communicate with the hook. Required",
    "properties": {
        "url": {"type": "string", "description": "`url` gives the location of the webhook, in standard URL form "
                                                 "(`scheme://host:port/path`). Exactly one of `url` or `service` must be specified."},
        "caBundle": {"type": "string", "format": "byte",
                     "description": "`caBundle` is a PEM encoded CA bundle which will be used to validate the webhook's "
                                    "server certificate. If unspecified, system trust roots on the apiserver are used."},
        "service": {
            "type": "object",
            "description": "`service` is a reference to the service for this webhook. Either `service` or `url` must be specified.",
            "properties": {
                "namespace": {"type": "string", "description": "`namespace` is the namespace of the service. Required"},
                "name": {"type": "string", "description": "`name` is the name of the service. Required"},
                "path": {"type": "string", "description": "`path` is an optional URL path which will be sent in any request to this service."},
                "port": {"type": "integer", "format": "int32", "default": 443,
                         "description": "If specified, the port on the service that hosting webhook. Default to 443."},
            },
        },
    },
}

_RULE: Schema = {
    "type": "object",
    "description": "RuleWithOperations is a tuple of Operations and Resources.",
    "properties": {
        "operations": {**_STRINGS, "description": "Operations is the operations the admission hook cares about - "
                                                  "CREATE, UPDATE, DELETE, CONNECT or * for all of those operations."},
        "apiGroups": {**_STRINGS, "description": "APIGroups is the API groups the resources belong to. '*' is all groups."},
        "apiVersions": {**_STRINGS, "description": "APIVersions is the API versions the resources belong to. '*' is all versions."},
        "resources": {**_STRINGS, "description": "Resources is a list of resources this rule applies to. "
                                                 "'*' means all resources, 'pods/*' all subresources of pods."},
        "scope": {"type": "string", "default": "*",
                  "description": "scope specifies the scope of this rule: \"Cluster\", \"Namespaced\" or \"*\"."},
    },
}


def _webhook(description: str, mutating: bool) -> Schema:
    properties: Schema = {
        "name": {"type": "string", "description": "The name of the admission webhook. Name should be fully qualified."},
        "clientConfig": _CLIENT_CONFIG,
        "rules": {"type": "array", "items": _RULE, "x-kubernetes-list-type": "atomic",
                  "description": "Rules describes what operations on what resources/subresources the webhook cares about."},
        "failurePolicy": {"type": "string", "default": "Fail",
                          "description": "FailurePolicy defines how unrecognized errors from the admission endpoint are "
                                         "handled - allowed values are Ignore or Fail. Defaults to Fail."},
        "matchPolicy": {"type": "string", "default": "Equivalent",
                        "description": "matchPolicy defines how the \"rules\" list is used to match incoming requests. "
                                       "Allowed values are \"Exact\" or \"Equivalent\"."},
        "namespaceSelector": {**_LABEL_SELECTOR, "description": "NamespaceSelector decides whether to run the webhook "
                                                              "on an object based on whether the namespace for that object matches the selector."},
        "objectSelector": {**_LABEL_SELECTOR, "description": "ObjectSelector decides whether to run the webhook "
                                                           "based on if the object has matching labels."},
        "sideEffects": {"type": "string", "description": "SideEffects states whether this webhook has side effects. "
                                                         "Acceptable values are: None, NoneOnDryRun."},
        "timeoutSeconds": {"type": "integer", "format": "int32", "default": 10,
                           "description": "TimeoutSeconds specifies the timeout for this webhook. Default to 10 seconds."},
        "admissionReviewVersions": {**_STRINGS, "description": "AdmissionReviewVersions is an ordered list of preferred "
                                                               "`AdmissionReview` versions the Webhook expects."},
        "matchConditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                       "expression": {"type": "string"}}},
                            "description": "MatchConditions is a list of conditions that must be met for a request to be sent to this webhook."},
    }
    if mutating:
        properties["reinvocationPolicy"] = {
            "type": "string", "default": "Never",
            "description": "reinvocationPolicy indicates whether this webhook should be called multiple times as part "
                           "of a single admission evaluation. Allowed values are \"Never\" and \"IfNeeded\"."}
    return {"type": "object", "description": description, "properties": properties}


def _configuration(description: str, mutating: bool) -> Schema:
    hook = "MutatingWebhook" if mutating else "ValidatingWebhook"
    return {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
            "metadata": {"type": "object", "description": "Standard object metadata."},
            "webhooks": {
                "type": "array",
                "description": "Webhooks is a list of webhooks and the affected resources and operations.",
                "items": _webhook(f"{hook} describes an admission webhook and the resources and operations it applies to.",
                                  mutating),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
            },
        },
    }


def _definition(kind: str, plural: str, description: str, mutating: bool) -> ResourceDef:
    return ResourceDef(
        group=GROUP,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=False,
        builtin=True,
        versions=(VersionDef(
            name="v1", storage=True, schema=_configuration(description, mutating),
            printer_columns=(PrinterColumn(name="Webhooks", type="integer", json_path=".webhooks",
                                           count_of=("webhooks",)),),
        ),),
    )


MUTATING_WEBHOOK_CONFIGURATIONS = _definition(
    "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration describes the configuration of and admission webhook that accept or reject and may "
    "change the object.", mutating=True)

VALIDATING_WEBHOOK_CONFIGURATIONS = _definition(
    "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration describes the configuration of and admission webhook that accept or reject and "
    "object without changing it.", mutating=False)

ADMISSION_REGISTRATION: tuple[ResourceDef, ...] = (MUTATING_WEBHOOK_CONFIGURATIONS, VALIDATING_WEBHOOK_CONFIGURATIONS)
