"""Label and field selector grammar, matching and errors, as k8s.io/apimachinery parses them."""
from __future__ import annotations

from typing import Literal

import pytest

from kapi.api.errors import BadRequest
from kapi.api.field_selectors import (
    FieldRequirement,
    FieldSelector,
    escape_field_value,
    fields_of,
    parse_field_selector,
)
from kapi.api.selectors import LabelSelector, Requirement, parse_label_selector

QNAME_TAIL = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


def bad_label(text: str) -> str:
    with pytest.raises(BadRequest) as info:
        parse_label_selector(text)
    assert info.value.code == 400
    assert info.value.to_status()["reason"] == "BadRequest"
    return info.value.message


def bad_field(
    text: str,
    allowed: list[str] | None = None,
    wording: Literal["not-supported", "not-known"] = "not-supported",
) -> str:
    with pytest.raises(BadRequest) as info:
        parse_field_selector(text, allowed, wording=wording)
    assert info.value.code == 400
    return info.value.message


# -- label selector grammar --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "operator", "values"),
    [
        ("a=b", "a", "=", ("b",)),
        ("a==b", "a", "==", ("b",)),
        ("a!=b", "a", "!=", ("b",)),
        ("a in (x,y)", "a", "in", ("x", "y")),
        ("a notin (x,y)", "a", "notin", ("x", "y")),
        ("a", "a", "exists", ()),
        ("!a", "a", "!", ()),
        ("a>1", "a", "gt", ("1",)),
        ("a<1", "a", "lt", ("1",)),
        ("a>10", "a", "gt", ("10",)),
        ("a<007", "a", "lt", ("007",)),
        ("example.com/app=web", "example.com/app", "=", ("web",)),
        ("a=", "a", "=", ("",)),
        ("a!=", "a", "!=", ("",)),
        ("a in ()", "a", "in", ("",)),
        ("a in (,x)", "a", "in", ("", "x")),
        ("a in (x,)", "a", "in", ("", "x")),
        ("a in (x,,y)", "a", "in", ("", "x", "y")),
        ("a in (y,x,y)", "a", "in", ("x", "y")),
        ("a in (x)", "a", "in", ("x",)),
        ("a=in", "a", "=", ("in",)),
        ("in=notin", "in", "=", ("notin",)),
        ("notin in (in,notin)", "notin", "in", ("in", "notin")),
        ("a=B_1.x-y", "a", "=", ("B_1.x-y",)),
    ],
)
def test_each_operator_parses(text: str, key: str, operator: str, values: tuple[str, ...]) -> None:
    sel = parse_label_selector(text)
    assert sel.requirements == (Requirement(key, operator, values),)
    assert not sel.empty


@pytest.mark.parametrize("text", ["", " ", "\t\r\n "])
def test_empty_selects_everything(text: str) -> None:
    sel = parse_label_selector(text)
    assert sel.empty and sel.requirements == () and str(sel) == ""
    assert sel.matches(None) and sel.matches({}) and sel.matches({"a": "b"})


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (" a = b ", "a=b"),
        ("a == b", "a==b"),
        ("\ta\t!=\tb\n", "a!=b"),
        ("a in(x,y)", "a in (x,y)"),
        ("a in ( x , y )", "a in (x,y)"),
        ("a  notin  (  y ,x  )", "a notin (x,y)"),
        ("a , b", "a,b"),
        ("! a", "!a"),
        ("a>1 , b<2", "a>1,b<2"),
        ("a in ( )", "a in ()"),
    ],
)
def test_whitespace_is_tolerated_between_tokens(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("z=1,a=2", "a=2,z=1"),
        ("b,!a", "!a,b"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        (
            "tier notin (frontend,backend),env in (prod,qa),release",
            "env in (prod,qa),release,tier notin (backend,frontend)",
        ),
        ("a=1,a!=2", "a=1,a!=2"),
        ("k>10,k<20", "k>10,k<20"),
        ("x.io/a==b", "x.io/a==b"),
    ],
)
def test_canonical_string_sorts_by_key_and_values(text: str, canonical: str) -> None:
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    assert parse_label_selector(str(sel)) == sel  # the canonical form round-trips


def test_requirements_are_sorted_by_key() -> None:
    sel = parse_label_selector("c,b=1,!a")
    assert [r.key for r in sel.requirements] == ["a", "b", "c"]
    assert isinstance(sel, LabelSelector)


# -- label selector matching -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {}, True),  # missing key matches !=
        ("a!=b", None, True),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {}, True),  # missing key matches notin
        ("a", {"a": ""}, True),
        ("a", {"b": "x"}, False),
        ("!a", {"b": "x"}, True),
        ("!a", {"a": ""}, False),
        ("!a", None, True),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a in ()", {"a": ""}, True),
        ("a>1", {"a": "2"}, True),
        ("a>1", {"a": "1"}, False),
        ("a>1", {"a": "x"}, False),  # a non-integer label never compares
        ("a>1", {}, False),
        ("a<1", {"a": "0"}, True),
        ("a<1", {"a": "-3"}, True),
        ("a<1", {"a": "1"}, False),
        ("a<10", {"a": "9"}, True),  # numeric, not lexical
        ("a>9", {"a": "10"}, True),
        ("a>1", {"a": "99999999999999999999"}, False),  # past int64
        ("a=b,c", {"a": "b", "c": "1"}, True),
        ("a=b,c", {"a": "b"}, False),
        ("a=b,!c,d in (1,2),e notin (3)", {"a": "b", "d": "2", "e": "4"}, True),
        ("a=b,!c,d in (1,2),e notin (3)", {"a": "b", "d": "2", "e": "3"}, False),
        ("a=1,a!=2", {"a": "1"}, True),
    ],
)
def test_matching(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_label_requires_exact() -> None:
    assert parse_label_selector("a=1,b").requires_exact("a") == "1"
    assert parse_label_selector("a==1").requires_exact("a") == "1"
    assert parse_label_selector("a in (1)").requires_exact("a") == "1"
    assert parse_label_selector("a in (1,2)").requires_exact("a") is None
    assert parse_label_selector("a!=1").requires_exact("a") is None
    assert parse_label_selector("b=1").requires_exact("a") is None


# -- label selector errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # unclosed or missing parentheses
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b,", "unable to parse requirement: found '', expected: ',', or identifier"),
        ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b=c)", "unable to parse requirement: found '=', expected: ',' or ')'"),
        ("a in ((b))", "unable to parse requirement: found '(', expected: ',', ')' or identifier"),
        # in/notin without parentheses
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a notin b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in", "unable to parse requirement: found '' expected: '('"),
        # trailing, leading and doubled commas
        ("a=b,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        (",", "found ',', expected: !, identifier, or 'end of string'"),
        # doubled or misplaced operators
        ("a===b", "unable to parse requirement: found '=', expected: identifier"),
        ("a=!b", "unable to parse requirement: found '!', expected: identifier"),
        ("a!==b", "unable to parse requirement: found '=', expected: identifier"),
        ("a==(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("a=>1", "unable to parse requirement: found '>', expected: identifier"),
        ("a>=1", "unable to parse requirement: found '=', expected: identifier"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a b", f"unable to parse requirement: found 'b', expected: {BINARY_OPS}"),
        ("a (b)", f"unable to parse requirement: found '(', expected: {BINARY_OPS}"),
        ("a !b", f"unable to parse requirement: found '!', expected: {BINARY_OPS}"),
        # negation only of a bare key
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("!a in (b)", "found 'in', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert bad_label(text) == message


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        ("a@b", "name part " + QNAME_TAIL),
        ("app:web", "name part " + QNAME_TAIL),
        ("-a", "name part " + QNAME_TAIL),
        ("a" * 64, "name part must be no more than 63 characters"),
        ("/a", "prefix part must be non-empty"),
        ("a/", "name part must be non-empty; name part " + QNAME_TAIL),
        (
            "a/b/c",
            "a qualified name " + QNAME_TAIL
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "Example.com/a",
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
            "'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
    ],
)
@pytest.mark.parametrize("form", ["{k}=v", "{k}", "!{k}", "{k} in (v)", "x,{k}!=v"])
def test_bad_keys(key: str, detail: str, form: str) -> None:
    quoted = '"' + key + '"'
    assert bad_label(form.format(k=key)) == (
        f"unable to parse requirement: <nil>: Invalid value: {quoted}: {detail}"
    )


def test_bad_values() -> None:
    long = "z" * 64
    assert bad_label(f"a={long}") == (
        f'unable to parse requirement: values[0][a]: Invalid value: "{long}": '
        "must be no more than 63 characters"
    )
    assert bad_label("a=-x") == (
        f'unable to parse requirement: values[0][a]: Invalid value: "-x": {LABEL_VALUE_MSG}'
    )
    assert bad_label("a!=x@y") == (
        f'unable to parse requirement: values[0][a]: Invalid value: "x@y": {LABEL_VALUE_MSG}'
    )
    # the index is the value's place in the sorted set
    assert bad_label("a in (ok,z_)") == (
        f'unable to parse requirement: values[1][a]: Invalid value: "z_": {LABEL_VALUE_MSG}'
    )
    # too long and invalid at once: both details, joined like kube
    bad = "-" + "z" * 63
    assert bad_label(f"a={bad}") == (
        f'unable to parse requirement: values[0][a]: Invalid value: "{bad}": '
        f"must be no more than 63 characters; {LABEL_VALUE_MSG}"
    )
    # several bad values aggregate in brackets
    assert bad_label("a notin (-x,y_)") == (
        "unable to parse requirement: ["
        f'values[0][a]: Invalid value: "-x": {LABEL_VALUE_MSG}, '
        f'values[1][a]: Invalid value: "y_": {LABEL_VALUE_MSG}]'
    )


def test_gt_lt_need_integers() -> None:
    gt_lt = "for 'Gt', 'Lt' operators, the value must be an integer"
    assert bad_label("a>x") == f'unable to parse requirement: values[0]: Invalid value: "x": {gt_lt}'
    assert bad_label("a<1.5") == f'unable to parse requirement: values[0]: Invalid value: "1.5": {gt_lt}'
    assert bad_label("a>") == f'unable to parse requirement: values[0]: Invalid value: "": {gt_lt}'
    assert bad_label("a>99999999999999999999") == (
        f'unable to parse requirement: values[0]: Invalid value: "99999999999999999999": {gt_lt}'
    )
    # an integer that is no label value: kube validates the value as a label too
    assert bad_label("a>-1") == (
        f'unable to parse requirement: values[0][a]: Invalid value: "-1": {LABEL_VALUE_MSG}'
    )
    assert bad_label("a>x-") == (
        f'unable to parse requirement: [values[0]: Invalid value: "x-": {gt_lt}, '
        f'values[0][a]: Invalid value: "x-": {LABEL_VALUE_MSG}]'
    )


def test_values_are_go_quoted_in_errors() -> None:
    assert bad_label('a="b"') == (
        f'unable to parse requirement: values[0][a]: Invalid value: "\\"b\\"": {LABEL_VALUE_MSG}'
    )


def test_bad_request_renders_a_400_status() -> None:
    with pytest.raises(BadRequest) as info:
        parse_label_selector("a in b")
    status = info.value.to_status()
    assert status["code"] == 400 and status["reason"] == "BadRequest"
    assert status["message"] == "unable to parse requirement: found 'b' expected: '('"


# -- field selectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("metadata.name=foo", [("metadata.name", "=", "foo")]),
        ("metadata.name==foo", [("metadata.name", "==", "foo")]),
        ("metadata.name!=foo", [("metadata.name", "!=", "foo")]),
        ("status.phase=", [("status.phase", "=", "")]),
        ("spec.x!=", [("spec.x", "!=", "")]),
        (
            "metadata.namespace=ns,metadata.name=n",
            [("metadata.name", "=", "n"), ("metadata.namespace", "=", "ns")],
        ),
        ("a=1,,b=2,", [("a", "=", "1"), ("b", "=", "2")]),
        ("a=!b", [("a", "=", "!b")]),  # the first operator splits
        ("a!b=c", [("a!b", "=", "c")]),
        (" a = b ", [(" a ", "=", " b ")]),  # no trimming, like kube
    ],
)
def test_field_selector_terms(text: str, requirements: list[tuple[str, str, str]]) -> None:
    sel = parse_field_selector(text)
    assert sel.requirements == tuple(FieldRequirement(*r) for r in requirements)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("a\\,b", "a,b"),
        ("a\\=b", "a=b"),
        ("a\\\\b", "a\\b"),
        ("\\\\\\,\\=", "\\,="),
    ],
)
def test_field_selector_escapes(raw: str, value: str) -> None:
    sel = parse_field_selector(f"spec.x={raw},metadata.name=n")
    assert sel.requires_exact("spec.x") == value
    assert sel.matches({"spec.x": value, "metadata.name": "n"})
    assert escape_field_value(value) == raw
    assert str(parse_field_selector(f"spec.x={raw}")) == f"spec.x={raw}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=1,b", "invalid selector: 'a=1,b'; can't understand 'b'"),
        ("a<1", "invalid selector: 'a<1'; can't understand 'a<1'"),
        ("a in (b)", "invalid selector: 'a in (b)'; can't understand 'a in (b)'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a!==b", "invalid field selector: unescaped character in value: 61"),
        ("a===b", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        ("a=b\\\\\\", "invalid field selector: invalid escape sequence: \\"),
        # terms are checked in sorted order, as kube sorts them first
        ("z,a", "invalid selector: 'z,a'; can't understand 'a'"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    assert bad_field(text) == message


def test_field_selector_empty() -> None:
    for text in ("", ",", ",,", "="):  # "=" is empty on both sides: kube drops it
        sel = parse_field_selector(text, ["metadata.name"])
        assert sel.empty and str(sel) == "" and sel.matches({}) and sel.fields == ()
        assert sel.requires_exact("metadata.name") is None
    assert isinstance(parse_field_selector(""), FieldSelector)


def test_field_selector_allowed_fields() -> None:
    allowed = ["metadata.name", "metadata.namespace"]
    assert not parse_field_selector("metadata.name=a,metadata.namespace!=b", allowed).empty
    assert bad_field("spec.foo=1", allowed) == "field label not supported: spec.foo"
    assert bad_field("metadata.name=a,spec.foo!=1", allowed) == "field label not supported: spec.foo"
    assert bad_field("metadata.name =a", allowed) == "field label not supported: metadata.name "
    assert bad_field("=x", allowed) == "field label not supported: "
    # the first unknown field in sorted order is the one reported
    assert bad_field("z.z=1,b.b=2", allowed) == "field label not supported: b.b"
    # a cluster-scoped resource does not allow metadata.namespace
    assert bad_field("metadata.namespace=x", ["metadata.name"]) == (
        "field label not supported: metadata.namespace"
    )
    # syntax errors win over unknown fields
    assert bad_field("spec.foo=1,bad", allowed).startswith("invalid selector:")
    # kube's DefaultMetaV1FieldSelectorConversion wording
    assert bad_field("foo.bar=baz", allowed, wording="not-known") == (
        '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    # without `allowed`, any field parses
    assert parse_field_selector("spec.foo=1").fields == ("spec.foo",)


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("metadata.name=a", {"metadata.name": "a"}, True),
        ("metadata.name=a", {"metadata.name": "b"}, False),
        ("metadata.name==a", {"metadata.name": "a"}, True),
        ("metadata.name!=a", {"metadata.name": "a"}, False),
        ("metadata.name!=a", {"metadata.name": "b"}, True),
        ("metadata.name!=a", {}, True),
        ("status.phase=", {}, True),  # a missing field reads ""
        ("status.phase=Running", {}, False),
        ("a=1,b!=2", {"a": "1", "b": "3"}, True),
        ("a=1,b!=2", {"a": "1", "b": "2"}, False),
    ],
)
def test_field_selector_matching(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


def test_field_requires_exact() -> None:
    assert parse_field_selector("metadata.name=x").requires_exact("metadata.name") == "x"
    assert parse_field_selector("metadata.name==x").requires_exact("metadata.name") == "x"
    assert parse_field_selector("metadata.name!=x").requires_exact("metadata.name") is None
    assert parse_field_selector("metadata.namespace=x").requires_exact("metadata.name") is None
    sel = parse_field_selector("metadata.name!=y,metadata.name=x,metadata.namespace=ns")
    assert sel.requires_exact("metadata.name") == "x"
    assert sel.requires_exact("metadata.namespace") == "ns"
    assert parse_field_selector("metadata.name=").requires_exact("metadata.name") == ""


def test_field_selector_string_is_sorted_and_escaped() -> None:
    sel = parse_field_selector("spec.b==x\\,y,spec.a!=1")
    assert str(sel) == "spec.a!=1,spec.b=x\\,y"
    assert sel.fields == ("spec.a", "spec.b")
    assert parse_field_selector(str(sel)) == FieldSelector(
        (FieldRequirement("spec.a", "!=", "1"), FieldRequirement("spec.b", "=", "x,y"))
    )


def test_fields_of() -> None:
    obj = {
        "metadata": {"name": "n", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {"replicas": 3, "paused": True, "ratio": 0.5, "nothing": None},
        "status": {"phase": "Running"},
    }
    paths = [
        "metadata.name", "metadata.namespace", "status.phase", "spec.replicas", "spec.paused",
        "spec.ratio", "spec.nothing", "spec.missing", "metadata.labels", "metadata.name.deeper",
        "nope.at.all",
    ]
    assert fields_of(obj, paths) == {
        "metadata.name": "n",
        "metadata.namespace": "ns",
        "status.phase": "Running",
        "spec.replicas": "3",
        "spec.paused": "true",
        "spec.ratio": "",
        "spec.nothing": "",
        "spec.missing": "",
        "metadata.labels": "",
        "metadata.name.deeper": "",
        "nope.at.all": "",
    }
    cluster_scoped = {"metadata": {"name": "n"}}
    sel = parse_field_selector("metadata.name=n,metadata.namespace=")
    assert sel.matches(fields_of(cluster_scoped, sel.fields))
    not_empty_ns = parse_field_selector("metadata.namespace!=")
    assert not not_empty_ns.matches(fields_of(cluster_scoped, not_empty_ns.fields))
