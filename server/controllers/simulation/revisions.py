"""ControllerRevisions as the StatefulSet and DaemonSet controllers keep them, so `kubectl rollout history/undo` work.

A revision's `data` is the patch kube stores, `{"spec":{"template":{…,"$patch":"replace"}}}`,
keys sorted as Go writes a map, its hash kube's (FNV-1 over those bytes and the collision
count); `kubectl rollout undo` applies the data as a strategic merge patch. (kube's data
also carries the typed client's `creationTimestamp: null`; kapi's API drops nulls, as it
does on every built-in object, so the data here has none.)
Revision numbers only grow: rolling back to an old template re-numbers its revision
instead of creating a new one. Revisions no live pod uses beyond `revisionHistoryLimit`
are deleted, oldest first.
"""
from __future__ import annotations

from typing import Any, Iterable

import orjson

from kapi.controllers.simulation.informer import CONTROLLER_REVISIONS, Informer
from kapi.controllers.simulation.pods import owner_reference, safe_encode
from kapi.controllers.simulation.runtime import Cluster
from kapi.registry.builtin_strategy import drop_nulls
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
HASH_LABEL = "controller-revision-hash"  # apps.ControllerRevisionHashLabelKey
DIRECTIVE = "$patch"
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193
_NAME_PREFIX_MAX = 223  # kube's ControllerRevisionName keeps room for the hash within 253 characters


def fnv32(data: bytes) -> int:
    """FNV-1 (32 bit), the hash kube's `HashControllerRevision` uses."""
    value = _FNV_OFFSET
    for byte in data:
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def _sorted(value: Any) -> Any:
    """Keys sorted at every level, as Go's json.Marshal of a map writes them."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def template_patch(template: Object) -> Object:
    """The revision data of a pod template."""
    body = drop_nulls(copy_object(template or {}))
    body[DIRECTIVE] = "replace"
    return _sorted({"spec": {"template": body}})


def go_json(value: Any) -> bytes:
    """Compact JSON as Go's encoder writes it (HTML characters escaped)."""
    raw = orjson.dumps(value)
    for char, escaped in ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
                          ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029")):
        raw = raw.replace(char, escaped)
    return raw


def revision_hash(data: Object, collision_count: int | None) -> str:
    """kube's HashControllerRevision: FNV over the data's bytes and the collision count (when there is one),
    safely encoded."""
    probe = b"" if collision_count is None else str(collision_count).encode()
    return safe_encode(str(fnv32(go_json(data) + probe)))


def revision_name(parent: str, hash_: str) -> str:
    return f"{parent[:_NAME_PREFIX_MAX]}-{hash_}"


def revision_template(revision: Object) -> Object:
    """The pod template a revision records (its data without the directive)."""
    template = copy_object(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop(DIRECTIVE, None)
    return template


def new_revision(owner: Object, data: Object, number: int, hash_: str) -> Object:
    """A ControllerRevision of `owner` (labels from the template plus the hash, annotations from the owner)."""
    meta = owner["metadata"]
    labels = dict((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    labels[HASH_LABEL] = hash_
    body: Object = {"name": revision_name(meta["name"], hash_), "namespace": meta.get("namespace", ""),
                    "labels": labels, "ownerReferences": [owner_reference(owner)]}
    if meta.get("annotations"):
        body["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": body, "data": data,
            "revision": number}


def number(revision: Object) -> int:
    try:
        return int(revision.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def owned_revisions(informer: Informer, owner: Object) -> list[Object]:
    """The owner's revisions, oldest (lowest number) first, ties by name (kube's SortControllerRevisions)."""
    found = informer.owned(CONTROLLER_REVISIONS, owner)
    return sorted(found, key=lambda r: (number(r), str(r["metadata"].get("creationTimestamp") or ""),
                                        r["metadata"]["name"]))


def next_number(revisions: Iterable[Object]) -> int:
    return max((number(r) for r in revisions), default=0) + 1


async def renumber(cluster: Cluster, revision: Object, to: int) -> Object | None:
    """Give an old revision a new number (a rollback to it)."""
    meta = revision["metadata"]
    return await cluster.change(CONTROLLER_REVISIONS, meta.get("namespace", ""), meta["name"],
                                lambda obj: obj.__setitem__("revision", to))


def surplus(revisions: list[Object], live: set[str], limit: int, live_counts: bool = False) -> list[Object]:
    """The oldest revisions not in `live` (names) beyond `limit`: kube's StatefulSet truncateHistory, or with
    `live_counts` its DaemonSet cleanupHistory, where live revisions count towards the limit but are kept."""
    history = [r for r in revisions if r["metadata"]["name"] not in live]
    excess = (len(revisions) if live_counts else len(history)) - max(limit, 0)
    return history[:max(excess, 0)]


async def truncate(cluster: Cluster, revisions: list[Object], live: set[str], limit: int,
                   live_counts: bool = False) -> None:
    """Delete what `surplus` picks."""
    for revision in surplus(revisions, live, limit, live_counts):
        await cluster.delete(CONTROLLER_REVISIONS, revision)
