"""Who is making a request: kube's `user.Info`, as every layer sees it.

Authenticators produce a `UserInfo`; the authorizer, the review endpoints
(`kubectl auth whoami`) and admission read it. Pure data, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
MASTERS_GROUP = "system:masters"


def _frozen_extra(extra: Mapping[str, tuple[str, ...]] | None) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({k: tuple(v) for k, v in (extra or {}).items()})


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) subject: name, uid, groups and extra attributes."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _frozen_extra(None))

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "extra", _frozen_extra(self.extra))
        # worked out once: every request hashes its user (the authenticated-group and authorizer caches)
        object.__setattr__(self, "_hash", hash((self.name, self.uid, self.groups,
                                                tuple(sorted(self.extra.items())))))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserInfo):
            return NotImplemented
        return (self.name, self.uid, self.groups, dict(self.extra)) == (
            other.name, other.uid, other.groups, dict(other.extra))

    def with_group(self, group: str) -> UserInfo:
        """This user with `group` appended, unless it already has it."""
        if group in self.groups:
            return self
        return _with_group(self, group)

    def to_dict(self) -> dict[str, object]:
        """The `authentication.k8s.io/v1 UserInfo` JSON form (empty fields left out, as kube's omitempty)."""
        out: dict[str, object] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


def authenticated(user: UserInfo) -> UserInfo:
    """kube's AuthenticatedGroupAdder: every user but the anonymous one is in `system:authenticated`."""
    if user.name == ANONYMOUS_USER or UNAUTHENTICATED_GROUP in user.groups:
        return user
    return user.with_group(AUTHENTICATED_GROUP)


ANONYMOUS = UserInfo(ANONYMOUS_USER, groups=(UNAUTHENTICATED_GROUP,))


@lru_cache(maxsize=1024)  # the same few users on every request: build each extended user once
def _with_group(user: UserInfo, group: str) -> UserInfo:
    return replace(user, groups=user.groups + (group,))
