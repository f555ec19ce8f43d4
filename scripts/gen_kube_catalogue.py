"""Regenerate kapi's built-in API catalogue from Kubernetes' published OpenAPI v3 documents.

    python scripts/gen_kube_catalogue.py [--release v1.32.0] [--spec-dir DIR]

Without `--spec-dir` the documents are read from the `k8s.io/kubernetes` module zip on the
Go module proxy (`api/openapi-spec/v3/*.json`, public facts about the API). The output,
`server/scheme/data/kube-<release>.json.gz`, holds for every served group-version the
resources found in the documents' paths (plural, kind, scope, verbs, subresources with
their kinds) plus the facts discovery adds (short names, categories), and every schema
those kinds reach, deduplicated by name, with `$ref`s shortened to the component name.
Nothing of Kubernetes' code is involved; only the documents' data.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent.parent / "server" / "scheme" / "data"
PROXY = "https://proxy.golang.org/k8s.io/kubernetes/@v/{release}.zip"

# The stable catalogue kapi serves (apiextensions and admissionregistration are served by
# their own modules; the authentication/authorization reviews are answered by code).
GROUP_VERSIONS = (
    ("", "v1"), ("apps", "v1"), ("batch", "v1"), ("autoscaling", "v1"), ("autoscaling", "v2"),
    ("networking.k8s.io", "v1"), ("policy", "v1"), ("rbac.authorization.k8s.io", "v1"),
    ("storage.k8s.io", "v1"), ("discovery.k8s.io", "v1"), ("scheduling.k8s.io", "v1"),
    ("node.k8s.io", "v1"), ("certificates.k8s.io", "v1"), ("coordination.k8s.io", "v1"),
    ("flowcontrol.apiserver.k8s.io", "v1"), ("events.k8s.io", "v1"),
    ("authentication.k8s.io", "v1"), ("authorization.k8s.io", "v1"),
)
# Left out on purpose: componentstatuses (kapi has no components to report) and the legacy
# `bindings` collection (pods/binding, which schedulers use, does the same).
SKIPPED = {("", "componentstatuses"), ("", "bindings")}

# What discovery says that the OpenAPI documents do not: kube-apiserver 1.32's short names and categories.
SHORT_NAMES = {
    ("", "pods"): ["po"], ("", "services"): ["svc"], ("", "endpoints"): ["ep"], ("", "nodes"): ["no"],
    ("", "persistentvolumes"): ["pv"], ("", "persistentvolumeclaims"): ["pvc"],
    ("", "replicationcontrollers"): ["rc"], ("", "resourcequotas"): ["quota"], ("", "limitranges"): ["limits"],
    ("", "serviceaccounts"): ["sa"], ("", "configmaps"): ["cm"], ("", "events"): ["ev"], ("", "namespaces"): ["ns"],
    ("apps", "deployments"): ["deploy"], ("apps", "replicasets"): ["rs"], ("apps", "statefulsets"): ["sts"],
    ("apps", "daemonsets"): ["ds"], ("batch", "cronjobs"): ["cj"], ("autoscaling", "horizontalpodautoscalers"): ["hpa"],
    ("networking.k8s.io", "ingresses"): ["ing"], ("networking.k8s.io", "networkpolicies"): ["netpol"],
    ("policy", "poddisruptionbudgets"): ["pdb"], ("scheduling.k8s.io", "priorityclasses"): ["pc"],
    ("storage.k8s.io", "storageclasses"): ["sc"], ("certificates.k8s.io", "certificatesigningrequests"): ["csr"],
    ("events.k8s.io", "events"): ["ev"],
}
ALL = ["all"]
CATEGORIES = {
    ("", "pods"): ALL, ("", "services"): ALL, ("", "replicationcontrollers"): ALL,
    ("apps", "deployments"): ALL, ("apps", "replicasets"): ALL, ("apps", "statefulsets"): ALL,
    ("apps", "daemonsets"): ALL, ("batch", "jobs"): ALL, ("batch", "cronjobs"): ALL,
    ("autoscaling", "horizontalpodautoscalers"): ALL,
}
_ACTION_VERBS = {"list": "list", "post": "create", "deletecollection": "deletecollection", "get": "get",
                 "put": "update", "patch": "patch", "delete": "delete", "watch": "watch", "watchlist": "watch"}
_SUB_VERBS = {"get": "get", "put": "update", "patch": "patch", "post": "create", "delete": "delete"}


def doc_name(group: str, version: str) -> str:
    return f"api__{version}_openapi.json" if not group else f"apis__{group}__{version}_openapi.json"


def read_documents(release: str, spec_dir: Path | None) -> dict[str, dict[str, Any]]:
    names = {doc_name(g, v) for g, v in GROUP_VERSIONS}
    if spec_dir is not None:
        return {n: json.loads((spec_dir / n).read_text()) for n in names}
    with urllib.request.urlopen(PROXY.format(release=release)) as response:  # noqa: S310 (a fixed https URL)
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    prefix = f"k8s.io/kubernetes@{release}/api/openapi-spec/v3/"
    return {n: json.loads(archive.read(prefix + n)) for n in names}


def shorten_refs(node: Any) -> Any:
    """`{"allOf": [{"$ref": "#/components/schemas/X"}], ...}` becomes `{"$ref": "X", ...}`."""
    if isinstance(node, list):
        return [shorten_refs(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: shorten_refs(v) for k, v in node.items()}
    all_of = out.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict) and set(all_of[0]) == {"$ref"}:
        del out["allOf"]
        out["$ref"] = all_of[0]["$ref"]
    if isinstance(out.get("$ref"), str):
        out["$ref"] = out["$ref"].rsplit("/", 1)[-1]
    return out


def refs_in(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(refs_in(v) for v in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
    for value in node.values():
        found |= refs_in(value)
    return found


_PATH = re.compile(r"^(?:/api/v1|/apis/[^/]+/[^/]+)/(?P<watch>watch/)?(?:namespaces/\{namespace\}/)?"
                   r"(?P<plural>[a-z0-9]+)(?P<item>/\{name\})?(?:/(?P<sub>[a-z0-9-]+))?$")


def resources_of(group: str, version: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path, item in doc["paths"].items():
        m = _PATH.match(path)
        if not m:
            continue
        plural, sub = m["plural"], m["sub"]
        if (group, plural) in SKIPPED:
            continue
        namespaced = "{namespace}" in path
        res = found.setdefault(plural, {"plural": plural, "namespaced": False, "verbs": set(), "subresources": {},
                                        "kind": ""})
        res["namespaced"] |= namespaced and not (group == "" and plural == "namespaces")
        for method, op in item.items():
            if method == "parameters" or not isinstance(op, dict):
                continue
            action = op.get("x-kubernetes-action", "")
            gvk = op.get("x-kubernetes-group-version-kind") or {}
            if sub:
                entry = res["subresources"].setdefault(sub, {"kind": "", "group": "", "version": "", "verbs": set()})
                if gvk and not entry["kind"]:
                    entry.update(kind=gvk["kind"], group=gvk["group"], version=gvk["version"])
                entry["verbs"].add(_SUB_VERBS.get(method, method) if action == "connect" else
                                   _ACTION_VERBS.get(action, action))
                entry["connect"] = action == "connect"
                continue
            verb = _ACTION_VERBS.get(action)
            if verb:
                res["verbs"].add(verb)
            if action in ("get", "post", "put") and gvk and not res["kind"]:
                res["kind"] = gvk["kind"]
    out = []
    for plural, res in sorted(found.items()):
        if not res["kind"]:
            raise SystemExit(f"no kind found for {group}/{version} {plural}")
        subs = {}
        for name, entry in sorted(res["subresources"].items()):
            subs[name] = {**entry, "verbs": sorted(entry["verbs"])}
        key = (group, plural)
        out.append({
            "plural": plural, "kind": res["kind"], "namespaced": res["namespaced"], "verbs": sorted(res["verbs"]),
            "subresources": subs, "shortNames": SHORT_NAMES.get(key, []), "categories": CATEGORIES.get(key, []),
        })
    return out


def build(release: str, spec_dir: Path | None) -> dict[str, Any]:
    docs = read_documents(release, spec_dir)
    components: dict[str, Any] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    wanted: list[str] = []
    for group, version in GROUP_VERSIONS:
        doc = docs[doc_name(group, version)]
        schemas = doc["components"]["schemas"]
        for name, schema in schemas.items():
            components.setdefault(name, shorten_refs(schema))
        resources = resources_of(group, version, doc)
        package = f"io.k8s.api.{group.split('.')[0] or 'core'}.{version}."
        for res in resources:
            wanted += [package + res["kind"], package + res["kind"] + "List"]
            wanted += [f"io.k8s.api.{s['group'].split('.')[0] or 'core'}.{s['version']}.{s['kind']}"
                       for s in res["subresources"].values() if s["kind"] and s["group"] != "meta.k8s.io"]
        groups[f"{group}/{version}" if group else version] = resources
    reached: dict[str, Any] = {}
    todo = [w for w in wanted if w in components]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached[name] = components[name]
        todo.extend(refs_in(components[name]) - set(reached))
    return {"release": release, "groups": groups, "components": dict(sorted(reached.items()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="v1.32.0")
    parser.add_argument("--spec-dir", type=Path, help="a directory holding api/openapi-spec/v3/*.json")
    args = parser.parse_args(argv)
    catalogue = build(args.release, args.spec_dir)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"kube-{args.release}.json.gz"
    raw = json.dumps(catalogue, sort_keys=True, separators=(",", ":")).encode()
    out.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    kinds = sum(len(r) for r in catalogue["groups"].values())
    print(f"{out}: {kinds} resources, {len(catalogue['components'])} schemas, "
          f"{len(raw) // 1024} KiB JSON, {out.stat().st_size // 1024} KiB compressed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
