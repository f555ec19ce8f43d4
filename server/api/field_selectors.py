"""Field selectors (`?fieldSelector=`), parsed and matched like k8s.io/apimachinery.

They follow `pkg/fields/selector.go`'s `ParseSelector`: terms split on
unescaped commas, each `field=value`, `field==value` or `field!=value`, with
`\\,`, `\\=` and `\\\\` escapes in the value. No whitespace trimming, like
kube: `metadata.name = x` names the field `metadata.name ` (trailing space).
Malformed selectors raise `errors.BadRequest` with kube-apiserver's message.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kapi.api.errors import BadRequest, go_quote
from kapi.api.selectors import DOUBLE_EQUALS, EQUALS, NOT_EQUALS

__all__ = ["FieldRequirement", "FieldSelector", "escape_field_value", "fields_of", "parse_field_selector"]



@dataclass(frozen=True)
class FieldRequirement:
    """`field=value` (operator `=` or `==`) or `field!=value`; the value is unescaped."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return not equal if self.operator == NOT_EQUALS else equal

    def __str__(self) -> str:
        op = "!=" if self.operator == NOT_EQUALS else "="
        return f"{self.field}{op}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """Field requirements in kube's order (terms sorted as written), all of which must match."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    @property
    def fields(self) -> tuple[str, ...]:
        """The field paths the selector reads, each once: what to pass to `fields_of`."""
        return tuple(dict.fromkeys(r.field for r in self.requirements))

    def matches(self, fields: Mapping[str, str]) -> bool:
        """A field missing from `fields` compares as the empty string, as in kube."""
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact(self, field: str) -> str | None:
        """The value an `=`/`==` term pins `field` to (`metadata.name=X`), else None."""
        for r in self.requirements:
            if r.field == field and r.operator != NOT_EQUALS:
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_VALUE_ESCAPES = {"\\": "\\\\", ",": "\\,", "=": "\\="}


def escape_field_value(value: str) -> str:
    """kube's `fields.EscapeValue`: `\\`, `,` and `=` get a backslash."""
    return "".join(_VALUE_ESCAPES.get(c, c) for c in value)


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash; the escapes stay in the terms."""
    if not text:
        return []
    terms: list[str] = []
    start, in_slash = 0, False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """The first operator (`!=`, then `==`, then `=` at each position) splits field from value."""
    for i in range(len(term)):
        for op in (NOT_EQUALS, DOUBLE_EQUALS, EQUALS):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(value: str) -> str:
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c not in _VALUE_ESCAPES:
                raise BadRequest(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in (",", "="):
            # Go prints the rune with %v: its code point, e.g. 61 for '='.
            raise BadRequest(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(
    text: str,
    allowed: Iterable[str] | None = None,
    *,
    wording: Literal["not-supported", "not-known"] = "not-supported",
) -> FieldSelector:
    """Parse a `fieldSelector`; the empty string selects everything.

    With `allowed`, a term on any other field is a `BadRequest`, checked after
    the whole selector parsed (as kube converts field labels after decoding).
    `wording` picks kube's message for it: `"not-supported"` is what custom
    resources and most built-in kinds say (`field label not supported:
    spec.foo`); `"not-known"` is `DefaultMetaV1FieldSelectorConversion`'s
    (`"spec.foo" is not a known field selector: only "metadata.name",
    "metadata.namespace"`), naming the allowed fields in the order given.
    """
    requirements: list[FieldRequirement] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, raw = split
        value = _unescape(raw)
        if field or value:  # kube's Transform drops a term that is empty on both sides
            requirements.append(FieldRequirement(field, op, value))
    if allowed is not None:
        known = list(dict.fromkeys(allowed))
        for r in requirements:
            if r.field not in known:
                if wording == "not-known":
                    only = ", ".join(go_quote(f) for f in known)
                    raise BadRequest(f"{go_quote(r.field)} is not a known field selector: only {only}")
                raise BadRequest(f"field label not supported: {r.field}")
    return FieldSelector(tuple(requirements))


def _field_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    return ""


def fields_of(obj: Mapping[str, Any], paths: Iterable[str]) -> dict[str, str]:
    """The values of dotted field `paths` in `obj`, as strings; a missing field reads "".

    Strings are returned as-is, integers in decimal and booleans as
    `true`/`false` (the kinds a CRD's `selectableFields` may name); any other
    value reads as "".
    """
    out: dict[str, str] = {}
    for path in paths:
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
            if node is None:
                break
        out[path] = _field_string(node)
    return out
