"""Kubernetes name and object-metadata validation, worded like kube-apiserver.

Clients (kubectl, controllers, tests written against a real cluster) match on
these messages, so the wording follows k8s.io/apimachinery as served by
Kubernetes 1.32 (`pkg/util/validation` and `pkg/api/validation/objectmeta.go`)
to the character, double space in the label examples included.

The string checks return lists of messages (empty when valid), like their Go
counterparts; `validate_object_meta` turns them into `Cause`s with field paths
so a strategy can raise `errors.invalid(...)` with every problem at once.
"""
from __future__ import annotations

import re
from typing import Any

from kapi.api.errors import Cause, field_forbidden, field_invalid, field_required

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT_B = 256 * (1 << 10)

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

# fullmatch, not `$`: Python's `$` also matches before a trailing newline.
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

_FINALIZER_ORPHAN = "orphan"
_FINALIZER_FOREGROUND = "foregroundDeletion"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """kube's `RegexError`: examples joined as `'a',  or 'b', ` (sic)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i:
            out += " or "
        out += f"'{example}', "
    return out + f"regex used for validation is '{fmt}')"


def _size(value: str) -> int:
    """Go measures strings in bytes, not code points."""
    return len(value.encode("utf-8", "surrogatepass"))


def dns1123_label_errors(value: str) -> list[str]:
    """`IsDNS1123Label`: namespaces and label-style names."""
    errs: list[str] = []
    if _size(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain but not a label: length is checked, so dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")


def dns1035_label_errors(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value.encode()) > 63 else []
    if not re.fullmatch(_DNS1035_LABEL_FMT, value):
        errs.append(regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    """`IsDNS1123Subdomain`: most object names."""
    errs: list[str] = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name_errors(key: str) -> list[str]:
    """`IsQualifiedName`: label and annotation keys, finalizers."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _size(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """`IsValidLabelValue`: empty is allowed."""
    errs: list[str] = []
    if _size(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def path_segment_errors(value: str, *, prefix: bool = False) -> list[str]:
    """kube's `IsValidPathSegmentName` (RBAC names such as `system:basic-user`): anything a URL path
    segment can carry; a prefix (generateName) is only checked for what it may not contain."""
    if not prefix and value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def name_errors(value: str, *, rule: str = "subdomain", prefix: bool = False) -> list[str]:
    """kube's `NameIsDNSSubdomain` / `NameIsDNSLabel` / path-segment names (`ValidateNameFunc`).

    With `prefix` (a generateName), a trailing '-' is allowed: the server
    appends a random suffix, so the prefix only has to be valid once extended.
    """
    if rule not in ("subdomain", "label", "path"):
        raise ValueError(f"unknown name rule {rule!r}")
    if rule == "path":
        return path_segment_errors(value, prefix=prefix)
    if prefix and value.endswith("-"):
        value = value[:-1] + "a"
    if rule == "label":
        return dns1123_label_errors(value)
    return dns1123_subdomain_errors(value)


def _type_error(path: str, value: Any, kind: str) -> Cause:
    return field_invalid(path, value, f"must be of type {kind}")


def _string_map(meta: dict[str, Any], key: str) -> tuple[dict[str, str], list[Cause]]:
    """Fetch labels/annotations, reporting non-string keys or values."""
    path = f"metadata.{key}"
    value = meta.get(key)
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, [_type_error(path, value, "object")]
    causes = [
        _type_error(f"{path}[{k}]", v, "string") for k, v in value.items() if not isinstance(v, str)
    ]
    return {k: v for k, v in value.items() if isinstance(v, str)}, causes


def _validate_labels(meta: dict[str, Any]) -> list[Cause]:
    labels, causes = _string_map(meta, "labels")
    for key, value in labels.items():
        causes += [field_invalid("metadata.labels", key, m) for m in qualified_name_errors(key)]
        causes += [field_invalid("metadata.labels", value, m) for m in label_value_errors(value)]
    return causes


def _validate_annotations(meta: dict[str, Any]) -> list[Cause]:
    annotations, causes = _string_map(meta, "annotations")
    total = 0
    for key, value in annotations.items():
        # Annotation keys are case-insensitive qualified names.
        causes += [
            field_invalid("metadata.annotations", key, m) for m in qualified_name_errors(key.lower())
        ]
        total += _size(key) + _size(value)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        causes.append(
            Cause(
                "FieldValueTooLong",
                f"Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT_B} bytes",
                "metadata.annotations",
            )
        )
    return causes


def _validate_finalizers(meta: dict[str, Any]) -> list[Cause]:
    finalizers = meta.get("finalizers")
    path = "metadata.finalizers"
    if finalizers is None:
        return []
    if not isinstance(finalizers, list):
        return [_type_error(path, finalizers, "array")]
    causes: list[Cause] = []
    for i, item in enumerate(finalizers):
        if not isinstance(item, str):
            causes.append(_type_error(f"{path}[{i}]", item, "string"))
            continue
        causes += [field_invalid(path, item, m) for m in qualified_name_errors(item)]
    if _FINALIZER_ORPHAN in finalizers and _FINALIZER_FOREGROUND in finalizers:
        causes.append(
            field_invalid(
                path,
                finalizers,
                f"finalizer {_FINALIZER_ORPHAN} and {_FINALIZER_FOREGROUND} cannot be both set",
            )
        )
    return causes


def _validate_names(
    meta: dict[str, Any], namespaced: bool, name_rule: str, require_name: bool
) -> list[Cause]:
    causes: list[Cause] = []
    name, generate_name = meta.get("name"), meta.get("generateName")
    if generate_name is not None and not isinstance(generate_name, str):
        causes.append(_type_error("metadata.generateName", generate_name, "string"))
    elif generate_name:
        causes += [
            field_invalid("metadata.generateName", generate_name, m)
            for m in name_errors(generate_name, rule=name_rule, prefix=True)
        ]
    if name is not None and not isinstance(name, str):
        causes.append(_type_error("metadata.name", name, "string"))
    elif name:
        causes += [field_invalid("metadata.name", name, m) for m in name_errors(name, rule=name_rule)]
    elif require_name or not generate_name:
        causes.append(
            field_required("metadata.name", "Required value: name or generateName is required")
        )

    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        causes.append(_type_error("metadata.namespace", namespace, "string"))
    elif namespaced:
        if not namespace:
            causes.append(field_required("metadata.namespace"))
        else:
            causes += [
                field_invalid("metadata.namespace", namespace, m)
                for m in name_errors(namespace, rule="label")
            ]
    elif namespace:
        causes.append(field_forbidden("metadata.namespace", "not allowed on this type"))
    return causes


def validate_object_meta(
    meta: Any,
    *,
    namespaced: bool,
    name_rule: str = "subdomain",
    require_name: bool = True,
) -> list[Cause]:
    """Every field error in an object's `metadata`, in kube's order.

    `require_name=False` is for a create before the name is generated: then a
    `generateName` alone is enough. After generation kube validates again with
    the name set, which is what `require_name=True` (the default) does.
    """
    if not isinstance(meta, dict):
        return [_type_error("metadata", meta, "object")]
    causes = _validate_names(meta, namespaced, name_rule, require_name)
    generation = meta.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and generation < 0:
        causes.append(
            field_invalid("metadata.generation", generation, "must be greater than or equal to 0")
        )
    causes += _validate_labels(meta)
    causes += _validate_annotations(meta)
    causes += _validate_finalizers(meta)
    return causes
