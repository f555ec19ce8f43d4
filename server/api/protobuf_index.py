"""The index of Kubernetes' protobuf messages that `kapi.api.protobuf` decodes with.

`scripts/gen_kube_proto.py` reads the `generated.proto` files of k8s.io/api and
k8s.io/apimachinery and writes `data/kube-proto-v1.32.0.json.gz` (its docstring
describes the format). This module turns that file into lookup tables, once,
the first time a protobuf body arrives: `load_index()` is cached, and nothing
imports it at start-up, so a server that never sees protobuf never pays for it.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Optional

INDEX_FILE = "kube-proto-v1.32.0.json.gz"

# Field kinds: what the decoder must do with a field's payload.
SCALAR, MESSAGE, ENUM = 0, 1, 2

SCALARS = frozenset({
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
})


META_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1"
META_OPTION_KINDS = frozenset({"DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "GetOptions",
                               "ListOptions"})


@dataclass(frozen=True)
class FieldSpec:
    """One field of a message, as the decoder needs it."""

    name: str  # the JSON name (generated.proto names fields by their JSON names)
    type: str  # scalar name, or a message/enum full name; for a map, the value type
    kind: int  # SCALAR, MESSAGE or ENUM (of `type`)
    repeated: bool
    map_key: Optional[str]  # the key's scalar type for a map field, else None
    keep_zero: bool  # an explicit 0/false/IntOrString 0 survives (see gen_kube_proto.keep_zero)
    inline: bool = False  # a Go struct embedded with `json:",inline"`: its fields join the parent's


@dataclass(frozen=True)
class ProtoIndex:
    """Messages by full name, JSON forms of the special ones, enums and kinds."""

    release: str
    messages: dict[str, dict[int, FieldSpec]]
    forms: dict[str, str]  # message → "timestamp" | "string" | "list"
    enums: dict[str, dict[int, str]]
    kinds: dict[str, dict[str, str]]  # apiVersion → kind → message

    def message_for(self, api_version: str, kind: str) -> Optional[str]:
        """The message of a top-level kind; without an apiVersion, core first. The options kinds of
        meta.k8s.io/v1 are registered in every group version (a typed client's DeleteOptions says
        apps/v1), so they are found under any apiVersion."""
        if kind in META_OPTION_KINDS:
            return f"{META_V1}.{kind}"
        if api_version:
            return self.kinds.get(api_version, {}).get(kind)
        for version in ["v1", *sorted(self.kinds)]:
            if kind in self.kinds.get(version, {}):
                return self.kinds[version][kind]
        return None


def build_index(data: dict[str, Any]) -> ProtoIndex:
    """Lookup tables from the JSON document the generator writes."""
    enums = {name: {int(k): v for k, v in values.items()} for name, values in data.get("enums", {}).items()}
    messages: dict[str, dict[int, FieldSpec]] = {}
    for message, fields in data["messages"].items():
        spec: dict[int, FieldSpec] = {}
        for number, (name, type_, label, keep) in fields.items():
            key: Optional[str] = None
            if label == "map":
                key, type_ = type_
            kind = SCALAR if type_ in SCALARS else ENUM if type_ in enums else MESSAGE
            spec[int(number)] = FieldSpec(name, type_, kind, label == "repeated", key, bool(keep), label == "inline")
        messages[message] = spec
    return ProtoIndex(data.get("release", ""), messages, dict(data.get("forms", {})), enums,
                      {v: dict(k) for v, k in data.get("kinds", {}).items()})


@lru_cache(maxsize=1)
def load_index() -> ProtoIndex:
    """The packaged index, read and built once per process."""
    raw = resources.files(__package__).joinpath("data").joinpath(INDEX_FILE).read_bytes()
    return build_index(json.loads(gzip.decompress(raw)))
