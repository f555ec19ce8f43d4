"""Plugins end to end: real `kapi start` processes and the real kubectl.

The shipped hello.zeng.dev Foo (v1 and v2 of different shapes, converted through the hub) read and written
in either version, its v2 columns and generated OpenAPI (`kubectl explain`); the JenkinsServiceLimit
admission plugin and `--admission-plugins`; the pizza router; a plugin module given with `--plugin`; and
starts that fail because of a plugin.

Only the Foo round trips run on both backends (the `kapi` fixture's file and etcd servers); everything else
shares the file-backed server of the module or starts its own.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
V2_FIELDS = "hello.zeng.dev/v2-fields"
FILE_ONLY = pytest.mark.parametrize("kapi", ["file"], indirect=True)  # the module's shared file server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def get_json(kapi: Any, *args: str) -> Any:
    return json.loads(kapi.kubectl("get", *args, "-o", "json").stdout)


def said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


# -- Foo: v1 and v2 through the hub, on file and etcd ------------------------------------------------------------
def test_foo_applied_in_v1_reads_in_v2_and_back(kapi: Any) -> None:
    name = unique("v1foo")
    manifest = (f"apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: {name}\n"
                "spec:\n  msg: hello\n  msg1: again\n")
    assert "created" in kapi.kubectl("apply", "-f", "-", input=manifest).stdout

    v2 = get_json(kapi, "foos.v2.hello.zeng.dev", name)
    assert v2["apiVersion"] == "hello.zeng.dev/v2"
    assert v2["spec"] == {"config": {"msg": "hello", "msg1": "again"}}
    assert V2_FIELDS not in v2["metadata"].get("annotations", {})

    v1 = get_json(kapi, "foos.v1.hello.zeng.dev", name)
    assert v1["apiVersion"] == "hello.zeng.dev/v1"
    assert v1["spec"] == {"msg": "hello", "msg1": "again"}
    assert V2_FIELDS not in v1["metadata"].get("annotations", {})  # nothing v1 cannot say
    assert v1["metadata"]["uid"] == v2["metadata"]["uid"]
    assert v1["metadata"]["resourceVersion"] == v2["metadata"]["resourceVersion"]

    # apply again in v1 with a change: it shows in v2, and v1 reads back what was applied
    changed = manifest.replace("msg: hello", "msg: changed")
    assert "configured" in kapi.kubectl("apply", "-f", "-", input=changed).stdout
    assert get_json(kapi, "foos.v2.hello.zeng.dev", name)["spec"]["config"] == {"msg": "changed", "msg1": "again"}
    assert get_json(kapi, "foos.v1.hello.zeng.dev", name)["spec"] == {"msg": "changed", "msg1": "again"}
    # a v1 apply that changes nothing leaves the object alone
    assert "unchanged" in kapi.kubectl("apply", "-f", "-", input=changed).stdout


def test_foo_v2_image_survives_reads_and_edits_in_v1(kapi: Any) -> None:
    name = unique("v2foo")
    manifest = (f"apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata:\n  name: {name}\n"
                "spec:\n  image: nginx:1.25\n  config:\n    msg: hi\n")
    kapi.kubectl("apply", "-f", "-", input=manifest)

    v1 = get_json(kapi, "foos.v1.hello.zeng.dev", name)
    assert v1["spec"] == {"msg": "hi"}
    assert json.loads(v1["metadata"]["annotations"][V2_FIELDS]) == {"image": "nginx:1.25"}

    # a merge patch through v1 changes the message; the image (kept in the annotation) survives
    kapi.kubectl("patch", "foos.v1.hello.zeng.dev", name, "--type", "merge", "-p", '{"spec":{"msg":"patched"}}')
    v2 = get_json(kapi, "foos.v2.hello.zeng.dev", name)
    assert v2["spec"] == {"image": "nginx:1.25", "config": {"msg": "patched"}}
    assert V2_FIELDS not in v2["metadata"].get("annotations", {})  # never stored: the hub has the field

    # read-modify-write in v1 (what `kubectl edit` does) keeps it too
    v1 = get_json(kapi, "foos.v1.hello.zeng.dev", name)
    v1["spec"]["msg1"] = "second"
    kapi.kubectl("replace", "-f", "-", input=json.dumps(v1))
    v2 = get_json(kapi, "foos.v2.hello.zeng.dev", name)
    assert v2["spec"] == {"image": "nginx:1.25", "config": {"msg": "patched", "msg1": "second"}}
    assert v2["metadata"]["generation"] == 3

    # and a v2 change of the image shows in v1's annotation
    kapi.kubectl("patch", "foos.v2.hello.zeng.dev", name, "--type", "merge", "-p", '{"spec":{"image":"nginx:1.27"}}')
    v1 = get_json(kapi, "foos.v1.hello.zeng.dev", name)
    assert json.loads(v1["metadata"]["annotations"][V2_FIELDS]) == {"image": "nginx:1.27"}


def test_foo_list_in_either_version(kapi: Any) -> None:
    a, b = unique("la"), unique("lb")
    kapi.kubectl("create", "-f", "-", input=(
        f"apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata: {{name: {a}}}\nspec: {{msg: from-v1}}\n---\n"
        f"apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {{name: {b}}}\nspec: {{image: busybox}}\n"))
    v1_items = {i["metadata"]["name"]: i for i in get_json(kapi, "foos.v1.hello.zeng.dev")["items"]}
    v2_items = {i["metadata"]["name"]: i for i in get_json(kapi, "foos.v2.hello.zeng.dev")["items"]}
    assert v1_items[a]["spec"] == {"msg": "from-v1"} and v2_items[a]["spec"] == {"config": {"msg": "from-v1"}}
    assert v2_items[b]["spec"] == {"image": "busybox"}
    assert json.loads(v1_items[b]["metadata"]["annotations"][V2_FIELDS]) == {"image": "busybox"}
    assert all(i["apiVersion"] == "hello.zeng.dev/v1" for i in v1_items.values())


# -- Foo: columns and explain --------------------------------------------------------------------------------------
@FILE_ONLY
def test_kubectl_get_foos_shows_v2_columns(kapi: Any) -> None:
    name = unique("cols")
    kapi.kubectl("create", "-f", "-", input=(
        f"apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {{name: {name}}}\n"
        "spec: {image: 'redis:7', config: {msg: greetings, msg1: second}}\n"))
    kapi.kubectl("patch", "foos.v2.hello.zeng.dev", name, "--subresource=status", "--type", "merge",
                 "-p", '{"status":{"phase":"Ready"}}')
    out = kapi.kubectl("get", "foos", name).stdout.splitlines()
    assert out[0].split() == ["NAME", "IMAGE", "MESSAGE", "PHASE", "AGE"]
    assert out[1].split()[:4] == [name, "redis:7", "greetings", "Ready"]
    wide = kapi.kubectl("get", "foos", name, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "IMAGE", "MESSAGE", "MESSAGE1", "PHASE", "AGE"]
    assert wide[1].split()[:5] == [name, "redis:7", "greetings", "second", "Ready"]
    # v1's own columns when asked for v1
    v1 = kapi.kubectl("get", "foos.v1.hello.zeng.dev", name).stdout.splitlines()
    assert v1[0].split() == ["NAME", "MESSAGE", "AGE"]
    # the short name and the category find it too
    assert name in kapi.kubectl("get", "fo").stdout
    assert f"foo.hello.zeng.dev/{name}" in kapi.kubectl("get", "all", "-o", "name").stdout


@FILE_ONLY
def test_kubectl_explain_uses_the_models(kapi: Any) -> None:
    config = kapi.kubectl("explain", "foos.spec.config").stdout
    assert "VERSION:    v2" in config
    assert "what the image says" in config
    assert "msg\t<string>" in config and "msg says hello" in config and "msg1 says hello again" in config
    image = kapi.kubectl("explain", "foos.spec.image").stdout
    assert "FIELD: image <string>" in image and "the container image that says hello" in image
    v1 = kapi.kubectl("explain", "foos.spec", "--api-version", "hello.zeng.dev/v1").stdout
    assert "VERSION:    v1" in v1 and "FooSpec holds the messages a Foo carries." in v1
    assert "image" not in v1
    top = kapi.kubectl("explain", "foos").stdout
    assert "Foo is a sample resource with an image and its messages." in top


@FILE_ONLY
def test_foo_validation_in_python_reaches_kubectl(kapi: Any) -> None:
    result = kapi.kubectl("create", "-f", "-", check=False, input=(
        "apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {name: badimage}\nspec: {image: 'has space'}\n"))
    assert result.returncode != 0
    assert ('The Foo "badimage" is invalid: spec.image: Invalid value: "has space": '
            "must be a non-empty image reference without spaces") in said(result)


# -- JenkinsServiceLimit -----------------------------------------------------------------------------------------
def jenkins(name: str, namespace: str) -> str:
    return (f"apiVersion: autobusi.group.cicd/v1alpha\nkind: JenkinsService\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {{instanceamount: 1}}\n")


@FILE_ONLY
def test_eleventh_jenkinsservice_is_forbidden(kapi: Any) -> None:
    kapi.kubectl("create", "namespace", "ci-a")
    kapi.kubectl("create", "namespace", "ci-b")
    ten = "---\n".join(jenkins(f"js-{i}", "ci-a" if i <= 5 else "ci-b") for i in range(1, 11))
    created = kapi.kubectl("create", "-f", "-", input=ten)
    assert created.stdout.count("created") == 10
    kapi.kubectl("create", "namespace", "ci-c")
    refused = kapi.kubectl("create", "-f", "-", input=jenkins("js-11", "ci-c"), check=False)
    assert refused.returncode != 0
    assert "Error from server (Forbidden)" in refused.stderr
    assert ('jenkinsservices.autobusi.group.cicd "js-11" is forbidden: JenkinsServiceLimit: at most 10 '
            "JenkinsService objects may exist in this server (10 exist)") in " ".join(refused.stderr.split())
    assert kapi.kubectl("get", "jenkinsservices", "-A", "-o", "name").stdout.count("jenkinsservice") == 10
    # deleting one makes room again
    kapi.kubectl("delete", "jenkinsservice", "js-1", "-n", "ci-a")
    kapi.kubectl("create", "-f", "-", input=jenkins("js-11", "ci-c"))
    # updates of existing ones are not creates
    kapi.kubectl("label", "jenkinsservice", "js-2", "-n", "ci-a", "team=x")


def test_without_jenkinsservicelimit_the_eleventh_is_allowed(kapi_factory: Callable[..., Any]) -> None:
    server = kapi_factory("--admission-plugins", "NamespaceLifecycle")
    eleven = "---\n".join(jenkins(f"js-{i}", "default") for i in range(1, 12))
    assert server.kubectl("create", "-f", "-", input=eleven).stdout.count("created") == 11
    assert server.kubectl("get", "jenkinsservices", "-o", "name").stdout.count("jenkinsservice") == 11
    # NamespaceLifecycle, which was named, still runs
    missing = server.kubectl("create", "-f", "-", input=jenkins("js-12", "nowhere"), check=False)
    assert missing.returncode != 0 and 'namespaces "nowhere" not found' in missing.stderr


# -- the pizza router ---------------------------------------------------------------------------------------------
@FILE_ONLY
def test_pizza_posted_to_the_router_is_listed_by_kubectl(kapi: Any) -> None:
    with kapi.client() as http:
        made = http.post("/wukong/pizzas/", json={"name": "margherita", "size": "large",
                                                   "toppings": ["basil", "mozzarella"]})
        assert made.status_code == 201, made.text
    listed = kapi.kubectl("get", "pizzas").stdout.splitlines()
    assert any(line.split()[0] == "margherita" for line in listed[1:])
    pizza = get_json(kapi, "pizza", "margherita")
    assert pizza["spec"] == {"size": "large", "toppings": [{"name": "basil"}, {"name": "mozzarella"}]}
    kapi.kubectl("delete", "pizza", "margherita")
    with kapi.client() as http:
        assert http.get("/wukong/pizzas/margherita").status_code == 404


# -- a plugin module given with --plugin ---------------------------------------------------------------------------
GIZMOS = '''
from pydantic import BaseModel, Field

from kapi.plugins import APIGroup, Column, FieldError, KubeObject, Plugin, Resource, Version


class GizmoSpec(BaseModel):
    """What a gizmo does."""

    size: int | None = Field(None, description="how big the gizmo is")
    color: str | None = Field(None, description="its colour")


class Gizmo(KubeObject):
    """Gizmo is an e2e test resource."""

    spec: GizmoSpec | None = None


def default(gizmo):
    if gizmo.spec is None:
        gizmo.spec = GizmoSpec()
    if gizmo.spec.color is None:
        gizmo.spec.color = "grey"


def validate(gizmo, old):
    if gizmo.spec is not None and gizmo.spec.size is not None and gizmo.spec.size < 0:
        return [FieldError("spec.size", "must not be negative", gizmo.spec.size)]
    return []


plugin = Plugin(groups=[APIGroup("e2e.example.com", [
    Resource(kind="Gizmo", plural="gizmos", short_names=("gz",), default=default, validate=validate,
             versions=[Version("v1", Gizmo, storage=True, columns=[
                 Column("Size", ".spec.size", type="integer"), Column("Color", ".spec.color")])]),
])])
'''


def test_plugin_module_from_a_directory_serves_its_group(kapi_factory: Callable[..., Any], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"e2e_gizmos_{uuid.uuid4().hex[:6]}"
    plugins = tmp_path / "plugin-src"
    plugins.mkdir()
    (plugins / f"{module}.py").write_text(textwrap.dedent(GIZMOS))
    # KapiProcess.extra_env reaches only kubectl, and kapi_factory starts the server at once: the server
    # process inherits this environment instead.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")])))
    server = kapi_factory("--plugin", module, "--no-examples")

    resources = server.kubectl("api-resources", "--api-group", "e2e.example.com").stdout.splitlines()
    assert resources[1].split() == ["gizmos", "gz", "e2e.example.com/v1", "true", "Gizmo"]
    server.kubectl("create", "-f", "-", input=(
        "apiVersion: e2e.example.com/v1\nkind: Gizmo\nmetadata: {name: g1}\nspec: {size: 3}\n"))
    gizmo = get_json(server, "gizmo", "g1")
    assert gizmo["spec"] == {"size": 3, "color": "grey"}  # defaulted in Python
    table = server.kubectl("get", "gz").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "COLOR", "AGE"]
    assert table[1].split()[:3] == ["g1", "3", "grey"]
    bad = server.kubectl("create", "-f", "-", check=False, input=(
        "apiVersion: e2e.example.com/v1\nkind: Gizmo\nmetadata: {name: g2}\nspec: {size: -1}\n"))
    assert bad.returncode != 0
    assert 'The Gizmo "g2" is invalid: spec.size: Invalid value: -1: must not be negative' in said(bad)
    explained = server.kubectl("explain", "gizmos.spec.size").stdout
    assert "how big the gizmo is" in explained
    server.kubectl("delete", "gizmo", "g1")
    assert "No resources found" in said(server.kubectl("get", "gizmos"))


# -- starts that fail because of a plugin ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_foreground(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`kapi start` in the foreground; these are expected to exit by themselves."""
    cmd = [sys.executable, "-m", "kapi_cli.main", "start", "--name", unique("bad"), "--secure-port", "0",
           "--insecure-port", str(free_port()), "--file-rootpath", str(tmp_path / "root"),
           "--authn-allow-localhost=true", *args]
    environment = {**os.environ, "KAPI_HOME": str(tmp_path / "kapi-home"), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=environment, cwd=REPO)


def test_start_with_a_missing_plugin_module_exits_1(tmp_path: Path) -> None:
    result = start_foreground(tmp_path, "--plugin", "nosuch.module")
    assert result.returncode == 1, said(result)
    message = " ".join(result.stderr.split())
    assert "error: plugin nosuch.module: cannot import: ModuleNotFoundError: No module named 'nosuch'" in message
    assert "Traceback" not in result.stderr + result.stdout
    assert not list((tmp_path / "kapi-home" / "instances").glob("*.json"))  # no state left behind


def test_start_with_an_unknown_admission_plugin_exits_1(tmp_path: Path) -> None:
    result = start_foreground(tmp_path, "--admission-plugins", "NamespaceLifecycle,NoSuchPlugin")
    assert result.returncode == 1, said(result)
    message = " ".join(result.stderr.split())
    assert "error: unknown admission plugin(s) NoSuchPlugin; known: NamespaceLifecycle" in message
    assert "Traceback" not in result.stderr


def test_start_with_a_malformed_plugin_name_is_a_usage_error(tmp_path: Path) -> None:
    result = start_foreground(tmp_path, "--plugin", "not-a/module")
    assert result.returncode == 2, said(result)
    assert "is not a Python module name" in " ".join(result.stderr.split())


@pytest.mark.parametrize(("source", "expected"), [
    ("raise RuntimeError('broken plugin')\n", "cannot import: RuntimeError: broken plugin"),
    ("plugin = 42\n", "the module has no `plugin = Plugin(...)`"),
    ("from kapi.plugins import APIGroup, Plugin, Resource, Version\n"
     "plugin = Plugin(groups=[APIGroup('x.example.com', [Resource('Thing', 'things', "
     "[Version('v1', dict, storage=True)])])])\n", "things.x.example.com"),
], ids=["fails-on-import", "plugin-not-a-Plugin", "version-model-not-pydantic"])
def test_start_with_a_broken_plugin_module_exits_1_naming_it(tmp_path: Path, source: str, expected: str) -> None:
    module = f"e2e_broken_{uuid.uuid4().hex[:6]}"
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{module}.py").write_text(source)
    result = start_foreground(tmp_path, "--plugin", module, env={"PYTHONPATH": str(src)})
    assert result.returncode == 1, said(result)
    message = " ".join(result.stderr.split())
    assert f"error: plugin {module}" in message and expected in message
    assert "Traceback" not in result.stderr + result.stdout


# -- connect subresources: admission CONNECT, then the plugin answers ----------------------------------------------
def test_foo_greeting_is_a_connect_subresource_webhooks_can_refuse(kapi_factory: Callable[..., Any],
                                                                   https_json_server: Callable[..., Any]) -> None:
    kapi = kapi_factory()
    kapi.kubectl("apply", "-f", "-", input="apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata:\n  name: f1\n"
                                           "spec:\n  config:\n    msg: Hi\n")
    base = "/apis/hello.zeng.dev/v2/namespaces/default/foos"
    assert kapi.kubectl("get", "--raw", f"{base}/f1/greeting?to=Ann").stdout == "Hi, Ann!\n"
    assert kapi.kubectl("get", "--raw", "/apis/hello.zeng.dev/v1/namespaces/default/foos/f1/greeting").stdout \
        == "Hi, world!\n"
    posted = kapi.kubectl("create", "--raw", f"{base}/f1/greeting?to=Bob", "-f", "-", input="{}")
    assert posted.stdout == "Hi, Bob!\n"
    discovery = json.loads(kapi.kubectl("get", "--raw", "/apis/hello.zeng.dev/v2").stdout)
    assert {"name": "foos/greeting", "singularName": "", "namespaced": True, "kind": "FooGreetingOptions",
            "verbs": ["create", "get"]} in discovery["resources"]
    missing = kapi.kubectl("get", "--raw", f"{base}/nobody/greeting", check=False)
    assert missing.returncode != 0 and 'foos.hello.zeng.dev "nobody" not found' in missing.stderr

    hooks = https_json_server()

    def judge(review: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = review["request"]
        allowed = request["object"].get("to") != "mallory"
        return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
            "uid": request["uid"], "allowed": allowed, "status": {"code": 403, "message": "not to mallory"}}}

    hooks.routes["/connect"] = judge
    config = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
              "metadata": {"name": "greetings"}, "webhooks": [{
                  "name": "greetings.kapi.test", "clientConfig": hooks.client_config("/connect"),
                  "sideEffects": "None", "admissionReviewVersions": ["v1"],
                  "rules": [{"operations": ["CONNECT"], "apiGroups": ["hello.zeng.dev"], "apiVersions": ["*"],
                             "resources": ["foos/greeting"]}]}]}
    kapi.kubectl("apply", "-f", "-", input=json.dumps(config))
    refused = kapi.kubectl("get", "--raw", f"{base}/f1/greeting?to=mallory", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "greetings.kapi.test" denied the request: not to mallory' in refused.stderr
    assert kapi.kubectl("get", "--raw", f"{base}/f1/greeting?to=Eve").stdout == "Hi, Eve!\n"
    request = hooks.requests[-1].body["request"]
    assert (request["operation"], request["subResource"], request["name"], request["namespace"]) == \
        ("CONNECT", "greeting", "f1", "default")
    assert request["kind"] == {"group": "hello.zeng.dev", "version": "v2", "kind": "FooGreetingOptions"}
    assert request["object"] == {"kind": "FooGreetingOptions", "apiVersion": "hello.zeng.dev/v2", "to": "Eve"}
    assert request["oldObject"] is None
    assert kapi.kubectl("apply", "-f", "-", input="apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata:\n"
                                                   "  name: f2\n").returncode == 0  # CREATE is not its rule
    assert len(hooks.requests) == 2
