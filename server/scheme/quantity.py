"""Resource quantities (`cpu: 0.5`, `memory: 1024Mi`) in kube's canonical form, as its decoder leaves them.

kube-apiserver parses every `resource.Quantity` and writes it back canonically:
a number becomes a string, `0.5` becomes `500m`, `1000` becomes `1k`, `1024Mi`
becomes `1Gi`, while `1500m` and `1536Mi` stay (no larger suffix divides them).
Decimal-SI values take the largest power-of-1000 suffix that leaves an integer
(rounding up to nano), binary-SI values the largest power-of-1024 one; decimal
exponents (`1e3`) keep their form. A value that is not a quantity is kube's 400.

The catalogue marks quantity nodes with `x-kapi-quantity`; `canonicalize` walks
an object along its schema and rewrites them in place.
"""
from __future__ import annotations

import re
from fractions import Fraction
from math import ceil
from typing import Any

MARKER = "x-kapi-quantity"
PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_PARSE = re.compile(r"^([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)([a-zA-Z]*|[eE][-+]?[0-9]+)$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX = {e: s for s, e in _DECIMAL.items()}


class QuantityError(ValueError):
    """Not a quantity: kube's decoder refuses the body."""

    def __init__(self) -> None:
        super().__init__(f"quantities must match the regular expression '{PATTERN}'")


def canonical(value: Any) -> str:
    """`value` (a JSON number or string) as kube serialises the Quantity it parses to."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise QuantityError()
    text = repr(value) if isinstance(value, float) else str(value)
    m = _PARSE.match(text.strip())
    if not m:
        raise QuantityError()
    sign, number, suffix = m.group(1), m.group(2), m.group(3)
    if suffix[:1] in ("e", "E") and suffix not in _DECIMAL:
        return text  # a decimal exponent keeps its form
    if suffix in _BINARY:
        amount = Fraction(number) * 2 ** _BINARY[suffix]
        out = _binary(amount) if amount.denominator == 1 else _decimal(amount)
    elif suffix in _DECIMAL:
        out = _decimal(Fraction(number) * Fraction(10) ** _DECIMAL[suffix])
    else:
        raise QuantityError()
    return out if out == "0" or sign != "-" else "-" + out


def amount(value: Any) -> Fraction:
    """The number a quantity stands for (`500m` → 1/2, `1Gi` → 2**30); QuantityError when it is none."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise QuantityError()
    m = _PARSE.match((repr(value) if isinstance(value, float) else str(value)).strip())
    if not m:
        raise QuantityError()
    sign, number, suffix = m.group(1), m.group(2), m.group(3)
    if suffix in _BINARY:
        value_of = Fraction(number) * 2 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value_of = Fraction(number) * Fraction(10) ** _DECIMAL[suffix]
    elif suffix[:1] in ("e", "E"):
        value_of = Fraction(number) * Fraction(10) ** int(suffix[1:])
    else:
        raise QuantityError()
    return -value_of if sign == "-" else value_of


def _decimal(amount: Fraction) -> str:
    if amount == 0:
        return "0"
    for exponent in range(18, -12, -3):
        mantissa = amount / Fraction(10) ** exponent
        if mantissa.denominator == 1:
            return f"{mantissa.numerator}{_DECIMAL_SUFFIX[exponent]}"
    return f"{ceil(amount * 10**9)}n"  # finer than nano rounds up, as kube's does


def _binary(amount: Fraction) -> str:
    whole = amount.numerator
    for suffix, shift in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
        if whole >= 1 << shift and whole % (1 << shift) == 0:
            return f"{whole >> shift}{suffix}"
    return str(whole)


_HOLDS: dict[int, bool] = {}  # id(schema node) -> whether a quantity lies below (catalogue nodes live for ever)


def _holds_quantity(schema: dict[str, Any]) -> bool:
    found = _HOLDS.get(id(schema))
    if found is None:
        _HOLDS[id(schema)] = False  # no cycles in the catalogue, but never recurse for ever
        props = schema.get("properties")
        subs = list(props.values()) if isinstance(props, dict) else []
        subs += [schema.get("items"), schema.get("additionalProperties")]
        found = any(isinstance(s, dict) and (bool(s.get(MARKER)) or _holds_quantity(s)) for s in subs)
        _HOLDS[id(schema)] = found
    return found


def canonicalize(obj: Any, schema: Any) -> None:
    """Rewrite every quantity `schema` marks in `obj`, in place; QuantityError for one that is not."""
    if not isinstance(schema, dict) or not _holds_quantity(schema):
        return
    if isinstance(obj, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            sub = props.get(key) if isinstance(props, dict) and key in props else extra
            if isinstance(sub, dict) and sub.get(MARKER):
                obj[key] = canonical(value)
            else:
                canonicalize(value, sub)
    elif isinstance(obj, list):
        items = schema.get("items")
        for i, value in enumerate(obj):
            if isinstance(items, dict) and items.get(MARKER):
                obj[i] = canonical(value)
            else:
                canonicalize(value, items)
