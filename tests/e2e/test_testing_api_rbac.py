"""`kapi.testing` under RBAC: objects at start, and acting as a ServiceAccount or a user (tokens for
clients, impersonating kubeconfigs for real kubectl)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from kapi.testing import KapiStartError, start_server

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


OPERATOR_ROLE = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "op", "namespace": "default"},
     "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "op", "namespace": "default"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "op"},
     "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "default"},
                  {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}]},
]


def test_acting_as_a_service_account_or_a_user_under_rbac() -> None:
    with start_server(objects=OPERATOR_ROLE, users={"bob": ["ops"], "eve": []}) as kapi:
        sa_token = kapi.token(service_account="default/op")  # the ServiceAccount is created for it
        assert kapi.request("GET", "/api/v1/namespaces/default/serviceaccounts/op")[0] == 200
        for token in (sa_token, kapi.token(user="bob")):
            assert kapi.request("GET", "/api/v1/namespaces/default/configmaps", token=token)[0] == 200
            status, body = kapi.request("GET", "/api/v1/namespaces/default/secrets", token=token)
            assert status == 403 and body["reason"] == "Forbidden"
        assert kapi.request("GET", "/api/v1/namespaces/default/configmaps", token=kapi.token(user="eve"))[0] == 403
        with pytest.raises(ValueError, match="unknown user 'mallory'"):
            kapi.token(user="mallory")
        for kubeconfig in (kapi.kubeconfig_for(service_account="default/op"),
                           kapi.kubeconfig_for(user="someone", groups=["ops"])):
            listed = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "get", "configmaps"],
                                    capture_output=True, text=True, timeout=30)
            assert listed.returncode == 0, listed.stderr
            refused = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "get", "secrets"],
                                     capture_output=True, text=True, timeout=30)
            assert refused.returncode != 0 and "forbidden" in refused.stderr


def test_objects_that_cannot_be_applied_stop_the_start() -> None:
    with pytest.raises(KapiStartError, match="could not apply its objects.*Gizmo"):
        start_server(objects=[{"apiVersion": "v1", "kind": "Gizmo", "metadata": {"name": "g"}}])
