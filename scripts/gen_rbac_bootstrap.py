"""Regenerate kapi's bootstrap RBAC policy from the one Kubernetes records for its release.

    python scripts/gen_rbac_bootstrap.py [--release v1.32.0] [--zip FILE]

kube-apiserver creates (and on every start reconciles) a fixed set of
ClusterRoles, ClusterRoleBindings, and Roles and RoleBindings in kube-system
and kube-public. Kubernetes records exactly that set as YAML test data in the
`k8s.io/kubernetes` module (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/`),
read here from the module zip on the Go module proxy, as `gen_kube_catalogue.py`
reads the OpenAPI documents (or from `--zip`, a downloaded copy of that zip).

The output, `server/auth/data/rbac-bootstrap-<release>.json.gz`, maps each RBAC
resource (plural) to its objects in kube's reconcile order (bootstrap cluster
roles, then the controllers'; the same for bindings). Values the server fills
in (`creationTimestamp: null`) and null fields (`rules: null` of aggregated
roles) are dropped; labels, annotations and aggregationRule are kept. Only the
recorded data is involved, none of Kubernetes' code.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import yaml

from gen_kube_catalogue import PROXY  # the k8s.io/kubernetes module zip (all lower case: no case-encoding needed)

OUT_DIR = Path(__file__).resolve().parent.parent / "server" / "auth" / "data"
GROUP_VERSION = "rbac.authorization.k8s.io/v1"
TESTDATA = "plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/"
# kube-apiserver's post-start hook reconciles in this order: each plural's files in turn.
FILES = {
    "clusterroles": ("cluster-roles.yaml", "controller-roles.yaml"),
    "clusterrolebindings": ("cluster-role-bindings.yaml", "controller-role-bindings.yaml"),
    "roles": ("namespace-roles.yaml",),
    "rolebindings": ("namespace-role-bindings.yaml",),
}
KINDS = {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding", "roles": "Role",
         "rolebindings": "RoleBinding"}
_SERVER_FILLED = ("creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink")


def read_archive(release: str, zip_file: Path | None) -> zipfile.ZipFile:
    if zip_file is not None:
        return zipfile.ZipFile(zip_file)
    with urllib.request.urlopen(PROXY.format(release=release)) as response:  # noqa: S310 (a fixed https URL)
        return zipfile.ZipFile(io.BytesIO(response.read()))


def _without_nulls(node: Any) -> Any:
    """Go serialises a nil slice as `null`; an absent field means the same to kube's decoder."""
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node]
    return node


def clean(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The object as a client would create it: no server-filled metadata, no nulls."""
    if obj.get("apiVersion") != GROUP_VERSION or obj.get("kind") != kind:
        raise SystemExit(f"unexpected {obj.get('apiVersion')}/{obj.get('kind')} where {kind} was expected")
    out = _without_nulls(obj)
    out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in _SERVER_FILLED}
    return out


def build(release: str, zip_file: Path | None) -> dict[str, Any]:
    archive = read_archive(release, zip_file)
    prefix = f"k8s.io/kubernetes@{release}/{TESTDATA}"
    policy: dict[str, Any] = {"release": release}
    for plural, names in FILES.items():
        objects = []
        for name in names:
            listed = yaml.load(archive.read(prefix + name), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            objects += [clean(item, KINDS[plural]) for item in listed["items"]]
        seen = [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects]
        if len(seen) != len(set(seen)):
            raise SystemExit(f"duplicate {plural} in the recorded policy")
        policy[plural] = objects
    return policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="v1.32.0")
    parser.add_argument("--zip", type=Path, help="a downloaded k8s.io/kubernetes module zip of that release")
    args = parser.parse_args(argv)
    policy = build(args.release, args.zip)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"rbac-bootstrap-{args.release}.json.gz"
    raw = json.dumps(policy, sort_keys=True, separators=(",", ":")).encode()
    out.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    counts = ", ".join(f"{len(policy[p])} {p}" for p in FILES)
    print(f"{out}: {counts}; {len(raw) // 1024} KiB JSON, {out.stat().st_size // 1024} KiB compressed",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
