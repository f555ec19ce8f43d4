"""`POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`: kube's TokenRequest (`kubectl create token`).

The body is an `authentication.k8s.io/v1 TokenRequest` (JSON, YAML or
protobuf). As kube-apiserver does: the metadata's name and namespace must
match the path if given; the ServiceAccount must exist; audiences default
to the API audiences and `expirationSeconds` to an hour (at least ten
minutes, at most 2^32 seconds); `boundObjectRef` names a Pod, Secret or Node
that must exist (with that uid, if one is given). The answer is 201 with the
request, its defaults filled in, and `status.token`/`expirationTimestamp`.
Nothing is stored.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.auth.service_account import TokenIssuer
from kapi.endpoints import negotiation as neg
from kapi.endpoints.context import ApiContext, ActionHandler
from kapi.endpoints.resources import read_body, respond
from kapi.registry.store import Store

GROUP = "authentication.k8s.io"
KIND = "TokenRequest"
API_VERSION = f"{GROUP}/v1"
DEFAULT_EXPIRATION_SECONDS = 60 * 60
MIN_EXPIRATION_SECONDS = 10 * 60
MAX_EXPIRATION_SECONDS = 1 << 32
# kubelet asks for this odd lifetime when it projects a pod's token: kube then makes the token
# good for a year and only warns after the hour (--service-account-extend-token-expiration).
WARN_ONLY_EXPIRATION_SECONDS = 60 * 60 + 7
EXTENDED_EXPIRATION_SECONDS = 24 * 365 * 60 * 60
_BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}

Object = dict[str, Any]


def register_token_action(actions: dict[tuple[str, str, str], ActionHandler], issuer: TokenIssuer,
                          api_audiences: Sequence[str], cluster: str = "") -> None:
    """Serve `serviceaccounts/token` with tokens `issuer` signs, bound to logical cluster `cluster` ("" for the
    server's own)."""
    audiences = tuple(api_audiences)

    async def token(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str,
                    namespace: str) -> Response:
        return await handle_token_request(request, ctx, store, info, namespace, issuer, audiences, cluster)

    actions[("", "serviceaccounts", "token")] = token


def _timestamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _group_version_kind(api_version: str, kind: str) -> tuple[str, str, str]:
    """kube's schema.FromAPIVersionAndKind: an unparsable apiVersion gives an empty group and version."""
    parts = api_version.split("/") if api_version else []
    if len(parts) == 1:
        return "", parts[0], kind
    if len(parts) == 2:
        return parts[0], parts[1], kind
    return "", "", kind


def _object(value: Any, path: str) -> Object:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.BadRequest(f"{path} must be an object")
    return value


def _read_spec(body: Object, api_audiences: tuple[str, ...]) -> Object:
    """The spec with kube's defaults; BadRequest for values of the wrong type."""
    spec = _object(body.get("spec"), "spec")
    audiences = spec.get("audiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise errors.BadRequest("spec.audiences must be a list of strings")
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        expiration = DEFAULT_EXPIRATION_SECONDS
    if isinstance(expiration, bool) or not isinstance(expiration, int):
        raise errors.BadRequest("spec.expirationSeconds must be an integer")
    out: Object = {"audiences": list(audiences) or list(api_audiences), "expirationSeconds": expiration}
    ref = spec.get("boundObjectRef")
    if ref is not None:
        ref = _object(ref, "spec.boundObjectRef")
        if not all(isinstance(ref.get(k, ""), str) for k in ("kind", "apiVersion", "name", "uid")):
            raise errors.BadRequest("spec.boundObjectRef fields must be strings")
        out["boundObjectRef"] = {k: ref[k] for k in ("kind", "apiVersion", "name", "uid") if ref.get(k)}
    return out


def _validate(spec: Object) -> None:
    expiration = spec["expirationSeconds"]
    causes = []
    if expiration < MIN_EXPIRATION_SECONDS:
        causes.append(errors.field_invalid("spec.expirationSeconds", expiration,
                                           "may not specify a duration less than 10 minutes"))
    if expiration > MAX_EXPIRATION_SECONDS:
        causes.append(errors.field_invalid("spec.expirationSeconds", expiration,
                                           "may not specify a duration larger than 2^32 seconds"))
    if causes:
        raise errors.invalid(GROUP, KIND, "", causes)


async def _get(ctx: ApiContext, plural: str, namespace: str, name: str) -> Object:
    store = ctx.store("", plural)
    if store is None or not name:
        raise errors.not_found("", plural, name)
    return await store.get(namespace, name, store.definition.storage_version.name)


async def _bound_objects(ctx: ApiContext, ref: Object, sa_name: str,
                         namespace: str) -> tuple[Object | None, Object | None, Object | None]:
    """(pod, secret, node) the token is bound to, checked as kube checks them."""
    group, version, kind = _group_version_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
    plural = _BINDABLE.get(kind) if group == "" else None
    if plural is None:
        raise errors.BadRequest(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    name = ref.get("name", "")
    found = await _get(ctx, plural, "" if kind == "Node" else namespace, name)
    pod = secret = node = None
    if kind == "Pod":
        pod = found
        pod_spec = pod.get("spec") or {}
        if (pod_spec.get("serviceAccountName") or "default") != sa_name:
            raise errors.BadRequest(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                                    "different serviceaccount name.")
        node_name = pod_spec.get("nodeName") or ""
        if node_name:
            try:
                node = await _get(ctx, "nodes", "", node_name)
            except errors.NotFound:  # kube still names the node, without a uid
                node = {"metadata": {"name": node_name}}
    elif kind == "Secret":
        secret = found
    else:
        node = found
    uid = (found.get("metadata") or {}).get("uid", "")
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.conflict("", kind, name, f"the UID in the bound object reference ({ref['uid']}) does not "
                              "match the UID in record. The object might have been deleted and then recreated")
    return pod, secret, node


async def handle_token_request(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, namespace: str,
                               issuer: TokenIssuer, api_audiences: tuple[str, ...], cluster: str = "") -> Response:
    body = neg.decode_body(request.headers.get("content-type"), await read_body(request, ctx.max_body_bytes))
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the body of the request must be a {KIND} object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind not in (None, "", KIND) or api_version not in (None, "", API_VERSION):
        raise errors.BadRequest(f"the body of the request must be a {KIND} in {API_VERSION}, "
                                f"not {kind or 'an object'} in {api_version or 'no apiVersion'}")
    name = info.name
    metadata = dict(_object(body.get("metadata"), "metadata"))
    if metadata.get("name") and metadata["name"] != name:
        cause = errors.field_invalid("metadata.name", metadata["name"],
                                     "must match the service account name if specified")
        raise errors.invalid(GROUP, KIND, name, [cause])
    if metadata.get("namespace") and metadata["namespace"] != namespace:
        cause = errors.field_invalid("metadata.namespace", metadata["namespace"],
                                     "must match the service account namespace if specified")
        raise errors.invalid(GROUP, KIND, name, [cause])
    service_account = await store.get(namespace, name, store.definition.storage_version.name)
    spec = _read_spec(body, api_audiences)
    now = issuer.now()
    _validate(spec)
    pod = secret = node = None
    if "boundObjectRef" in spec:
        pod, secret, node = await _bound_objects(ctx, spec["boundObjectRef"], name, namespace)
    expiration = lifetime = spec["expirationSeconds"]
    warn_after = 0
    if pod is not None and expiration == WARN_ONLY_EXPIRATION_SECONDS and set(spec["audiences"]) <= set(api_audiences):
        warn_after, lifetime = expiration, EXTENDED_EXPIRATION_SECONDS
    claims = issuer.claims(service_account, spec["audiences"], lifetime, pod=pod, secret=secret, node=node,
                           warn_after=warn_after, now=now, cluster=cluster)
    metadata.update({"name": name, "namespace": namespace, "creationTimestamp": _timestamp(now)})
    answer = {
        "kind": KIND,
        "apiVersion": API_VERSION,
        "metadata": metadata,
        "spec": spec,
        "status": {"token": issuer.sign(claims), "expirationTimestamp": _timestamp(now + expiration)},
    }
    return respond(request, answer, status=201)
