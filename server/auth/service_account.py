"""Service-account tokens as kube-apiserver issues and accepts them: RS256 JWTs bound to an object.

`TokenIssuer` owns one RSA 2048 private key (PEM, created 0600 when missing)
and signs compact JWTs whose header names `alg: RS256` and a `kid` derived from
the public key as kube derives it (base64url of the SHA-256 of its DER form).
The claims are those of a bound token: `aud`, `exp`, `iat`, `iss`, `jti`,
`nbf`, `sub` (`system:serviceaccount:<ns>:<name>`) and `kubernetes.io`
({namespace, serviceaccount: {name, uid}, pod?, secret?, node?, warnafter?}).

`ServiceAccountAuthenticator` accepts such a bearer token while it is in date
(a minute's leeway, as kube's), meant for an accepted audience, and the
ServiceAccount (and the pod, secret or node it is bound to) still exists with
the uid it was issued for. A token that is not a JWT of this issuer and key is
not its business (None); one of ours that fails a check is `Unauthorized`, with
kube's reason (a TokenReview reports it; the 401 never does).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kapi_certs.files import dir_lock, write_private
from kapi.api.errors import Unauthorized
from kapi.api.user import UserInfo
from kapi.auth.interfaces import AuthRequest

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
USERNAME_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
GROUP_PREFIX = "system:serviceaccounts:"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
PRIVATE_CLAIMS = "kubernetes.io"
# kapi's private claim: the logical cluster (`/clusters/<name>/`) whose ServiceAccount a token names. Clusters
# forked from one snapshot hold accounts with the same uid; the claim keeps a token to the cluster it came from.
CLUSTER_CLAIM = "kapi.dev/cluster"
LEEWAY_SECONDS = 60  # go-jose's default leeway, which kube's validator uses
KEY_SIZE = 2048
ALGORITHM = "RS256"

Object = dict[str, Any]
Clock = Callable[[], float]
# (namespace, name) -> the ServiceAccount, or None when there is none
ServiceAccountGetter = Callable[[str, str], Awaitable["Object | None"]]
# (group, plural, namespace, name) -> the object, or None when there is none
ObjectGetter = Callable[[str, str, str, str], Awaitable["Object | None"]]


def username(namespace: str, name: str) -> str:
    return f"{USERNAME_PREFIX}{namespace}:{name}"


def groups(namespace: str) -> tuple[str, ...]:
    return (ALL_SERVICE_ACCOUNTS_GROUP, GROUP_PREFIX + namespace)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ref(obj: Mapping[str, Any]) -> dict[str, str]:
    """kube's {name, uid} reference to an object (empty fields left out)."""
    meta = obj.get("metadata") or {}
    return {k: v for k, v in (("name", meta.get("name", "")), ("uid", meta.get("uid", ""))) if v}


def _go_strings(values: Sequence[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(orjson.dumps(v).decode() for v in values) + "]"


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """The RSA private key stored at `path` (PEM); ValueError when it is something else."""
    try:
        # The full RSA consistency check costs 30 ms of every start; signing with a broken key would
        # only yield tokens that fail verification, which the authenticator then refuses.
        key = serialization.load_pem_private_key(path.read_bytes(), password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: service account tokens are signed RS256, which needs an RSA private key")
    return key


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The key at `path`, or a new RSA 2048 key written there (0600, parent directory made 0700)."""
    path = Path(path)
    if path.is_file():
        return load_private_key(path)
    with dir_lock(path.parent):  # two servers starting on one root agree on one key
        if path.is_file():
            return load_private_key(path)
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        return key


class TokenIssuer:
    """Signs and verifies RS256 JWTs with one key, as issuer `issuer`."""

    def __init__(self, key: rsa.RSAPrivateKey, issuer: str = DEFAULT_ISSUER, clock: Clock = time.time) -> None:
        self._key = key
        self._public = key.public_key()
        self.issuer = issuer
        self.clock = clock
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64(hashlib.sha256(der).digest())
        self._header = _b64(orjson.dumps({"alg": ALGORITHM, "kid": self.key_id}))

    @classmethod
    def load_or_create(cls, path: Path, issuer: str = DEFAULT_ISSUER, clock: Clock = time.time) -> TokenIssuer:
        return cls(load_or_create_key(path), issuer, clock)

    def __repr__(self) -> str:
        return f"TokenIssuer(issuer={self.issuer!r}, kid={self.key_id!r})"

    def now(self) -> int:
        return int(self.clock())

    # -- JWS compact serialisation ------------------------------------------------------------------
    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact JWT of `claims` (keys sorted, as Go's JSON of a map), signed with this key."""
        signing_input = f"{self._header}.{_b64(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))}"
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def verify(self, token: bytes | str) -> Object | None:
        """The claims of a JWT this issuer signed with this key; None for anything else."""
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                return None
        parts = token.split(".")
        if len(parts) != 3 or not token.startswith("eyJ"):
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            claims = orjson.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        if claims.get("iss") != self.issuer or header.get("alg") != ALGORITHM:
            return None
        if header.get("kid") not in (None, self.key_id):
            return None
        try:
            self._public.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(),
                                hashes.SHA256())
        except InvalidSignature:
            return None
        return claims

    # -- bound service-account tokens ---------------------------------------------------------------
    def claims(self, service_account: Mapping[str, Any], audiences: Sequence[str], expiration_seconds: int, *,
               pod: Mapping[str, Any] | None = None, secret: Mapping[str, Any] | None = None,
               node: Mapping[str, Any] | None = None, warn_after: int = 0, now: int | None = None,
               cluster: str = "") -> Object:
        """kube's claims for a token of `service_account`, bound to at most a pod (with its node) or a
        secret or a node; and to the logical `cluster` that holds the account (kapi's own claim)."""
        now = self.now() if now is None else now
        meta = service_account.get("metadata") or {}
        namespace = meta.get("namespace", "")
        private: Object = {"namespace": namespace, "serviceaccount": _ref(service_account)}
        if pod is not None:
            private["pod"] = _ref(pod)
            if node is not None:
                private["node"] = _ref(node)
        elif secret is not None:
            private["secret"] = _ref(secret)
        elif node is not None:
            private["node"] = _ref(node)
        if warn_after:
            private["warnafter"] = now + warn_after
        if cluster:
            private[CLUSTER_CLAIM] = cluster
        return {
            "aud": list(audiences),
            "exp": now + expiration_seconds,
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            PRIVATE_CLAIMS: private,
            "nbf": now,
            "sub": username(namespace, meta.get("name", "")),
        }

    # -- OIDC discovery -----------------------------------------------------------------------------
    def jwk(self) -> Object:
        numbers = self._public.public_numbers()

        def uint(n: int) -> str:
            return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {"use": "sig", "kty": "RSA", "kid": self.key_id, "alg": ALGORITHM,
                "n": uint(numbers.n), "e": uint(numbers.e)}

    def jwks(self) -> Object:
        return {"keys": [self.jwk()]}

    def openid_configuration(self, jwks_uri: str) -> Object:
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
        }


def _time(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() if value else None
    except ValueError:
        return None


def _claim_ref(private: Mapping[str, Any], key: str) -> dict[str, str] | None:
    ref = private.get(key)
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise Unauthorized("service account token claims could not be validated due to unexpected validation error")
    return {k: str(v) for k, v in ref.items() if k in ("name", "uid") and isinstance(v, str)}


def token_audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    return tuple(a for a in aud if isinstance(a, str)) if isinstance(aud, list) else ()


class ServiceAccountAuthenticator:
    """An `Authenticator` for bearer tokens `issuer` signed (see the module docstring)."""

    def __init__(self, issuer: TokenIssuer, get_service_account: ServiceAccountGetter,
                 get_object: ObjectGetter | None = None, api_audiences: Sequence[str] | None = None,
                 cluster: str = "") -> None:
        self._issuer = issuer
        self._cluster = cluster
        self._get_service_account = get_service_account
        self._get_object = get_object
        self.api_audiences = tuple(api_audiences) if api_audiences is not None else (issuer.issuer,)

    def __repr__(self) -> str:
        return f"ServiceAccountAuthenticator(issuer={self._issuer.issuer!r})"

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        token = request.bearer_token()
        if token is None:
            return None
        claims = self._issuer.verify(token)
        if claims is None:
            return None
        user, _audiences = await self.validate(claims, request.audiences)
        return user

    async def validate(self, claims: Mapping[str, Any],
                       audiences: Sequence[str] = ()) -> tuple[UserInfo, tuple[str, ...]]:
        """The user of verified `claims` and the audiences it is good for among `audiences` (the API
        audiences when empty); `Unauthorized` with kube's reason when the token is no longer good."""
        wanted = tuple(audiences) or self.api_audiences
        token_auds = token_audiences(claims)
        matched = tuple(a for a in wanted if a in token_auds)
        if not matched:
            raise Unauthorized(f"token audiences {_go_strings(token_auds)} is invalid for the target audiences "
                               f"{_go_strings(wanted)}")
        self._check_times(claims)
        private = claims.get(PRIVATE_CLAIMS)
        if not isinstance(private, dict):
            raise Unauthorized("service account token claims could not be validated due to unexpected validation error")
        if private.get(CLUSTER_CLAIM, "") != self._cluster:
            raise Unauthorized("service account token was issued by another cluster")
        namespace = str(private.get("namespace") or "")
        sa_ref = _claim_ref(private, "serviceaccount") or {}
        sa_name, sa_uid = sa_ref.get("name", ""), sa_ref.get("uid", "")
        cutoff = self._issuer.now() - LEEWAY_SECONDS
        service_account = await self._get_service_account(namespace, sa_name) if namespace and sa_name else None
        if service_account is None:
            raise Unauthorized(f'serviceaccount "{sa_name}" not found')
        meta = service_account.get("metadata") or {}
        if meta.get("uid", "") != sa_uid:
            raise Unauthorized(f"service account UID ({meta.get('uid', '')}) does not match claim ({sa_uid})")
        if self._deleted_before(service_account, cutoff):
            raise Unauthorized(f"service account {namespace}/{sa_name} has been deleted")
        extra: dict[str, tuple[str, ...]] = {}
        secret_ref = _claim_ref(private, "secret")
        if secret_ref is not None:
            await self._check_bound("", "secrets", namespace, secret_ref, "secret", cutoff)
        pod_ref = _claim_ref(private, "pod")
        if pod_ref is not None:
            await self._check_bound("", "pods", namespace, pod_ref, "pod", cutoff)
            extra[POD_NAME_KEY], extra[POD_UID_KEY] = (pod_ref.get("name", ""),), (pod_ref.get("uid", ""),)
        jti = claims.get("jti")
        if isinstance(jti, str) and jti:
            extra[CREDENTIAL_ID_KEY] = (f"JTI={jti}",)
        node_ref = _claim_ref(private, "node")
        if node_ref is not None:
            if pod_ref is None:  # bound to the node itself: it must still be there
                await self._check_bound("", "nodes", "", node_ref, "node", cutoff)
            if node_ref.get("name"):
                extra[NODE_NAME_KEY] = (node_ref["name"],)
                if node_ref.get("uid"):
                    extra[NODE_UID_KEY] = (node_ref["uid"],)
        user = UserInfo(username(namespace, sa_name), uid=sa_uid, groups=groups(namespace), extra=extra)
        return user, matched

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._issuer.now()

        def number(key: str) -> float | None:
            value = claims.get(key)
            return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        exp, nbf, iat = number("exp"), number("nbf"), number("iat")
        if exp is not None and now - LEEWAY_SECONDS > exp:
            raise Unauthorized("service account token has expired")
        if nbf is not None and now + LEEWAY_SECONDS < nbf:
            raise Unauthorized("service account token is not valid yet")
        if iat is not None and now + LEEWAY_SECONDS < iat:
            raise Unauthorized("service account token is issued in the future")

    @staticmethod
    def _deleted_before(obj: Mapping[str, Any], cutoff: float) -> bool:
        deleted = _time((obj.get("metadata") or {}).get("deletionTimestamp"))
        return deleted is not None and deleted < cutoff

    async def _check_bound(self, group: str, plural: str, namespace: str, ref: Mapping[str, str], what: str,
                           cutoff: float) -> None:
        """The object a token is bound to must still exist, with the same uid, and not be going away."""
        found = None
        if self._get_object is not None and ref.get("name"):
            found = await self._get_object(group, plural, namespace, ref["name"])
        if found is None:
            raise Unauthorized("service account token has been invalidated")
        uid = (found.get("metadata") or {}).get("uid", "")
        if uid != ref.get("uid", ""):
            raise Unauthorized(f"{what} UID ({uid}) does not match service account {what} ref claim "
                               f"({ref.get('uid', '')})")
        if self._deleted_before(found, cutoff):
            raise Unauthorized("service account token has been invalidated")


__all__ = [
    "DEFAULT_ISSUER", "ServiceAccountAuthenticator", "TokenIssuer", "groups", "load_or_create_key", "token_audiences",
    "username",
]
