"""What every built-in kind shares: kube's decoding of nulls, generation, and small checks used by many.

kube-apiserver decodes built-in objects into Go structs, so a JSON `null`
means "unset" everywhere, and only some kinds move `metadata.generation`
(those whose spec a controller reconciles). The per-kind strategies in
`pod_strategy`, `workload_strategies` and `service_strategy` build on this.
"""
from __future__ import annotations

from typing import Any, Iterable

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.admission.webhook_match import parse_selector
from kapi.api.validation import dns1123_label_errors
from kapi.registry.strategy import Object, Strategy, field_at
from kapi.scheme.catalogue import KUBE_APISERVER_GROUPS
from kapi.scheme.quantity import QuantityError, canonicalize

# Kinds whose strategy sets metadata.generation on create and bumps it on spec changes (as kube's do).
GENERATION_KINDS = frozenset({
    ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("batch", "jobs"), ("batch", "cronjobs"), ("", "replicationcontrollers"), ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "ingresses"), ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "ingressclasses"), ("discovery.k8s.io", "endpointslices"),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"), ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"),
    ("autoscaling", "horizontalpodautoscalers"),
})


def drop_nulls(node: Any) -> Any:
    """Remove `null` members everywhere (Go decodes them as unset fields); returns `node`."""
    if isinstance(node, dict):
        for key in [k for k, v in node.items() if v is None]:
            del node[key]
        for value in node.values():
            drop_nulls(value)
    elif isinstance(node, list):
        for value in node:
            drop_nulls(value)
    return node


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else an empty one (Go reads a missing or mistyped struct as empty)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """`value` when it is a list, else an empty one (a mistyped list is the schema's 422, never a crash)."""
    return value if isinstance(value, list) else []


def child(obj: Any, *path: str) -> Any:
    """The value at `path` (dict keys), or None."""
    return field_at(obj, path)


def ensure(obj: Object, *path: str) -> Object:
    """The dict at `path`, created (and replacing non-dicts) on the way."""
    node = obj
    for part in path:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    return node


def immutable(new: Any, old: Any, path: str) -> list[Cause]:
    """kube's `ValidateImmutableField`: `path: Invalid value: …: field is immutable`."""
    if new == old:
        return []
    return [errors.field_invalid(path, new, "field is immutable")]


def unique_label_names(items: Iterable[Any], path: str, what: str = "name") -> list[Cause]:
    """Names that must be DNS-1123 labels and unique within a list (containers, ports)."""
    causes, seen = [], set()
    for i, item in enumerate(items):
        name = item.get(what) if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            continue
        causes += [errors.field_invalid(f"{path}[{i}].{what}", name, m) for m in dns1123_label_errors(name)]
        if name in seen:
            causes.append(errors.Cause("FieldValueDuplicate", f'Duplicate value: "{name}"', f"{path}[{i}].{what}"))
        seen.add(name)
    return causes


def selector_matches_labels(selector: Any, labels: Any, path: str) -> list[Cause]:
    """kube's check that a workload's selector selects its own template (`selector` does not match …)."""
    if not isinstance(selector, dict) or not isinstance(labels, dict):
        return []
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return [errors.field_invalid(path.replace("template.metadata.labels", "selector"), selector,
                                     "empty selector is invalid for deployment")]
    if parse_selector(selector).matches(labels):
        return []
    return [errors.Cause("FieldValueInvalid", f"Invalid value: {go_string_map(labels)}: `selector` does not match "
                         "template `labels`", path)]


def go_string_map(value: dict[str, Any]) -> str:
    """A `map[string]string` as Go's `%#v` prints it in kube's field errors (keys sorted)."""
    items = ", ".join(f"{errors.go_quote(str(k))}:{errors.go_quote(str(v))}" for k, v in sorted(value.items()))
    return f"map[string]string{{{items}}}"


class BuiltinStrategy(Strategy):
    """A built-in kind served from the catalogue: Go's decoding (nulls are unset) and kube's generation rules."""

    def __init__(self, definition: Any) -> None:
        super().__init__(definition)
        self.tracks_generation = (definition.group, definition.plural) in GENERATION_KINDS
        # kube's own kinds take a PUT without resourceVersion (AllowUnconditionalUpdate); kapi's typed groups,
        # like an aggregated server's, need --unrestricted-update
        self.allow_unconditional_update = definition.group in KUBE_APISERVER_GROUPS

    def normalize(self, obj: Object) -> None:
        """kube's decoding: nulls are unset fields, quantities come out canonical (`0.5` is `500m`)."""
        drop_nulls(obj)
        d = self.definition
        version = d.version(str(obj.get("apiVersion") or "").rpartition("/")[2]) or d.storage_version
        try:
            canonicalize(obj, version.schema)
        except QuantityError as exc:
            raise errors.BadRequest(f'{d.kind} in version "{version.name}" cannot be handled as a {d.kind}: {exc}'
                                    ) from None

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and not self.tracks_generation:
            meta.pop("generation", None)

    def spec_changed(self, new: Object, old: Object) -> bool:
        return self.tracks_generation and super().spec_changed(new, old)

    def invalid(self, obj: Object, causes: list[Cause]) -> errors.Invalid:
        d = self.definition
        return errors.invalid(d.group, d.kind, str(child(obj, "metadata", "name") or ""), causes)
