"""Object metadata helpers: the system fields a server owns, and how they are set.

Pure functions over plain dict objects, shared by every strategy.
"""
from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime
from typing import Any

Object = dict[str, Any]

# kube's generateName suffix alphabet: no vowels (no words), no look-alikes (0/1/3).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_LEN = 5
_MAX_NAME = 253
# Fields a client may not set on create; the server owns them.
_SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink")
_formatted: list[Any] = [-1, ""]  # the second now_rfc3339 last formatted, and how


def now_rfc3339() -> str:
    """Second-precision UTC timestamp, formatted the way kube-apiserver writes metav1.Time.

    Formatted once a second: every write stamps one or more (creationTimestamp, managedFields' time)."""
    second = int(time.time())
    if second != _formatted[0]:
        _formatted[0], _formatted[1] = second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    return _formatted[1]


def parse_rfc3339(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def metadata(obj: Object) -> dict[str, Any]:
    """The object's metadata dict, created if missing (a non-dict is a caller's validation problem)."""
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    return meta


def generate_name(prefix: str) -> str:
    """`prefix` plus five random characters, the prefix shortened so the result stays a valid length."""
    room = _MAX_NAME - _SUFFIX_LEN
    return prefix[:room] + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(_SUFFIX_LEN))


def fill_system_fields_for_create(obj: Object) -> None:
    """Set uid, creationTimestamp and generation; drop what a client may not choose."""
    meta = metadata(obj)
    for f in _SYSTEM_FIELDS:
        meta.pop(f, None)
    meta.pop("resourceVersion", None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    meta["generation"] = 1


def carry_system_fields_for_update(new: Object, old: Object) -> None:
    """Keep the fields an update may not change: uid, creationTimestamp, deletion state, generation."""
    new_meta, old_meta = metadata(new), metadata(old)
    for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
        if f in old_meta:
            new_meta[f] = old_meta[f]
        else:
            new_meta.pop(f, None)
    new_meta.pop("selfLink", None)


_OMITTED_WHEN_EMPTY = ("labels", "annotations", "finalizers", "ownerReferences")


def drop_empty_metadata(obj: Object) -> None:
    """kube's ObjectMeta leaves out empty labels, annotations, finalizers and ownerReferences (omitempty), for
    custom resources too: `annotations: {}` sent is never stored, so a dry-run diff shows no such change."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for name in _OMITTED_WHEN_EMPTY:
            if name in meta and meta[name] in (None, {}, []):
                del meta[name]


def without(obj: Object, *fields: str) -> Object:
    """A shallow copy of `obj` minus top-level `fields` (for comparing the parts that count)."""
    return {k: v for k, v in obj.items() if k not in fields}
