from __future__ import annotations

import pytest

from kapi.api import errors
from kapi.endpoints import negotiation as neg

KUBECTL_TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                 "g=meta.k8s.io,application/json")


def test_kubectl_get_asks_for_a_table() -> None:
    assert neg.negotiate(KUBECTL_TABLE) == neg.Output("table", "v1")


def test_table_refused_where_not_allowed_falls_back_to_json() -> None:
    assert neg.negotiate(KUBECTL_TABLE, allow_table=False) == neg.Output("json")


@pytest.mark.parametrize(("accept", "fmt"), [
    (None, "json"), ("*/*", "json"), ("application/yaml", "yaml"),
    ("application/vnd.kubernetes.protobuf,application/json", "json"),
    ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "partial"),
])
def test_accept(accept: str | None, fmt: str) -> None:
    assert neg.negotiate(accept).format == fmt


def test_nothing_acceptable_is_406() -> None:
    with pytest.raises(errors.NotAcceptable):
        neg.negotiate("text/html")


def test_decode_json_yaml_and_errors() -> None:
    assert neg.decode_body("application/json", b'{"a": 1}') == {"a": 1}
    assert neg.decode_body("application/yaml", b"a: 1\n") == {"a": 1}
    with pytest.raises(errors.BadRequest):
        neg.decode_body("application/json", b"{nope")
    with pytest.raises(errors.BadRequest):
        neg.decode_body("application/yaml", b"a: [1\n")
    with pytest.raises(errors.BadRequest):
        neg.decode_body("application/yaml", b"a: 1\n---\nb: 2\n")
    with pytest.raises(errors.UnsupportedMediaType):
        neg.decode_body("text/plain", b"hello")


def test_encode_yaml_keeps_key_order() -> None:
    body, ctype = neg.encode({"b": 1, "a": 2}, neg.Output("yaml"))
    assert ctype == neg.YAML and body == b"b: 1\na: 2\n"
