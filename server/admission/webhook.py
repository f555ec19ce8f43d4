"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook: kube's dynamic admission, over HTTPS.

On every write the Mutating-/ValidatingWebhookConfigurations are read through
the `ObjectReader`, which answers from the lifecycle controller's watch-fed
copy (kube's informer: no storage read per write), the webhooks whose rules and selectors match are
called with an AdmissionReview, and their answers applied as kube-apiserver
applies them:

- configurations in name order, webhooks in list order; mutating webhooks one
  after another (each sees the previous patches; `reinvocationPolicy:
  IfNeeded` webhooks run once more when a later one changed the object),
  validating webhooks concurrently, the first refusal in that order winning;
- `allowed: false` is the webhook's Status (`admission webhook "x" denied
  the request: ...`), a JSONPatch rewrites the object in place, warnings
  become `Warning` headers;
- a call that fails (connect, TLS, timeout, bad answer) is a 500
  `failed calling webhook "x": ...` under `failurePolicy: Fail` and is
  skipped under `Ignore`; a dry run reaching a webhook with side effects is
  a 400;
- `matchConditions` (CEL, `kapi.admission.webhook_conditions`) are evaluated
  when a webhook's turn comes: one false skips it, an error refuses the
  write with a 403 under `Fail` and skips the webhook under `Ignore`.

The configuration objects themselves are never sent to webhooks. With
`matchPolicy: Equivalent` (the default) a webhook whose rules name another
served version of the resource sees the objects converted to that version
(`requestKind` keeps the request's), and its patch is converted back.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jsonpatch

from kapi.admission.interfaces import ObjectReader, Plugin
from kapi.admission.webhook_conditions import Authorize, evaluate, forbidden
from kapi.admission.webhook_match import (
    GROUP,
    NamespaceLabels,
    exempt,
    namespace_labels_getter,
    namespace_matches,
    object_matches,
    matching_version,
    viewed_in,
)
from kapi.admission.webhook_review import (
    InvalidResponse,
    admission_review,
    decode_patch,
    denied,
    verify_response,
    warnings_of,
)
from kapi.api import errors
from kapi.api.faults import Faults
from kapi.api.attributes import AdmissionAttributes
from kapi.api.errors import go_quote
from kapi.api.metrics import ServerMetrics
from kapi.webhook import ClientConfig, WebhookCallError, internal_error, post_json
from kapi.webhook.client import with_timeout_query
from kapi.webhook.validation import review_version

log = logging.getLogger("kapi.admission.webhook")
Object = dict[str, Any]
_DRY_RUN_SAFE = ("None", "NoneOnDryRun")


class _CallFailed(Exception):
    """kube's ErrCallingWebhook: the failurePolicy decides whether the write goes on."""


@dataclass(frozen=True, eq=False)  # identity: the same configured webhook, even if two specs read alike
class Hook:
    """One webhook of a configuration, with kube's defaults applied."""

    name: str
    spec: dict[str, Any]
    version: str  # the version its rules matched: the request's, or an equivalent one

    @property
    def ignore_failures(self) -> bool:
        return self.spec.get("failurePolicy") == "Ignore"

    @property
    def timeout(self) -> float:
        value = self.spec.get("timeoutSeconds")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 10.0

    @property
    def reinvoke(self) -> bool:
        return self.spec.get("reinvocationPolicy") == "IfNeeded"


class _WebhookPlugin(Plugin):
    resource = ""
    mutating = False
    metric_type = "validating"  # kube's `type` label of apiserver_admission_webhook_admission_duration_seconds

    def __init__(self, reader: ObjectReader, authorize: Authorize | None = None, faults: Faults | None = None,
                 metrics: ServerMetrics | None = None) -> None:
        self._reader = reader
        self._authorize = authorize  # answers the `authorizer` of matchConditions
        self._faults = faults  # a WebhookTimeout fault makes a call wait out its timeout and fail
        self._metrics = metrics  # each call's duration, as kube's webhook admission latency

    async def _namespace(self, name: str) -> Object | None:
        return await self._reader.get("", "namespaces", "", name)

    async def _hooks(self, attrs: AdmissionAttributes) -> list[Hook]:
        """The webhooks this write concerns, in kube's calling order."""
        if exempt(attrs) or await self._reader.count(GROUP, self.resource) == 0:
            return []
        configs = sorted(await self._reader.list(GROUP, self.resource),
                         key=lambda c: str((c.get("metadata") or {}).get("name") or ""))
        labels: NamespaceLabels = namespace_labels_getter(attrs, self._namespace)
        hooks: list[Hook] = []
        for config in configs:
            for spec in config.get("webhooks") or []:
                version = matching_version(spec, attrs) if isinstance(spec, dict) else ""
                if not version:
                    continue
                if await namespace_matches(spec, attrs, labels) and object_matches(spec, attrs):
                    hooks.append(Hook(str(spec.get("name") or ""), spec, version))
        return hooks

    async def _conditions_hold(self, hook: Hook, view: AdmissionAttributes) -> bool:
        """The webhook's matchConditions on the request as it would see it; False skips the call.

        Evaluated when the webhook's turn comes (after earlier mutations), as kube's ShouldCallHook.
        """
        conditions = hook.spec.get("matchConditions")
        if not conditions:
            return True
        outcome = await evaluate(conditions, view, self._authorize)
        if outcome.error and not hook.ignore_failures:
            log.warning("Failed evaluating match conditions, failing closed %s: %s", hook.name, outcome.error)
            raise forbidden(view, outcome.error)
        return outcome.matches

    async def _call(self, hook: Hook, attrs: AdmissionAttributes) -> dict[str, Any]:
        """Ask one webhook; its verified `response`, or _CallFailed / a StatusError to refuse."""
        if attrs.dry_run and hook.spec.get("sideEffects") not in _DRY_RUN_SAFE:
            raise errors.BadRequest(f"admission webhook {go_quote(hook.name)} does not support dry run")
        version = review_version(hook.spec.get("admissionReviewVersions"))
        if not version:
            raise _CallFailed(f"failed calling webhook {go_quote(hook.name)}: webhook does not accept known "
                              "AdmissionReview versions")
        uid = str(uuid.uuid4())
        try:
            config = ClientConfig.from_api(hook.spec.get("clientConfig") or {})
            if self._faults is not None and self._faults.webhook_times_out(hook.name):
                await asyncio.sleep(hook.timeout)
                raise WebhookCallError(f'Post "{with_timeout_query(config.url, hook.timeout)}": '
                                       "context deadline exceeded")
            body = await post_json(config, admission_review(attrs, uid, version), hook.timeout)
        except WebhookCallError as exc:
            raise _CallFailed(f"failed calling webhook {go_quote(hook.name)}: failed to call webhook: {exc}") from None
        try:
            response = verify_response(body, uid, version, self.mutating)
        except InvalidResponse as exc:
            raise _CallFailed(f"failed calling webhook {go_quote(hook.name)}: received invalid webhook response: "
                              f"{exc}") from None
        if attrs.warnings is not None:
            attrs.warnings.extend(warnings_of(response))
        if response.get("allowed") is not True:
            raise denied(hook.name, response.get("status"))
        return response

    async def _ask(self, hook: Hook, attrs: AdmissionAttributes) -> dict[str, Any] | None:
        """`_call` under the hook's failurePolicy: None when a failure is ignored.

        Timed as kube times a webhook: rejected when it denied the request or
        failed under `failurePolicy: Fail`, not when a failure was ignored.
        """
        start, rejected = time.perf_counter(), True
        try:
            response = await self._call(hook, attrs)
            rejected = False
            return response
        except _CallFailed as exc:
            if hook.ignore_failures:
                rejected = False
                log.warning("Failed calling webhook, failing open %s: %s", hook.name, exc)
                return None
            log.warning("Failed calling webhook, failing closed %s: %s", hook.name, exc)
            raise internal_error(str(exc)) from None
        finally:
            if self._metrics is not None:
                self._metrics.observe_webhook(hook.name, self.metric_type, attrs.operation, rejected,
                                              time.perf_counter() - start)


class MutatingAdmissionWebhook(_WebhookPlugin):
    name = "MutatingAdmissionWebhook"
    resource = "mutatingwebhookconfigurations"
    mutating = True
    metric_type = "admit"

    async def admit(self, attributes: AdmissionAttributes) -> None:
        hooks = await self._hooks(attributes)
        if not hooks:
            return
        reinvocable: list[Hook] = []  # IfNeeded hooks called before the latest change
        again: list[Hook] = []
        for hook in hooks:
            if await self._mutate(hook, attributes):
                again = list(dict.fromkeys(again + reinvocable))
            if hook.reinvoke and hook not in reinvocable:
                reinvocable.append(hook)
        for hook in hooks:  # kube's single reinvocation round, in the original order
            if hook in again:
                await self._mutate(hook, attributes)

    async def _mutate(self, hook: Hook, attrs: AdmissionAttributes) -> bool:
        """Call one mutating webhook and apply its patch; whether the object changed."""
        view = await viewed_in(attrs, hook.version)
        if not await self._conditions_hold(hook, view):
            return False
        try:
            response = await self._ask(hook, view)
            operations = decode_patch(response) if response is not None else []
        except InvalidResponse as exc:
            if hook.ignore_failures:
                return False
            raise internal_error(f"failed calling webhook {go_quote(hook.name)}: {exc}") from None
        if not operations:
            return False
        if attrs.obj is None or view.obj is None:
            raise internal_error(f"admission webhook {go_quote(hook.name)} attempted to modify the object, "
                                 "which is not supported for this operation")
        try:
            patched = jsonpatch.JsonPatch(operations).apply(view.obj, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
            raise internal_error(str(exc)) from None
        if not isinstance(patched, dict):
            raise internal_error(f"admission webhook {go_quote(hook.name)} patched the object into a non-object")
        if patched == view.obj:
            return False
        if view is not attrs and attrs.convert is not None:  # patched in the webhook's version: back to ours
            patched = await attrs.convert(patched, attrs.version)
        attrs.obj.clear()
        attrs.obj.update(patched)
        return True


class ValidatingAdmissionWebhook(_WebhookPlugin):
    name = "ValidatingAdmissionWebhook"
    resource = "validatingwebhookconfigurations"

    async def validate(self, attributes: AdmissionAttributes) -> None:
        hooks = await self._hooks(attributes)
        if not hooks:
            return
        views = [await viewed_in(attributes, h.version) for h in hooks]
        called = [(h, v) for h, v in zip(hooks, views) if await self._conditions_hold(h, v)]
        results = await asyncio.gather(*(self._ask(h, v) for h, v in called), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
