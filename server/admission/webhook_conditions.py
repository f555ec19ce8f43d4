"""A webhook's `matchConditions`: CEL expressions that decide whether a matched webhook is called.

kube's `matchconditions` matcher, over the variables of kube's admission CEL environment:

- `object` and `oldObject`: the objects in the version the webhook matched (`object` is null
  for DELETE, `oldObject` for CREATE);
- `request`: the AdmissionRequest without its objects (kind, resource, subResource,
  requestKind, requestResource, requestSubResource, name, namespace, operation, userInfo,
  dryRun, options), every field present as kube's typed request has it;
- `authorizer`: kube's authz library, answered by the server's authorizer:
  `authorizer.group(g).resource(r).namespace(ns).name(n).subresource(s).check(verb)`,
  `authorizer.path(p).check(verb)`, `authorizer.serviceAccount(ns, name)`,
  `authorizer.requestResource`; a decision answers `allowed()`, `reason()`, `errored()`, `error()`.

All conditions true: the webhook is called. Any false: it is skipped, whatever errors the
others had. Otherwise the errors go by failurePolicy: Fail refuses the write with kube's 403
(`... is forbidden: expression '<e>' resulted in error: <why>`), Ignore skips the webhook.
When a configuration is stored, `condition_causes` checks what kube checks: at most 64
conditions, unique qualified names, expressions that compile to a bool.

`request` is a map here, not kube's declared message type, so a misspelt field fails when
evaluated rather than when stored, and an expression typed `dyn` is accepted. An expression
that uses `authorizer` runs in a worker thread, so the async authorizer can be awaited on the
event loop while CEL waits for its answer.
"""
from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from cel_expr_python import cel  # type: ignore[import-untyped]

from kapi.admission.webhook_match import request_namespace
from kapi.admission.webhook_review import review_request
from kapi.api.attributes import AdmissionAttributes
from kapi.api.errors import Cause, Forbidden, QualifiedKind, field_duplicate, field_too_many, resource_label
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.api.validation import qualified_name_errors
from kapi.scheme.cel_values import _OUT_OF_BUDGET, compile_source, run_compiled, standard_extensions
from kapi.webhook.validation import invalid, required

MAX_CONDITIONS = 64
AUTHORIZER_TIMEOUT = 10.0  # seconds one authorizer check may take before its decision is an error
# An authorizer: `await authorize(user, info)` returns a decision with `.allowed` and `.reason`.
Authorize = Callable[[UserInfo, RequestInfo], Awaitable[Any]]
_KIND = "kapi__authz"
_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

_authorize: contextvars.ContextVar[tuple[Authorize | None, asyncio.AbstractEventLoop]] = \
    contextvars.ContextVar("kapi_match_condition_authorizer")


# -- kube's authz library -----------------------------------------------------------------------

def _receiver(value: Any, *kinds: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get(_KIND) not in kinds:
        raise ValueError("no such overload")
    return value


def _with(value: Any, kinds: tuple[str, ...], kind: str, **fields: Any) -> dict[str, Any]:
    return {**_receiver(value, *kinds), _KIND: kind, **fields}


def _user_of(value: dict[str, Any]) -> UserInfo:
    user = value["user"]
    return UserInfo(user["username"], user["uid"], tuple(user["groups"]), user["extra"])


def _user_value(user: UserInfo | None) -> dict[str, Any]:
    if user is None:
        return {"username": "", "uid": "", "groups": [], "extra": {}}
    return {"username": user.name, "uid": user.uid, "groups": list(user.groups),
            "extra": {k: list(v) for k, v in user.extra.items()}}


def _service_account(value: Any, namespace: str, name: str) -> dict[str, Any]:
    user = UserInfo(f"{_SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                    groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}"))
    return _with(value, ("authorizer",), "authorizer", user=_user_value(user))


def _check(value: Any, verb: str) -> dict[str, Any]:
    """One authorizer call, from the worker thread CEL runs in, awaited on the server's loop."""
    check = _receiver(value, "resource", "path")
    if check[_KIND] == "path":
        info = RequestInfo(path=check["path"], verb=verb)
    else:
        info = RequestInfo(path="", verb=verb, is_resource_request=True, group=check["group"], version="*",
                           namespace=check.get("namespace", ""), resource=check["resource"],
                           name=check.get("name", ""), subresource=check.get("subresource", ""))
    authorize, loop = _authorize.get()
    if authorize is None:
        return {_KIND: "decision", "allowed": False, "reason": "", "error": "no authorizer is configured"}
    try:
        decision = asyncio.run_coroutine_threadsafe(authorize(_user_of(check), info), loop).result(
            AUTHORIZER_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any authorizer failure is the decision's error, as in kube
        return {_KIND: "decision", "allowed": False, "reason": "", "error": str(exc) or type(exc).__name__}
    return {_KIND: "decision", "allowed": bool(decision.allowed), "reason": str(decision.reason or ""),
            "error": ""}


def _authz_library() -> Any:
    dyn, string, boolean = cel.Type.DYN, cel.Type.STRING, cel.Type.BOOL

    def member(name: str, ret: Any, params: list[Any], impl: Callable[..., Any]) -> Any:
        return cel.FunctionDecl(name, [cel.Overload(f"kapi_authz_{name}", ret, [dyn, *params], is_member=True,
                                                    impl=impl)])
    return cel.CelExtension("kapi_authz", [
        member("path", dyn, [string], lambda a, p: _with(a, ("authorizer",), "path", path=p)),
        member("group", dyn, [string], lambda a, g: _with(a, ("authorizer",), "group", group=g)),
        member("serviceAccount", dyn, [string, string], _service_account),
        member("resource", dyn, [string], lambda g, r: _with(g, ("group",), "resource", resource=r)),
        member("subresource", dyn, [string], lambda r, s: _with(r, ("resource",), "resource", subresource=s)),
        member("namespace", dyn, [string], lambda r, n: _with(r, ("resource",), "resource", namespace=n)),
        member("name", dyn, [string], lambda r, n: _with(r, ("resource",), "resource", name=n)),
        member("check", dyn, [string], _check),
        member("allowed", boolean, [], lambda d: _receiver(d, "decision")["allowed"]),
        member("reason", string, [], lambda d: _receiver(d, "decision")["reason"]),
        member("errored", boolean, [], lambda d: bool(_receiver(d, "decision")["error"])),
        member("error", string, [], lambda d: _receiver(d, "decision")["error"]),
    ])


# -- compilation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Compiled:
    expr: Any = None
    error: str = ""
    uses_authorizer: bool = False


_envs: dict[bool, Any] = {}
_compiled: dict[str, _Compiled] = {}


def _env(with_authorizer: bool) -> Any:
    env = _envs.get(with_authorizer)
    if env is None:
        dyn = cel.Type.DYN
        variables = {"object": dyn, "oldObject": dyn, "request": cel.Type.Map(cel.Type.STRING, dyn)}
        extensions = standard_extensions()
        if with_authorizer:
            variables["authorizer"] = dyn
            extensions.append(_authz_library())
        env = _envs[with_authorizer] = cel.NewEnv(variables=variables, extensions=extensions)
    return env


def compiled(expression: str) -> _Compiled:
    """The expression compiled once per process; `error` is kube's detail when it cannot be used."""
    found = _compiled.get(expression)
    if found is not None:
        return found
    if len(_compiled) > 4096:
        _compiled.clear()
    expr, issues = compile_source(_env(True), expression)
    if expr is None:
        found = _Compiled(error=f"compilation failed: {issues}")
    elif expr.return_type() not in (cel.Type.BOOL, cel.Type.DYN):
        found = _Compiled(error="must evaluate to bool")
    else:
        found = _Compiled(expr, uses_authorizer=compile_source(_env(False), expression)[0] is None)
    _compiled[expression] = found
    return found


def condition_causes(path: str, conditions: Any) -> list[Cause]:
    """kube's `validateMatchConditions` for one webhook's list."""
    if not isinstance(conditions, list):
        return []
    causes = [field_too_many(path, len(conditions), MAX_CONDITIONS)] if len(conditions) > MAX_CONDITIONS else []
    names: set[str] = set()
    for i, condition in enumerate(conditions):
        condition = condition if isinstance(condition, Mapping) else {}
        at = f"{path}[{i}]"
        expression = str(condition.get("expression") or "").strip()
        problem = compiled(expression).error if expression else ""
        if not expression:
            causes.append(required(f"{at}.expression"))
        elif problem:
            causes.append(invalid(f"{at}.expression", expression, problem))
        name = str(condition.get("name") or "")
        if not name:
            causes.append(required(f"{at}.name"))
        else:
            causes += [invalid(f"{at}.name", name, m) for m in qualified_name_errors(name)]
            if name in names:
                causes.append(field_duplicate(f"{at}.name", name))
            names.add(name)
    return causes


# -- evaluation ---------------------------------------------------------------------------------

def cel_request(attrs: AdmissionAttributes) -> dict[str, Any]:
    """The AdmissionReview's request as CEL's `request`: no uid or objects, empty fields present."""
    request = review_request(attrs)
    for key in ("subResource", "requestSubResource", "name", "namespace"):
        request.setdefault(key, "")
    request.setdefault("options", None)
    user = request.get("userInfo") if isinstance(request.get("userInfo"), Mapping) else {}
    request["userInfo"] = {"username": "", "uid": "", "groups": [], "extra": {}, **user}
    return request


@dataclass(frozen=True)
class Outcome:
    """`matches` when the webhook is to be called; `error` (kube's aggregate) when failurePolicy decides."""

    matches: bool
    error: str = ""


async def evaluate(conditions: Any, attrs: AdmissionAttributes, authorize: Authorize | None) -> Outcome:
    """Every condition of one webhook on the request as it matched (kube's `matcher.Match`)."""
    request = cel_request(attrs)
    data = {"object": attrs.obj, "oldObject": attrs.old_obj, "request": request}
    errors: list[str] = []
    for condition in conditions if isinstance(conditions, list) else []:
        expression = str(condition.get("expression") or "").strip() if isinstance(condition, Mapping) else ""
        program = compiled(expression)
        if program.expr is None:  # stored before kube's checks existed; kube fails such a condition
            errors.append(f"expression '{expression}' resulted in error: {program.error}")
            continue
        if program.uses_authorizer:
            user = {_KIND: "authorizer", "user": _user_value(attrs.user)}
            scoped = {**data, "authorizer": {**user, "requestResource": {
                **user, _KIND: "resource", "group": attrs.group, "resource": attrs.resource,
                "subresource": attrs.subresource, "namespace": request_namespace(attrs), "name": attrs.name}}}
            token = _authorize.set((authorize, asyncio.get_running_loop()))  # to_thread copies the context
            try:
                kind, value = await asyncio.to_thread(run_compiled, program.expr, scoped)
            finally:
                _authorize.reset(token)
        else:
            kind, value = run_compiled(program.expr, data)
        if kind == "budget":
            return Outcome(False, _OUT_OF_BUDGET)
        if kind == "error":
            errors.append(f"expression '{expression}' resulted in error: {value}")
        elif value is False:
            return Outcome(False)
        elif value is not True:
            errors.append(f"expression '{expression}' resulted in error: no such overload")
    if errors:
        return Outcome(False, errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]")
    return Outcome(True)


def forbidden(attrs: AdmissionAttributes, error: str) -> Forbidden:
    """kube's `NewForbidden(resource, name, err)` for conditions that failed under failurePolicy Fail."""
    return Forbidden(f'{resource_label(attrs.group, attrs.resource)} "{attrs.name}" is forbidden: {error}',
                     details=QualifiedKind(name=attrs.name, group=attrs.group, kind=attrs.resource))
