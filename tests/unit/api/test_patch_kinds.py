"""JSON merge patch, JSON patch and strategic merge patch as pure functions."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kapi.api.errors import BadRequest, Invalid
from kapi.api.patch import json_merge_patch, json_patch, strategic_merge_patch

ORIGINAL: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Thing",
    "metadata": {"name": "t", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
    "spec": {
        "containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "side:1"},
        ],
        "ports": [{"port": 80, "protocol": "TCP", "name": "http"}],
        "tags": ["a", "b"],
        "plain": [1, 2],
        "settings": {"x": 1, "y": 2},
        "atomicMap": {"p": 1, "q": 2},
    },
}

CONTAINER = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "env": {
            "type": "array",
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "name",
            "items": {"type": "object"},
        },
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "containers": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": CONTAINER,
                },
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "items": {"type": "object"},
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "plain": {"type": "array", "items": {"type": "integer"}},
                "settings": {"type": "object", "additionalProperties": {"type": "integer"}},
                "atomicMap": {"type": "object", "x-kubernetes-patch-strategy": "replace"},
            },
        }
    },
}


def _smp(patch: Any, schema: Any = SCHEMA, original: Any = None) -> dict[str, Any]:
    original = copy.deepcopy(ORIGINAL if original is None else original)
    before = copy.deepcopy(original)
    patch_before = copy.deepcopy(patch)
    result = strategic_merge_patch(original, patch, schema)
    assert original == before, "original mutated"
    assert patch == patch_before, "patch mutated"
    assert "$" not in repr(result), "a directive leaked into the result"
    return result


# --- merge patch ---------------------------------------------------------------


def test_merge_patch_rfc7386_examples() -> None:
    assert json_merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert json_merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert json_merge_patch({"a": "b"}, {"a": None}) == {}
    assert json_merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert json_merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert json_merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert json_merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert json_merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert json_merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert json_merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
    assert json_merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert json_merge_patch({"a": "foo"}, None) is None


def test_merge_patch_does_not_mutate_or_alias() -> None:
    original = {"m": {"k": 1}, "keep": {"deep": [1]}}
    patch = {"m": {"n": [1, {"x": 1}]}}
    result = json_merge_patch(original, patch)
    assert original == {"m": {"k": 1}, "keep": {"deep": [1]}}
    result["keep"]["deep"].append(2)
    result["m"]["n"][1]["x"] = 9
    assert original["keep"]["deep"] == [1]
    assert patch == {"m": {"n": [1, {"x": 1}]}}


# --- JSON patch ------------------------------------------------------------------


def test_json_patch_operations() -> None:
    doc = {"metadata": {"name": "a", "labels": {"x": "1"}}, "list": [1, 2]}
    ops = [
        {"op": "add", "path": "/metadata/labels/y", "value": "2"},
        {"op": "replace", "path": "/metadata/name", "value": "b"},
        {"op": "remove", "path": "/metadata/labels/x"},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "test", "path": "/list/0", "value": 1},
        {"op": "copy", "from": "/list", "path": "/copy"},
        {"op": "move", "from": "/copy", "path": "/moved"},
    ]
    result = json_patch(doc, ops)
    assert result == {
        "metadata": {"name": "b", "labels": {"y": "2"}},
        "list": [1, 2, 3],
        "moved": [1, 2, 3],
    }
    assert doc == {"metadata": {"name": "a", "labels": {"x": "1"}}, "list": [1, 2]}


def test_json_patch_value_is_copied() -> None:
    value = {"k": [1]}
    result = json_patch({}, [{"op": "add", "path": "/v", "value": value}])
    result["v"]["k"].append(2)
    assert value == {"k": [1]}


@pytest.mark.parametrize("ops", [{"op": "add"}, "x", None, [1], [["op"]], ["add"]])
def test_json_patch_bad_document_is_400(ops: Any) -> None:
    with pytest.raises(BadRequest):
        json_patch({}, ops)


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing/deeper", "value": 1}],
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "bogus", "path": "/a"}],
        [{"path": "/a"}],
        [{"op": "add", "value": 1}],
        [{"op": "add", "path": "/a/b/c", "value": 1}],
        [{"op": "move", "from": "/nope", "path": "/b"}],
        [{"op": "add", "path": "/list/9", "value": 1}],
        [{"op": "add", "path": "nope", "value": 1}],
    ],
)
def test_json_patch_failed_operation_is_422(ops: Any) -> None:
    with pytest.raises(Invalid) as info:
        json_patch({"a": 1, "list": []}, ops)
    err = info.value
    assert err.code == 422  # kube's generic answer names no detail (tests/conformance: patch-json)
    assert err.to_status()["message"] == "the server rejected our request due to an error in our request"
    assert err.to_status()["details"] == {}


def test_json_patch_replace_of_a_missing_member_adds_it() -> None:
    assert json_patch({"data": {}}, [{"op": "replace", "path": "/data/k", "value": "v"}]) == {"data": {"k": "v"}}


# --- strategic merge patch --------------------------------------------------------


def test_smp_maps_merge_and_null_deletes() -> None:
    result = _smp({"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"settings": {"z": 3}}})
    assert result["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert result["spec"]["settings"] == {"x": 1, "y": 2, "z": 3}
    assert _smp({"spec": None}).get("spec") is None
    assert "nothing" not in _smp({"nothing": None})


def test_smp_keyed_list_update_insert_and_recursion() -> None:
    patch = {
        "spec": {
            "containers": [
                {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
                {"name": "new", "image": "new:1"},
            ]
        }
    }
    containers = _smp(patch)["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "side", "new"]
    assert containers[0]["image"] == "app:2"
    # env merges by patch strategy, so kube's order applies: new items first
    assert containers[0]["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert containers[1] == {"name": "side", "image": "side:1"}


def test_smp_keyed_list_multiple_keys() -> None:
    patch = {"spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "web"}, {"port": 80, "protocol": "UDP"}]}}
    assert _smp(patch)["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP", "name": "web"},
        {"port": 80, "protocol": "UDP"},
    ]


def test_smp_delete_item_directive() -> None:
    result = _smp({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}})
    assert [c["name"] for c in result["spec"]["containers"]] == ["app"]
    nested = {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}}
    assert _smp(nested)["spec"]["containers"][0]["env"] == []


def test_smp_replace_list_directive() -> None:
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o", "gone": None}]}}
    assert _smp(patch)["spec"]["containers"] == [{"name": "only", "image": "o"}]
    assert _smp({"spec": {"containers": [{"$patch": "replace"}]}})["spec"]["containers"] == []


def test_smp_list_directive_errors() -> None:
    with pytest.raises(BadRequest):
        _smp({"spec": {"containers": [{"$patch": "bogus", "name": "app"}]}})
    with pytest.raises(BadRequest):
        _smp({"spec": {"containers": [{"$patch": "merge"}]}})
    with pytest.raises(BadRequest, match="does not contain declared merge key"):
        _smp({"spec": {"containers": [{"$patch": "delete"}]}})
    with pytest.raises(BadRequest, match="does not contain declared merge key"):
        _smp({"spec": {"containers": [{"image": "x"}]}})


def test_smp_set_list_union_in_order() -> None:
    # list-type driven merges keep the live order and append, as SSA does
    assert _smp({"spec": {"tags": ["c", "a"]}})["spec"]["tags"] == ["a", "b", "c"]
    assert _smp({"spec": {"tags": ["b", "c"]}})["spec"]["tags"] == ["a", "b", "c"]
    assert _smp({"spec": {"tags": []}})["spec"]["tags"] == ["a", "b"]
    assert _smp({"spec": {"tags": [1, True, 1]}}, original={"spec": {"tags": [True]}}) == {
        "spec": {"tags": [True, 1]}
    }


MERGE_INTS = {"properties": {"l": {"type": "array", "x-kubernetes-patch-strategy": "merge"}}}
MERGE_MAPS = {
    "properties": {
        "l": {
            "type": "array",
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "name",
        }
    }
}


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [  # cases from kube's strategicpatch tests
        ([1, 2], [2, 3], [1, 2, 3]),
        ([1, 2, 3], [3, 1, 2], [3, 1, 2]),
        ([1, 2, 3], [3, 1], [2, 3, 1]),
        ([1, 2], [3], [3, 1, 2]),
    ],
)
def test_smp_patch_strategy_lists_use_kube_order(original: list[int], patch: list[int], expected: list[int]) -> None:
    assert _smp({"l": patch}, schema=MERGE_INTS, original={"l": original}) == {"l": expected}


def test_smp_patch_strategy_keyed_list_kube_order() -> None:
    original = {"l": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}
    patch = {"l": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}
    assert _smp(patch, schema=MERGE_MAPS, original=original) == {
        "l": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]
    }
    dupes = {"l": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}]}
    patch = {"l": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}
    assert _smp(patch, schema=MERGE_MAPS, original=dupes) == {"l": [{"name": 2, "value": "a"}]}


def test_smp_other_lists_replace() -> None:
    assert _smp({"spec": {"plain": [3]}})["spec"]["plain"] == [3]
    assert _smp({"spec": {"plain": [3]}}, schema=None)["spec"]["plain"] == [3]
    no_schema = _smp({"spec": {"containers": [{"name": "x"}]}}, schema=None)
    assert no_schema["spec"]["containers"] == [{"name": "x"}]


def test_smp_object_meta_lists_always_merge() -> None:
    # ObjectMeta's patchStrategy=merge lists: kube's order puts new items first
    result = _smp({"metadata": {"finalizers": ["z"]}}, schema=None)
    assert result["metadata"]["finalizers"] == ["z", "x", "y"]
    result = _smp({"metadata": {"finalizers": ["y", "z"]}}, schema=SCHEMA)
    assert result["metadata"]["finalizers"] == ["x", "y", "z"]
    owners = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    twice = _smp({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}, original=_smp(owners))
    assert [o["uid"] for o in twice["metadata"]["ownerReferences"]] == ["2", "1"]
    updated = _smp({"metadata": {"ownerReferences": [{"uid": "1", "name": "c"}]}}, original=twice)
    assert updated["metadata"]["ownerReferences"] == [{"uid": "2", "name": "b"}, {"uid": "1", "name": "c"}]


def test_smp_map_directives() -> None:
    replaced = _smp({"spec": {"settings": {"$patch": "replace", "only": 1}}})
    assert replaced["spec"]["settings"] == {"only": 1}
    deleted = _smp({"spec": {"settings": {"$patch": "delete"}}})
    assert deleted["spec"]["settings"] == {}
    assert _smp({"$patch": "delete"}) == {}
    with pytest.raises(BadRequest, match="unknown patch type"):
        _smp({"spec": {"settings": {"$patch": "bogus"}}})


def test_smp_map_patch_strategy_replace() -> None:
    assert _smp({"spec": {"atomicMap": {"r": 3}}})["spec"]["atomicMap"] == {"r": 3}


def test_smp_retain_keys() -> None:
    result = _smp({"spec": {"settings": {"$retainKeys": ["x", "z"], "z": 3}}})
    assert result["spec"]["settings"] == {"x": 1, "z": 3}
    with pytest.raises(BadRequest, match="retainKeys"):
        _smp({"spec": {"settings": {"$retainKeys": ["x"], "z": 3}}})
    with pytest.raises(BadRequest, match="retainKeys"):
        _smp({"spec": {"settings": {"$retainKeys": "x"}}})


def test_smp_delete_from_primitive_list() -> None:
    result = _smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})
    assert result["metadata"]["finalizers"] == ["y"]
    result = _smp({"spec": {"$deleteFromPrimitiveList/tags": ["a"], "tags": ["c"]}})
    assert result["spec"]["tags"] == ["b", "c"]
    assert "missing" not in _smp({"spec": {"$deleteFromPrimitiveList/missing": ["a"]}})["spec"]
    with pytest.raises(BadRequest, match="primitive list"):
        _smp({"spec": {"$deleteFromPrimitiveList/tags": "a"}})
    with pytest.raises(BadRequest, match="primitive list"):
        _smp({"spec": {"$deleteFromPrimitiveListtags": ["a"]}})


def test_smp_set_element_order() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "new"}, {"name": "app"}],
            "containers": [{"name": "new", "image": "n"}],
        }
    }
    assert [c["name"] for c in _smp(patch)["spec"]["containers"]] == ["side", "new", "app"]
    tags = _smp({"spec": {"$setElementOrder/tags": ["b", "a"]}})
    assert tags["spec"]["tags"] == ["b", "a"]
    finalizers = _smp({"metadata": {"$setElementOrder/finalizers": ["y", "z", "x"], "finalizers": ["z"]}})
    assert finalizers["metadata"]["finalizers"] == ["y", "z", "x"]
    # accepted and dropped where the list is not merged
    assert _smp({"spec": {"$setElementOrder/plain": [2, 1], "plain": [5]}})["spec"]["plain"] == [5]
    with pytest.raises(BadRequest, match="setElementOrder"):
        _smp({"spec": {"$setElementOrder/tags": "b"}})


def test_smp_new_values_are_stripped_of_directives_and_nulls() -> None:
    patch = {
        "spec": {
            "fresh": {"keep": 1, "drop": None, "inner": {"$patch": "replace", "v": 1}},
            "gone": {"$patch": "delete"},
            "settings": ["now", "a", "list"],
        }
    }
    result = _smp(patch)
    assert result["spec"]["fresh"] == {"keep": 1, "inner": {"v": 1}}
    assert "gone" not in result["spec"]
    assert result["spec"]["settings"] == ["now", "a", "list"]
    new_list = _smp({"spec": {"containers": None}}, original={"spec": {}})
    assert new_list == {"spec": {}}
    added = _smp({"spec": {"containers": [{"name": "a", "x": None}, {"name": "b", "$patch": "delete"}]}},
                 original={"spec": {}})
    assert added["spec"]["containers"] == [{"name": "a"}]


def test_smp_rejects_non_object_patch_and_bad_lists() -> None:
    with pytest.raises(BadRequest):
        strategic_merge_patch({}, [1], None)  # type: ignore[arg-type]
    merge_no_key = {"properties": {"l": {"type": "array", "x-kubernetes-patch-strategy": "merge"}}}
    with pytest.raises(BadRequest):
        _smp({"l": [{"a": 1}]}, schema=merge_no_key, original={"l": [{"a": 0}]})
    with pytest.raises(Invalid):
        _smp({"l": [[1]]}, schema=merge_no_key, original={"l": [[0]]})
    assert _smp({"l": [2, 1]}, schema=merge_no_key, original={"l": [1]}) == {"l": [2, 1]}


def test_smp_type_change_replaces() -> None:
    assert _smp({"spec": {"settings": "flat"}})["spec"]["settings"] == "flat"
    assert _smp({"spec": {"tags": {"now": "map"}}})["spec"]["tags"] == {"now": "map"}


def test_smp_result_is_not_aliased() -> None:
    original = copy.deepcopy(ORIGINAL)
    patch = {"spec": {"containers": [{"name": "new", "args": ["a"]}]}}
    result = strategic_merge_patch(original, patch, SCHEMA)
    result["spec"]["containers"][-1]["args"].append("b")
    result["spec"]["settings"]["x"] = 99
    assert patch["spec"]["containers"][0]["args"] == ["a"]
    assert original["spec"]["settings"]["x"] == 1


def test_smp_additional_properties_and_items_schema() -> None:
    schema = {
        "properties": {
            "byName": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set"}},
                },
            }
        }
    }
    result = _smp({"byName": {"a": {"tags": ["y"]}}}, schema=schema, original={"byName": {"a": {"tags": ["x"]}}})
    assert result == {"byName": {"a": {"tags": ["x", "y"]}}}
