"""Real kubectl against `kapi start`, over the shipped example resources.

Foo (hello.zeng.dev) is served in v2 (preferred, storage: `spec.image`, `spec.config.{msg,msg1}`) and
v1 (`spec.msg`, `spec.msg1`). kubectl reads `foo`/`fo`/`foos` in v2; `foos.v1.hello.zeng.dev` reads v1.
Manifests here are written in v1, as an older manifest would be, so every test also crosses versions.
"""
from __future__ import annotations

import json
import re

import pytest
import yaml

FOO_API = "hello.zeng.dev/v1"
FOO_V2_API = "hello.zeng.dev/v2"  # the preferred version: what `kubectl get foo` reads
FOO_V1 = "foos.v1.hello.zeng.dev"  # the resource in v1, fully qualified
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


def foo_v2_manifest(name: str, image: str, msg: str, msg1: str = "again", namespace: str = "default") -> str:
    return yaml.safe_dump({
        "apiVersion": FOO_V2_API, "kind": "Foo",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": image, "config": {"msg": msg, "msg1": msg1}},
    })


def create_foo(kapi, name: str, msg: str = "hello", msg1: str = "again") -> dict:
    """Apply a v1 manifest; the object as read back in v1."""
    out = kapi.kubectl("apply", "-f", "-", input=foo_manifest(name, msg, msg1)).stdout
    assert f"foo.hello.zeng.dev/{name} created" in out
    return get_json(kapi, FOO_V1, name)


# ---------------------------------------------------------------- discovery


def test_api_resources(kapi) -> None:
    out = kapi.kubectl("api-resources").stdout
    header, rows = table(out)
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {row[0]: row for row in rows}
    assert by_name["foos"] == ["foos", "fo", FOO_V2_API, "true", "Foo"]  # the preferred version
    assert by_name["pizzas"][-3:] == [PIZZA_API, "true", "Pizza"]
    assert by_name["jenkinsservices"][-3:] == ["autobusi.group.cicd/v1alpha", "true", "JenkinsService"]
    assert by_name["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]


def test_api_resources_filtered_by_group(kapi) -> None:
    out = kapi.kubectl("api-resources", "--api-group", "hello.zeng.dev", "-o", "name").stdout
    assert out.split() == ["foos.hello.zeng.dev"]


def test_api_versions(kapi) -> None:
    versions = kapi.kubectl("api-versions").stdout.split()
    for gv in (FOO_API, FOO_V2_API, PIZZA_API, "autobusi.group.cicd/v1alpha", "v1"):
        assert gv in versions


# ---------------------------------------------------------------- apply / create


def test_apply_create_then_reapply_changed(kapi) -> None:
    first = create_foo(kapi, "apply-a", msg="hello")
    assert first["spec"] == {"msg": "hello", "msg1": "again"}
    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["uid"]
    assert re.fullmatch(r"\d+", first["metadata"]["resourceVersion"])
    assert "kubectl.kubernetes.io/last-applied-configuration" in first["metadata"]["annotations"]
    preferred = get_json(kapi, "foo", "apply-a")  # the same object in v2
    assert preferred["apiVersion"] == FOO_V2_API
    assert preferred["spec"] == {"config": {"msg": "hello", "msg1": "again"}}
    assert preferred["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    out = kapi.kubectl("apply", "-f", "-", input=foo_manifest("apply-a", "changed")).stdout
    assert "foo.hello.zeng.dev/apply-a configured" in out
    second = get_json(kapi, FOO_V1, "apply-a")
    assert second["spec"]["msg"] == "changed"
    assert second["metadata"]["generation"] == 2
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])

    out = kapi.kubectl("apply", "-f", "-", input=foo_manifest("apply-a", "changed")).stdout
    assert "foo.hello.zeng.dev/apply-a unchanged" in out
    assert get_json(kapi, FOO_V1, "apply-a")["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]


def test_apply_rejects_unknown_field(kapi) -> None:
    manifest = foo_manifest("apply-strict", "x").replace("msg1: again", "msg1: again\n  bogus: 1")
    result = kapi.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "bogus" in result.stderr
    gone = kapi.kubectl("get", FOO_V1, "apply-strict", check=False)
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
    obj = get_json(kapi, FOO_V1, name)
    assert obj["metadata"]["generateName"] == "gen-foo-"
    assert obj["spec"]["msg"] == "generated"
    out2 = kapi.kubectl("create", "-f", "-", input=manifest).stdout
    assert name not in out2 and "gen-foo-" in out2


def test_create_existing_is_already_exists(kapi) -> None:
    create_foo(kapi, "dup-a")
    result = kapi.kubectl("create", "-f", "-", input=foo_manifest("dup-a", "other"), check=False)
    assert result.returncode != 0
    assert "AlreadyExists" in result.stderr
    assert get_json(kapi, FOO_V1, "dup-a")["spec"]["msg"] == "hello"


# ---------------------------------------------------------------- get


def test_get_table_columns(kapi) -> None:
    kapi.kubectl("create", "namespace", "crud-get")
    kapi.kubectl("apply", "-f", "-", input=foo_v2_manifest("tab-a", "nginx:1", "alpha", "beta", namespace="crud-get"))
    kapi.kubectl("apply", "-f", "-", input=foo_v2_manifest("tab-b", "redis:7", "gamma", "delta", namespace="crud-get"))
    out = kapi.kubectl("patch", "foo", "tab-a", "-n", "crud-get", "--subresource", "status", "--type", "merge",
                       "-p", '{"status":{"phase":"Running"}}').stdout
    assert "foo.hello.zeng.dev/tab-a patched" in out
    kapi.kubectl("patch", "foo", "tab-b", "-n", "crud-get", "--subresource", "status", "--type", "merge",
                 "-p", '{"status":{"phase":"Pending"}}')

    # the preferred version, v2: Image, Message, Phase (Message1 has priority 1)
    header, rows = table(kapi.kubectl("get", "foos", "-n", "crud-get").stdout)
    assert header == ["NAME", "IMAGE", "MESSAGE", "PHASE", "AGE"]
    assert [row[:4] for row in rows] == [["tab-a", "nginx:1", "alpha", "Running"],
                                         ["tab-b", "redis:7", "gamma", "Pending"]]
    assert all(re.fullmatch(r"\d+[smhdy]\S*", row[4]) for row in rows), rows

    header, rows = table(kapi.kubectl("get", "foos", "-n", "crud-get", "-o", "wide").stdout)
    assert header == ["NAME", "IMAGE", "MESSAGE", "MESSAGE1", "PHASE", "AGE"]
    assert [row[:5] for row in rows] == [["tab-a", "nginx:1", "alpha", "beta", "Running"],
                                         ["tab-b", "redis:7", "gamma", "delta", "Pending"]]

    header, rows = table(kapi.kubectl("get", "foos", "-A").stdout)
    assert header == ["NAMESPACE", "NAME", "IMAGE", "MESSAGE", "PHASE", "AGE"]
    assert ["crud-get", "tab-a", "nginx:1", "alpha"] in [row[:4] for row in rows]
    assert ["crud-get", "tab-b", "redis:7", "gamma"] in [row[:4] for row in rows]

    header, rows = table(kapi.kubectl("get", "fo", "tab-b", "-n", "crud-get").stdout)
    assert [row[:3] for row in rows] == [["tab-b", "redis:7", "gamma"]]

    # v1, asked for by name: its own columns, Message and Message1 (priority 1)
    header, rows = table(kapi.kubectl("get", FOO_V1, "-n", "crud-get").stdout)
    assert header == ["NAME", "MESSAGE", "AGE"]
    assert [row[:2] for row in rows] == [["tab-a", "alpha"], ["tab-b", "gamma"]]
    assert all(re.fullmatch(r"\d+[smhdy]\S*", row[2]) for row in rows), rows

    header, rows = table(kapi.kubectl("get", FOO_V1, "-n", "crud-get", "-o", "wide").stdout)
    assert header == ["NAME", "MESSAGE", "MESSAGE1", "AGE"]
    assert [row[:3] for row in rows] == [["tab-a", "alpha", "beta"], ["tab-b", "gamma", "delta"]]


def test_get_empty_namespace(kapi) -> None:
    kapi.kubectl("create", "namespace", "crud-empty")
    result = kapi.kubectl("get", "foos", "-n", "crud-empty")
    assert "No resources found in crud-empty namespace." in result.stdout + result.stderr


def test_get_output_formats(kapi) -> None:
    created = create_foo(kapi, "fmt-a", msg="formats")

    as_yaml = yaml.safe_load(kapi.kubectl("get", "fo", "fmt-a", "-o", "yaml").stdout)
    assert as_yaml["apiVersion"] == FOO_V2_API and as_yaml["kind"] == "Foo"
    assert as_yaml["metadata"]["name"] == "fmt-a"
    assert as_yaml["metadata"]["namespace"] == "default"
    assert as_yaml["metadata"]["uid"] == created["metadata"]["uid"]
    assert as_yaml["metadata"]["creationTimestamp"].endswith("Z")
    assert as_yaml["spec"] == {"config": {"msg": "formats", "msg1": "again"}}

    as_json = json.loads(kapi.kubectl("get", "fo", "fmt-a", "-o", "json").stdout)
    assert as_json == as_yaml

    v1_yaml = yaml.safe_load(kapi.kubectl("get", FOO_V1, "fmt-a", "-o", "yaml").stdout)
    assert v1_yaml["apiVersion"] == FOO_API and v1_yaml["kind"] == "Foo"
    assert v1_yaml["spec"] == {"msg": "formats", "msg1": "again"}
    assert v1_yaml == json.loads(kapi.kubectl("get", FOO_V1, "fmt-a", "-o", "json").stdout) == created

    assert kapi.kubectl("get", "fo", "fmt-a", "-o", "name").stdout.strip() == "foo.hello.zeng.dev/fmt-a"

    listed = json.loads(kapi.kubectl("get", "foos", "-o", "json").stdout)
    assert listed["kind"] == "List"
    assert "fmt-a" in [item["metadata"]["name"] for item in listed["items"]]
    assert all(item["kind"] == "Foo" and item["apiVersion"] == FOO_V2_API for item in listed["items"])
    listed_v1 = json.loads(kapi.kubectl("get", FOO_V1, "-o", "json").stdout)
    assert "fmt-a" in [item["metadata"]["name"] for item in listed_v1["items"]]
    assert all(item["kind"] == "Foo" and item["apiVersion"] == FOO_API for item in listed_v1["items"])


def test_get_missing_is_not_found(kapi) -> None:
    result = kapi.kubectl("get", "foo", "never-was", check=False)
    assert result.returncode != 0
    assert 'Error from server (NotFound): foos.hello.zeng.dev "never-was" not found' in result.stderr


def test_describe(kapi) -> None:
    created = create_foo(kapi, "desc-a", msg="described", msg1="twice")
    out = kapi.kubectl("describe", "foo", "desc-a").stdout
    assert re.search(r"^Name:\s+desc-a$", out, re.M)
    assert re.search(r"^Namespace:\s+default$", out, re.M)
    assert re.search(r"^API Version:\s+hello\.zeng\.dev/v2$", out, re.M)
    assert re.search(r"^Kind:\s+Foo$", out, re.M)
    assert re.search(r"^Spec:\n\s+Config:\n\s+Msg:\s+described\n\s+msg1:\s+twice$", out, re.M | re.I), out
    assert created["metadata"]["uid"] in out
    v1 = kapi.kubectl("describe", FOO_V1, "desc-a").stdout
    assert re.search(r"^API Version:\s+hello\.zeng\.dev/v1$", v1, re.M)
    assert re.search(r"^Spec:\n\s+Msg:\s+described\n\s+msg1:\s+twice$", v1, re.M | re.I), v1
    assert created["metadata"]["uid"] in v1


# ---------------------------------------------------------------- patch / replace


def test_patch_merge(kapi) -> None:
    before = create_foo(kapi, "patch-m", msg="one")
    out = kapi.kubectl("patch", "foo", "patch-m", "--type", "merge",
                       "-p", '{"spec":{"image":"nginx","config":{"msg":"two"}}}').stdout
    assert "foo.hello.zeng.dev/patch-m patched" in out
    after = get_json(kapi, "foo", "patch-m")
    assert after["spec"] == {"image": "nginx", "config": {"msg": "two", "msg1": "again"}}
    assert after["metadata"]["generation"] == 2
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    kapi.kubectl("patch", "foo", "patch-m", "--type", "merge", "-p", '{"spec":{"config":{"msg1":null}}}')
    assert get_json(kapi, "foo", "patch-m")["spec"] == {"image": "nginx", "config": {"msg": "two"}}

    # a merge patch in v1 applies to the v1 shape and keeps what only v2 can say
    out = kapi.kubectl("patch", FOO_V1, "patch-m", "--type", "merge", "-p", '{"spec":{"msg":"three"}}').stdout
    assert "foo.hello.zeng.dev/patch-m patched" in out
    assert get_json(kapi, FOO_V1, "patch-m")["spec"] == {"msg": "three"}
    final = get_json(kapi, "foo", "patch-m")
    assert final["spec"] == {"image": "nginx", "config": {"msg": "three"}}
    assert final["metadata"]["generation"] == 4


def test_patch_json(kapi) -> None:
    create_foo(kapi, "patch-j", msg="one")
    ops = json.dumps([{"op": "replace", "path": "/spec/config/msg", "value": "three"},
                      {"op": "add", "path": "/spec/image", "value": "nginx"},
                      {"op": "add", "path": "/metadata/labels", "value": {"app": "demo"}}])
    out = kapi.kubectl("patch", "foo", "patch-j", "--type", "json", "-p", ops).stdout
    assert "foo.hello.zeng.dev/patch-j patched" in out
    after = get_json(kapi, "foo", "patch-j")
    assert after["spec"] == {"image": "nginx", "config": {"msg": "three", "msg1": "again"}}
    assert after["metadata"]["labels"] == {"app": "demo"}

    failing = json.dumps([{"op": "test", "path": "/spec/config/msg", "value": "nope"},
                          {"op": "replace", "path": "/spec/config/msg", "value": "four"}])
    result = kapi.kubectl("patch", "foo", "patch-j", "--type", "json", "-p", failing, check=False)
    assert result.returncode != 0
    assert get_json(kapi, "foo", "patch-j")["spec"]["config"]["msg"] == "three"

    # a JSON patch's paths are those of the version it is sent in: v1 has /spec/msg
    v1_ops = json.dumps([{"op": "replace", "path": "/spec/msg", "value": "five"}])
    kapi.kubectl("patch", FOO_V1, "patch-j", "--type", "json", "-p", v1_ops)
    assert get_json(kapi, "foo", "patch-j")["spec"] == {"image": "nginx", "config": {"msg": "five", "msg1": "again"}}


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
    assert doc["apiVersion"] == FOO_V2_API
    doc["spec"]["config"]["msg"] = "after"
    doc["spec"]["image"] = "nginx"
    out = kapi.kubectl("replace", "-f", "-", input=yaml.safe_dump(doc)).stdout
    assert "foo.hello.zeng.dev/repl-a replaced" in out
    after = get_json(kapi, "foo", "repl-a")
    assert after["spec"] == {"image": "nginx", "config": {"msg": "after", "msg1": "again"}}
    assert after["metadata"]["uid"] == created["metadata"]["uid"]
    assert after["metadata"]["generation"] == 2
    assert int(after["metadata"]["resourceVersion"]) > int(doc["metadata"]["resourceVersion"])

    # read-modify-write in v1 keeps the image, which v1 cannot show but carries in an annotation
    v1_doc = yaml.safe_load(kapi.kubectl("get", FOO_V1, "repl-a", "-o", "yaml").stdout)
    assert v1_doc["apiVersion"] == FOO_API and v1_doc["spec"] == {"msg": "after", "msg1": "again"}
    v1_doc["spec"]["msg"] = "again-after"
    out = kapi.kubectl("replace", "-f", "-", input=yaml.safe_dump(v1_doc)).stdout
    assert "foo.hello.zeng.dev/repl-a replaced" in out
    again = get_json(kapi, "foo", "repl-a")
    assert again["spec"] == {"image": "nginx", "config": {"msg": "again-after", "msg1": "again"}}
    assert again["metadata"]["generation"] == 3


def test_replace_stale_resource_version_conflicts(kapi) -> None:
    create_foo(kapi, "repl-stale", msg="v1")
    stale = yaml.safe_load(kapi.kubectl("get", "fo", "repl-stale", "-o", "yaml").stdout)
    kapi.kubectl("patch", "foo", "repl-stale", "--type", "merge", "-p", '{"spec":{"config":{"msg":"v2"}}}')
    current = get_json(kapi, "foo", "repl-stale")
    stale["spec"]["config"]["msg"] = "v3"
    result = kapi.kubectl("replace", "-f", "-", input=yaml.safe_dump(stale), check=False)
    assert result.returncode != 0
    assert "Conflict" in result.stderr
    assert "the object has been modified" in result.stderr
    assert get_json(kapi, "foo", "repl-stale") == current


# ---------------------------------------------------------------- explain / delete


def test_explain_foos_spec(kapi) -> None:
    out = kapi.kubectl("explain", "foos.spec").stdout  # the preferred version, v2
    assert re.search(r"KIND:\s+Foo", out) and re.search(r"VERSION:\s+v2", out)
    assert re.search(r"image\s+<string>", out)
    assert "the container image that says hello" in out
    assert re.search(r"config\s+<Object>", out)
    assert "what the image says" in out
    config = kapi.kubectl("explain", "foos.spec.config").stdout
    assert re.search(r"msg\s+<string>", config) and "msg says hello" in config
    assert re.search(r"msg1\s+<string>", config)
    top = kapi.kubectl("explain", "foos").stdout
    assert "Foo is a sample resource with an image and its messages." in top

    out = kapi.kubectl("explain", "foos.spec", "--api-version", FOO_API).stdout
    assert re.search(r"KIND:\s+Foo", out) and re.search(r"VERSION:\s+v1", out)
    assert "FooSpec holds the messages a Foo carries." in out
    assert re.search(r"msg\s+<string>", out)
    assert "msg says hello" in out
    assert re.search(r"msg1\s+<string>", out)
    assert not re.search(r"image\s+<string>", out)
    top = kapi.kubectl("explain", "foos", "--api-version", FOO_API).stdout
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
