"""The review resources behind `kubectl auth whoami` and `kubectl auth can-i`, and TokenReview.

All are virtual (no storage, create only): a POST is answered from the
request's user, the authenticator chain or the authorizer, never stored.
They are listed here so discovery and OpenAPI describe them like any other
resource.
"""
from __future__ import annotations

from typing import Any

from server.scheme.definitions import ResourceDef, VersionDef

AUTHENTICATION_GROUP = "authentication.k8s.io"
AUTHORIZATION_GROUP = "authorization.k8s.io"

_STRINGS = {"type": "array", "items": {"type": "string"}}

_USER_INFO: dict[str, Any] = {
    "type": "object",
    "description": "UserInfo holds the information about the user needed to implement the user.Info interface.",
    "properties": {
        "username": {"type": "string", "description": "The name that uniquely identifies this user among all active users."},
        "uid": {"type": "string", "description": "A unique value that identifies this user across time."},
        "groups": {**_STRINGS, "description": "The names of groups this user is a part of.",
                   "x-kubernetes-list-type": "atomic"},
        "extra": {"type": "object", "description": "Any additional information provided by the authenticator.",
                  "additionalProperties": _STRINGS},
    },
}

_SELF_SUBJECT_REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "SelfSubjectReview contains the user information that the kube-apiserver has about the user making this request.",
    "properties": {
        "status": {
            "type": "object",
            "description": "Status is filled in by the server with the user attributes.",
            "properties": {"userInfo": _USER_INFO},
        },
    },
}

_RESOURCE_ATTRIBUTES: dict[str, Any] = {
    "type": "object",
    "description": "ResourceAttributes includes the authorization attributes available for resource requests to the Authorizer interface",
    "properties": {
        name: {"type": "string"}
        for name in ("namespace", "verb", "group", "version", "resource", "subresource", "name")
    },
}

_SELF_SUBJECT_ACCESS_REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "SelfSubjectAccessReview checks whether or the current user can perform an action.",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "description": "Spec holds information about the request being evaluated. user and groups must be empty",
            "properties": {
                "resourceAttributes": _RESOURCE_ATTRIBUTES,
                "nonResourceAttributes": {
                    "type": "object",
                    "description": "NonResourceAttributes includes the authorization attributes available for non-resource requests to the Authorizer interface",
                    "properties": {"path": {"type": "string"}, "verb": {"type": "string"}},
                },
            },
        },
        "status": {
            "type": "object",
            "description": "Status is filled in by the server and indicates whether the request is allowed or not",
            "required": ["allowed"],
            "properties": {
                "allowed": {"type": "boolean"},
                "denied": {"type": "boolean"},
                "reason": {"type": "string"},
                "evaluationError": {"type": "string"},
            },
        },
    },
}

SELF_SUBJECT_REVIEWS = ResourceDef(
    group=AUTHENTICATION_GROUP,
    kind="SelfSubjectReview",
    plural="selfsubjectreviews",
    singular="selfsubjectreview",
    namespaced=False,
    builtin=True,
    virtual=True,
    verbs=("create",),
    versions=(VersionDef(name="v1", storage=True, schema=_SELF_SUBJECT_REVIEW_SCHEMA),),
)

SELF_SUBJECT_ACCESS_REVIEWS = ResourceDef(
    group=AUTHORIZATION_GROUP,
    kind="SelfSubjectAccessReview",
    plural="selfsubjectaccessreviews",
    singular="selfsubjectaccessreview",
    namespaced=False,
    builtin=True,
    virtual=True,
    verbs=("create",),
    versions=(VersionDef(name="v1", storage=True, schema=_SELF_SUBJECT_ACCESS_REVIEW_SCHEMA),),
)

_TOKEN_REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "TokenReview attempts to authenticate a token to a known user. Note: TokenReview requests "
                   "may be cached by the webhook token authenticator plugin in the kube-apiserver.",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "description": "Spec holds information about the request being evaluated",
            "properties": {
                "token": {"type": "string", "description": "Token is the opaque bearer token."},
                "audiences": {**_STRINGS, "x-kubernetes-list-type": "atomic",
                              "description": "Audiences is a list of the identifiers that the resource server "
                                             "presented with the token identifies as."},
            },
        },
        "status": {
            "type": "object",
            "description": "Status is filled in by the server and indicates whether the request can be authenticated.",
            "properties": {
                "authenticated": {"type": "boolean"},
                "user": _USER_INFO,
                "audiences": {**_STRINGS, "x-kubernetes-list-type": "atomic"},
                "error": {"type": "string"},
            },
        },
    },
}

TOKEN_REVIEWS = ResourceDef(
    group=AUTHENTICATION_GROUP,
    kind="TokenReview",
    plural="tokenreviews",
    singular="tokenreview",
    namespaced=False,
    builtin=True,
    virtual=True,
    verbs=("create",),
    versions=(VersionDef(name="v1", storage=True, schema=_TOKEN_REVIEW_SCHEMA),),
)

AUTH_REVIEWS: tuple[ResourceDef, ...] = (SELF_SUBJECT_REVIEWS, TOKEN_REVIEWS, SELF_SUBJECT_ACCESS_REVIEWS)
