"""Impersonation, as kube-apiserver's `WithImpersonation` filter: act as another user, groups, uid or extras.

The headers (kube's `authentication/v1` constants):

    Impersonate-User: <name>            a `system:serviceaccount:<ns>:<name>` name is that ServiceAccount
    Impersonate-Group: <group>          repeatable
    Impersonate-Uid: <uid>
    Impersonate-Extra-<key>: <value>    repeatable; the key lower-cased, then %-decoded

Each one is authorized for the real caller with verb `impersonate`, in this
order (user, groups, extras, uid), and the first refusal is kube's 403
(`users "bob" is forbidden: User "alice" cannot impersonate resource "users"
in API group "" at the cluster scope`):

    Impersonate-User          users/<name>                          API group ""
                              serviceaccounts/<name> in <ns>        API group ""
    Impersonate-Group         groups/<group>                        API group ""
    Impersonate-Extra-<key>   userextras/<key>, named <value>       API group "authentication.k8s.io"
    Impersonate-Uid           uids/<uid>                            API group "authentication.k8s.io"

Groups, extras or a uid without a user is kube's 400 (`requested [...] without
impersonating a user`). The request then runs as the impersonated user, whose
groups are kube's: the groups asked for (a service account asked for without
groups gets `system:serviceaccounts` and `system:serviceaccounts:<ns>`), plus
`system:authenticated` unless it is `system:anonymous` (who gets
`system:unauthenticated`) or one of the two is already there. The
impersonation headers are removed before the request goes on.

Without impersonation headers the cost is one scan of the raw header list.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, MutableMapping
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import ANONYMOUS_USER, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, UserInfo
from kapi.api.validation import dns1123_label_errors, dns1123_subdomain_errors
from kapi.auth.interfaces import Authorizer
from kapi.endpoints.filters import USER_KEY, Handler, forbidden, is_public_path, request_user

PREFIX = b"impersonate-"
USER_HEADER = b"impersonate-user"
GROUP_HEADER = b"impersonate-group"
UID_HEADER = b"impersonate-uid"
EXTRA_PREFIX = b"impersonate-extra-"
AUTHENTICATION_GROUP = "authentication.k8s.io"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")


@dataclass(frozen=True)
class Impersonation:
    """What a request's headers ask to act as; `extra` keeps (key, value) pairs in header order."""

    user: str = ""
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def groups_specified(self) -> bool:
        return bool(self.groups)


def _text(raw: bytes) -> str:
    """A header value: UTF-8 as Go keeps the bytes, latin-1 when it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def extra_key(raw: str) -> str:
    """kube's `unescapeExtraKey` of the lower-cased key: %-decoded, kept as sent when an escape is malformed."""
    key = raw.lower()
    if "%" not in key or _BAD_ESCAPE.search(key):
        return key
    return unquote(key, errors="replace")


def requested(raw_headers: Iterable[tuple[bytes, bytes]]) -> Impersonation | None:
    """The impersonation the headers ask for, or None; one pass over ASGI's (lower-cased) header names."""
    found: list[tuple[bytes, bytes]] | None = None
    for name, value in raw_headers:
        if name.startswith(PREFIX):
            if found is None:
                found = []
            found.append((name, value))
    if found is None:
        return None
    user, uid = "", ""
    has_user = has_uid = False
    groups: list[str] = []
    extra: list[tuple[str, str]] = []
    for name, value in found:
        if name == USER_HEADER:
            if not has_user:  # Go's Header.Get: the first one
                user, has_user = _text(value), True
        elif name == GROUP_HEADER:
            groups.append(_text(value))
        elif name == UID_HEADER:
            if not has_uid:
                uid, has_uid = _text(value), True
        elif name.startswith(EXTRA_PREFIX):
            extra.append((extra_key(name[len(EXTRA_PREFIX):].decode("latin-1")), _text(value)))
    if not (user or groups or uid or extra):
        return None  # only other Impersonate-* headers (or empty ones): nothing to impersonate
    return Impersonation(user, tuple(groups), uid, tuple(extra))


def split_service_account(name: str) -> tuple[str, str] | None:
    """kube's `serviceaccount.SplitUsername`: (namespace, name), or None when `name` is not one."""
    if not name.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = name[len(SERVICE_ACCOUNT_PREFIX):].split(":")
    if len(parts) != 2 or dns1123_label_errors(parts[0]) or dns1123_subdomain_errors(parts[1]):
        return None
    return parts[0], parts[1]


def _check(resource: str, name: str, *, group: str = "", namespace: str = "", subresource: str = "") -> RequestInfo:
    return RequestInfo(path="", verb="impersonate", is_resource_request=True, group=group, version="v1",
                       namespace=namespace, resource=resource, name=name, subresource=subresource)


def checks(asked: Impersonation) -> list[RequestInfo]:
    """The authorization checks for `asked`, in kube's order: user, groups, extras, uid."""
    out: list[RequestInfo] = []
    if asked.user:
        account = split_service_account(asked.user)
        out.append(_check("serviceaccounts", account[1], namespace=account[0]) if account
                   else _check("users", asked.user))
    out.extend(_check("groups", group) for group in asked.groups)
    out.extend(_check("userextras", value, group=AUTHENTICATION_GROUP, subresource=key) for key, value in asked.extra)
    if asked.uid:
        out.append(_check("uids", asked.uid, group=AUTHENTICATION_GROUP))
    return out


def _go_reference(info: RequestInfo) -> str:
    """Go's `%v` of the v1.ObjectReference kube builds for one check (Kind Namespace Name UID APIVersion
    ResourceVersion FieldPath)."""
    kind, api_version, field_path = {
        "serviceaccounts": ("ServiceAccount", "", ""), "users": ("User", "", ""), "groups": ("Group", "", ""),
        "userextras": ("UserExtra", f"{AUTHENTICATION_GROUP}/v1", info.subresource),
        "uids": ("UID", f"{AUTHENTICATION_GROUP}/v1", ""),
    }[info.resource]
    return "{" + " ".join((kind, info.namespace, info.name, "", api_version, "", field_path)) + "}"


def impersonated_user(asked: Impersonation) -> UserInfo:
    """The user `asked` describes, with kube's groups (see the module docstring)."""
    groups = list(asked.groups)
    account = split_service_account(asked.user)
    if account is not None and not asked.groups_specified:
        groups = [ALL_SERVICE_ACCOUNTS_GROUP, f"{ALL_SERVICE_ACCOUNTS_GROUP}:{account[0]}"]
    if asked.user != ANONYMOUS_USER:
        if AUTHENTICATED_GROUP not in groups and UNAUTHENTICATED_GROUP not in groups:
            groups.append(AUTHENTICATED_GROUP)
    elif UNAUTHENTICATED_GROUP not in groups:
        groups.append(UNAUTHENTICATED_GROUP)
    extra: dict[str, list[str]] = {}
    for key, value in asked.extra:
        extra.setdefault(key, []).append(value)
    return UserInfo(asked.user, uid=asked.uid, groups=tuple(groups), extra={k: tuple(v) for k, v in extra.items()})


async def impersonate(asked: Impersonation, requestor: UserInfo, authorizer: Authorizer) -> UserInfo:
    """Authorize every part of `asked` for `requestor` and return the impersonated user.

    Raises kube's 400 when groups, extras or a uid come without a user, and its 403 for the first refusal."""
    wanted = checks(asked)
    if not asked.user:
        refs = " ".join(_go_reference(info) for info in wanted)
        raise errors.BadRequest(f"requested [{refs}] without impersonating a user")
    for info in wanted:
        decision = await authorizer.authorize(requestor, info)
        if not decision.allowed:
            raise forbidden(requestor, info, decision.reason)
    return impersonated_user(asked)


def strip_headers(scope: MutableMapping[str, Any]) -> None:
    """Drop the headers kube deletes once impersonation is done (User, Group, Uid, Extra-*)."""
    scope["headers"] = [(name, value) for name, value in scope.get("headers", ())
                        if not (name in (USER_HEADER, GROUP_HEADER, UID_HEADER) or name.startswith(EXTRA_PREFIX))]


def with_impersonation(handler: Handler, authorizer: Authorizer) -> Handler:
    """Switch `scope["kapi.user"]` to the impersonated user once every part is authorized.

    Public paths (`/healthz`, `/version`, ...) are served anonymously whatever the headers say."""
    async def run(request: Request) -> Response:
        scope = request.scope
        asked = requested(scope.get("headers", ()))
        if asked is not None and not is_public_path(scope["path"]):
            scope[USER_KEY] = await impersonate(asked, request_user(request), authorizer)
            strip_headers(scope)
            request.__dict__.pop("_headers", None)  # Starlette's cached view of the old headers, if built
        return await handler(request)
    return run


__all__ = ["Impersonation", "checks", "extra_key", "impersonate", "impersonated_user", "requested",
           "split_service_account", "strip_headers", "with_impersonation"]
