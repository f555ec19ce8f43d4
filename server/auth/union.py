"""The union of authenticators, itself an authenticator (the authorizers' union is in `modes`).

`UnionAuthenticator` asks its parts in order and the first user wins. As in
kube's union, a part that raises `Unauthorized` (its credential was wrong) does
not stop the others; when nobody produced a user the answer is one and the
same 401 whatever went wrong, so it never reveals whether a user exists.
Authenticated users are added to `system:authenticated`.
"""
from __future__ import annotations

from typing import Sequence

from kapi.api.errors import Unauthorized
from kapi.api.user import UserInfo, authenticated
from kapi.auth.interfaces import Authenticator, AuthRequest

UNAUTHORIZED_MESSAGE = "Unauthorized"


class UnionAuthenticator:
    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self._authenticators = tuple(authenticators)

    def __repr__(self) -> str:
        return f"UnionAuthenticator({list(self._authenticators)!r})"

    @property
    def authenticators(self) -> tuple[Authenticator, ...]:
        return self._authenticators

    async def authenticate(self, request: AuthRequest) -> UserInfo:
        for authenticator in self._authenticators:
            try:
                user = await authenticator.authenticate(request)
            except Unauthorized:
                continue
            if user is not None:
                return authenticated(user)
        raise Unauthorized(UNAUTHORIZED_MESSAGE)

    async def review(self, request: AuthRequest) -> tuple[UserInfo | None, tuple[str, ...]]:
        """What a TokenReview reports: the user as `authenticate` gives it, or None and the reason
        each part that owned the credential gave for refusing it."""
        reasons: list[str] = []
        for authenticator in self._authenticators:
            try:
                user = await authenticator.authenticate(request)
            except Unauthorized as exc:
                reasons.append(exc.message)
                continue
            if user is not None:
                return authenticated(user), ()
        return None, tuple(reasons)

