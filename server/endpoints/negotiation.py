"""Content negotiation: which encoding a client sends and which it accepts.

Bodies arrive as JSON, YAML or (from kubectl, for built-in types) protobuf;
answers go out as JSON, YAML or a Table. Protobuf is never answered: clients
that ask for it always list JSON as well.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from kapi.api import errors
from kapi.api.protobuf import decode_object

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


@dataclass(frozen=True)
class MediaType:
    """One entry of an Accept or Content-Type header, parameters lower-cased by name."""

    type: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def essence(self) -> str:
        return self.type


def parse_media_type(text: str) -> MediaType:
    parts = [p.strip() for p in text.split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return MediaType(parts[0].lower(), params)


def parse_accept(header: str | None) -> list[MediaType]:
    if not header:
        return [MediaType("*/*")]
    return [parse_media_type(p) for p in header.split(",") if p.strip()]


@dataclass(frozen=True)
class Output:
    """What to answer with: `json`, `yaml`, `table` (with its meta.k8s.io version) or `partial` metadata."""

    format: str
    version: str = "v1"


def negotiate(accept: str | None, *, allow_table: bool = True, streams: bool = False) -> Output:
    """The first acceptable representation, in the client's order; 406 when there is none, naming the
    representations as kube does (a collection, which can be watched, also the streaming ones)."""
    for mt in parse_accept(accept):
        as_kind = mt.params.get("as")
        if as_kind:
            group, version = mt.params.get("g"), mt.params.get("v", "v1")
            if mt.type != JSON or group != "meta.k8s.io" or version not in ("v1", "v1beta1"):
                continue
            if as_kind == "Table" and allow_table:
                return Output("table", version)
            if as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return Output("partial", version)
            continue
        if mt.type in (JSON, "application/*", "*/*", "application/json-patch+json"):
            return Output("json")
        if mt.type in (YAML, "application/x-yaml", "text/yaml"):
            return Output("yaml")
    available = [JSON, YAML, PROTOBUF] + ([f"{JSON};stream=watch", f"{PROTOBUF};stream=watch"] if streams else [])
    raise errors.NotAcceptable("406: Not Acceptable\n\nAvailable representations: " + ", ".join(available),
                               details=errors.QualifiedKind())


def encode(obj: Any, output: Output) -> tuple[bytes, str]:
    """Bytes and Content-Type for `obj` in the negotiated representation."""
    if output.format == "yaml":
        return yaml.dump(obj, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True).encode(), YAML
    return orjson.dumps(obj), JSON


def decode_body(content_type: str | None, body: bytes, kind: str = "") -> Any:
    """A request body as plain data; 400 when it does not parse, 415 for an unknown encoding.

    With `kind` (an object's create or update) a JSON body that does not parse is answered as kube's
    decoder words it, naming the kind and the body's first 30 bytes.
    """
    mt = parse_media_type(content_type or JSON).type
    is_json = mt in (JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, "*/*", "")
    if not body.strip():
        if kind and is_json:
            raise _unrecognized(kind, "unexpected end of JSON input", body)
        raise errors.BadRequest("the request body is empty")
    if mt == PROTOBUF:
        return decode_object(body)
    if is_json:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if kind:
                raise _unrecognized(kind, _go_json_error(exc), body) from None
            raise errors.BadRequest(f"error decoding JSON body: {exc}") from None
    if mt in (YAML, "application/x-yaml", "text/yaml", APPLY_PATCH):
        return decode_yaml(body)
    raise errors.UnsupportedMediaType(f'the body of the request was in an unknown format - accepted media types include: {JSON}, {YAML}, {PROTOBUF}')


def duplicate_fields(content_type: str | None, body: bytes) -> list[str]:
    """The keys a JSON body repeats (`data`, `metadata.labels`), which orjson silently collapses; kube's
    strict decoder refuses them."""
    if parse_media_type(content_type or JSON).type != JSON:
        return []
    found: list[str] = []

    def walk(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                found.append(key)
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(body, object_pairs_hook=walk)
    except ValueError:
        return []
    return found


def _unrecognized(kind: str, why: str, body: bytes) -> errors.BadRequest:
    excerpt = body.decode(errors="replace")
    excerpt = "<empty>" if not excerpt else excerpt if len(excerpt) <= 30 else excerpt[:30] + " ..."
    return errors.BadRequest(f"the object provided is unrecognized (must be of type {kind}): "
                             f"couldn't get version/kind; json parse error: {why} ({excerpt})")


def _go_json_error(exc: orjson.JSONDecodeError) -> str:
    """encoding/json's words for the two mistakes people make: a cut-off body and a stray character."""
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected end of JSON input"
    return f"invalid character {exc.doc[exc.pos]!r} looking for beginning of value"


def decode_yaml(body: bytes) -> Any:
    try:
        docs = list(yaml.load_all(body, Loader=_YAML_LOADER))
    except yaml.YAMLError as exc:
        raise errors.BadRequest(f"error decoding YAML body: {exc}") from None
    if len(docs) != 1:
        raise errors.BadRequest("the request body must hold exactly one YAML document")
    return docs[0]
