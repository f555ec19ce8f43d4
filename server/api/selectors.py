"""Label selectors, parsed and matched like k8s.io/apimachinery (field selectors: `field_selectors`).

Label selectors (`?labelSelector=`) follow `pkg/labels/selector.go`'s `Parse`:
a lexer over the special symbols `= == != ! ( ) , > <` and the keywords
`in`/`notin`, then a recursive-descent parser. Requirements are ANDed and
sorted by key; `!=` and `notin` also match objects without the key, as kube's
do. `key>N` / `key<N` compare integers.

Every malformed selector raises `errors.BadRequest` with kube-apiserver's
message, which reaches the client verbatim in a 400 `Status`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kapi.api.errors import BadRequest, go_quote
from kapi.api.validation import label_value_errors, qualified_name_errors

__all__ = ["LabelSelector", "Requirement", "parse_label_selector"]

# selection.Operator values, as kube spells them.
EXISTS, DOES_NOT_EXIST = "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, GREATER_THAN, LESS_THAN = "in", "notin", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _parse_int64(text: str) -> int | None:
    """Go's `strconv.ParseInt(text, 10, 64)`: optional sign, ASCII digits, in range."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= c <= "9" for c in digits):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


# -- label selectors ------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One ANDed term of a label selector: `key`, an operator and its (sorted) values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, has = self.operator, self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if op == EXISTS:
            return has
        if op == DOES_NOT_EXIST:
            return not has
        if op in (GREATER_THAN, LESS_THAN):
            if not has or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(self.values)
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True)
class LabelSelector:
    """Requirements sorted by key (stable), all of which must match."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the selector selects everything."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact(self, key: str) -> str | None:
        """The value the first requirement on `key` pins (`=`, `==`, one-value `in`), else None."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# Tokens of the label lexer; `in`/`notin` are keywords, the rest symbols.
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_TOKENS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
           "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_END = "\0"  # Go's lexer reads a NUL byte as the end of input too


def _lex(text: str) -> list[tuple[int, str]]:
    """Every token of `text`, ending with end-of-string (a port of kube's `Lexer`)."""
    items: list[tuple[int, str]] = []
    pos, n = 0, len(text)

    def read() -> str:
        nonlocal pos
        ch = text[pos] if pos < n else _END
        pos += 1
        return ch

    while True:
        ch = read()
        while ch in _WHITESPACE:
            ch = read()
        if ch == _END:
            items.append((_EOS, ""))
            return items
        pos -= 1
        buffer = ""
        if ch in _SPECIAL:
            last: tuple[int, str] | None = None
            while True:
                ch = read()
                if ch == _END:
                    break
                if ch not in _SPECIAL:
                    pos -= 1
                    break
                buffer += ch
                if buffer in _TOKENS:
                    last = (_TOKENS[buffer], buffer)
                elif last is not None:
                    pos -= 1
                    break
            items.append(last or (_ERROR, f"error expected: keyword found '{buffer}'"))
        else:
            while True:
                ch = read()
                if ch == _END:
                    break
                if ch in _SPECIAL or ch in _WHITESPACE:
                    pos -= 1
                    break
                buffer += ch
            items.append((_TOKENS.get(buffer, _IDENT), buffer))


class _SelectorSyntaxError(Exception):
    """A parse failure; its text is kube's, and becomes a BadRequest message."""


def _field_invalid(path: str, value: str, detail: str) -> str:
    """`field.Invalid(...).Error()`: the path (`<nil>` for none), Go-quoted value, detail."""
    return f"{path}: Invalid value: {go_quote(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """`utilerrors.NewAggregate(...).Error()`: one message bare, several deduplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


class _LabelParser:
    """A port of kube's `Parser`: `in`/`notin` read as identifiers where a value may stand."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        return self._as(self.items[self.position], values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        self.position += 1
        return self._as(self.items[self.position - 1], values)

    @staticmethod
    def _as(item: tuple[int, str], values: bool) -> tuple[int, str]:
        tok, lit = item
        return (_IDENT, lit) if values and tok in (_IN, _NOTIN) else (tok, lit)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_IDENT, _NOT):
                try:
                    requirements.append(self.requirement())
                except _SelectorSyntaxError as err:
                    raise _SelectorSyntaxError(f"unable to parse requirement: {err}") from None
                tok, lit = self.consume()
                if tok == _EOS:
                    return requirements
                if tok != _COMMA:
                    raise _SelectorSyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
                tok2, lit2 = self.lookahead()
                if tok2 not in (_IDENT, _NOT):
                    raise _SelectorSyntaxError(f"found '{lit2}', expected: identifier after ','")
            elif tok == _EOS:
                return requirements
            else:
                raise _SelectorSyntaxError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        operator = ""
        tok, key = self.consume()
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, key = self.consume()
        if tok != _IDENT:
            raise _SelectorSyntaxError(f"found '{key}', expected: identifier")
        if errs := qualified_name_errors(key):
            raise _SelectorSyntaxError(_field_invalid("<nil>", key, "; ".join(errs)))
        if self.lookahead()[0] in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        if operator in (EXISTS, DOES_NOT_EXIST):
            return Requirement(key, operator)
        operator = self.operator()
        values = self.set_values() if operator in (IN, NOT_IN) else self.exact_value()
        return _new_requirement(key, operator, sorted(values))

    def operator(self) -> str:
        tok, lit = self.consume(values=False)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
               _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}
        if tok not in ops:
            raise _SelectorSyntaxError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def set_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPEN:
            raise _SelectorSyntaxError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok == _CLOSE:  # "()" is the set of the empty value
            self.consume()
            return {""}
        if tok not in (_IDENT, _COMMA):
            raise _SelectorSyntaxError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        self.consume()  # the ')' that ended the list
        return values

    def identifiers(self) -> set[str]:
        """A comma-separated list in which empty items are the empty value: `(a,,b)`, `(,a)`."""
        found: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _IDENT:
                found.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _CLOSE:
                    return found
                if tok2 != _COMMA:
                    raise _SelectorSyntaxError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == _COMMA:
                if not found:
                    found.add("")
                tok2, _ = self.lookahead()
                if tok2 == _CLOSE:
                    found.add("")
                    return found
                if tok2 == _COMMA:
                    self.consume()
                    found.add("")
            else:
                raise _SelectorSyntaxError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok != _IDENT:
            raise _SelectorSyntaxError(f"found '{lit}', expected: identifier")
        return {lit}


def _new_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """kube's `NewRequirement` checks on values parsed for a binary operator."""
    errs: list[str] = []
    if operator in (GREATER_THAN, LESS_THAN):
        errs += [
            _field_invalid(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer")
            for i, v in enumerate(values) if _parse_int64(v) is None
        ]
    for i, value in enumerate(values):
        if value_errs := label_value_errors(value):
            errs.append(_field_invalid(f"values[{i}][{key}]", value, "; ".join(value_errs)))
    if errs:
        raise _SelectorSyntaxError(_aggregate(errs))
    return Requirement(key, operator, tuple(values))


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a `labelSelector`; the empty string selects everything.

    Raises `BadRequest` worded like kube-apiserver, e.g. `unable to parse
    requirement: found '', expected: ',' or ')'`.
    """
    try:
        requirements = _LabelParser(text).parse()
    except _SelectorSyntaxError as err:
        raise BadRequest(str(err)) from None
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))
