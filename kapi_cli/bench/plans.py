"""Plans: what request i of a load is, as picklable functions of the index.

Why functions bound with `functools.partial` rather than lambdas: a load
spread over client processes (`--client-procs`) pickles its plan to each of
them, and only module-level functions (and partials of them) pickle.
"""
from __future__ import annotations

import json
from functools import partial
from typing import Callable

from kapi_cli.bench.client import JSON, Plan, Request

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FOO_GROUP = "bench.kapi.dev/v1"  # the bench's own Foo CRD (kapi_cli.bench.schema.install_foo_crd)
HUB_GROUP = "hello.zeng.dev/v1"  # the shipped typed Foo: v1 requests converted through the v2 hub


def foos(namespace: str, group: str = FOO_GROUP) -> str:
    """The collection path of a Foo resource in one namespace."""
    return f"/apis/{group}/namespaces/{namespace}/foos"


def foo_body(name: str, group: str = FOO_GROUP) -> bytes:
    """A Foo of about 1 KiB: the object size the memory target speaks of."""
    return json.dumps({"apiVersion": group, "kind": "Foo",
                       "metadata": {"name": name}, "spec": {"msg": "x" * 900}}).encode()


def namespace_body(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).encode()


def _create(path: str, prefix: str, start: int, i: int) -> Request:
    group = HUB_GROUP if path.startswith(f"/apis/{HUB_GROUP}/") else FOO_GROUP
    return ("POST", path, foo_body(f"{prefix}{start + i}", group), JSON)


def _get(path: str, prefix: str, modulo: int, i: int) -> Request:
    return ("GET", f"{path}/{prefix}{i % modulo}", b"", JSON)


def _same(method: str, path: str, body: bytes, i: int) -> Request:
    return (method, path, body, JSON)


def _patch(path: str, prefix: str, body: bytes, i: int) -> Request:
    return ("PATCH", f"{path}/{prefix}{i}", body, MERGE_PATCH)


def _apply(path: str, prefix: str, msg: str, i: int) -> Request:
    name = f"{prefix}{i}"
    body = json.dumps({"apiVersion": FOO_GROUP, "kind": "Foo", "metadata": {"name": name}, "spec": {"msg": msg}})
    return ("PATCH", f"{path}/{name}?fieldManager=bench&force=true", body.encode(), APPLY_PATCH)


def _put(path: str, names: tuple[str, ...], bodies: tuple[bytes, ...], i: int) -> Request:
    return ("PUT", f"{path}/{names[i]}", bodies[i], JSON)


def _custom_create(path: str, make_body: Callable[[str], bytes], prefix: str, i: int) -> Request:
    return ("POST", path, make_body(f"{prefix}{i}"), JSON)


def create_plan(path: str, prefix: str, start: int = 0) -> Plan:
    """POST a new Foo named `prefix<start + i>`."""
    return partial(_create, path, prefix, start)


def get_plan(path: str, prefix: str, modulo: int) -> Plan:
    """GET the Foo `prefix<i % modulo>` (objects an earlier create run made)."""
    return partial(_get, path, prefix, modulo)


def same_plan(method: str, path: str, body: bytes = b"") -> Plan:
    """The same request every time (a list, or the bare server's POST)."""
    return partial(_same, method, path, body)


def patch_plan(path: str, prefix: str, body: bytes) -> Plan:
    """A JSON merge patch of `prefix<i>`."""
    return partial(_patch, path, prefix, body)


def apply_plan(path: str, prefix: str, msg: str) -> Plan:
    """A server-side apply of `prefix<i>` setting spec.msg, by the manager `bench` (forced: it takes the field)."""
    return partial(_apply, path, prefix, msg)


def put_plan(path: str, names: tuple[str, ...], bodies: tuple[bytes, ...]) -> Plan:
    """PUT object i's prepared body (it carries the resourceVersion read before the load)."""
    return partial(_put, path, names, bodies)


def custom_create_plan(path: str, make_body: Callable[[str], bytes], prefix: str) -> Plan:
    """POST `make_body(prefix<i>)`; `make_body` must be a module-level function (or a partial of one)."""
    return partial(_custom_create, path, make_body, prefix)
