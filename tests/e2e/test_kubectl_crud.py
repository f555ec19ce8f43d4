"""Real kubectl against `kapi start`, over the shipped example resources."""
from __future__ import annotations

import json
import re

import pytest
import yaml

FOO_API = "hello.zeng.dev/v1"
PIZZA_API = "restaurant.wukong.com/v1alpha1"


def foo_manifest(name: str, msg: str, msg1: str = "again", namespace: str = "default") -> str:
    return yaml.safe_dump({
        "apiVersion": FOO_API, "kind": "Foo",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"msg": msg, "msg1": msg1},
    })


def get_json(kapi, *args: str) -> dict:
    return json.loads(kapi.kubectl("get", *args, "-o", "json").stdout)


def table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """Split kubectl's table output into a header and rows (cells without spaces)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    return lines[0].split(), [line.split() for line in lines[1:]]


def create_foo(kapi, name: str, msg: str = "hello", msg1: str = "again") -> dict:
    out = kapi.kubectl("apply", "-f", "-", input=foo_manifest(name, msg, msg1)).stdout
    assert f"foo.hello.zeng.dev/{name} created" in out
    return get_json(kapi, "foo", name)


# ---------------------------------------------------------------- discovery


def test_api_resources(kapi) -> None:
    out = kapi.kubectl("api-resources").stdout
    header, rows = table(out)
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {row[0]: row for row in rows}
    assert by_name["foos"] == ["foos", "fo", FOO_API, "true", "Foo"]
    assert by_name["pizzas"][-3:] == [PIZZA_API, "true", "Pizza"]
    assert by_name["jenkinsservices"][-3:] == ["autobusi.group.cicd/v1alpha", "true", "JenkinsService"]
    assert by_name["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]


def test_api_resources_filtered_by_group(kapi) -> None:
    out = kapi.kubectl("api-resources", "--api-group", "hello.zeng.dev", "-o", "name").stdout
    assert out.split() == ["foos.hello.zeng.dev"]


def test_api_versions(kapi) -> None:
    versions = kapi.kubectl("api-versions").stdout.split()
    for gv in (FOO_API, PIZZA_API, "autobusi.group.cicd/v1alpha", "v1"):
        assert gv in versions


# ---------------------------------------------------------------- apply / create


def test_apply_create_then_reapply_changed(kapi) -> None:
    first = create_foo(kapi, "apply-a", msg="hello")
    assert first["spec"] == {"msg": "hello", "msg1": "again"}
    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["uid"]
    assert re.fullmatch(r"\d+", first["metadata"]["resourceVersion"])
    assert "kubectl.kubernetes.io/last-applied-configuration" in first["metadata"]["annotations"]

    out = kapi.kubectl("apply", "-f", "-", input=foo_manifest("apply-a", "changed")).stdout
    assert "foo.hello.zeng.dev/apply-a configured" in out
    second = get_json(kapi, "foo", "apply-a")
    assert second["spec"]["msg"] == "changed"
    assert second["metadata"]["generation"] == 2
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])

    out = kapi.kubectl("apply", "-f", "-", input=foo_manifest("apply-a", "changed")).stdout
    assert "foo.hello.zeng.dev/apply-a unchanged" in out
    assert get_json(kapi, "foo", "apply-a")["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]


def test_apply_rejects_unknown_field(kapi) -> None:
    manifest = foo_manifest("apply-strict", "x").replace("msg1: again", "msg1: again\n  bogus: 1")
    result = kapi.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "bogus" in result.stderr
    gone = kapi.kubectl("get", "foo", "apply-strict", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_create_namespace_protobuf(kapi) -> None:
    out = kapi.kubectl("create", "namespace", "crud-ns-x").stdout
    assert "namespace/crud-ns-x created" in out
    header, rows = table(kapi.kubectl("get", "ns", "crud-ns-x").stdout)
    assert header == ["NAME", "STATUS", "AGE"]
    assert rows[0][:2] == ["crud-ns-x", "Active"]
    ns = get_json(kapi, "namespace", "crud-ns-x")
    assert ns["kind"] == "Namespace" and ns["apiVersion"] == "v1"
    assert ns["metadata"]["uid"]
    names = kapi.kubectl("get", "ns", "-o", "name").stdout.split()
    for expected in ("namespace/default", "namespace/kube-system", "namespace/kube-public", "namespace/crud-ns-x"):
        assert expected in names


def test_create_with_generate_name(kapi) -> None:
    manifest = yaml.safe_dump({"apiVersion": FOO_API, "kind": "Foo",
                               "metadata": {"generateName": "gen-foo-", "namespace": "default"},
                               "spec": {"msg": "generated"}})
    out = kapi.kubectl("create", "-f", "-", input=manifest).stdout
    match = re.search(r"foo\.hello\.zeng\.dev/(gen-foo-[a-z0-9]+) created", out)
    assert match, out
    name = match.group(1)
    assert len(name) > len("gen-foo-")
    obj = get_json(kapi, "foo", name)
    assert obj["metadata"]["generateName"] == "gen-foo-"
    assert obj["spec"]["msg"] == "generated"
    out2 = kapi.kubectl("create", "-f", "-", input=manifest).stdout
    assert name not in out2 and "gen-foo-" in out2


def test_create_existing_is_already_exists(kapi) -> None:
    create_foo(kapi, "dup-a")
    result = kapi.kubectl("create", "-f", "-", input=foo_manifest("dup-a", "other"), check=False)
    assert result.returncode != 0
    assert "AlreadyExists" in result.stderr
    assert get_json(kapi, "foo", "dup-a")["spec"]["msg"] == "hello"


# ---------------------------------------------------------------- get


def test_get_table_columns(kapi) -> None:
    kapi.kubectl("create", "namespace", "crud-get")
    kapi.kubectl("apply", "-f", "-", input=foo_manifest("tab-a", "alpha", "beta", namespace="crud-get"))
    kapi.kubectl("apply", "-f", "-", input=foo_manifest("tab-b", "gamma", "delta", namespace="crud-get"))

    header, rows = table(kapi.kubectl("get", "foos", "-n", "crud-get").stdout)
    assert header == ["NAME", "MESSAGE", "AGE"]
    assert [row[:2] for row in rows] == [["tab-a", "alpha"], ["tab-b", "gamma"]]
    assert all(re.fullmatch(r"\d+[smhdy]\S*", row[2]) for row in rows), rows

    header, rows = table(kapi.kubectl("get", "foos", "-n", "crud-get", "-o", "wide").stdout)
    assert header == ["NAME", "MESSAGE", "MESSAGE1", "AGE"]
    assert [row[:3] for row in rows] == [["tab-a", "alpha", "beta"], ["tab-b", "gamma", "delta"]]

    header, rows = table(kapi.kubectl("get", "foos", "-A").stdout)
    assert header == ["NAMESPACE", "NAME", "MESSAGE", "AGE"]
    assert ["crud-get", "tab-a", "alpha"] in [row[:3] for row in rows]
    assert ["crud-get", "tab-b", "gamma"] in [row[:3] for row in rows]

    header, rows = table(kapi.kubectl("get", "fo", "tab-b", "-n", "crud-get").stdout)
    assert [row[:2] for row in rows] == [["tab-b", "gamma"]]


def test_get_empty_namespace(kapi) -> None:
    kapi.kubectl("create", "namespace", "crud-empty")
    result = kapi.kubectl("get", "foos", "-n", "crud-empty")
    assert "No resources found in crud-empty namespace." in result.stdout + result.stderr


def test_get_output_formats(kapi) -> None:
    created = create_foo(kapi, "fmt-a", msg="formats")

    as_yaml = yaml.safe_load(kapi.kubectl("get", "fo", "fmt-a", "-o", "yaml").stdout)
    assert as_yaml["apiVersion"] == FOO_API and as_yaml["kind"] == "Foo"
    assert as_yaml["metadata"]["name"] == "fmt-a"
    assert as_yaml["metadata"]["namespace"] == "default"
    assert as_yaml["metadata"]["uid"] == created["metadata"]["uid"]
    assert as_yaml["metadata"]["creationTimestamp"].endswith("Z")
    assert as_yaml["spec"] == {"msg": "formats", "msg1": "again"}

    as_json = json.loads(kapi.kubectl("get", "fo", "fmt-a", "-o", "json").stdout)
    assert as_json == as_yaml

    assert kapi.kubectl("get", "fo", "fmt-a", "-o", "name").stdout.strip() == "foo.hello.zeng.dev/fmt-a"

    listed = json.loads(kapi.kubectl("get", "foos", "-o", "json").stdout)
    assert listed["kind"] == "List"
    assert "fmt-a" in [item["metadata"]["name"] for item in listed["items"]]
    assert all(item["kind"] == "Foo" and item["apiVersion"] == FOO_API for item in listed["items"])


def test_get_missing_is_not_found(kapi) -> None:
    result = kapi.kubectl("get", "foo", "never-was", check=False)
    assert result.returncode != 0
    assert 'Error from server (NotFound): foos.hello.zeng.dev "never-was" not found' in result.stderr


def test_describe(kapi) -> None:
    created = create_foo(kapi, "desc-a", msg="described", msg1="twice")
    out = kapi.kubectl("describe", "foo", "desc-a").stdout
    assert re.search(r"^Name:\s+desc-a$", out, re.M)
    assert re.search(r"^Namespace:\s+default$", out, re.M)
    assert re.search(r"^API Version:\s+hello\.zeng\.dev/v1$", out, re.M)
    assert re.search(r"^Kind:\s+Foo$", out, re.M)
    assert re.search(r"Msg:\s+described", out)
    assert re.search(r"msg1:\s+twice", out, re.I)
    assert created["metadata"]["uid"] in out


# ---------------------------------------------------------------- patch / replace


def test_patch_merge(kapi) -> None:
    before = create_foo(kapi, "patch-m", msg="one")
    out = kapi.kubectl("patch", "foo", "patch-m", "--type", "merge", "-p", '{"spec":{"msg":"two"}}').stdout
    assert "foo.hello.zeng.dev/patch-m patched" in out
    after = get_json(kapi, "foo", "patch-m")
    assert after["spec"] == {"msg": "two", "msg1": "again"}
    assert after["metadata"]["generation"] == 2
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    kapi.kubectl("patch", "foo", "patch-m", "--type", "merge", "-p", '{"spec":{"msg1":null}}')
    assert get_json(kapi, "foo", "patch-m")["spec"] == {"msg": "two"}


def test_patch_json(kapi) -> None:
    create_foo(kapi, "patch-j", msg="one")
    ops = json.dumps([{"op": "replace", "path": "/spec/msg", "value": "three"},
                      {"op": "add", "path": "/metadata/labels", "value": {"app": "demo"}}])
    out = kapi.kubectl("patch", "foo", "patch-j", "--type", "json", "-p", ops).stdout
    assert "foo.hello.zeng.dev/patch-j patched" in out
    after = get_json(kapi, "foo", "patch-j")
    assert after["spec"]["msg"] == "three"
    assert after["metadata"]["labels"] == {"app": "demo"}

    failing = json.dumps([{"op": "test", "path": "/spec/msg", "value": "nope"},
                          {"op": "replace", "path": "/spec/msg", "value": "four"}])
    result = kapi.kubectl("patch", "foo", "patch-j", "--type", "json", "-p", failing, check=False)
    assert result.returncode != 0
    assert get_json(kapi, "foo", "patch-j")["spec"]["msg"] == "three"


def test_patch_strategic_merges_map_list(kapi) -> None:
    manifest = yaml.safe_dump({
        "apiVersion": PIZZA_API, "kind": "Pizza",
        "metadata": {"name": "patch-s", "namespace": "default"},
        "spec": {"size": "small", "toppings": [{"name": "cheese", "quantity": 1},
                                               {"name": "ham", "quantity": 2}]},
    })
    kapi.kubectl("create", "-f", "-", input=manifest)
    patch = json.dumps({"spec": {"toppings": [{"name": "cheese", "quantity": 5}]}})
    out = kapi.kubectl("patch", "pizza", "patch-s", "--type", "strategic", "-p", patch).stdout
    assert "pizza.restaurant.wukong.com/patch-s patched" in out
    toppings = get_json(kapi, "pizza", "patch-s")["spec"]["toppings"]
    assert {t["name"]: t["quantity"] for t in toppings} == {"cheese": 5, "ham": 2}

    # a new key is added, and $patch: delete removes one entry
    kapi.kubectl("patch", "pizza", "patch-s", "-p",
                 json.dumps({"spec": {"toppings": [{"name": "olive", "quantity": 3}]}}))
    kapi.kubectl("patch", "pizza", "patch-s", "-p",
                 json.dumps({"spec": {"toppings": [{"name": "ham", "$patch": "delete"}]}}))
    toppings = get_json(kapi, "pizza", "patch-s")["spec"]["toppings"]
    assert {t["name"]: t["quantity"] for t in toppings} == {"cheese": 5, "olive": 3}

    # a merge patch of the same list replaces it whole
    kapi.kubectl("patch", "pizza", "patch-s", "--type", "merge", "-p", patch)
    assert get_json(kapi, "pizza", "patch-s")["spec"]["toppings"] == [{"name": "cheese", "quantity": 5}]


def test_replace_from_get_yaml(kapi) -> None:
    created = create_foo(kapi, "repl-a", msg="before")
    doc = yaml.safe_load(kapi.kubectl("get", "fo", "repl-a", "-o", "yaml").stdout)
    doc["spec"]["msg"] = "after"
    out = kapi.kubectl("replace", "-f", "-", input=yaml.safe_dump(doc)).stdout
    assert "foo.hello.zeng.dev/repl-a replaced" in out
    after = get_json(kapi, "foo", "repl-a")
    assert after["spec"]["msg"] == "after"
    assert after["metadata"]["uid"] == created["metadata"]["uid"]
    assert after["metadata"]["generation"] == 2
    assert int(after["metadata"]["resourceVersion"]) > int(doc["metadata"]["resourceVersion"])


def test_replace_stale_resource_version_conflicts(kapi) -> None:
    create_foo(kapi, "repl-stale", msg="v1")
    stale = yaml.safe_load(kapi.kubectl("get", "fo", "repl-stale", "-o", "yaml").stdout)
    kapi.kubectl("patch", "foo", "repl-stale", "--type", "merge", "-p", '{"spec":{"msg":"v2"}}')
    current = get_json(kapi, "foo", "repl-stale")
    stale["spec"]["msg"] = "v3"
    result = kapi.kubectl("replace", "-f", "-", input=yaml.safe_dump(stale), check=False)
    assert result.returncode != 0
    assert "Conflict" in result.stderr
    assert "the object has been modified" in result.stderr
    assert get_json(kapi, "foo", "repl-stale") == current


# ---------------------------------------------------------------- explain / delete


def test_explain_foos_spec(kapi) -> None:
    out = kapi.kubectl("explain", "foos.spec").stdout
    assert re.search(r"KIND:\s+Foo", out)
    assert "FooSpec holds the messages a Foo carries." in out
    assert re.search(r"msg\s+<string>", out)
    assert "msg says hello" in out
    assert re.search(r"msg1\s+<string>", out)
    top = kapi.kubectl("explain", "foos").stdout
    assert "Foo is a sample resource with a message." in top


@pytest.mark.parametrize("extra", [[], ["--wait=false"]])
def test_delete(kapi, extra: list[str]) -> None:
    name = "del-wait" if not extra else "del-nowait"
    create_foo(kapi, name)
    out = kapi.kubectl("delete", "foo", name, *extra).stdout
    assert f'foo.hello.zeng.dev "{name}" deleted' in out
    result = kapi.kubectl("get", "foo", name, check=False)
    assert result.returncode != 0
    assert f'foos.hello.zeng.dev "{name}" not found' in result.stderr
    names = kapi.kubectl("get", "foos", "-o", "name").stdout.split()
    assert f"foo.hello.zeng.dev/{name}" not in names
    again = kapi.kubectl("delete", "foo", name, check=False)
    assert again.returncode != 0 and "NotFound" in again.stderr
