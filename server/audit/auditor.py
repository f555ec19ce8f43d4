"""The server's auditing: the policy and the backends, built from the `--audit-*` settings.

As in kube-apiserver, nothing is audited unless there is both a policy
(`--audit-policy-file`) and a backend (`--audit-log-path`,
`--audit-webhook-config-file`); one `Auditor` serves every logical cluster of a
server, so their events share one log. Building it reads and checks the policy
and the webhook's kubeconfig and creates the log file, so a bad setting stops
the start with its reason (an `AuditConfigError`).
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Protocol

from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.audit.backends import Backend, LogBackend, WebhookBackend, plugin_error
from kapi.audit.event import Answer, Decoder, Note, encode, json_decoder
from kapi.audit.policy import PolicyError, PolicyEvaluator, RequestAuditConfig, load_policy


#: Notes gather this long before they are encoded: a request served in its own turn of the event loop would
#: otherwise pay for a flush of its own (measured: about 6 µs of a GET's 60 in-process, against 3 batched).
#: The log backend writes what is encoded within its own WRITE_DELAY after that.
ENCODE_DELAY = 0.003


class AuditConfigError(ValueError):
    """An `--audit-*` setting the server cannot start with."""


class AuditSettings(Protocol):
    """The ServerConfig fields auditing reads (kube-apiserver's flags of the same names)."""

    audit_policy_file: Path | None
    audit_log_path: str
    audit_log_maxage: int
    audit_log_maxbackup: int
    audit_log_maxsize: int
    audit_webhook_config_file: Path | None
    audit_webhook_batch_max_size: int
    audit_webhook_batch_max_wait: float


class Auditor:
    """Decides each request's audit level and hands each stage's event to every backend.

    Serving a request only notes what happened (`note`: the stage, when, and references to the request's
    scope and answer); the events are worked out and encoded a few milliseconds later (ENCODE_DELAY), in
    order, the notes gathered meanwhile at a time, and handed to the backends together (the log writes them a
    little later, in bigger pieces). The batches stay small: what they keep alive, and the work they do at
    once, would otherwise push the request path's own data out of the processor's caches."""

    #: How request and response bodies are decoded (the HTTP layer sets one that reads every encoding).
    decoder: Decoder = staticmethod(json_decoder)  # type: ignore[assignment]

    def __init__(self, evaluator: PolicyEvaluator, backends: list[Backend]) -> None:
        self.evaluator = evaluator
        self.backends = backends
        self.pending: list[Note] = []
        self.scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def evaluate(self, user: UserInfo | None, info: RequestInfo) -> RequestAuditConfig:
        return self.evaluator.evaluate(user, info)

    def note(self, stage: str, config: RequestAuditConfig, scope: Any, user: UserInfo | None,
             answer: Answer | None = None) -> None:
        """`stage` of the audited request `scope` (of `user`, as authenticated) happened now; from
        ResponseStarted on, with its `answer` (RequestReceived's time is the request's own).

        The request path may do the same itself, for speed: append the entry to `pending` (its identity never
        changes), then `schedule()` unless `scheduled`."""
        self.pending.append((stage, config, scope, user, answer, time.time_ns() if answer is not None else 0))
        if not self.scheduled:
            self.schedule()

    def schedule(self) -> None:
        """Have what is pending encoded ENCODE_DELAY from now (at once without a running loop)."""
        if self._loop is None:  # not started (a synchronous caller)
            self.flush()
            return
        self.scheduled = True
        self._loop.call_later(ENCODE_DELAY, self.flush)

    def flush(self) -> None:
        """Encode what waits and hand it to every backend."""
        self.scheduled = False
        pending = self.pending[:]
        self.pending.clear()
        lines = encode(pending, self.decoder, lambda exc: plugin_error("encoder", 1, exc))
        if lines:
            for backend in self.backends:
                backend.write(lines)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for backend in self.backends:
            await backend.start()

    async def close(self) -> None:
        self.flush()
        self._loop = None
        for backend in self.backends:
            await backend.close()


def build_auditor(settings: AuditSettings) -> Auditor | None:
    """The auditor the settings ask for, or None (no policy, or no backend: kube records nothing then)."""
    if settings.audit_policy_file is None:
        return None
    path = settings.audit_policy_file
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        raise AuditConfigError(f"--audit-policy-file {path}: {exc}") from None
    except OSError as exc:
        raise AuditConfigError(f"--audit-policy-file {path}: {exc.strerror or exc}") from None
    backends: list[Backend] = []
    if settings.audit_log_path:
        try:
            backends.append(LogBackend(settings.audit_log_path, settings.audit_log_maxage,
                                       settings.audit_log_maxbackup, settings.audit_log_maxsize))
        except OSError as exc:
            raise AuditConfigError(f"--audit-log-path {settings.audit_log_path}: {exc.strerror or exc}") from None
    if settings.audit_webhook_config_file is not None:
        from kapi.auth.main_server import MainServerError, from_kubeconfig

        try:
            connection = from_kubeconfig(settings.audit_webhook_config_file)
        except MainServerError as exc:
            raise AuditConfigError(f"--audit-webhook-config-file: {exc}") from None
        backends.append(WebhookBackend(connection, settings.audit_webhook_batch_max_size,
                                       settings.audit_webhook_batch_max_wait))
    return Auditor(PolicyEvaluator(policy), backends) if backends else None


__all__ = ["AuditConfigError", "AuditSettings", "Auditor", "build_auditor"]
