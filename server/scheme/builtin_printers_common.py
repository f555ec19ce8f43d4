"""Shared pieces of the built-in kinds' Table columns (kube's `pkg/printers/internalversion`).

Cells are computed from the object as served (a JSON dict), in the shapes kube's
printers give them: strings such as `1/2`, `<none>` and `5m3s`, integers, and
booleans where kube prints a Go bool. Absent fields read as Go's zero values,
except where noted: kube prints its internal objects after defaulting, so a few
fixed defaults the printers depend on are assumed when a field is missing.

Column descriptions are kube's: the OpenAPI field descriptions of the 1.32
catalogue (the same Go comments kube's `SwaggerDoc()` returns), or the literal
texts kube's printers carry.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from kapi.api.humanize import age, human_duration_ns, parse_rfc3339
from kapi.scheme.definitions import PrinterColumn

Obj = dict[str, Any]
Compute = Callable[[Obj, datetime], Any]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _components() -> dict[str, Any]:
    from kapi.scheme.catalogue import raw_components  # the catalogue imports these printers

    return raw_components()


def doc(component: str, field: str) -> str:
    """kube's description of `field` in a schema: `doc("core.v1.ServiceSpec", "type")`; "" when unknown."""
    name = component if component.startswith("io.k8s.") else f"io.k8s.api.{component}"
    schema = _components().get(name) or {}
    prop = (schema.get("properties") or {}).get(field) or {}
    text = prop.get("description", "")
    return text if isinstance(text, str) else ""


# --- reading JSON defensively (a cell never raises over a malformed object) ---

def dct(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def lst(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def num(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def meta(obj: Obj) -> Obj:
    return dct(obj.get("metadata"))


def moment(value: Any) -> datetime | None:
    """A timestamp as a datetime; None for unset or unparseable (Go's zero time)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def since(value: Any, now: datetime) -> str:
    """kube's `translateTimestampSince`: `<unknown>` for an unset time."""
    return age(value if isinstance(value, str) else None, now)


def _ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def duration_between(start: datetime, end: datetime) -> str:
    return human_duration_ns(_ns(end - start))


def duration_since(start: datetime, now: datetime) -> str:
    now = now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)
    return duration_between(start, now)


def quantity(value: Any) -> str:
    """A resource quantity as served (kube serves them canonical); Go's zero Quantity prints `0`."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return "0"


def int_or_string(value: Any) -> str:
    if isinstance(value, bool):
        return ""
    return str(value) if isinstance(value, (int, str)) else ""


def bool_word(value: Any) -> str:
    """kube's `printBoolPtr`: `True`/`False`, `<unset>` for nil."""
    if value is None:
        return "<unset>"
    return "True" if value is True else "False"


# --- labels and selectors (k8s.io/apimachinery labels / metav1 formatting) ---

def labels_string(labels: Any) -> str:
    """`labels.Set(m).String()`: `k=v` pairs sorted by key, comma-joined."""
    pairs = dct(labels)
    return ",".join(f"{k}={text(pairs[k])}" for k in sorted(pairs))


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: `<none>` when empty."""
    return labels_string(labels) or "<none>"


def selector_string(selector: Any) -> str | None:
    """`metav1.LabelSelectorAsSelector(s).String()`; None when the selector is invalid."""
    if not isinstance(selector, dict):
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in dct(selector.get("matchLabels")).items():
        requirements.append((key, f"{key}={value}"))
    for expr in lst(selector.get("matchExpressions")):
        expr = dct(expr)
        key, op = text(expr.get("key")), expr.get("operator")
        values = [v for v in lst(expr.get("values")) if isinstance(v, str)]
        if op in ("In", "NotIn"):
            if not values:
                return None
            word = "in" if op == "In" else "notin"
            requirements.append((key, f"{key} {word} ({','.join(sorted(values))})"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                return None
            requirements.append((key, key if op == "Exists" else f"!{key}"))
        else:
            return None
    requirements.sort(key=lambda r: r[0])
    return ",".join(r for _, r in requirements)


def format_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: `<none>` when it selects nothing or everything, `<error>` when invalid."""
    found = selector_string(selector)
    if found is None:
        return "<error>"
    return found or "<none>"


def container_cells(containers: Any) -> tuple[str, str]:
    """kube's `layoutContainerCells`: names and images, comma-joined in order."""
    items = [dct(c) for c in lst(containers)]
    return ",".join(text(c.get("name")) for c in items), ",".join(text(c.get("image")) for c in items)


def more_string(items: list[str], count: int, limit: int, empty: str = "<unset>") -> str:
    """kube's `listWithMoreString`: up to `limit` items, then ` + N more...`."""
    joined = ",".join(items[:limit])
    if count > limit:
        return f"{joined} + {count - limit} more..."
    return joined or empty


# --- columns ---

def _guarded(compute: Compute) -> Compute:
    def cell(obj: Obj, now: datetime) -> Any:
        try:
            return compute(obj, now)
        except Exception:  # a client never sees a 500 over one odd object
            return "<unknown>"
    cell.__name__ = getattr(compute, "__name__", "cell")
    cell.__wrapped__ = compute  # type: ignore[attr-defined]
    return cell


def col(name: str, type_: str, path: str, compute: Compute, description: str = "", priority: int = 0,
        format_: str = "") -> PrinterColumn:
    """A computed column; `path` names the field the cell comes from (for readers, not evaluated)."""
    return PrinterColumn(name=name, type=type_, json_path=path, description=description, format=format_,
                         priority=priority, compute=_guarded(compute))


def _name(obj: Obj, now: datetime) -> str:
    return text(meta(obj).get("name"))


def _age(obj: Obj, now: datetime) -> str:
    return since(meta(obj).get("creationTimestamp"), now)


def _created_at(obj: Obj, now: datetime) -> str:
    created = moment(meta(obj).get("creationTimestamp"))
    if created is None:
        return "0001-01-01T00:00:00Z"
    return created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


NAME_DOC = doc(_META, "name")
AGE_DOC = doc(_META, "creationTimestamp")

# kube's Age column of a built-in kind: a string cell (`5m3s`), not the `date` column CRDs get.
AGE = col("Age", "string", ".metadata.creationTimestamp", _age, AGE_DOC)
# A Name column of its own marks a kind whose column list is complete (see builtin_printers).
NAME = col("Name", "string", ".metadata.name", _name, NAME_DOC, format_="name")
WIDE_NAME = col("Name", "string", ".metadata.name", _name, NAME_DOC, priority=1, format_="name")
# k8s.io/apiserver's default table convertor (kinds without a printer: roles, limit ranges…).
CREATED_AT = col("Created At", "date", ".metadata.creationTimestamp", _created_at, AGE_DOC)
DEFAULT_COLUMNS = (NAME, CREATED_AT)

CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."
