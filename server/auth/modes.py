"""kube-apiserver's `--authorization-mode` values and the union that asks them in order.

Each authorizer allows or has no opinion; the union asks them in turn and
the first that allows wins (kube's union authorizer). Whatever the modes,
`system:masters` comes first and may do anything, as kube-apiserver adds its
privileged-group authorizer ahead of the configured ones. `AlwaysDeny` gives
kube's reason, "Everything is forbidden.", which the 403 message ends with.
"""
from __future__ import annotations

from typing import Sequence

from kapi.api.requestinfo import RequestInfo
from kapi.api.user import MASTERS_GROUP, UserInfo
from kapi.auth.interfaces import Authorizer, Decision, RulesAnswer
from kapi.auth.rbac_rules import ALL, PolicyRule

ALWAYS_ALLOW, ALWAYS_DENY, RBAC, NODE = "AlwaysAllow", "AlwaysDeny", "RBAC", "Node"
MODES = (ALWAYS_ALLOW, ALWAYS_DENY, RBAC)
DEFAULT_MODES = (RBAC,)
_EVERYTHING = RulesAnswer((PolicyRule((ALL,), (ALL,), (ALL,)),), (PolicyRule((ALL,), non_resource_urls=(ALL,)),))


def check_modes(modes: Sequence[str]) -> tuple[str, ...]:
    """The modes as given, or ValueError with kube's complaint (and kapi's for Node, which it lacks)."""
    if not modes:
        raise ValueError("at least one authorization-mode must be passed")
    for mode in modes:
        if mode == NODE:
            raise ValueError("authorization-mode Node is not supported by kapi (it serves no kubelets); "
                             f"use {', '.join(MODES)}")
        if mode not in MODES:
            raise ValueError(f"authorization-mode {mode!r} is not a valid mode; valid modes: {', '.join(MODES)}")
    if len(set(modes)) != len(modes):
        raise ValueError(f"authorization-mode {','.join(modes)} has a mode specified more than once")
    return tuple(modes)


class AlwaysAllowAuthorizer:
    """Everything is allowed to an authenticated user (kube's AlwaysAllow: no reason given)."""

    def __repr__(self) -> str:
        return "AlwaysAllowAuthorizer()"

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        return Decision(allowed=True)

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        return _EVERYTHING


class AlwaysDenyAuthorizer:
    """kube's AlwaysDeny: no opinion, with the reason every 403 then carries."""

    REASON = "Everything is forbidden."

    def __repr__(self) -> str:
        return "AlwaysDenyAuthorizer()"

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        return Decision(allowed=False, reason=self.REASON)

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        return RulesAnswer()


class PrivilegedGroupAuthorizer:
    """Members of `system:masters` may do anything; it lists no rules (RBAC's cluster-admin binding does)."""

    def __init__(self, group: str = MASTERS_GROUP) -> None:
        self._group = group

    def __repr__(self) -> str:
        return f"PrivilegedGroupAuthorizer({self._group!r})"

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        return Decision(allowed=self._group in user.groups)

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        return RulesAnswer()


class UnionAuthorizer:
    """Asks its parts in order: the first allow wins; otherwise no opinion, the parts' reasons joined."""

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = tuple(authorizers)

    def __repr__(self) -> str:
        return f"UnionAuthorizer({list(self.authorizers)!r})"

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        reasons: list[str] = []
        for authorizer in self.authorizers:
            decision = await authorizer.authorize(user, info)
            if decision.allowed:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        return Decision(False, "\n".join(reasons))

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        answers = [await a.rules_for(user, namespace) for a in self.authorizers]
        return RulesAnswer(
            tuple(r for a in answers for r in a.resource_rules),
            tuple(r for a in answers for r in a.non_resource_rules),
            incomplete=any(a.incomplete for a in answers),
            errors=tuple(e for a in answers for e in a.errors),
        )
