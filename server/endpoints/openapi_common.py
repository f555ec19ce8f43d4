"""What OpenAPI v2 and v3 share: the operations of each resource and its schemas.

`group_version_paths` describes every path and operation of a group-version
once, as `Operation` records; `openapi.py` renders them as OpenAPI 3.0
(`requestBody`, `content`) or Swagger 2.0 (`in: body`, `consumes`). Schemas
are built by `group_version_schemas(..., dialect)`, the dialect giving the
`$ref` prefix and how a CRD's own schema is converted.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable

from kapi.endpoints import openapi_meta as meta
from kapi.scheme import catalogue
from kapi.scheme.definitions import ResourceDef, VersionDef, camel_case
from kapi.scheme.registry import Scheme

JSON_YAML = ("application/json", "application/yaml")
LIST_PRODUCES = ("application/json", "application/json;stream=watch", "application/yaml")
# kube-apiserver offers strategic merge patch only for built-in types; kubectl
# apply picks merge patch for custom resources because it is missing here.
CUSTOM_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
BUILTIN_PATCH_TYPES = CUSTOM_PATCH_TYPES + ("application/strategic-merge-patch+json",)


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # "path" or "query"
    type: str  # "string", "boolean" or "integer"
    description: str
    required: bool = False


@dataclass(frozen=True)
class Response:
    code: str
    description: str
    schema: str | None = None  # a definition name


@dataclass(frozen=True)
class Operation:
    method: str  # get, put, post, patch, delete
    action: str  # x-kubernetes-action
    operation_id: str
    description: str
    gvk: dict[str, str] | None
    params: tuple[Param, ...]
    responses: tuple[Response, ...]
    produces: tuple[str, ...] = JSON_YAML
    body: str | None = None  # definition name of the request body
    consumes: tuple[str, ...] = ()
    body_required: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathItem:
    path: str
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class Dialect:
    """How one OpenAPI version spells a reference and a CRD's own schema."""

    ref_prefix: str
    convert: Callable[[dict[str, Any]], dict[str, Any]]

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": self.ref_prefix + name}


V3 = Dialect("#/components/schemas/", copy.deepcopy)

_QUERY: dict[str, tuple[str, str]] = {
    "pretty": ("string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
    "dryRun": ("string", meta.DESCRIPTIONS["dryRun"]),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."),
    "fieldValidation": ("string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
    "force": ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."),
    "allowWatchBookmarks": ("boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. If this is not a watch, this field is ignored."),
    "continue": ("string", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid the server will respond with a 410 ResourceExpired error."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results."),
    "resourceVersion": ("string", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset"),
    "resourceVersionMatch": ("string", "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset"),
    "sendInitialEvents": ("boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event will be sent."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
    "watch": ("boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
    "gracePeriodSeconds": ("integer", meta.DESCRIPTIONS["gracePeriodSeconds"]),
    "orphanDependents": ("boolean", meta.DESCRIPTIONS["orphanDependents"]),
    "propagationPolicy": ("string", meta.DESCRIPTIONS["propagationPolicy"]),
}

_LIST_PARAMS = ("pretty", "allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE_PARAMS = ("pretty", "dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = _WRITE_PARAMS + ("force",)
_DELETE_PARAMS = ("pretty", "dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_DELETECOLLECTION_PARAMS = ("pretty", "continue", "dryRun", "fieldSelector", "gracePeriodSeconds", "labelSelector",
                            "limit", "orphanDependents", "propagationPolicy", "resourceVersion",
                            "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")


def _query(names: tuple[str, ...]) -> tuple[Param, ...]:
    return tuple(Param(n, "query", _QUERY[n][0], _QUERY[n][1]) for n in names)


_NAMESPACE = Param("namespace", "path", "string", "object name and auth scope, such as for teams and projects", True)


def _name(kind: str) -> Param:
    return Param("name", "path", "string", f"name of the {kind}", True)


# --- names -------------------------------------------------------------------

_K8S_GROUP_PACKAGES = {"apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"}


def schema_name(d: ResourceDef, version: str, kind: str | None = None) -> str:
    """kube's definition name: `io.k8s.api.core.v1.Namespace` for built-ins, the reversed group for CRDs."""
    kind = kind or d.kind
    if d.builtin and d.group in catalogue.GROUPS:
        return catalogue.component_name(d.group, version, kind)
    if not d.builtin or not (d.group == "" or d.group.endswith(".k8s.io")):  # CRDs and plugin groups
        return ".".join(reversed(d.group.split("."))) + f".{version}.{kind}"
    if not d.group:
        return f"io.k8s.api.core.{version}.{kind}"
    if d.group in _K8S_GROUP_PACKAGES:
        return f"{_K8S_GROUP_PACKAGES[d.group]}.{version}.{kind}"
    return f"io.k8s.api.{d.group.split('.')[0]}.{version}.{kind}"


def _friendly_group(group: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[.\-]", group) if p) if group else "Core"


def tag(group: str, version: str) -> str:
    g = _friendly_group(group)
    return f"{g[:1].lower()}{g[1:]}_{version}"


def gv_prefix(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def served_group_versions(scheme: Scheme) -> list[tuple[str, str]]:
    """Every (group, version) with an OpenAPI document: core v1 first, then the named groups."""
    return [("", "v1")] + [(g.group, v) for g in scheme.groups() for v in g.versions]


def is_served(scheme: Scheme, group: str, version: str) -> bool:
    return (group, version) in served_group_versions(scheme)


# --- operations --------------------------------------------------------------

def resource_paths(d: ResourceDef, v: VersionDef) -> list[PathItem]:
    """The paths and operations kube-apiserver serves for one resource version."""
    gvk = {"group": d.group, "version": v.name, "kind": d.kind}
    kind, tags = d.kind, (tag(d.group, v.name),)
    ident = _friendly_group(d.group) + v.name[:1].upper() + v.name[1:]
    scoped = f"Namespaced{kind}" if d.namespaced else kind
    obj, lst = schema_name(d, v.name), schema_name(d, v.name, d.list_kind_name)
    ns = (_NAMESPACE,) if d.namespaced else ()
    item_params = (_name(kind),) + ns
    patch_types = BUILTIN_PATCH_TYPES if d.builtin else CUSTOM_PATCH_TYPES
    unauthorized = Response("401", "Unauthorized")

    def op(method: str, action: str, verb: str, description: str, params: tuple[Param, ...],
           responses: tuple[Response, ...], suffix: str = "", infix: str = "", **kw: Any) -> Operation:
        return Operation(method, action, f"{verb}{ident}{infix}{scoped}{suffix}", description, dict(gvk), params,
                         responses + (unauthorized,), tags=tags, **kw)

    def ok(schema: str, *codes: tuple[str, str]) -> tuple[Response, ...]:
        return tuple(Response(code, text, schema) for code, text in codes)

    base = gv_prefix(d.group, v.name)
    collection = f"{base}/namespaces/{{namespace}}/{d.plural}" if d.namespaced else f"{base}/{d.plural}"
    item = f"{collection}/{{name}}"
    paths = [
        PathItem(collection, (
            op("get", "list", "list", f"list or watch objects of kind {kind}", ns + _query(_LIST_PARAMS),
               ok(lst, ("200", "OK")), produces=LIST_PRODUCES),
            op("post", "post", "create", f"create a {kind}", ns + _query(_WRITE_PARAMS),
               ok(obj, ("200", "OK"), ("201", "Created"), ("202", "Accepted")), body=obj, consumes=JSON_YAML),
            op("delete", "deletecollection", "delete", f"delete collection of {kind}",
               ns + _query(_DELETECOLLECTION_PARAMS), ok(meta.STATUS, ("200", "OK")), infix="Collection",
               body=meta.DELETE_OPTIONS, consumes=JSON_YAML, body_required=False),
        )),
        PathItem(item, (
            op("get", "get", "read", f"read the specified {kind}", item_params + _query(("pretty",)),
               ok(obj, ("200", "OK"))),
            op("put", "put", "replace", f"replace the specified {kind}", item_params + _query(_WRITE_PARAMS),
               ok(obj, ("200", "OK"), ("201", "Created")), body=obj, consumes=JSON_YAML),
            op("patch", "patch", "patch", f"partially update the specified {kind}",
               item_params + _query(_PATCH_PARAMS), ok(obj, ("200", "OK"), ("201", "Created")),
               body=meta.PATCH, consumes=patch_types),
            op("delete", "delete", "delete", f"delete a {kind}", item_params + _query(_DELETE_PARAMS),
               ok(meta.STATUS, ("200", "OK"), ("202", "Accepted")),
               body=meta.DELETE_OPTIONS, consumes=JSON_YAML, body_required=False),
        )),
    ]
    if v.status_subresource:
        paths.append(PathItem(f"{item}/status", (
            op("get", "get", "read", f"read status of the specified {kind}", item_params + _query(("pretty",)),
               ok(obj, ("200", "OK")), suffix="Status"),
            op("put", "put", "replace", f"replace status of the specified {kind}",
               item_params + _query(_WRITE_PARAMS), ok(obj, ("200", "OK"), ("201", "Created")),
               suffix="Status", body=obj, consumes=JSON_YAML),
            op("patch", "patch", "patch", f"partially update status of the specified {kind}",
               item_params + _query(_PATCH_PARAMS), ok(obj, ("200", "OK"), ("201", "Created")),
               suffix="Status", body=meta.PATCH, consumes=patch_types),
        )))
    if d.namespaced:
        paths.append(PathItem(f"{base}/{d.plural}", (
            Operation("get", "list", f"list{ident}{kind}ForAllNamespaces", f"list or watch objects of kind {kind}",
                      dict(gvk), _query(_LIST_PARAMS), ok(lst, ("200", "OK")) + (unauthorized,),
                      produces=LIST_PRODUCES, tags=tags),
        )))
    connect = [PathItem(f"{item}/{c.name}", tuple(
        Operation(m.lower(), "connect", f"connect{ident}{m.capitalize()}{scoped}{camel_case(c.name)}",
                  f"connect {m} requests to {c.name} of {kind}", {**gvk, "kind": c.options_kind}, item_params,
                  (Response("200", "OK"), unauthorized), produces=("*/*",), tags=tags)
        for m in c.methods if m != "HEAD")) for c in d.connect]
    return _only_served_verbs(paths, d.served_verbs) + connect



# x-kubernetes-action -> the discovery verb that serves it
_ACTION_VERBS = {"list": "list", "post": "create", "deletecollection": "deletecollection", "get": "get",
                 "put": "update", "patch": "patch", "delete": "delete"}


def _only_served_verbs(paths: list[PathItem], verbs: tuple[str, ...]) -> list[PathItem]:
    """Drop the operations of verbs a resource does not serve (reviews serve create only)."""
    out = []
    for item in paths:
        ops = tuple(op for op in item.operations if _ACTION_VERBS.get(op.action, op.action) in verbs)
        if ops:
            out.append(PathItem(item.path, ops))
    return out


def group_version_paths(scheme: Scheme, group: str, version: str) -> list[PathItem] | None:
    """Every path of a served group-version (its resource list first), or None."""
    if not is_served(scheme, group, version):
        return None
    ident = _friendly_group(group) + version[:1].upper() + version[1:]
    discovery = PathItem(f"{gv_prefix(group, version)}/", (
        Operation("get", "get", f"get{ident}APIResources", "get available resources", None, (),
                  (Response("200", "OK", meta.API_RESOURCE_LIST), Response("401", "Unauthorized")),
                  tags=(tag(group, version),)),
    ))
    out = [discovery]
    for d, v in scheme.resources_in(group, version):
        out.extend(resource_paths(d, v))
    return out


# --- schemas -----------------------------------------------------------------

def kind_schema(d: ResourceDef, v: VersionDef, dialect: Dialect) -> dict[str, Any]:
    """The version's schema (or an open object) with kube's typed apiVersion, kind and metadata."""
    if v.schema:
        schema = dialect.convert(v.schema)
    else:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"description": meta.API_VERSION_DESCRIPTION, "type": "string"}
    props["kind"] = {"description": meta.KIND_DESCRIPTION, "type": "string"}
    props["metadata"] = {**dialect.ref(meta.OBJECT_META), "description": meta.OBJECT_META_DESCRIPTION}
    schema["x-kubernetes-group-version-kind"] = [{"group": d.group, "version": v.name, "kind": d.kind}]
    return schema


def list_schema(d: ResourceDef, v: VersionDef, dialect: Dialect) -> dict[str, Any]:
    return {
        "description": f"{d.list_kind_name} is a list of {d.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": meta.API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": f"List of {d.plural}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                "type": "array",
                "items": dialect.ref(schema_name(d, v.name)),
            },
            "kind": {"description": meta.KIND_DESCRIPTION, "type": "string"},
            "metadata": {**dialect.ref(meta.LIST_META), "description": meta.LIST_META_DESCRIPTION},
        },
        "x-kubernetes-group-version-kind": [{"group": d.group, "version": v.name, "kind": d.list_kind_name}],
    }


def _published(d: ResourceDef, v: VersionDef) -> bool:
    """A built-in kind whose schemas are served as Kubernetes publishes them (with references)."""
    return d.builtin and catalogue.component_name(d.group, v.name, d.kind) in catalogue.raw_components()


def _with_refs(node: Any, dialect: Dialect) -> Any:
    """A published component (short references) as the dialect spells it: v3 wraps a reference that has
    siblings in `allOf`, as kube's documents do; v2 keeps `$ref` beside its description."""
    if isinstance(node, list):
        return [_with_refs(n, dialect) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _with_refs(v, dialect) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if isinstance(ref, str):
        if out and dialect is V3:
            return {"allOf": [dialect.ref(ref)], **out}
        return {**dialect.ref(ref), **out}
    if dialect is not V3 and out.get("format") == "int-or-string":
        out.pop("oneOf", None)
        out["type"] = "string"
    return out


def published_schemas(d: ResourceDef, v: VersionDef, dialect: Dialect, known: set[str]) -> dict[str, Any]:
    """The kind's and list kind's published components and every one they reach, except `known` names."""
    raw = catalogue.raw_components()
    out: dict[str, Any] = {}
    todo = [schema_name(d, v.name)] + ([schema_name(d, v.name, d.list_kind_name)] if "list" in d.served_verbs else [])
    while todo:
        name = todo.pop()
        if name in out or name in known or name not in raw:
            continue
        out[name] = dialect.convert(_with_refs(raw[name], dialect))
        todo.extend(_refs(raw[name]))
    return out


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for n in node for r in _refs(n)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return found + [r for v in node.values() for r in _refs(v)]


def resource_schemas(d: ResourceDef, v: VersionDef, dialect: Dialect) -> dict[str, dict[str, Any]]:
    out = {schema_name(d, v.name): kind_schema(d, v, dialect)}
    if "list" in d.served_verbs:  # no list kind for create-only resources such as the reviews
        out[schema_name(d, v.name, d.list_kind_name)] = list_schema(d, v, dialect)
    return out


def group_version_schemas(scheme: Scheme, group: str, version: str, dialect: Dialect) -> dict[str, dict[str, Any]]:
    """The meta/v1 schemas plus each resource's kind and list schemas, sorted by name."""
    out = meta.meta_schemas(dialect.ref)
    for d, v in scheme.resources_in(group, version):
        if _published(d, v):
            out.update(published_schemas(d, v, dialect, set(out)))
        else:
            out.update(resource_schemas(d, v, dialect))
    return dict(sorted(out.items()))
