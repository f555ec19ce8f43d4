"""HTTPS with generated certificates, kubeconfigs from `kapi kubeconfig`, and authentication, driven
by real kubectl and curl against instances started with `kapi start --detach`.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBECTL = "/usr/bin/kubectl"
TOKEN_FILE = REPO / "configs" / "token.csv"
ALICE_TOKEN = "kapi-example-token-change-me"
PIZZAS = "/apis/restaurant.wukong.com/v1alpha1/pizzas"
PIZZA_YAML = """apiVersion: restaurant.wukong.com/v1alpha1
kind: Pizza
metadata: {name: quattro, namespace: default}
spec: {size: medium, toppings: [{name: tomato}, {name: mozzarella, quantity: 2}]}
"""
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class Instance:
    """One `kapi start --detach` instance: its root, ports and private KAPI_HOME."""

    def __init__(self, tmp: Path, name: str, *args: str) -> None:
        self.tmp, self.name, self.args = tmp, name, list(args)
        self.root = tmp / name
        self.home = tmp / "kapi-home"
        self.secure, self.insecure = free_ports(2)
        self.env = {**os.environ, "KAPI_HOME": str(self.home)}
        self.env.pop("KUBECONFIG", None)

    def kapi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "kapi_cli.main", *args], capture_output=True, text=True,
                                env=self.env, cwd=REPO, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kapi {' '.join(args)} exited {result.returncode}:\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def start(self) -> None:
        self.kapi("start", "--detach", "--name", self.name, "--secure-port", str(self.secure),
                  "--insecure-port", str(self.insecure), "--file-rootpath", str(self.root), *self.args)

    def stop(self) -> None:
        state = self.home / "instances" / f"{self.name}.json"
        if state.exists():
            if self.kapi("stop", self.name, check=False).returncode != 0:
                os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.secure}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.insecure}"

    @property
    def cert(self) -> Path:
        return self.root / "cert"

    def token(self) -> str:
        return (self.root / "kubectl.token").read_text().strip()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        ctx = ssl.create_default_context(cafile=str(self.cert / "ca.crt"))
        return httpx.Client(base_url=self.https, verify=ctx, headers=headers, timeout=10)

    def kubectl(self, kubeconfig: Path, *args: str, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Real kubectl with this kubeconfig and its own discovery cache per server (PROTOCOL.md catch 3)."""
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        result = subprocess.run([KUBECTL, "--cache-dir", str(self.tmp / f"cache-{self.name}"), *args],
                                input=input, capture_output=True, text=True, env=env, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """HTTPS + HTTP, static tokens from configs/token.csv, no localhost allowance."""
    inst = Instance(tmp_path_factory.mktemp("https"), "secure", f"--token-auth-file={TOKEN_FILE}",
                    "--authn-allow-localhost=false")
    inst.start()
    yield inst
    inst.stop()


def whoami(inst: Instance, kubeconfig: Path, *extra: str) -> dict:
    out = inst.kubectl(kubeconfig, "auth", "whoami", "-o", "json", *extra).stdout
    return json.loads(out)["status"]["userInfo"]


def test_kubectl_with_token_kubeconfig(secure: Instance) -> None:
    kubeconfig = secure.tmp / "token.kubeconfig"
    secure.kapi("kubeconfig", "--name", "secure", "--output", str(kubeconfig))
    config = yaml.safe_load(kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == secure.https
    assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]) == \
        (secure.cert / "ca.crt").read_bytes()
    assert config["current-context"] == "kapi-secure"
    secure.kubectl(kubeconfig, "apply", "-f", "-", input=PIZZA_YAML)
    got = secure.kubectl(kubeconfig, "get", "pizzas", "-n", "default", "-o", "name").stdout
    assert "pizza.restaurant.wukong.com/quattro" in got
    user = whoami(secure, kubeconfig)
    assert user["username"] == "kubectl" and "system:masters" in user["groups"]


def test_start_writes_a_private_kubeconfig_that_works(secure: Instance) -> None:
    kubeconfig = secure.root / "kubeconfig"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    secure.kubectl(kubeconfig, "get", "namespaces")
    assert "kubeconfig" in (secure.home / "logs" / "secure.log").read_text()  # the banner names it


def test_kubectl_with_client_certificate(secure: Instance) -> None:
    kubeconfig = secure.tmp / "cert.kubeconfig"
    secure.kapi("kubeconfig", "--name", "secure", "--client-cert", "--output", str(kubeconfig))
    user_entry = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert set(user_entry) == {"client-certificate-data", "client-key-data"}
    secure.kubectl(kubeconfig, "get", "pizzas", "-A")
    user = whoami(secure, kubeconfig)
    assert user["username"] == "kapi-admin"
    assert "system:masters" in user["groups"]


def test_whoami_for_a_static_token_user_with_the_shipped_template(secure: Instance) -> None:
    template = (REPO / "configs" / "kubeconfig").read_text()
    ca_data = base64.b64encode((secure.cert / "ca.crt").read_bytes()).decode()
    filled = (template.replace("${KAPI_NAME}", "alice").replace("${KAPI_SERVER}", secure.https)
              .replace("${KAPI_CA_DATA}", ca_data).replace("${KAPI_TOKEN}", ALICE_TOKEN))
    kubeconfig = secure.tmp / "alice.kubeconfig"
    kubeconfig.write_text(filled)
    kubeconfig.chmod(0o600)
    user = whoami(secure, kubeconfig)
    assert user["username"] == "alice" and user["uid"] == "1001"
    assert {"developers", "editors", "system:authenticated"} <= set(user["groups"])


def test_curl_with_the_p12(secure: Instance) -> None:
    password = (secure.cert / "client.p12.password").read_text().strip()
    result = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--cert-type", "P12", "--cert", f"{secure.cert / 'client.p12'}:{password}",
         "--cacert", str(secure.cert / "ca.crt"), f"{secure.https}{PIZZAS}"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr + result.stdout
    assert json.loads(result.stdout)["kind"] == "PizzaList"


def assert_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body["kind"] == "Status" and body["code"] == 401 and body["reason"] == "Unauthorized"


def test_401_for_no_token_and_bad_token(secure: Instance) -> None:
    with secure.client() as anonymous:
        assert_401(anonymous.get(PIZZAS))
        assert anonymous.get("/readyz").status_code == 200  # health stays public
    with secure.client("not-a-token") as bad:
        assert_401(bad.get(PIZZAS))
    with secure.client(ALICE_TOKEN[:-1] + "X") as almost:
        assert_401(almost.get(PIZZAS))
    with secure.client(secure.token()) as good:
        assert good.get(PIZZAS).status_code == 200


def test_401_for_a_token_of_an_earlier_ephemeral_instance(tmp_path: Path) -> None:
    inst = Instance(tmp_path, "ephemeral", "--kubectl-ephemeral-token=true")
    inst.start()
    try:
        first = inst.token()
        with inst.client(first) as client:
            assert client.get(PIZZAS).status_code == 200
        inst.kapi("stop", "ephemeral")
        inst.start()
        second = inst.token()
        assert second != first
        with inst.client(first) as old:
            assert_401(old.get(PIZZAS))
        with inst.client(second) as new:
            assert new.get(PIZZAS).status_code == 200
        # the kubeconfig written at start follows the new token
        assert yaml.safe_load((inst.root / "kubeconfig").read_text())["users"][0]["user"]["token"] == second
    finally:
        inst.stop()


def test_localhost_allowance_on_and_off_over_http(secure: Instance, tmp_path: Path) -> None:
    # off (the `secure` instance): plain HTTP from loopback without credentials is rejected
    assert_401(httpx.get(f"{secure.http}{PIZZAS}", timeout=10))
    http_kubeconfig = tmp_path / "http-off.kubeconfig"
    secure.kapi("kubeconfig", "--name", "secure", "--insecure-http", "--output", str(http_kubeconfig))
    refused = secure.kubectl(http_kubeconfig, "get", "pizzas", "-A", check=False)
    assert refused.returncode != 0  # kubectl sends no token over http (PROTOCOL.md catch 2)
    # the Python client does send it: a token over HTTP works
    ok = httpx.get(f"{secure.http}{PIZZAS}", headers={"Authorization": f"Bearer {secure.token()}"}, timeout=10)
    assert ok.status_code == 200

    inst = Instance(tmp_path, "local", "--authn-allow-localhost=true", "--secure-port=0")
    inst.start()
    try:
        assert httpx.get(f"{inst.http}{PIZZAS}", timeout=10).status_code == 200
        kubeconfig = tmp_path / "http-on.kubeconfig"
        inst.kapi("kubeconfig", "--name", "local", "--insecure-http", "--output", str(kubeconfig))
        inst.kubectl(kubeconfig, "get", "pizzas", "-A")
        assert not inst.kapi("kubeconfig", "--name", "local", check=False).returncode == 0  # no HTTPS port
    finally:
        inst.stop()


def test_kubectl_disabled_has_no_token_but_client_cert_works(tmp_path: Path) -> None:
    inst = Instance(tmp_path, "nokubectl", "--kubectl-disabled=true")
    inst.start()
    try:
        assert not (inst.root / "kubectl.token").exists()
        assert not (inst.root / "kubeconfig").exists()
        refused = inst.kapi("kubeconfig", "--name", "nokubectl", check=False)
        assert refused.returncode == 1 and "--kubectl-disabled" in refused.stderr
        kubeconfig = tmp_path / "cert.kubeconfig"
        inst.kapi("kubeconfig", "--name", "nokubectl", "--client-cert", "--output", str(kubeconfig))
        inst.kubectl(kubeconfig, "get", "namespaces")
        status = json.loads(inst.kapi("status", "nokubectl", "-o", "json").stdout)
        assert status["ready"] and status["objects"]["namespaces"] == 4  # counted with the client cert
    finally:
        inst.stop()


def test_key_files_are_private(secure: Instance) -> None:
    private = [secure.cert / "ca.key", secure.cert / "server.key", secure.cert / "client.key",
               secure.cert / "client.p12", secure.cert / "client.p12.password",
               secure.root / "kubectl.token", secure.root / "kubeconfig", secure.tmp / "token.kubeconfig"]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def _secrets(inst: Instance) -> list[str]:
    found = [inst.token(), (inst.cert / "client.p12.password").read_text().strip()]
    found += [line.split(",", 1)[0] for line in TOKEN_FILE.read_text().splitlines() if line.strip()]
    for key in ("client.key", "server.key", "ca.key"):
        body = [ln for ln in (inst.cert / key).read_text().splitlines() if not ln.startswith("-----")]
        found.append(body[1])  # a line of the key's base64
    return found


def test_no_secret_in_status_list_or_log(secure: Instance) -> None:
    with secure.client(ALICE_TOKEN) as alice:  # authenticated requests must not leave tokens in the log
        alice.get(PIZZAS)
    with secure.client("wrong-token-value-123") as bad:
        bad.get(PIZZAS)
    outputs = [secure.kapi("status", "secure").stdout, secure.kapi("status", "secure", "-o", "json").stdout,
               secure.kapi("list").stdout, secure.kapi("list", "-o", "json").stdout,
               secure.kapi("logs", "secure").stdout, (secure.home / "instances" / "secure.json").read_text()]
    status = json.loads(outputs[1])
    assert status["ready"] is True and status["objects"]["namespaces"] == 4
    for secret in _secrets(secure) + ["wrong-token-value-123"]:
        for text in outputs:
            assert secret not in text
