"""The authorization row: GETs as an RBAC-bound user with 1,000 bindings in the store, beside the same GETs
as a `system:masters` token user (decided before RBAC is asked), so the difference is RBAC's cost.

Both users come from a token file the bench writes next to the server's data (`token_file`), so
both pay the same authentication; only the authorizer differs.
"""
from __future__ import annotations

import json
from pathlib import Path

from kapi_cli.bench.client import Target, fetch_once, run
from kapi_cli.bench.plans import FOO_GROUP

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
VIEWER_TOKEN = "bench-viewer-token-0123456789abcdef"
BINDINGS = 1000
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def write_token_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{ADMIN_TOKEN},bench-admin,1,"system:masters"\n{VIEWER_TOKEN},bench-viewer,2,"bench-viewers"\n')
    path.chmod(0o600)
    return path


def _post(target: Target, path: str, body: dict[str, object]) -> None:
    status, answer = run(fetch_once(target, "POST", path, json.dumps(body).encode()))
    if status not in (201, 409):
        raise RuntimeError(f"POST {path} answered {status}: {answer[:300]!r}")


def _binding(kind: str, name: str, subject: dict[str, str], namespace: str = "") -> dict[str, object]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-foo-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}]}


def install(target: Target, namespace: str, count: int = BINDINGS) -> None:
    """A ClusterRole reading Foos, the viewer's group bound to it, and `count` RoleBindings for other users."""
    _post(target, f"{RBAC}/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "bench-foo-reader"},
        "rules": [{"apiGroups": [FOO_GROUP.split("/")[0]], "resources": ["foos"], "verbs": ["get", "list", "watch"]}]})
    _post(target, f"{RBAC}/clusterrolebindings",
          _binding("ClusterRoleBinding", "bench-viewers", {"kind": "Group", "name": "bench-viewers"}))
    for i in range(count - 1):
        _post(target, f"{RBAC}/namespaces/{namespace}/rolebindings",
              _binding("RoleBinding", f"b{i}", {"kind": "User", "name": f"user-{i}"}, namespace))
