"""Kubernetes JSONPath, the subset CRD `additionalPrinterColumns` use.

Semantics follow k8s.io/client-go `util/jsonpath` (parser and evaluator) as
kube-apiserver runs it for CRD tables (`AllowMissingKeys(true)`), including
its quirks, because kubectl prints the server's cells verbatim:

- `['a.b']` is re-parsed as `.a.b`, so dots inside brackets still split
  fields; a literal dot needs `\\.` (`.metadata.labels.example\\.com/x`).
- indexing a non-list or out of range is an error for the whole path (the
  cell is empty), while a missing map key just yields nothing.
- JSON nulls are skipped by later steps but are a result themselves.

Supported: `$`/`@`, `.field`, `.*`, `..`, `[n]`, `[-n]`, `[*]`, `[a:b:c]`,
`['key']`, unions `[0,2]`. Filters, quoted literals and `range`/`end` raise
ValueError. The cell rendering matches apiextensions' `tableconvertor`.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Union

from kapi.api.humanize import age

_SLICE_RE = re.compile(r"(-?\d*)(:-?\d*)?(:-?\d*)?")
_DICT_KEY_RE = re.compile(r"'([^']*)'")
_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Recursive:
    pass


@dataclass(frozen=True)
class _Slice:
    start: int | None
    end: int | None
    step: int | None
    derived_end: bool  # `[n]`: end is n+1, so `[-1]` means the last item


@dataclass(frozen=True)
class _Union:
    branches: tuple[tuple["_Step", ...], ...]


_Step = Union[_Field, _Wildcard, _Recursive, _Slice, _Union]


class _EvalError(Exception):
    """Evaluation failed (index out of range, not a list): no results."""


def _index(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"array index {text} is not a number") from None


def _parse_slice(text: str) -> _Slice:
    """`[n]`, `[a:b]`, `[a:b:c]` with kube's defaults for missing parts."""
    match = _SLICE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid array index {text}")
    start_s, end_s, step_s = match.groups()
    start = _index(start_s) if start_s else None
    if end_s is None:
        return _Slice(start, (start or 0) + 1, None, True)
    end = _index(end_s[1:]) if end_s[1:] else None
    step = _index(step_s[1:]) if step_s and step_s[1:] else None
    return _Slice(start, end, step, False)


def _parse_array(text: str) -> list[_Step]:
    """The text between `[` and `]`, as kube's `parseArray` reads it."""
    if text.startswith("?("):
        raise ValueError("JSONPath filters are not supported")
    if text == "*":
        text = ":"
    parts = text.split(",")
    if len(parts) > 1:
        return [_Union(tuple(tuple(_parse_action(f"[{p.strip(' ')}]")) for p in parts))]
    key = _DICT_KEY_RE.fullmatch(text)
    if key is not None:
        return _parse_action("." + key.group(1))
    return [_parse_slice(text)]


def _parse_action(text: str) -> list[_Step]:
    """Parse the inside of one `{...}` action into evaluation steps."""
    steps: list[_Step] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("..", i):
            steps.append(_Recursive())
            i += 2
            if i < n and (text[i].isalnum() or text[i] == "_"):
                i = _parse_field(text, i, steps)
        elif ch in " $@":
            i += 1
        elif ch == ".":
            i = _parse_field(text, i + 1, steps)
        elif ch == "[":
            close = text.find("]", i)
            if close < 0 or "\n" in text[i:close]:
                raise ValueError("unterminated array")
            steps.extend(_parse_array(text[i + 1 : close]))
            i = close + 1
        else:
            raise ValueError(f"unsupported JSONPath syntax at {text[i:]!r}")
    return steps


def _parse_field(text: str, i: int, steps: list[_Step]) -> int:
    """A field name runs to the next unescaped terminator; `\\` escapes."""
    start = i
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in _TERMINATORS:
            break
        i += 1
    raw = text[start:i]
    steps.append(_Wildcard() if raw == "*" else _Field(raw.replace("\\", "")))
    return min(i, len(text))


@functools.lru_cache(maxsize=512)
def compile_path(path: str) -> tuple[_Step, ...]:
    """Parse a JSONPath with or without its `{}`; ValueError when malformed."""
    text = path.strip()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise ValueError("unclosed action")
        text = text[1:-1]
    if "{" in text or "}" in text:
        raise ValueError("only a single JSONPath expression is supported")
    return tuple(_parse_action(text))


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _eval_slice(values: list[Any], step: _Slice) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            raise _EvalError(f"{type(value).__name__} is not array or slice")
        length = len(value)
        start = 0 if step.start is None else step.start
        if start < 0:
            start += length
        end = length if step.end is None else step.end
        if end < 0 or (end == 0 and step.derived_end):
            end += length
        if end == start:
            return out  # kube stops here, dropping later inputs
        if start >= length or start < 0 or end > length or end < 0:
            raise _EvalError("array index out of bounds")
        if start > end:
            raise _EvalError("starting index is greater than ending index")
        if step.step is not None and step.step <= 0:
            raise _EvalError("step must be > 0")
        out.extend(value[start:end : step.step or 1])
    return out


def _recurse(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        children = _children(value)
        if children:
            out.append(value)
            out.extend(_recurse(children))
    return out


def _evaluate(values: list[Any], steps: tuple[_Step, ...]) -> list[Any]:
    for step in steps:
        if isinstance(step, _Field):
            values = [v[step.name] for v in values if isinstance(v, dict) and step.name in v]
        elif isinstance(step, _Wildcard):
            values = [c for v in values for c in _children(v)]
        elif isinstance(step, _Recursive):
            values = _recurse(values)
        elif isinstance(step, _Slice):
            values = _eval_slice(values, step)
        else:
            values = [r for branch in step.branches for r in _evaluate(values, branch)]
    return values


def find(obj: Any, path: str) -> list[Any]:
    """All values `path` selects in `obj`; [] when data is missing or mis-shaped."""
    steps = compile_path(path)
    try:
        return _evaluate([obj], steps)
    except _EvalError:
        return []


# --- printing values the way Go's jsonpath printer does ---------------------


def _shortest(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of |value| and where the decimal point goes.

    Python's repr and Go's strconv both print the shortest digit string that
    round-trips, so only the layout (fixed or exponent) differs.
    """
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple))
    dp = len(digits) + int(exponent)
    significant = digits.lstrip("0")
    dp -= len(digits) - len(significant)
    return significant.rstrip("0") or "0", dp


def _fixed(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def _exponent(digits: str, dp: int) -> str:
    exp = dp - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_float(value: float, *, json: bool = False) -> str:
    """Go's `fmt.Print` (`%v`), or `encoding/json` with `json=True`, of a float64."""
    sign = "-" if value < 0 or (value == 0 and str(value).startswith("-")) else ""
    if value == 0:
        return sign + "0"
    digits, dp = _shortest(value)
    exp = dp - 1
    if json:
        use_exp = abs(value) < 1e-6 or abs(value) >= 1e21
        out = _exponent(digits, dp) if use_exp else _fixed(digits, dp)
        if use_exp and out[-4:-1] in ("e-0",):
            out = out[:-2] + out[-1]
        return sign + out
    return sign + (_exponent(digits, dp) if exp < -4 or exp >= 6 else _fixed(digits, dp))


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                 "\b": "\\b", "\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_string(value: str) -> str:
    out = []
    for ch in value:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def go_json(value: Any) -> str:
    """`json.Marshal` as Go writes it: sorted keys, HTML-escaped, compact."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value, json=True)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return _json_string(str(value))


def print_value(value: Any) -> str:
    """One result as the jsonpath printer writes it (`PrintResults`)."""
    if isinstance(value, (dict, list)):
        return go_json(value)
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def print_results(values: list[Any]) -> str:
    """Several results, separated by single spaces, as `kubectl -o jsonpath`."""
    return " ".join(print_value(v) for v in values)


def cell(
    obj: Any, path: str, type_: str, format_: str = "", *, now: datetime | None = None
) -> Any:
    """A CRD Table cell, as apiextensions' table convertor renders it.

    kube-apiserver uses only the first result, even for `[*]` paths.
    `format_` is carried in the column definition but does not change cells.
    A naive or missing `now` means UTC (the current time when missing).
    """
    del format_
    results = find(obj, path)
    if not results:
        return None
    value = results[0]
    if type_ == "string":
        return print_value(value)
    if value is None:
        return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "integer" and is_number:
        return int(value)
    if type_ == "number" and is_number:
        return float(value)
    if type_ == "boolean" and isinstance(value, bool):
        return value
    if type_ == "date" and isinstance(value, str):
        return age(value, now or datetime.now(timezone.utc))
    return None
