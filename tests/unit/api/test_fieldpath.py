"""Field paths and `fieldsV1`: kube's encoding, element order and conflict wording."""
from __future__ import annotations

import pytest

from kapi.api.fieldpath import (
    FieldPathError,
    decode_element,
    field,
    from_fields_v1,
    key_element,
    path_string,
    sorted_paths,
    to_fields_v1,
    under,
    value_element,
    with_prefix,
)

SPEC, CONTAINERS = field("spec"), field("containers")
NGINX = key_element({"name": "nginx"})


def test_a_member_with_children_is_marked_with_a_dot() -> None:
    """A deployment created by `kubectl create` (recorded from kube-apiserver): the container item is owned
    itself and through its fields; `spec` only through its fields."""
    paths = {(SPEC, CONTAINERS, NGINX), (SPEC, CONTAINERS, NGINX, field("image")),
             (SPEC, CONTAINERS, NGINX, field("name")), (SPEC, field("replicas"))}
    assert to_fields_v1(paths) == {"f:spec": {
        "f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}},
        "f:replicas": {}}}


def test_fields_v1_round_trips() -> None:
    doc = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:finalizers": {'v:"a"': {}}},
           "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:name": {}}}, "f:args": {}}}
    assert to_fields_v1(from_fields_v1(doc)) == doc


def test_key_elements_sort_their_keys_and_children_follow_kubes_order() -> None:
    assert key_element({"protocol": "TCP", "port": 80}) == ("k", '{"port":80,"protocol":"TCP"}')
    paths = {(value_element("b"),), (value_element(1),), (field("z"),), (key_element({"a": 1}),), (field("a"),)}
    assert list(to_fields_v1(paths)) == ["f:a", "f:z", 'k:{"a":1}', "v:1", 'v:"b"']


@pytest.mark.parametrize("text", ["x:1", "nocolon", 'k:[1]', "k:{bad", "i:one"])
def test_unreadable_elements_are_refused(text: str) -> None:
    with pytest.raises(FieldPathError):
        decode_element(text)


def test_a_fields_v1_that_is_not_nested_objects_is_refused() -> None:
    with pytest.raises(FieldPathError):
        from_fields_v1({"f:spec": 1})


def test_paths_print_as_in_kubes_conflicts() -> None:
    """Wording of structured-merge-diff's `Path.String`, as kube's 409 shows it."""
    assert path_string((field("data"), field("a"))) == ".data.a"
    assert path_string((SPEC, field("ports"), key_element({"port": 80, "protocol": "TCP"}), field("name"))) \
        == '.spec.ports[port=80,protocol="TCP"].name'
    assert path_string((field("finalizers"), value_element("x"))) == '.finalizers[="x"]'


def test_set_iteration_lists_members_before_deeper_paths() -> None:
    """kube lists a manager's conflicts members first at each level (`Set.Iterate`)."""
    paths = [(field("a"), field("x")), (field("b"),), (field("a"), field("w"), field("q"))]
    assert sorted_paths(paths) == [(field("b"),), (field("a"), field("x")), (field("a"), field("w"), field("q"))]


def test_prefix_helpers() -> None:
    paths = {(SPEC,), (SPEC, field("x")), (SPEC, field("y"), field("z")), (field("status"), field("x"))}
    assert with_prefix(paths, SPEC) == {(field("x"),), (field("y"), field("z"))}
    assert under(paths, "status") == {(field("status"), field("x"))}
