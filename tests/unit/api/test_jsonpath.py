"""JSONPath for CRD printer columns, following client-go's jsonpath semantics."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kapi.api.jsonpath import cell, compile_path, find, go_float, go_json, print_results

OBJ = {
    "metadata": {
        "name": "web",
        "creationTimestamp": "2024-05-01T11:59:00Z",
        "labels": {"app": "web", "example.com/tier": "front"},
        "annotations": {"a.b": "dotted"},
    },
    "spec": {
        "replicas": 3,
        "ratio": 0.5,
        "big": 1e6,
        "whole": 2.0,
        "enabled": True,
        "nothing": None,
        "items": [{"name": "a", "port": 80}, {"name": "b", "port": 81}, {"name": "c"}],
        "tags": ["x", "y"],
        "nested": {"k": {"v": 1}},
    },
    "status": {"phase": "Running"},
}
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".metadata.name", ["web"]),
        ("{.metadata.name}", ["web"]),
        ("$.metadata.name", ["web"]),
        ("{ .status.phase }", ["Running"]),
        (".spec.items[0].name", ["a"]),
        (".spec.items[-1].name", ["c"]),
        (".spec.items[*].name", ["a", "b", "c"]),
        (".spec.items[*].port", [80, 81]),
        (".spec.items[0:2].name", ["a", "b"]),
        (".spec.items[::2].name", ["a", "c"]),
        (".spec.items[0,2].name", ["a", "c"]),
        (".spec.tags[*]", ["x", "y"]),
        (".spec.tags.*", ["x", "y"]),
        (".metadata.labels['app']", ["web"]),
        (".metadata.labels.example\\.com/tier", ["front"]),
        (".spec.nested..v", [1]),
        (".spec.nothing", [None]),
        (".spec.nothing.deeper", []),
        (".missing", []),
        (".metadata.name.deeper", []),
        (".spec.items[*].missing", []),
    ],
)
def test_find(path: str, expected: list[object]) -> None:
    assert find(OBJ, path) == expected


def test_bracket_key_is_reparsed_like_kube() -> None:
    # client-go turns ['a.b'] into .a.b, so the dots still split fields.
    assert find(OBJ, ".metadata.annotations['a.b']") == []
    assert find({"a": {"b": 1}}, "['a.b']") == [1]
    assert find(OBJ, ".metadata.annotations.a\\.b") == ["dotted"]


def test_find_errors_are_empty_results() -> None:
    assert find(OBJ, ".spec.items[9].name") == []
    assert find(OBJ, ".metadata.name[0]") == []
    assert find(OBJ, ".spec.items[2:1]") == []
    assert find(OBJ, ".spec.items[::0]") == []
    assert find({"a": []}, ".a[0]") == []
    assert find({"a": []}, ".a[*]") == []
    assert find(None, ".a") == []


@pytest.mark.parametrize(
    "path", [".a[", ".a[x]", ".a[?(@.b)]", "{.a", ".a}{.b}", "a b", ".a['x'", ".a[-]", ".a[1:-]"]
)
def test_bad_syntax_raises_value_error(path: str) -> None:
    with pytest.raises(ValueError):
        compile_path(path)


def test_go_float_formats() -> None:
    assert go_float(0.5) == "0.5"
    assert go_float(2.0) == "2"
    assert go_float(1e6) == "1e+06"
    assert go_float(123456.0) == "123456"
    assert go_float(1234567.0) == "1.234567e+06"
    assert go_float(0.0001) == "0.0001"
    assert go_float(0.00001) == "1e-05"
    assert go_float(-1.5) == "-1.5"
    assert go_float(0.0) == "0"
    assert go_float(1e6, json=True) == "1000000"
    assert go_float(1e21, json=True) == "1e+21"
    assert go_float(1e-7, json=True) == "1e-7"
    assert go_float(2.0, json=True) == "2"


def test_go_json() -> None:
    value = {"b": [1, 2.5, True, None], "a": "<&>\n\u2028\x01\"\\"}
    assert go_json(value) == '{"a":"\\u003c\\u0026\\u003e\\n\\u2028\\u0001\\"\\\\","b":[1,2.5,true,null]}'


def test_print_results() -> None:
    assert print_results(["a", 1, True, 1.5, None, {"k": 1}, [1]]) == 'a 1 true 1.5 <no value> {"k":1} [1]'


def test_cell_string() -> None:
    assert cell(OBJ, ".metadata.name", "string") == "web"
    assert cell(OBJ, ".spec.replicas", "string") == "3"
    assert cell(OBJ, ".spec.big", "string") == "1e+06"
    assert cell(OBJ, ".spec.enabled", "string") == "true"
    assert cell(OBJ, ".spec.nested", "string") == '{"k":{"v":1}}'
    assert cell(OBJ, ".spec.tags", "string") == '["x","y"]'
    assert cell(OBJ, ".spec.nothing", "string") == "<no value>"
    # kube-apiserver keeps only the first result of a multi-valued path
    assert cell(OBJ, ".spec.items[*].name", "string") == "a"
    assert cell(OBJ, ".missing", "string") is None


def test_cell_typed() -> None:
    assert cell(OBJ, ".spec.replicas", "integer") == 3
    assert cell(OBJ, ".spec.ratio", "integer") == 0
    assert cell(OBJ, ".metadata.name", "integer") is None
    assert cell(OBJ, ".spec.enabled", "integer") is None
    assert cell(OBJ, ".spec.replicas", "number") == 3.0
    assert isinstance(cell(OBJ, ".spec.replicas", "number"), float)
    assert cell(OBJ, ".spec.ratio", "number") == 0.5
    assert cell(OBJ, ".spec.enabled", "boolean") is True
    assert cell(OBJ, ".spec.replicas", "boolean") is None
    assert cell(OBJ, ".spec.nothing", "integer") is None
    assert cell(OBJ, ".spec.replicas", "unknown-type") is None


def test_cell_date() -> None:
    assert cell(OBJ, ".metadata.creationTimestamp", "date", now=NOW) == "60s"
    assert cell({"t": "nope"}, ".t", "date", now=NOW) == "<invalid>"
    assert cell({"t": ""}, ".t", "date", now=NOW) == "<unknown>"
    assert cell({"t": 5}, ".t", "date", now=NOW) is None
    assert cell({"t": "2000-01-01T00:00:00Z"}, ".t", "date") .endswith("y")


def test_cell_format_is_ignored() -> None:
    assert cell(OBJ, ".spec.replicas", "integer", "int32") == 3
