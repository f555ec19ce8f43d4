"""Bearer tokens: `Authorization: Bearer <token>` checked against every token authenticator.

Like kube's bearertoken authenticator over a union of token authenticators:
no bearer header means "not mine" (None); a bearer token that no token
authenticator knows is `Unauthorized`, worded exactly like every other 401 so
that nothing tells a wrong token from an unknown user.
"""
from __future__ import annotations

from typing import Sequence

from kapi.api.errors import Unauthorized
from kapi.api.user import UserInfo
from kapi.auth.interfaces import AuthRequest, TokenAuthenticator


class BearerTokenAuthenticator:
    def __init__(self, token_authenticators: Sequence[TokenAuthenticator]) -> None:
        self._tokens = tuple(token_authenticators)

    def __repr__(self) -> str:
        return f"BearerTokenAuthenticator({list(self._tokens)!r})"

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        token = request.bearer_token()
        if token is None:
            return None
        for authenticator in self._tokens:
            user = authenticator.authenticate_token(token)
            if user is not None:
                return user
        raise Unauthorized("Unauthorized")
