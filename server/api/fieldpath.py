"""Field paths and field sets as server-side apply names them, and their `fieldsV1` encoding.

A path is a tuple of path elements; a path element is a tuple whose first item
says what it selects, as `metadata.managedFields[].fieldsV1` spells it:

- `("f", name)`: a field of a map (`f:name`);
- `("k", '{"name":"web","port":80}')`: the item of an associative list with
  these key values (`k:` + the keys as compact JSON in key-name order);
- `("v", '"a"')`: the item of a set list with this value (`v:` + JSON);
- `("i", 3)`: an item by index (`i:3`), which kube writes for lists it cannot key.

A field set is a plain Python set of paths: union, intersection and difference
are set operators. `fieldsV1` nests one JSON object per path element; `"."`
inside a child marks that the child itself is in the set as well as some of its
descendants, and children appear in kube's element order (fields, keys, values,
indexes; each sorted).
"""
from __future__ import annotations

from typing import Any, Iterable

import orjson

from kapi.api.errors import go_float, go_quote

PathElement = tuple[str, Any]
Path = tuple[PathElement, ...]
FieldSet = set[Path]


class FieldPathError(ValueError):
    """A `fieldsV1` document or path element that cannot be read."""


def field(name: str) -> PathElement:
    return ("f", name)


def key_element(keys: dict[str, Any]) -> PathElement:
    """The element of an associative-list item with these key values."""
    return ("k", orjson.dumps({k: keys[k] for k in sorted(keys)}).decode())


def value_element(value: Any) -> PathElement:
    return ("v", orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def encode_element(pe: PathElement) -> str:
    kind, payload = pe
    return f"{kind}:{payload}"


def decode_element(text: str) -> PathElement:
    kind, sep, payload = text.partition(":")
    if not sep or kind not in ("f", "k", "v", "i"):
        raise FieldPathError(f"unknown path element: {text!r}")
    if kind == "f":
        return ("f", payload)
    if kind == "i":
        try:
            return ("i", int(payload))
        except ValueError:
            raise FieldPathError(f"bad index in {text!r}") from None
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise FieldPathError(f"bad JSON in {text!r}") from None
    if kind == "k":
        if not isinstance(value, dict):
            raise FieldPathError(f"a key element must be an object: {text!r}")
        return key_element(value)
    return value_element(value)


# -- order ---------------------------------------------------------------------


def _value_order(value: Any) -> tuple[Any, ...]:
    """structured-merge-diff's value order: numbers, strings, booleans, lists, maps, null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, [_value_order(v) for v in value])
    if isinstance(value, dict):
        return (4, [(k, _value_order(value[k])) for k in sorted(value)])
    return (5,)


def element_order(pe: PathElement) -> tuple[Any, ...]:
    kind, payload = pe
    if kind == "f":
        return (0, payload)
    if kind == "k":
        keys = orjson.loads(payload)
        return (1, [(k, _value_order(keys[k])) for k in sorted(keys)])
    if kind == "v":
        return (2, _value_order(orjson.loads(payload)))
    return (3, payload)


# -- fieldsV1 ---------------------------------------------------------------------


class _Node:
    __slots__ = ("member", "children")

    def __init__(self) -> None:
        self.member = False
        self.children: dict[PathElement, _Node] = {}


def _tree(paths: Iterable[Path]) -> _Node:
    root = _Node()
    for path in paths:
        node = root
        for pe in path:
            node = node.children.setdefault(pe, _Node())
        node.member = True
    return root


def _emit(node: _Node, include_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_self and node.children:
        out["."] = {}
    for pe in sorted(node.children, key=element_order):
        child = node.children[pe]
        out[encode_element(pe)] = _emit(child, child.member) if child.children else {}
    return out


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The `fieldsV1` document of a field set."""
    return _emit(_tree(p for p in paths if p), False)


def from_fields_v1(doc: Any) -> FieldSet:
    """The field set a `fieldsV1` document names; `FieldPathError` when it is malformed."""
    if not isinstance(doc, dict):
        raise FieldPathError("fieldsV1 must be an object")
    out: FieldSet = set()
    _collect(doc, (), out)
    return out


def _collect(doc: dict[str, Any], prefix: Path, out: FieldSet) -> None:
    for text, child in doc.items():
        if text == ".":
            if prefix:
                out.add(prefix)
            continue
        if not isinstance(child, dict):
            raise FieldPathError(f"the value of {text!r} must be an object")
        path = prefix + (decode_element(text),)
        if child:
            _collect(child, path, out)
        else:
            out.add(path)


# -- set helpers --------------------------------------------------------------------


def with_prefix(paths: Iterable[Path], pe: PathElement) -> FieldSet:
    """The paths under `pe`, with `pe` taken off."""
    return {p[1:] for p in paths if len(p) > 1 and p[0] == pe}


def under(paths: FieldSet, top: str) -> FieldSet:
    """The paths of `paths` at or below the top-level field `top`."""
    return {p for p in paths if p and p[0] == ("f", top)}


# -- messages ----------------------------------------------------------------------


def _go_string(value: Any) -> str:
    """structured-merge-diff's `value.ToString`: Go-quoted strings, bare numbers and booleans."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, float):
        return go_float(value)  # Go's %v: 1e+06, 0.5
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(_go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_go_string(v)}" for k, v in value.items())
    return str(value)


def path_string(path: Path) -> str:
    """A path as kube prints it in conflicts: `.spec.ports[port=80,protocol="TCP"].name`."""
    out = []
    for kind, payload in path:
        if kind == "f":
            out.append("." + payload)
        elif kind == "k":
            keys = orjson.loads(payload)
            out.append("[" + ",".join(f"{k}={_go_string(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            out.append(f"[={_go_string(orjson.loads(payload))}]")
        else:
            out.append(f"[{payload}]")
    return "".join(out)


def sorted_paths(paths: Iterable[Path]) -> list[Path]:
    """Paths in kube's set iteration order: at each level the members, then each child's paths."""
    out: list[Path] = []
    _walk(_tree(p for p in paths if p), (), out)
    return out


def _walk(node: _Node, prefix: Path, out: list[Path]) -> None:
    ordered = sorted(node.children, key=element_order)
    out.extend(prefix + (pe,) for pe in ordered if node.children[pe].member)
    for pe in ordered:
        if node.children[pe].children:
            _walk(node.children[pe], prefix + (pe,), out)
