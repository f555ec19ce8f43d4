"""Structured merge: field sets, comparison, merge and removal of JSON objects, driven by an OpenAPI schema.

This is the algebra server-side apply rests on, written after the semantics
structured-merge-diff defines (kube's `sigs.k8s.io/structured-merge-diff`,
its `typed` package), over the schema reading of `kapi.api.structured_schema`:
an atomic value, a scalar, null and an empty map are leaves, owned whole;
granular maps and associative lists are owned key by key and item by item.

Values are plain JSON (dicts, lists, scalars) or `ABSENT`. Nothing here
mutates its inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kapi.api.fieldpath import FieldSet, Path, PathElement, path_string, with_prefix
from kapi.api.structured_schema import (
    ABSENT,
    DEDUCED,
    UNDECLARED,
    Schema,
    StructureError,
    child_schema,
    equal,
    item_element,
    list_shape,
    map_shape,
)


# -- the field set of a value ----------------------------------------------------------


def to_field_set(value: Any, schema: Schema, *, strict: bool = False) -> FieldSet:
    """Every field `value` sets: what an applier of `value` owns.

    `strict` (an apply configuration) refuses keys the schema does not declare,
    duplicate list items and items without keys; otherwise they are skipped.
    """
    out: FieldSet = set()
    _fields(value, schema, (), out, strict)
    return out


def _fields(value: Any, schema: Schema, path: Path, out: FieldSet, strict: bool) -> None:
    if isinstance(value, dict):
        atomic, fields, element = map_shape(schema)
        if atomic:
            out.add(path)
            return
        for key, child in value.items():
            declared = key in fields
            sub = fields[key] if declared else element
            here = path + (("f", key),)
            if sub is UNDECLARED:
                if strict:
                    raise StructureError(f"{path_string(here)}: field not declared in schema")
                continue
            _fields(child, sub, here, out, strict)
            if child is None or child == {} or not declared:
                out.add(here)
    elif isinstance(value, list):
        atomic, keys, items = list_shape(schema)
        if atomic:
            out.add(path)
            return
        seen: set[PathElement] = set()
        for index, item in enumerate(value):
            try:
                pe = item_element(item, keys, items)
            except StructureError as exc:
                if strict:
                    raise StructureError(f"{path_string(path)}: element {index}: {exc}") from None
                continue
            if pe in seen:
                if strict:
                    raise StructureError(f"{path_string(path)}: duplicate entries for key {path_string((pe,))}")
                continue
            seen.add(pe)
            _fields(item, items, path + (pe,), out, strict)
            out.add(path + (pe,))
    elif path:
        out.add(path)


# -- comparison ---------------------------------------------------------------------


@dataclass
class Comparison:
    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)


def compare(lhs: Any, rhs: Any, schema: Schema) -> Comparison:
    """What changed from `lhs` to `rhs`, path by path (structured-merge-diff's `Compare`)."""
    result = Comparison()
    _compare(lhs, rhs, schema, (), result)
    result.added.discard(())
    result.removed.discard(())
    result.modified.discard(())
    return result


def _shape_of(value: Any, other: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if value is None or value is ABSENT:  # null takes the other side's shape, as an empty one
        return _shape_of(other, ABSENT) if other is not None and other is not ABSENT else "scalar"
    return "scalar"


def _leaf(lhs: Any, rhs: Any, path: Path, result: Comparison) -> None:
    if lhs is ABSENT:
        result.added.add(path)
    elif rhs is ABSENT:
        result.removed.add(path)
    elif not equal(lhs, rhs):
        result.modified.add(path)


def _compare(lhs: Any, rhs: Any, schema: Schema, path: Path, result: Comparison) -> None:
    if type(lhs) is type(rhs) and lhs == rhs:  # most of an update is unchanged: no walk below equal values
        return
    if lhs is ABSENT:
        _whole(rhs, schema, path, result.added)
        return
    if rhs is ABSENT:
        _whole(lhs, schema, path, result.removed)
        return
    left, right = _shape_of(lhs, rhs), _shape_of(rhs, lhs)
    if left != right and lhs is not ABSENT and rhs is not ABSENT:
        result.modified.add(path)  # a change of shape: the old value goes, the new one comes whole
        _compare(ABSENT, rhs, schema, path, result)
        result.added.discard(path)
        return
    shape = right if rhs is not ABSENT else left
    leaf = True
    if shape == "map":
        leaf = _compare_map(lhs, rhs, schema, path, result)
    elif shape == "list":
        leaf = _compare_list(lhs, rhs, schema, path, result)
    else:
        _leaf(lhs, rhs, path, result)
    if not leaf:
        if lhs is ABSENT:
            result.added.add(path)
        elif rhs is ABSENT:
            result.removed.add(path)


def _whole(value: Any, schema: Schema, path: Path, out: FieldSet) -> None:
    """Every path of a value that is there on one side only: what `_compare` finds against nothing, faster."""
    if isinstance(value, dict):
        atomic, fields, element = map_shape(schema)
        if not atomic and value:
            for key, child in value.items():
                sub = fields.get(key, element)
                if sub is not UNDECLARED:
                    _whole(child, sub, path + (("f", key),), out)
    elif isinstance(value, list):
        atomic, keys, items = list_shape(schema)
        if not atomic and value:
            order, found = _index(value, keys, items)
            for pe in order:
                if len(found[pe]) == 1:
                    _whole(found[pe][0], items, path + (pe,), out)
                else:
                    out.add(path + (pe,))
    out.add(path)


def _compare_map(lhs: Any, rhs: Any, schema: Schema, path: Path, result: Comparison) -> bool:
    """Compare two maps; True when they were compared as one leaf."""
    left = lhs if isinstance(lhs, dict) else {}
    right = rhs if isinstance(rhs, dict) else {}
    atomic, fields, element = map_shape(schema)
    if atomic or (not left and not right):
        _leaf(lhs, rhs, path, result)
        return True
    for key in {**left, **right}:
        sub = fields.get(key, element)
        if sub is UNDECLARED:
            continue
        _compare(left.get(key, ABSENT), right.get(key, ABSENT), sub, path + (("f", key),), result)
    return False


Indexed = tuple[list[PathElement], dict[PathElement, list[Any]]]


def _index(items: list[Any], keys: tuple[str, ...], schema: Schema) -> Indexed:
    """The items' path elements in first-seen order, and the items under each (duplicates kept)."""
    order: list[PathElement] = []
    found: dict[PathElement, list[Any]] = {}
    for item in items:
        try:
            pe = item_element(item, keys, schema)
        except StructureError:
            continue
        if pe not in found:
            order.append(pe)
            found[pe] = []
        found[pe].append(item)
    return order, found


def _compare_list(lhs: Any, rhs: Any, schema: Schema, path: Path, result: Comparison) -> bool:
    left = lhs if isinstance(lhs, list) else []
    right = rhs if isinstance(rhs, list) else []
    atomic, keys, items = list_shape(schema)
    if atomic or (not left and not right):
        _leaf(lhs, rhs, path, result)
        return True
    left_order, left_items = _index(left, keys, items)
    right_order, right_items = _index(right, keys, items)
    for pe in left_order + [pe for pe in right_order if pe not in left_items]:
        ls, rs = left_items.get(pe, []), right_items.get(pe, [])
        here = path + (pe,)
        if len(ls) <= 1 and len(rs) <= 1:
            _compare(ls[0] if ls else ABSENT, rs[0] if rs else ABSENT, items, here, result)
        elif len(ls) >= 2 and len(rs) >= 2:
            if not equal(ls, rs):
                result.modified.add(here)
        elif len(ls) >= 2:
            if rs:
                _compare(ABSENT, rs[0], items, here, result)
            result.removed.add(here)
        else:
            if ls:
                _compare(ls[0], ABSENT, items, here, result)
            result.added.add(here)
    return False


# -- merge ---------------------------------------------------------------------------


def merge(lhs: Any, rhs: Any, schema: Schema) -> Any:
    """`rhs` (an apply configuration) merged into `lhs` (the live object): rhs wins every leaf."""
    return _merge(lhs, rhs, schema)


def _merge(lhs: Any, rhs: Any, schema: Schema) -> Any:
    if rhs is ABSENT:
        return lhs
    if lhs is ABSENT:
        return rhs
    shape = _shape_of(rhs, lhs)
    if shape != _shape_of(lhs, rhs):
        return rhs
    if shape == "map":
        left = lhs if isinstance(lhs, dict) else {}
        right = rhs if isinstance(rhs, dict) else {}
        atomic, fields, element = map_shape(schema)
        if atomic or (not left and not right):
            return rhs
        out = {}
        for key in {**left, **right}:
            sub = fields.get(key, element)
            out[key] = _merge(left.get(key, ABSENT), right.get(key, ABSENT), sub if sub is not UNDECLARED else DEDUCED)
        return out
    if shape == "list":
        left_items = lhs if isinstance(lhs, list) else []
        right_items = rhs if isinstance(rhs, list) else []
        atomic, keys, items = list_shape(schema)
        if atomic or (not left_items and not right_items):
            return rhs
        return _merge_items(left_items, right_items, keys, items)
    return rhs


def _merge_items(left: list[Any], right: list[Any], keys: tuple[str, ...], items: Schema) -> list[Any]:
    """Associative lists merged in structured-merge-diff's order: the live order, with the
    configuration's items where it puts them relative to the items both lists share."""
    right_order, right_found = _index(right, keys, items)
    right_items = {pe: values[0] for pe, values in right_found.items()}
    left_order: list[PathElement] = []
    left_items: dict[PathElement, Any] = {}
    left_at: list[Any] = []
    for item in left:
        try:
            pe = item_element(item, keys, items)
        except StructureError:
            continue
        left_items[pe] = None if pe in left_items else item  # a duplicated live item merges as null
        left_order.append(pe)
        left_at.append(item)
    shared = [pe for pe in right_order if pe in left_items]
    next_shared = shared.pop(0) if shared else None
    merged_right: set[PathElement] = set()
    out: list[Any] = []
    li = ri = 0
    while li < len(left_order) or ri < len(right_order):
        if li < len(left_order) and ri < len(right_order):
            pe = left_order[li]
            if pe == right_order[ri]:
                merged_right.add(pe)
                out.append(_merge(left_items[pe], right_items[pe], items))
                li, ri = li + 1, ri + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in right_items and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(left_order):
            pe = left_order[li]
            if pe not in right_items:
                out.append(left_at[li])
                li += 1
                continue
            if pe in merged_right:
                li += 1
        if ri < len(right_order):
            pe = right_order[ri]
            merged_right.add(pe)
            out.append(_merge(left_items.get(pe, ABSENT), right_items[pe], items))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# -- removal -------------------------------------------------------------------------


def remove_items(value: Any, paths: FieldSet, schema: Schema) -> Any:
    """`value` without the fields and items `paths` name (a container emptied this way becomes null)."""
    if not paths:
        return value
    if isinstance(value, dict):
        atomic, fields, element = map_shape(schema)
        if atomic or not value:
            return value
        out = {}
        for key, child in value.items():
            pe = ("f", key)
            if (pe,) in paths:
                continue
            sub = with_prefix(paths, pe)
            if sub:
                kid = fields.get(key, element)
                child = remove_items(child, sub, kid if kid is not UNDECLARED else DEDUCED)
            out[key] = child
        return out or None
    if isinstance(value, list):
        atomic, keys, items = list_shape(schema)
        if atomic or not value:
            return value
        kept = []
        for item in value:
            try:
                pe = item_element(item, keys, items)
            except StructureError:
                kept.append(item)
                continue
            if (pe,) in paths:
                continue
            sub = with_prefix(paths, pe)
            kept.append(remove_items(item, sub, items) if sub else item)
        return kept or None
    return value


def with_named_fields(paths: FieldSet, schema: Schema) -> FieldSet:
    """`paths` plus every declared field some path passes through (structured-merge-diff's
    `EnsureNamedFieldsAreMembers`): so removing a field's set removes the field itself."""
    out = set(paths)
    for path in paths:
        node = schema
        for n, pe in enumerate(path[:-1]):
            if pe[0] == "f" and pe[1] in map_shape(node)[1]:
                out.add(path[:n + 1])
            node = child_schema(node, pe)
    return out
