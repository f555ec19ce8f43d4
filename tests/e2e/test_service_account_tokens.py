"""Service-account tokens with real kubectl: `kubectl create token`, then the token as kubectl's credential
over HTTPS (`kubectl auth whoami --token`), revoked when its ServiceAccount goes.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

KUBECTL = "/usr/bin/kubectl"

KapiProcess = Any  # tests/e2e/conftest.py's server handle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BUILDER = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "default"}}


def kubectl(server: KapiProcess, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """kubectl over HTTPS: with the server's kubeconfig (its kubectl token) unless `--server`/`--token` are given."""
    env = {**os.environ, "KUBECONFIG": str(server.root / "kubeconfig")}
    return subprocess.run([KUBECTL, "--cache-dir", str(server.cache_dir), *args], input=input, capture_output=True,
                          text=True, timeout=60, env=env)


def as_token(server: KapiProcess, https: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, "--kubeconfig", "/dev/null", "--cache-dir", str(server.cache_dir),
                           "--server", https, "--certificate-authority", str(server.root / "cert" / "ca.crt"),
                           "--token", token, *args], capture_output=True, text=True, timeout=60)


def whoami(server: KapiProcess, https: str, token: str) -> dict[str, Any]:
    result = as_token(server, https, token, "auth", "whoami", "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]["userInfo"]  # type: ignore[no-any-return]


def test_kubectl_create_token_and_use_it(kapi_factory: Any) -> None:
    port = free_port()
    server: KapiProcess = kapi_factory("--secure-port", str(port), "--authn-allow-localhost=false")
    https = f"https://127.0.0.1:{port}"

    # a ServiceAccount made with kubectl apply, then the `default` one every namespace has
    applied = kubectl(server, "apply", "-f", "-", input=json.dumps(BUILDER))
    assert applied.returncode == 0, applied.stderr
    created = kubectl(server, "create", "token", "builder", "-n", "default", "--duration", "20m")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    user = whoami(server, https, token)
    assert user["username"] == "system:serviceaccount:default:builder"
    assert user["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    assert user["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    refused = as_token(server, https, token, "get", "namespaces")  # RBAC: nothing bound to it yet
    assert refused.returncode != 0 and 'User "system:serviceaccount:default:builder" cannot list resource ' \
        '"namespaces"' in refused.stderr
    bound = kubectl(server, "create", "clusterrolebinding", "builder-view", "--clusterrole", "view",
                    "--serviceaccount", "default:builder")
    assert bound.returncode == 0, bound.stderr
    assert as_token(server, https, token, "get", "namespaces").returncode == 0

    default = kubectl(server, "create", "token", "default", "-n", "default")
    assert default.returncode == 0, default.stderr
    assert whoami(server, https, default.stdout.strip())["username"] == "system:serviceaccount:default:default"

    short = kubectl(server, "create", "token", "builder", "-n", "default", "--duration", "599s")
    assert short.returncode != 0
    assert "may not specify a duration less than 10 minutes" in short.stderr

    missing = kubectl(server, "create", "token", "nobody", "-n", "default")
    assert missing.returncode != 0 and 'serviceaccounts "nobody" not found' in missing.stderr

    assert kubectl(server, "delete", "serviceaccount", "builder", "-n", "default").returncode == 0
    revoked = as_token(server, https, token, "auth", "whoami")
    assert revoked.returncode != 0 and "Unauthorized" in revoked.stderr

    # --validate=false: kubectl validates create-only kinds against /openapi/v2 in protobuf, which kapi
    # answers in JSON (kubectl then fails "failed to download openapi"), whatever the kind.
    review = kubectl(server, "create", "--validate=false", "-o", "json", "-f", "-", input=json.dumps({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": default.stdout.strip()}}))
    assert review.returncode == 0, review.stderr
    status = json.loads(review.stdout)["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:default:default"


def test_the_signing_key_survives_a_restart(kapi_factory: Any, tmp_path: Path) -> None:
    port = free_port()
    server: KapiProcess = kapi_factory("--secure-port", str(port), "--authn-allow-localhost=false")
    https = f"https://127.0.0.1:{port}"
    created = kubectl(server, "create", "token", "default", "-n", "default")
    assert created.returncode == 0, created.stderr
    key = server.root / "cert" / "sa.key"
    assert key.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    server.restart()
    assert whoami(server, https, created.stdout.strip())["username"] == "system:serviceaccount:default:default"
