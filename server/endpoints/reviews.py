"""The review endpoints: `kubectl auth whoami`, TokenReview, and the authorization reviews' routing.

`POST /apis/authentication.k8s.io/v1/selfsubjectreviews` answers who the
caller is; `POST /apis/authentication.k8s.io/v1/tokenreviews` who a bearer
token's holder is, from the authenticator chain in force (what the token is
good for among `spec.audiences`, the API audiences by default). The
`authorization.k8s.io` reviews (`kubectl auth can-i`, `--list`,
SubjectAccessReview, LocalSubjectAccessReview under `/namespaces/<ns>/`) are
answered by `kapi.endpoints.access_reviews` from the authorizer in force.
Nothing is stored. Bodies arrive as protobuf (kubectl) or JSON/YAML; answers
are JSON, 201 Created, shaped like kube-apiserver's.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.auth.interfaces import Authenticator, AuthRequest, Authorizer
from kapi.auth.service_account import token_audiences
from kapi.auth.union import UNAUTHORIZED_MESSAGE, UnionAuthenticator
from kapi.endpoints import negotiation as neg
from kapi.endpoints.access_reviews import ACCESS_REVIEWS, access_review, envelope
from kapi.endpoints.context import ApiContext
from kapi.endpoints.filters import request_user
from kapi.endpoints.resources import read_body, respond
from kapi.scheme.builtin_auth import AUTH_REVIEWS, SELF_SUBJECT_REVIEWS, TOKEN_REVIEWS
from kapi.scheme.definitions import ResourceDef

_REVIEWS = {(d.group, d.plural): d for d in AUTH_REVIEWS}


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
    return envelope(definition, version, raw_metadata if isinstance(raw_metadata, dict) else {}, spec, status)


async def handle_review(request: Request, info: RequestInfo, ctx: ApiContext, authorizer: Authorizer,
                        authenticator: Authenticator | None = None) -> Response:
    """POST to a review collection; other verbs 405, other paths under it 404."""
    definition = review_for(info)
    if definition is None or definition.version(info.version) is None:
        raise errors.no_such_resource()
    if bool(info.namespace) != definition.namespaced or info.name or info.subresource or info.extra_parts:
        raise errors.no_such_resource()
    if request.method != "POST":
        raise errors.method_not_allowed()
    body = await _review_body(request, ctx, definition, info.version)
    user = request_user(request)
    if definition is SELF_SUBJECT_REVIEWS:
        answer = self_subject_review(user, info.version)
    elif definition is TOKEN_REVIEWS:
        answer = await token_review(body, ctx, authenticator, info.version)
    elif any(definition is d for d in ACCESS_REVIEWS):
        answer = await access_review(definition, body, user, authorizer, info.namespace, info.version)
    else:  # a review kind in the scheme with no handler here
        raise errors.no_such_resource()
    return respond(request, answer, status=201)
