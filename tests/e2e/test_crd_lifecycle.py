"""CustomResourceDefinitions as a live API, driven by the real kubectl (issue 5); each test owns its CRD group."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
S, I, A, O = ({"type": t} for t in ("string", "integer", "array", "object"))
SCHEMA = {**O, "properties": {"apiVersion": S, "kind": S, "metadata": O, "status": {**O, "properties": {"replicas": I}},
                              "spec": {**O, "required": ["color"], "properties": {
                                  "color": {**S, "enum": ["red", "green", "blue"]}, "size": {**S, "maxLength": 5},
                                  "replicas": {**I, "minimum": 0, "maximum": 10}}}}}
COLUMNS = [{"name": "Color", "type": "string", "jsonPath": ".spec.color"},
           {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}]
WIDER = [*COLUMNS, {"name": "Size", "type": "string", "jsonPath": ".spec.size"}]
SUBRESOURCES = {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}


def version(name: str, storage: bool = True, columns: list[dict[str, Any]] = COLUMNS, **extra: Any) -> dict[str, Any]:
    return {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": SCHEMA},
            "additionalPrinterColumns": columns, "subresources": SUBRESOURCES, **extra}


def widget_crd(group: str, short: str, plural: str = "widgets", kind: str = "Widget",
               versions: list[dict[str, Any]] | None = None, **names: Any) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "versions": versions or [version("v1")],
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": [short],
                               "categories": ["all"], **names}}}


def widget(group: str, name: str, version_: str = "v1", ns: str = "default", **spec: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": ns}
    return {"apiVersion": f"{group}/{version_}", "kind": "Widget", "metadata": meta, "spec": {"color": "red", **spec}}


def apply(kapi, *objs: dict[str, Any], check: bool = True):
    return kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs), check=check)


def install(kapi, crd: dict[str, Any]) -> None:
    apply(kapi, crd)
    out = kapi.kubectl("wait", "--for", "condition=established", f"crd/{crd['metadata']['name']}", "--timeout=10s")
    assert "condition met" in out.stdout


def get_json(kapi, *args: str) -> dict[str, Any]:
    return json.loads(kapi.kubectl("get", *args, "-o", "json").stdout)


def table(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    return lines[0].split(), [line.split() for line in lines[1:]]


def eventually(probe: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return result


def conditions(client, name: str) -> dict[str, dict[str, str]]:
    status = client.get(f"{CRDS}/{name}").json().get("status") or {}
    return {c["type"]: {k: c[k] for k in ("status", "reason", "message")} for c in status.get("conditions") or []}


ESTABLISHED = {"NamesAccepted": {"status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
               "Established": {"status": "True", "reason": "InitialNamesAccepted",
                               "message": "the initial names have been accepted"}}


# -- create, wait, use --------------------------------------------------------------------------------------
def test_apply_wait_then_create_get_patch_delete(kapi) -> None:
    g = "life.e2e.kapi.dev"
    crd = widget_crd(g, "lfw")
    assert apply(kapi, crd).stdout.strip() == f"customresourcedefinition.apiextensions.k8s.io/widgets.{g} created"
    install(kapi, crd)
    with kapi.client() as client:
        assert conditions(client, f"widgets.{g}") == ESTABLISHED
        status = client.get(f"{CRDS}/widgets.{g}").json()["status"]
    assert status["acceptedNames"] == {"plural": "widgets", "singular": "widget", "kind": "Widget",
                                       "listKind": "WidgetList", "shortNames": ["lfw"], "categories": ["all"]}
    assert status["storedVersions"] == ["v1"]
    _, rows = table(kapi.kubectl("api-resources", "--api-group", g).stdout)
    assert rows == [["widgets", "lfw", f"{g}/v1", "true", "Widget"]]
    assert apply(kapi, widget(g, "w1", replicas=2)).stdout.strip() == f"widget.{g}/w1 created"
    header, rows = table(kapi.kubectl("get", f"widgets.{g}").stdout)
    assert header == ["NAME", "COLOR", "REPLICAS", "AGE"] and rows[0][:3] == ["w1", "red", "2"]
    assert kapi.kubectl("get", "lfw", "w1", "-o", "name").stdout.strip() == f"widget.{g}/w1"
    first = get_json(kapi, f"widget.{g}", "w1")
    assert (first["apiVersion"], first["kind"], first["metadata"]["generation"]) == (f"{g}/v1", "Widget", 1)
    out = kapi.kubectl("patch", "lfw", "w1", "--type", "merge", "-p", '{"spec":{"color":"blue"}}').stdout
    assert out.strip() == f"widget.{g}/w1 patched"
    kapi.kubectl("patch", "lfw", "w1", "--type", "json", "-p", '[{"op":"replace","path":"/spec/replicas","value":4}]')
    patched = get_json(kapi, "lfw", "w1")
    assert patched["spec"] == {"color": "blue", "replicas": 4} and patched["metadata"]["generation"] == 3
    assert "configured" in apply(kapi, widget(g, "w1", replicas=5, size="s")).stdout
    assert get_json(kapi, "lfw", "w1")["spec"] == {"color": "red", "replicas": 5, "size": "s"}
    assert kapi.kubectl("delete", "lfw", "w1").stdout.strip() == f'widget.{g} "w1" deleted'
    gone = kapi.kubectl("get", "lfw", "w1", check=False)
    assert gone.returncode == 1 and f'widgets.{g} "w1" not found' in gone.stderr


def test_invalid_objects_are_rejected_with_exact_field_paths(kapi) -> None:
    g = "bad.e2e.kapi.dev"
    install(kapi, widget_crd(g, "bdw"))
    created = kapi.kubectl("create", "-f", "-", input=yaml.safe_dump(widget(g, "w-bad", color="purple", replicas=20,
                                                                          size="toolong")), check=False)
    lines = created.stderr.strip().splitlines()
    assert lines[0].strip() == 'The Widget "w-bad" is invalid:'
    assert sorted(lines[1:]) == [
        '* spec.color: Unsupported value: "purple": supported values: "red", "green", "blue"',
        "* spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
        "* spec.size: Too long: may not be more than 5 bytes"]
    missing = apply(kapi, {**widget(g, "w-req"), "spec": {"replicas": 1}}, check=False)
    assert missing.stderr.strip() == 'The Widget "w-req" is invalid: spec.color: Required value'
    apply(kapi, widget(g, "w1", replicas=1))
    wrong = kapi.kubectl("patch", "bdw", "w1", "--type", "json", "-p",
                         '[{"op":"replace","path":"/spec/replicas","value":"x"}]', check=False)
    assert wrong.stderr.strip() == ('The Widget "w1" is invalid: spec.replicas: Invalid value: "string": '
                                    'spec.replicas in body must be of type integer: "string"')
    assert get_json(kapi, "bdw", "w1")["spec"] == {"color": "red", "replicas": 1}
    assert kapi.kubectl("get", "bdw", "-o", "name").stdout.split() == [f"widget.{g}/w1"]


def test_strategic_merge_patch_works_for_custom_resources(kapi) -> None:
    # kube-apiserver answers 415 here; kapi's issue 2 deliberately serves strategic merge patch for
    # custom resources too, driven by the schema's list-type/map-keys (kubectl patch's default type).
    g = "smp.e2e.kapi.dev"
    install(kapi, widget_crd(g, "smw"))
    apply(kapi, widget(g, "w1"))
    kapi.kubectl("patch", "smw", "w1", "-p", '{"spec":{"color":"blue"}}')
    assert get_json(kapi, "smw", "w1")["spec"]["color"] == "blue"


def test_get_all_shows_a_crd_that_declares_category_all(kapi) -> None:
    g = "cat.e2e.kapi.dev"
    install(kapi, widget_crd(g, "ctw"))
    install(kapi, widget_crd(g, "cth", plural="hiddens", kind="Hidden", categories=["other"]))
    kapi.kubectl("create", "namespace", "cat-ns")
    apply(kapi, widget(g, "shown", ns="cat-ns"), {**widget(g, "kept-out", ns="cat-ns"), "kind": "Hidden"})
    out = kapi.kubectl("get", "all", "-n", "cat-ns").stdout
    assert f"widget.{g}/shown" in out and "kept-out" not in out
    assert kapi.kubectl("get", "other", "-n", "cat-ns", "-o", "name").stdout.split() == [f"hidden.{g}/kept-out"]


# -- change it live -------------------------------------------------------------------------------------------
def test_updating_the_crd_adds_a_version_and_a_column_live(kapi) -> None:
    g = "upd.e2e.kapi.dev"
    install(kapi, widget_crd(g, "udw"))
    apply(kapi, widget(g, "w1", replicas=2, size="s"))
    out = apply(kapi, widget_crd(g, "udw", versions=[version("v1", columns=WIDER), version("v2", False, WIDER)]))
    assert out.stdout.strip() == f"customresourcedefinition.apiextensions.k8s.io/widgets.{g} configured"
    v2 = eventually(lambda: (r := kapi.kubectl("get", f"widgets.v2.{g}", check=False)).returncode == 0 and r,
                    "version v2 is not served after the CRD update")
    header, rows = table(v2.stdout)
    assert header == ["NAME", "COLOR", "REPLICAS", "SIZE", "AGE"] and rows[0][:4] == ["w1", "red", "2", "s"]
    header, _ = table(kapi.kubectl("get", f"widgets.v1.{g}").stdout)
    assert header == ["NAME", "COLOR", "REPLICAS", "SIZE", "AGE"]
    through_v1, through_v2 = get_json(kapi, f"widgets.v1.{g}", "w1"), get_json(kapi, f"widgets.v2.{g}", "w1")
    assert (through_v1["apiVersion"], through_v2["apiVersion"]) == (f"{g}/v1", f"{g}/v2")
    assert through_v1["metadata"]["uid"] == through_v2["metadata"]["uid"] and through_v1["spec"] == through_v2["spec"]
    assert apply(kapi, widget(g, "w2", "v2", color="green")).stdout.strip() == f"widget.{g}/w2 created"
    assert get_json(kapi, f"widgets.v1.{g}", "w2")["apiVersion"] == f"{g}/v1"
    with kapi.client() as client:
        group = client.get(f"/apis/{g}").json()
        assert [v["version"] for v in [*group["versions"], group["preferredVersion"]]] == ["v2", "v1", "v2"]
        assert client.get(f"{CRDS}/widgets.{g}").json()["status"]["storedVersions"] == ["v1"]


def test_reapplying_a_changed_crd_prints_no_client_warning(kapi) -> None:
    """kubectl computes the CRD's patch from the server's OpenAPI: it needs the full CRD schema there."""
    g = "warn.e2e.kapi.dev"
    install(kapi, widget_crd(g, "wnw"))
    out = apply(kapi, widget_crd(g, "wnw", versions=[version("v1", columns=WIDER)]))
    assert "configured" in out.stdout and out.stderr == ""


def test_scale_subresource(kapi) -> None:
    g = "scale.e2e.kapi.dev"
    install(kapi, widget_crd(g, "scw"))
    apply(kapi, widget(g, "w1", replicas=2))
    with kapi.client() as client:
        base = f"/apis/{g}/v1/namespaces/default/widgets/w1"
        assert client.patch(f"{base}/status", json={"status": {"replicas": 1}},
                            headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
        assert kapi.kubectl("scale", "scw", "w1", "--replicas=3").stdout.strip() == f"widget.{g}/w1 scaled"
        assert client.get(base).json()["spec"]["replicas"] == 3
        scale = client.get(f"{base}/scale").json()
        assert (scale["apiVersion"], scale["kind"], scale["metadata"]["name"], scale["metadata"]["namespace"],
                scale["spec"], scale["status"]["replicas"]) == ("autoscaling/v1", "Scale", "w1", "default",
                                                                {"replicas": 3}, 1)
        listed = {r["name"]: r for r in client.get(f"/apis/{g}/v1").json()["resources"]}
        assert {k: listed["widgets/scale"][k] for k in ("group", "version", "kind")} == {
            "group": "autoscaling", "version": "v1", "kind": "Scale"}


def test_deprecated_versions_send_a_warning(kapi) -> None:
    """kube's `defaultDeprecationWarning` names the newest served, non-deprecated version to use instead."""
    g = "dep.e2e.kapi.dev"
    install(kapi, widget_crd(g, "dpw", versions=[version("v1"), version("v1beta1", False, deprecated=True),
                                                 version("v1alpha1", False, deprecated=True,
                                                         deprecationWarning="v1alpha1 goes away in 2030")]))
    apply(kapi, widget(g, "w1"))
    out = kapi.kubectl("get", f"widgets.v1beta1.{g}", "w1")
    assert f"Warning: {g}/v1beta1 Widget is deprecated; use {g}/v1 Widget" in out.stderr
    with kapi.client() as client:
        resp = client.get(f"/apis/{g}/v1alpha1/namespaces/default/widgets")
        assert resp.headers.get("warning") == '299 - "v1alpha1 goes away in 2030"'
        assert "warning" not in client.get(f"/apis/{g}/v1/namespaces/default/widgets").headers


# -- delete it --------------------------------------------------------------------------------------------------
def test_deleting_the_crd_removes_its_api_and_objects(kapi, tmp_path: Path) -> None:
    g = "gone.e2e.kapi.dev"
    crd = widget_crd(g, "gnw")
    install(kapi, crd)
    apply(kapi, widget(g, "w1"), widget(g, "w2", ns="kube-public"))
    out = kapi.kubectl("delete", "crd", f"widgets.{g}").stdout
    assert out.strip() == f'customresourcedefinition.apiextensions.k8s.io "widgets.{g}" deleted'
    with kapi.client() as client:
        for path in (f"/apis/{g}/v1/namespaces/default/widgets", f"/apis/{g}/v1/widgets", f"/apis/{g}/v1",
                     f"/apis/{g}", f"{CRDS}/widgets.{g}"):
            assert client.get(path).status_code == 404, path
        assert g not in {grp["name"] for grp in client.get("/apis").json()["groups"]}
    for name in (f"widgets.{g}", "gnw"):  # a new discovery cache (the last --cache-dir wins): what a new user sees
        missing = kapi.kubectl("--cache-dir", str(tmp_path / name), "get", name, check=False)
        assert missing.returncode == 1 and "the server doesn't have a resource type" in missing.stderr
    install(kapi, crd)
    assert kapi.kubectl("get", f"widgets.{g}", "-A", "-o", "name").stdout.strip() == ""


# -- names that clash -------------------------------------------------------------------------------------------
def clash(kapi, client, g: str) -> None:
    """`widgets` holds kind Widget and short name `<g's first label>w`; two CRDs then want one of them each."""
    short = g.split(".")[0] + "w"
    install(kapi, widget_crd(g, short))
    for crd in (widget_crd(g, "gdg", plural="gadgets", kind="Widget", singular="gadget", listKind="GadgetList"),
                widget_crd(g, short, plural="gizmos", kind="Gizmo")):
        assert client.post(CRDS, json=crd).status_code == 201
        name = crd["metadata"]["name"]
        eventually(lambda: conditions(client, name).get("NamesAccepted", {}).get("status") == "False",
                   f"{name} never reported its name conflict")


def test_name_conflicts_are_reported_and_not_served(kapi) -> None:
    g = "clash.e2e.kapi.dev"
    with kapi.client() as client:
        clash(kapi, client, g)
        for plural in ("gadgets", "gizmos"):
            accepted, established = (conditions(client, f"{plural}.{g}")[c] for c in ("NamesAccepted", "Established"))
            assert accepted["status"] == "False" and accepted["message"].endswith(" is already in use")
            assert established == {"status": "False", "reason": "NotAccepted", "message": "not all names are accepted"}
            assert client.get(f"/apis/{g}/v1/namespaces/default/{plural}").status_code == 404
        names = {r["name"] for r in client.get(f"/apis/{g}/v1").json()["resources"]}
        assert "widgets" in names and not names & {"gadgets", "gizmos"}
        assert client.post(f"/apis/{g}/v1/namespaces/default/widgets", json=widget(g, "ok")).status_code == 201
        assert client.get("/readyz").status_code == 200
    assert kapi.kubectl("get", "clashw", "ok", "-o", "name").stdout.strip() == f"widget.{g}/ok"


def test_name_conflict_reasons_are_kubes(kapi) -> None:
    """apiextensions-apiserver's naming controller: one reason per kind of clash."""
    g = "reason.e2e.kapi.dev"
    with kapi.client() as client:
        clash(kapi, client, g)
        assert conditions(client, f"gadgets.{g}")["NamesAccepted"] == {
            "status": "False", "reason": "KindConflict", "message": '"Widget" is already in use'}
        assert conditions(client, f"gizmos.{g}")["NamesAccepted"] == {
            "status": "False", "reason": "ShortNamesConflict", "message": '"reasonw" is already in use'}


def test_a_name_conflict_clears_when_the_holder_goes(kapi) -> None:
    """kube's naming controller re-checks every CRD of the group when one changes."""
    g = "heal.e2e.kapi.dev"
    with kapi.client() as client:
        clash(kapi, client, g)
        assert client.delete(f"{CRDS}/widgets.{g}").status_code == 200
        eventually(lambda: conditions(client, f"gizmos.{g}") == ESTABLISHED,
                   "gizmos stays NamesAccepted=False after widgets, which held its short name, was deleted")
        assert client.get(f"/apis/{g}/v1/namespaces/default/gizmos").status_code == 200


# -- invalid CRDs -------------------------------------------------------------------------------------------------
# kube validates the internal CRD: a schema every version shares is hoisted to spec.validation (v1 conversion.go)
ROOT = "spec.validation.openAPIV3Schema"
P = f"{ROOT}.properties[spec].properties"


def schema_crd(plural: str, spec: dict[str, Any] | None, root: dict[str, Any] | None = None, name: str = "",
               group: str = "invalid.e2e.kapi.dev", v2: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CRD `<plural>.<group>` (or `name`) whose v1 has `spec` (or `root`) as its schema, and v2 `v2` if given."""
    crd = widget_crd(group, plural[:3], plural=plural, kind=plural.capitalize().removesuffix("s"))
    crd["metadata"]["name"] = name or crd["metadata"]["name"]
    schemas = [("v1", root or props(spec=spec))] + ([("v2", props(spec=v2))] if v2 else [])
    crd["spec"]["versions"] = [{"name": v, "served": True, "storage": v == "v1", "schema": {"openAPIV3Schema": schema}}
                               for v, schema in schemas]
    return crd


def props(**fields: Any) -> dict[str, Any]:
    return {**O, "properties": fields}


G = "invalid.e2e.kapi.dev"
MISNAMED = ("metadata.name", "FieldValueInvalid", f'Invalid value: "wrong.{G}": must be spec.names.plural+"."+'
                                                 'spec.group')
UNTYPED = (f"{P}[a].type", "FieldValueRequired", "Required value: must not be empty for specified object fields")
REFUSED: list[tuple[str, dict[str, Any], list[tuple[str, str, str]]]] = [
    ("property-without-type", schema_crd("untypeds", props(a={}, b=S)), [UNTYPED]),
    ("root-without-type", schema_crd("rootlesses", None, {"properties": {"spec": props(a=S)}}),
     [(f"{ROOT}.type", "FieldValueRequired", "Required value: must not be empty at the root")]),
    ("name-not-plural-dot-group", schema_crd("misnameds", props(a=S), name=f"wrong.{G}"), [MISNAMED]),
    ("group-without-a-dot", schema_crd("dotlesses", props(a=S), group="nodot"),
     [("spec.group", "FieldValueInvalid", 'Invalid value: "nodot": should be a domain with at least one dot')]),
    ("every-reason-listed", schema_crd("severals", props(a={}), name=f"wrong.{G}"), [MISNAMED, UNTYPED]),
    ("schemas-that-differ-stay-per-version", schema_crd("twos", props(a=S), v2=props(a={})), [(
        "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[a].type", *UNTYPED[1:])]),
]
# (id, spec.x's schema, what kube names under spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[x])
for case, x, where, reason, message in [
    ("unique-items", {**A, "items": S, "uniqueItems": True}, "uniqueItems", "FieldValueForbidden",
     "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"),
    ("properties-and-additional-properties", {**props(a=S), "additionalProperties": False}, "additionalProperties",
     "FieldValueForbidden", "Forbidden: additionalProperties and properties are mutual exclusive"),
    ("list-map-without-keys", {**A, "x-kubernetes-list-type": "map", "items": props(n=S)}, "x-kubernetes-list-map-keys",
     "FieldValueRequired", "Required value: must not be empty if x-kubernetes-list-type is map"),
    ("unknown-list-type", {**A, "items": S, "x-kubernetes-list-type": "bag"}, "x-kubernetes-list-type",
     "FieldValueNotSupported", 'Unsupported value: "bag": supported values: "atomic", "set", "map"'),
    ("array-without-items", A, "items", "FieldValueRequired", "Required value: must be specified"),
    ("preserve-unknown-fields-false", {**O, "x-kubernetes-preserve-unknown-fields": False},
     "x-kubernetes-preserve-unknown-fields", "FieldValueInvalid", "Invalid value: false: must be true or undefined"),
]:
    REFUSED.append((case, schema_crd(case.replace("-", "") + "s", props(x=x)), [(f"{P}[x].{where}", reason, message)]))
RULE = f"{P}[l].x-kubernetes-validations[0].rule"
# kube also refuses rules whose *estimated* cost exceeds the budget; cel-expr-python exposes no cost
# estimate, so kapi bounds cost when rules run instead (tests/unit/scheme/test_cel_rules.py).
BAD_RULES = [("cel-does-not-compile", "self.nope(", "FieldValueInvalid", "compilation failed")]


@pytest.mark.parametrize(("crd", "expected"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_invalid_crd_is_refused(kapi, crd: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    with kapi.client() as client:
        resp = client.post(CRDS, json=crd)
        assert (resp.status_code, resp.json().get("reason")) == (422, "Invalid"), resp.text
        details = resp.json()["details"]
        assert (details["kind"], details["name"]) == ("CustomResourceDefinition", crd["metadata"]["name"])
        assert sorted((c.get("field", ""), c["reason"], c["message"]) for c in details["causes"]) == expected
        assert client.get(f"{CRDS}/{crd['metadata']['name']}").status_code == 404


@pytest.mark.parametrize(("rule", "reason", "text"), [r[1:] for r in BAD_RULES], ids=[r[0] for r in BAD_RULES])
def test_invalid_crd_is_refused_for_its_rules(kapi, rule: str, reason: str, text: str) -> None:
    """kube compiles each rule and bounds its estimated cost when the CRD is written."""
    crd = schema_crd(f"rule{len(rule)}s", props(l={**A, "items": S, "x-kubernetes-validations": [{"rule": rule}]}))
    with kapi.client() as client:
        resp = client.post(CRDS, json=crd)
    assert resp.status_code == 422, resp.text
    found = [(c.get("field"), c["reason"], c["message"]) for c in resp.json()["details"]["causes"]]
    assert any(f == RULE and r == reason and text in m for f, r, m in found), found


def test_kubectl_shows_why_a_crd_is_invalid(kapi) -> None:
    out = apply(kapi, schema_crd("things", props(a=S), name=f"wrong.{G}"), check=False)
    assert out.returncode == 1 and out.stderr.strip() == (f'The CustomResourceDefinition "wrong.{G}" is invalid: '
                                                          + ": ".join(MISNAMED[::2]))


# -- restart -------------------------------------------------------------------------------------------------------
def test_a_crd_created_through_the_api_survives_a_restart(kapi_factory) -> None:
    g = "durable.e2e.kapi.dev"
    server = kapi_factory(name="crd-restart")
    path = f"/apis/{g}/v1/namespaces/default/widgets"
    with server.client() as client:
        assert client.post(CRDS, json=widget_crd(g, "drw")).status_code == 201
        eventually(lambda: conditions(client, f"widgets.{g}") == ESTABLISHED, "the CRD never became Established")
        created = client.post(path, json=widget(g, "kept", replicas=3))
        assert created.status_code == 201, created.text
        crd_before = client.get(f"{CRDS}/widgets.{g}").json()
    server.restart()
    with server.client() as client:
        assert client.get(f"{CRDS}/widgets.{g}").json() == crd_before
        assert client.get(f"{path}/kept").json() == created.json()
        assert client.post(path, json=widget(g, "after")).status_code == 201
    _, rows = table(server.kubectl("get", f"widgets.{g}").stdout)
    assert [row[:2] for row in rows] == [["after", "red"], ["kept", "red"]] and rows[1][2] == "3"
