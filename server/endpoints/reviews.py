"""The review endpoints: `kubectl auth whoami`, `kubectl auth can-i` and TokenReview.

`POST /apis/authentication.k8s.io/v1/selfsubjectreviews` answers who the
caller is; `POST /apis/authentication.k8s.io/v1/tokenreviews` who a bearer
token's holder is, from the authenticator chain in force (what the token is
good for among `spec.audiences`, the API audiences by default);
`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` answers whether
the caller may do what the spec describes, from the authorizer in force.
Nothing is stored. Bodies arrive as protobuf (kubectl) or JSON/YAML; answers
are JSON, 201 Created, shaped like kube-apiserver's.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.api import errors
from server.api.requestinfo import RequestInfo
from server.api.user import UserInfo
from server.auth.interfaces import Authenticator, AuthRequest, Authorizer
from server.auth.service_account import token_audiences
from server.auth.union import UNAUTHORIZED_MESSAGE, UnionAuthenticator
from server.endpoints import negotiation as neg
from server.endpoints.context import ApiContext
from server.endpoints.filters import request_user
from server.endpoints.resources import read_body, respond
from server.scheme.builtin_auth import SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS, TOKEN_REVIEWS
from server.scheme.definitions import ResourceDef

_NOT_FOUND = "the server could not find the requested resource"
_REVIEWS = {(d.group, d.plural): d for d in (SELF_SUBJECT_REVIEWS, TOKEN_REVIEWS, SELF_SUBJECT_ACCESS_REVIEWS)}


def review_for(info: RequestInfo) -> ResourceDef | None:
    """The review resource a request path names (any version), or None."""
    if not info.is_resource_request:
        return None
    return _REVIEWS.get((info.group, info.resource))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _review_body(request: Request, ctx: ApiContext, definition: ResourceDef, version: str) -> dict[str, Any]:
    body = neg.decode_body(request.headers.get("content-type"), await read_body(request, ctx.max_body_bytes))
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the body of the request must be a {definition.kind} object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    expected = definition.api_version(version)
    if (kind not in (None, "", definition.kind)) or (api_version not in (None, "", expected)):
        raise errors.BadRequest(f"the body of the request must be a {definition.kind} in {expected}, "
                                f"not {kind or 'an object'} in {api_version or 'no apiVersion'}")
    return body


def self_subject_review(user: UserInfo, version: str = "v1") -> dict[str, Any]:
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": f"{SELF_SUBJECT_REVIEWS.group}/{version}",
        "metadata": {"creationTimestamp": _now()},
        "status": {"userInfo": user.to_dict()},
    }


def _strings(obj: Any, field_path: str) -> dict[str, str]:
    if obj is None:
        return {}
    if not isinstance(obj, dict) or any(not isinstance(v, (str, type(None))) for k, v in obj.items()
                                        if k not in ("fieldSelector", "labelSelector")):
        raise errors.BadRequest(f"{field_path} must be an object of strings")
    return {k: v for k, v in obj.items() if isinstance(v, str)}


def access_attributes(spec: Any) -> RequestInfo:
    """The request a SelfSubjectAccessReview spec asks about, validated as kube does."""
    if spec is not None and not isinstance(spec, dict):
        raise errors.BadRequest("spec must be an object")
    spec = spec or {}
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        cause = errors.field_invalid("spec.nonResourceAttributes", non_resource,
                                     "cannot be specified in combination with resourceAttributes")
        raise errors.invalid(SELF_SUBJECT_ACCESS_REVIEWS.group, SELF_SUBJECT_ACCESS_REVIEWS.kind, "", [cause])
    if resource is None and non_resource is None:
        cause = errors.field_invalid("spec.resourceAttributes", None,
                                     "exactly one of nonResourceAttributes or resourceAttributes must be specified")
        raise errors.invalid(SELF_SUBJECT_ACCESS_REVIEWS.group, SELF_SUBJECT_ACCESS_REVIEWS.kind, "", [cause])
    if resource is not None:
        attrs = _strings(resource, "spec.resourceAttributes")
        return RequestInfo(
            path="",
            verb=attrs.get("verb", ""),
            is_resource_request=True,
            group=attrs.get("group", ""),
            version=attrs.get("version", ""),
            namespace=attrs.get("namespace", ""),
            resource=attrs.get("resource", ""),
            name=attrs.get("name", ""),
            subresource=attrs.get("subresource", ""),
        )
    attrs = _strings(non_resource, "spec.nonResourceAttributes")
    return RequestInfo(path=attrs.get("path", ""), verb=attrs.get("verb", ""))


async def self_subject_access_review(body: dict[str, Any], user: UserInfo, authorizer: Authorizer,
                                     version: str = "v1") -> dict[str, Any]:
    info = access_attributes(body.get("spec"))
    decision = await authorizer.authorize(user, info)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return _answer(SELF_SUBJECT_ACCESS_REVIEWS, version, body, body.get("spec") or {}, status)


async def token_review(body: dict[str, Any], ctx: ApiContext, authenticator: Authenticator | None,
                       version: str = "v1") -> dict[str, Any]:
    """kube's TokenReview: the token as a bearer credential, through the whole authenticator chain."""
    spec = body.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise errors.BadRequest("spec must be an object")
    spec = spec or {}
    token, requested = spec.get("token") or "", spec.get("audiences") or []
    if not isinstance(token, str) or not isinstance(requested, list) or any(not isinstance(a, str) for a in requested):
        raise errors.BadRequest("spec.token must be a string and spec.audiences a list of strings")
    if not token:
        raise errors.BadRequest("token is required for TokenReview in authentication")
    user: UserInfo | None = None
    reasons: tuple[str, ...] = ()
    if authenticator is not None:
        asked = AuthRequest(headers={"authorization": f"Bearer {token}"}, audiences=requested)
        if isinstance(authenticator, UnionAuthenticator):
            user, reasons = await authenticator.review(asked)
        else:
            try:
                user = await authenticator.authenticate(asked)
            except errors.Unauthorized as exc:
                reasons = (exc.message,)
    wanted = tuple(requested) or ctx.api_audiences
    matched: tuple[str, ...] = ()
    if user is not None and wanted:
        claims = ctx.token_issuer.verify(token) if ctx.token_issuer is not None else None
        good_for = token_audiences(claims) if claims is not None else ctx.api_audiences  # others: any API audience
        matched = tuple(a for a in wanted if a in good_for)
        if not matched:
            user = None
    status: dict[str, Any]
    if user is not None:
        status = {"authenticated": True, "user": user.to_dict()}
        if matched:
            status["audiences"] = list(matched)
    else:  # kube's omitempty: no `authenticated: false`, an empty user
        known = [r for r in reasons if r and r != UNAUTHORIZED_MESSAGE] or ["invalid bearer token"]
        status = {"user": {}, "error": known[0] if len(known) == 1 else "[" + ", ".join(known) + "]"}
    return _answer(TOKEN_REVIEWS, version, body, spec, status)


def _answer(definition: ResourceDef, version: str, body: dict[str, Any], spec: Any,
            status: dict[str, Any]) -> dict[str, Any]:
    """A review as kube answers it: the request's metadata and spec, with the status filled in."""
    raw_metadata = body.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    return {
        "kind": definition.kind,
        "apiVersion": f"{definition.group}/{version}",
        "metadata": {**metadata, "creationTimestamp": metadata.get("creationTimestamp") or None},
        "spec": spec,
        "status": status,
    }


async def handle_review(request: Request, info: RequestInfo, ctx: ApiContext, authorizer: Authorizer,
                        authenticator: Authenticator | None = None) -> Response:
    """POST to a review collection; other verbs 405, other paths under it 404."""
    definition = review_for(info)
    if definition is None or definition.version(info.version) is None:
        raise errors.NotFound(_NOT_FOUND)
    if info.namespace or info.name or info.subresource or info.extra_parts:
        raise errors.NotFound(_NOT_FOUND)
    if request.method != "POST":
        raise errors.MethodNotSupported("the server does not allow this method on the requested resource")
    body = await _review_body(request, ctx, definition, info.version)
    user = request_user(request)
    if definition is SELF_SUBJECT_REVIEWS:
        answer = self_subject_review(user, info.version)
    elif definition is TOKEN_REVIEWS:
        answer = await token_review(body, ctx, authenticator, info.version)
    else:
        answer = await self_subject_access_review(body, user, authorizer, info.version)
    return respond(request, answer, status=201)
