"""What a schema costs: creates of the same 30-field object against a 30-field schema and against none.

Why: structural-schema validation and pruning run on every write to a
custom resource, so their cost is part of every create rate a CRD user sees;
the difference between these two rows is that cost alone.
"""
from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

from kapi_cli.bench.client import Target, fetch_once, run

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
GROUP = "bench.kapi.dev"

WIDE_SPEC = {f"f{i}": {"type": "string", "maxLength": 64, "pattern": "^[a-z0-9]*$"} if i % 3 == 0 else
             {"type": "integer", "minimum": 0, "maximum": 1000} if i % 3 == 1 else
             {"type": "array", "items": {"type": "string"}, "maxItems": 5} for i in range(30)}

#: key -> (plural, kind, row name)
KINDS = {
    "create_loose_c16": ("looses", "Loose", "create loose, 16 clients (schema: none)"),
    "create_typed_c16": ("typeds", "Typed", "create typed, 16 clients (schema: 30 fields)"),
}


def crd(name: str, schema: dict[str, Any]) -> bytes:
    return json.dumps({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{name}s.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"kind": name.capitalize(), "plural": f"{name}s", "singular": name},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]},
    }).encode()


def wide_body(kind: str, name: str) -> bytes:
    spec = {f"f{i}": "abc" if i % 3 == 0 else 7 if i % 3 == 1 else ["a", "b"] for i in range(30)}
    return json.dumps({"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name},
                       "spec": spec}).encode()


def body_maker(kind: str) -> partial[bytes]:
    """A picklable `name -> body` for the create plan."""
    return partial(wide_body, kind)


def collection(plural: str, namespace: str) -> str:
    return f"/apis/{GROUP}/v1/namespaces/{namespace}/{plural}"


# The resource most loads use: a CRD shaped like the original example Foo (spec.msg, spec.msg1).
FOO_SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "msg": {"type": "string"}, "msg1": {"type": "string"}}}}}


def install_foo_crd(target: Target, namespace: str) -> None:
    """The bench's own Foo CRD, so figures measure a CRD whatever example resources the server has."""
    _install(target, namespace, {"foo": FOO_SCHEMA})


def install_crds(target: Target, namespace: str) -> None:
    """Create both schema-cost CRDs (if absent) and wait until both APIs answer a list."""
    _install(target, namespace, {
        "typed": {"type": "object", "properties": {"spec": {"type": "object", "properties": WIDE_SPEC}}},
        "loose": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    })


def _install(target: Target, namespace: str, schemas: dict[str, dict[str, Any]], timeout: float = 15.0) -> None:
    for name, schema in schemas.items():
        status, text = run(fetch_once(target, "POST", CRDS, crd(name, schema)))
        if status not in (201, 409):
            raise RuntimeError(f"creating a bench CRD answered {status}: {text[:200]!r}")
    deadline = time.monotonic() + timeout
    for plural in (f"{name}s" for name in schemas):
        while run(fetch_once(target, "GET", collection(plural, namespace)))[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {plural} API never came up")
            time.sleep(0.05)
