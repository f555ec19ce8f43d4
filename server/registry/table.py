"""`meta.k8s.io/v1 Table` rendering: what `kubectl get` prints, cell for cell.

kubectl prints cells verbatim, so the server formats them (Age as `5m3s`).
Columns: Name, the version's printer columns, then Age unless a printer
column already carries that name.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from kapi.api.humanize import age
from kapi.api.jsonpath import cell
from kapi.scheme.definitions import PrinterColumn, VersionDef

Object = dict[str, Any]

INCLUDE_OBJECT = ("None", "Metadata", "Object")
_NAME_COLUMN = {
    "name": "Name", "type": "string", "format": "name", "priority": 0,
    "description": "Name must be unique within a namespace. Is required when creating resources, although some "
                   "resources may allow a client to request the generation of an appropriate name automatically. "
                   "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
                   "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
}
_AGE_COLUMN = {
    "name": "Age", "type": "date", "format": "", "priority": 0,
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created. "
                   "It is not guaranteed to be set in happens-before order across separate operations. Clients "
                   "may not set this value. It is represented in RFC3339 form and is in UTC.",
}


def _column_definition(c: PrinterColumn) -> dict[str, Any]:
    return {"name": c.name, "type": c.type, "format": c.format, "description": c.description, "priority": c.priority}


def _count(obj: Object, paths: tuple[str, ...]) -> int:
    total = 0
    for path in paths:
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        total += len(node) if isinstance(node, (dict, list)) else 0
    return total


def _cell(obj: Object, column: PrinterColumn, now: datetime) -> Any:
    if column.compute is not None:
        return column.compute(obj, now)
    if column.count_of:
        return _count(obj, column.count_of)
    return cell(obj, column.json_path, column.type, column.format, now=now)


def _partial_metadata(obj: Object) -> Object:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def to_table(
    version: VersionDef,
    objects: Iterable[Object],
    *,
    list_metadata: dict[str, Any] | None = None,
    include_object: str = "Metadata",
    table_version: str = "v1",
    now: datetime | None = None,
) -> Object:
    """Render `objects` as a Table in `meta.k8s.io/<table_version>`."""
    now = now or datetime.now(timezone.utc)
    columns = list(version.printer_columns)
    # A built-in kind may give its whole column list, Name included (format `name`, which CRD columns
    # cannot have): events show it last and only wide, roles show no Age.
    whole = any(c.name == "Name" and c.format == "name" for c in columns)
    with_age = not whole and not any(c.name.lower() == "age" for c in columns)
    definitions = ([] if whole else [_NAME_COLUMN]) + [_column_definition(c) for c in columns] + (
        [_AGE_COLUMN] if with_age else [])
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        cells: list[Any] = [] if whole else [meta.get("name", "")]
        cells += [_cell(obj, c, now) for c in columns]
        if with_age:
            created = meta.get("creationTimestamp")
            cells.append(age(created, now) if created else "<unknown>")
        row: Object = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "Metadata":
            row["object"] = _partial_metadata(obj)
        else:  # kube's TableRow.Object is a RawExtension without omitempty
            row["object"] = None
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": dict(list_metadata or {}),
        "columnDefinitions": definitions,
        "rows": rows,
    }
