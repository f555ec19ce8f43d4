"""Name rules and ObjectMeta validation, worded like kube-apiserver 1.32."""
from __future__ import annotations

import pytest

from kapi.api.errors import Cause, invalid
from kapi.api.validation import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    name_errors,
    qualified_name_errors,
    regex_error,
    validate_object_meta,
)

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
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


def test_regex_error_formats_examples_like_go() -> None:
    assert regex_error("m", "re") == "m (regex used for validation is 're')"
    assert regex_error("m", "re", "a", "b") == "m (e.g. 'a',  or 'b', regex used for validation is 're')"


@pytest.mark.parametrize("value", ["a", "my-name", "123-abc", "0", "a" * 63])
def test_dns1123_label_valid(value: str) -> None:
    assert dns1123_label_errors(value) == []


@pytest.mark.parametrize("value", ["", "-a", "a-", "A", "a_b", "my name", "a\n"])
def test_dns1123_label_invalid(value: str) -> None:
    assert dns1123_label_errors(value) == [LABEL_MSG]


def test_dns1123_label_dots_and_length() -> None:
    assert dns1123_label_errors("a.b") == ["must not contain dots"]
    assert dns1123_label_errors("a" * 64) == ["must be no more than 63 characters"]
    assert dns1123_label_errors("A" * 64) == ["must be no more than 63 characters", LABEL_MSG]


@pytest.mark.parametrize("value", ["a", "example.com", "a.b-c.d", "a" * 253])
def test_dns1123_subdomain_valid(value: str) -> None:
    assert dns1123_subdomain_errors(value) == []


@pytest.mark.parametrize("value", ["", "Bad_Name", ".a", "a.", "a..b", "-a.b"])
def test_dns1123_subdomain_invalid(value: str) -> None:
    assert dns1123_subdomain_errors(value) == [SUBDOMAIN_MSG]


def test_dns1123_subdomain_too_long() -> None:
    assert dns1123_subdomain_errors("a" * 254) == ["must be no more than 253 characters"]


@pytest.mark.parametrize(
    "key", ["a", "MyName", "my.name", "123-abc", "a_b", "example.com/MyName", "k8s.io/x", "a" * 63]
)
def test_qualified_name_valid(key: str) -> None:
    assert qualified_name_errors(key) == []


def test_qualified_name_errors() -> None:
    assert qualified_name_errors("") == ["name part must be non-empty", "name part " + QNAME_TAIL]
    assert qualified_name_errors("-a") == ["name part " + QNAME_TAIL]
    assert qualified_name_errors("a" * 64) == ["name part must be no more than 63 characters"]
    assert qualified_name_errors("/a") == ["prefix part must be non-empty"]
    assert qualified_name_errors("Bad_Prefix/a") == ["prefix part " + SUBDOMAIN_MSG]
    assert qualified_name_errors("a/b/c") == [
        "a qualified name " + QNAME_TAIL
        + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    ]


@pytest.mark.parametrize("value", ["", "v", "MyValue", "my_value", "12345", "a.b-c", "a" * 63])
def test_label_value_valid(value: str) -> None:
    assert label_value_errors(value) == []


def test_label_value_invalid() -> None:
    assert label_value_errors("-a") == [LABEL_VALUE_MSG]
    assert label_value_errors("a b") == [LABEL_VALUE_MSG]
    assert label_value_errors("a" * 64) == ["must be no more than 63 characters"]


def test_name_errors_rules_and_prefix() -> None:
    assert name_errors("a.b") == []
    assert name_errors("a.b", rule="label") == ["must not contain dots"]
    assert name_errors("web-", prefix=True) == []
    assert name_errors("web-") == [SUBDOMAIN_MSG]
    with pytest.raises(ValueError):
        name_errors("a", rule="bogus")


def _by_field(causes: list[Cause]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in causes:
        out.setdefault(c.field, []).append(c.message)
    return out


def test_valid_metadata_has_no_causes() -> None:
    meta = {
        "name": "web.example",
        "namespace": "default",
        "labels": {"app": "web", "example.com/tier": ""},
        "annotations": {"Example.com/Note": "anything at all"},
        "finalizers": ["example.com/cleanup", "kubernetes"],
        "generation": 3,
    }
    assert validate_object_meta(meta, namespaced=True) == []


def test_metadata_must_be_an_object() -> None:
    [cause] = validate_object_meta("x", namespaced=False)
    assert (cause.field, cause.reason) == ("metadata", "FieldValueInvalid")


def test_name_required_unless_generate_name_allowed() -> None:
    [cause] = validate_object_meta({}, namespaced=False)
    assert cause == Cause(
        "FieldValueRequired", "Required value: name or generateName is required", "metadata.name"
    )
    assert validate_object_meta({"generateName": "web-"}, namespaced=False, require_name=False) == []
    assert validate_object_meta({"generateName": "web-"}, namespaced=False) != []
    assert validate_object_meta({}, namespaced=False, require_name=False) != []


def test_invalid_name_message_and_status_summary() -> None:
    causes = validate_object_meta({"name": "Bad_Name"}, namespaced=False)
    assert causes == [
        Cause("FieldValueInvalid", f'Invalid value: "Bad_Name": {SUBDOMAIN_MSG}', "metadata.name")
    ]
    err = invalid("", "Namespace", "Bad_Name", causes)
    assert err.message == f'Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}'


def test_label_name_rule() -> None:
    assert validate_object_meta({"name": "a.b"}, namespaced=False, name_rule="label") == [
        Cause("FieldValueInvalid", 'Invalid value: "a.b": must not contain dots', "metadata.name")
    ]


def test_generate_name_prefix_validated() -> None:
    causes = validate_object_meta({"generateName": "Web-"}, namespaced=False, require_name=False)
    assert [c.field for c in causes] == ["metadata.generateName"]


def test_namespace_rules() -> None:
    assert _by_field(validate_object_meta({"name": "a"}, namespaced=True)) == {
        "metadata.namespace": ["Required value"]
    }
    [cause] = validate_object_meta({"name": "a", "namespace": "kube.system"}, namespaced=True)
    assert cause.message == 'Invalid value: "kube.system": must not contain dots'
    [cause] = validate_object_meta({"name": "a", "namespace": "default"}, namespaced=False)
    assert cause == Cause("FieldValueForbidden", "Forbidden: not allowed on this type", "metadata.namespace")
    err = invalid("", "Namespace", "a", [cause])
    assert err.message == 'Namespace "a" is invalid: metadata.namespace: Forbidden: not allowed on this type'


def test_labels_keys_and_values() -> None:
    causes = validate_object_meta(
        {"name": "a", "labels": {"bad key": "ok", "ok": "bad value", "n": 5}}, namespaced=False
    )
    fields = _by_field(causes)
    assert fields["metadata.labels"] == [
        f'Invalid value: "bad key": name part {QNAME_TAIL}',
        f'Invalid value: "bad value": {LABEL_VALUE_MSG}',
    ]
    assert "metadata.labels[n]" in fields
    assert _by_field(validate_object_meta({"name": "a", "labels": []}, namespaced=False)).keys() == {
        "metadata.labels"
    }


def test_annotations_keys_case_insensitive_and_size() -> None:
    assert validate_object_meta({"name": "a", "annotations": {"UPPER/Key": "v"}}, namespaced=False) == []
    [cause] = validate_object_meta({"name": "a", "annotations": {"a b": "v"}}, namespaced=False)
    assert cause.field == "metadata.annotations"
    big = {"name": "a", "annotations": {"k": "x" * (256 * 1024)}}
    [cause] = validate_object_meta(big, namespaced=False)
    assert cause == Cause(
        "FieldValueTooLong", "Too long: may not be more than 262144 bytes", "metadata.annotations"
    )
    exact = {"name": "a", "annotations": {"k": "x" * (256 * 1024 - 1)}}
    assert validate_object_meta(exact, namespaced=False) == []


def test_finalizers() -> None:
    [cause] = validate_object_meta({"name": "a", "finalizers": ["bad/name/x"]}, namespaced=False)
    assert cause.field == "metadata.finalizers" and cause.reason == "FieldValueInvalid"
    both = validate_object_meta(
        {"name": "a", "finalizers": ["orphan", "foregroundDeletion"]}, namespaced=False
    )
    assert [c.message.split(": ")[-1] for c in both] == [
        "finalizer orphan and foregroundDeletion cannot be both set"
    ]
    assert validate_object_meta({"name": "a", "finalizers": "x"}, namespaced=False)[0].field == (
        "metadata.finalizers"
    )
    assert validate_object_meta({"name": "a", "finalizers": [1]}, namespaced=False)[0].field == (
        "metadata.finalizers[0]"
    )


def test_non_string_name_and_negative_generation() -> None:
    assert _by_field(validate_object_meta({"name": 5}, namespaced=False)).keys() == {"metadata.name"}
    [cause] = validate_object_meta({"name": "a", "generation": -1}, namespaced=False)
    assert cause.message == "Invalid value: -1: must be greater than or equal to 0"


def test_causes_in_kube_order() -> None:
    causes = validate_object_meta(
        {"name": "B", "namespace": "N", "labels": {"-": "v"}, "finalizers": ["-"]}, namespaced=True
    )
    assert [c.field for c in causes] == [
        "metadata.name",
        "metadata.namespace",
        "metadata.labels",
        "metadata.finalizers",
    ]
