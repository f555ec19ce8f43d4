"""Secrets and configmaps: kube-apiserver's write rules for `data`, `stringData`, `type` and `immutable`.

- Secret `data` values are base64; an undecodable value is refused while the
  body is read, as kube's decoder does (400 `cannot be handled as a Secret:
  illegal base64 data at input byte N`).
- `stringData` is write-only: folded into `data` (base64), overriding keys,
  then dropped. `type` defaults to `Opaque` and never changes.
- Keys are config keys; the values of one object total at most 1 MiB.
- `immutable: true` freezes `data` (and `binaryData`) and itself.
"""
from __future__ import annotations

import base64
import re
from typing import Any

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.registry.builtin_strategy import BuiltinStrategy
from kapi.registry.strategy import Object

MAX_SECRET_SIZE = 1024 * 1024
MAX_CONFIG_MAP_SIZE = 1024 * 1024
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_CONFIG_KEY_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_IMMUTABLE = "field is immutable when `immutable` is set"

# Keys each well-known secret type requires in `data` (kube's ValidateSecret).
_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def base64_error(text: str) -> int | None:
    """The input byte at which Go's standard (padded) base64 decoder gives up, or None if `text` decodes.

    Like Go, carriage returns and newlines are skipped but still counted in the offset.
    """
    quantum: list[tuple[int, str]] = []
    pos, n, padded = 0, len(text), False
    while pos < n:
        ch = text[pos]
        pos += 1
        if ch in "\r\n":
            continue
        if padded:  # nothing but newlines may follow the padding
            return pos - 1
        if ch == "=":
            # Padding is legal only as the 3rd and 4th symbol of the last quantum.
            if len(quantum) < 2:
                return pos - 1
            if len(quantum) == 2:
                rest = pos
                while rest < n and text[rest] in "\r\n":
                    rest += 1
                if rest >= n:  # not enough padding
                    return n
                if text[rest] != "=":
                    return rest - 1
                pos = rest + 1
            padded = True
            quantum = []
            continue
        if ch not in _ALPHABET:
            return pos - 1
        quantum.append((pos - 1, ch))
        if len(quantum) == 4:
            quantum = []
    if quantum:  # an incomplete quantum without padding
        return quantum[0][0]
    return None


def _decoded_size(value: str) -> int:
    try:
        return len(base64.b64decode(value.replace("\r", "").replace("\n", "")))
    except ValueError:
        return len(value)


def _key_causes(field: str, keys: Any) -> list[Cause]:
    causes = []
    for key in keys:
        if not isinstance(key, str):
            continue
        problems = []
        if len(key) > 253:
            problems.append("must be no more than 253 characters")
        if not _CONFIG_KEY.fullmatch(key):
            problems.append(_CONFIG_KEY_MESSAGE)
        if key in (".", ".."):
            problems.append(f"must not be '{key}'")
        elif key.startswith(".."):
            problems.append("must not start with '..'")
        causes += [errors.field_invalid(f"{field}[{key}]", key, p) for p in problems]
    return causes


def _map(obj: Object, field: str) -> dict[str, Any]:
    value = obj.get(field)
    return value if isinstance(value, dict) else {}


def _immutable_causes(new: Object, old: Object, fields: tuple[str, ...]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes = []
    if new.get("immutable") is not True:
        causes.append(errors.field_forbidden("immutable", _IMMUTABLE))
    for field in fields:
        if (new.get(field) or {}) != (old.get(field) or {}):
            causes.append(errors.field_forbidden(field, _IMMUTABLE))
    return causes


class SecretStrategy(BuiltinStrategy):
    """`v1` secrets."""

    def normalize(self, obj: Object) -> None:
        """kube's v1 decoding: data must be base64, stringData is folded into data, type defaults to Opaque."""
        super().normalize(obj)
        kind = self.definition.kind
        data = obj.get("data")
        if isinstance(data, dict):
            for value in data.values():
                at = base64_error(value) if isinstance(value, str) else None
                if at is not None:
                    raise errors.BadRequest(
                        f'{kind} in version "v1" cannot be handled as a {kind}: illegal base64 data at input byte {at}')
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = obj["data"] = dict(data) if isinstance(data, dict) else {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii") if isinstance(
                    value, str) else value
        if not obj.get("type"):
            obj["type"] = "Opaque"

    def prepare_for_update(self, new: Object, old: Object, subresource: str) -> None:
        super().prepare_for_update(new, old, subresource)
        causes = []
        if new.get("type") != old.get("type"):
            causes.append(errors.field_invalid("type", new.get("type"), "field is immutable"))
        causes += _immutable_causes(new, old, ("data",))
        if causes:
            d = self.definition
            raise errors.invalid(d.group, d.kind, (new.get("metadata") or {}).get("name", ""), causes)

    def validate(self, obj: Object, *, creating: bool) -> list[Cause]:
        causes = super().validate(obj, creating=creating)
        data = _map(obj, "data")
        causes += _key_causes("data", data)
        size = sum(_decoded_size(v) for v in data.values() if isinstance(v, str))
        if size > MAX_SECRET_SIZE:
            causes.append(errors.field_too_long("data", MAX_SECRET_SIZE))
        secret_type = obj.get("type")
        if secret_type == "kubernetes.io/service-account-token":
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if not annotations.get("kubernetes.io/service-account.name"):
                causes.append(errors.field_required("metadata.annotations[kubernetes.io/service-account.name]"))
        elif secret_type == "kubernetes.io/basic-auth":
            if "username" not in data and "password" not in data:
                causes.append(errors.field_required("data[username]"))
        for key in _REQUIRED_KEYS.get(str(secret_type), ()):
            if key not in data:
                causes.append(errors.field_required(f"data[{key}]"))
        return causes


class ConfigMapStrategy(BuiltinStrategy):
    """`v1` configmaps."""

    def prepare_for_update(self, new: Object, old: Object, subresource: str) -> None:
        super().prepare_for_update(new, old, subresource)
        causes = _immutable_causes(new, old, ("data", "binaryData"))
        if causes:
            d = self.definition
            raise errors.invalid(d.group, d.kind, (new.get("metadata") or {}).get("name", ""), causes)

    def validate(self, obj: Object, *, creating: bool) -> list[Cause]:
        causes = super().validate(obj, creating=creating)
        data = _map(obj, "data")
        binary = _map(obj, "binaryData")
        causes += _key_causes("data", data)
        causes += _key_causes("binaryData", binary)
        for key in binary:
            if key in data:
                causes.append(errors.field_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        size = sum(len(k) + len(v.encode("utf-8")) for k, v in data.items() if isinstance(v, str))
        size += sum(len(k) + _decoded_size(v) for k, v in binary.items() if isinstance(v, str))
        if size > MAX_CONFIG_MAP_SIZE:
            causes.append(errors.field_too_long("", MAX_CONFIG_MAP_SIZE))
        return causes
