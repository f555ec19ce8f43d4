"""Managed instances end to end: `kapi start --detach`, `list`, `status`, `logs`, `stop`, stale state,
refused starts, and the issue's seed command line. Every `kapi` runs as a real process with its own
`KAPI_HOME`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
KUBECTL = "/usr/bin/kubectl"
SEED = ["--backend=file", "--etcd-servers=http://127.0.0.1:2379", "--request-timeout=60m",
        "--token-auth-file=configs/token.csv", "--unrestricted-update=true", "--kubectl-disabled=false",
        "--kubectl-ephemeral-token=false", "--authn-allow-localhost=true"]
ALICE_TOKEN = "kapi-example-token-change-me"


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (all held open while choosing, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class Kapi:
    """Runs the `kapi` CLI with one private KAPI_HOME; stops whatever it started at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "kapi-home"
        self.env = {**os.environ, "KAPI_HOME": str(self.home)}
        self.env.pop("KUBECONFIG", None)

    def __call__(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "kapi_cli.main", *args], capture_output=True, text=True,
                                env=self.env, cwd=REPO, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kapi {' '.join(args)} exited {result.returncode}:\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def start(self, name: str, *args: str, root: Path | None = None) -> tuple[Path, int, int]:
        secure, insecure = free_ports(2)
        root = root or self.tmp / name
        self("start", "--detach", "--name", name, "--secure-port", str(secure), "--insecure-port", str(insecure),
             "--file-rootpath", str(root), *args, check=True)
        return root, secure, insecure

    def state(self, name: str) -> dict | None:
        path = self.home / "instances" / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def cleanup(self) -> None:
        for path in (self.home / "instances").glob("*.json"):
            pid = json.loads(path.read_text()).get("pid", 0)
            if pid > 0:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def kapi(tmp_path: Path) -> Iterator[Kapi]:
    runner = Kapi(tmp_path)
    yield runner
    runner.cleanup()


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rfind(")") + 2] == "Z":
                return True  # exited; nobody reaped it yet
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


def test_detach_list_status_logs_stop(kapi: Kapi) -> None:
    root, secure, insecure = kapi.start("life")
    state = kapi.state("life")
    assert state is not None and state["pid"] > 0
    assert state["urls"] == [f"https://127.0.0.1:{secure}", f"http://127.0.0.1:{insecure}"]
    assert state["log_file"] == str(kapi.home / "logs" / "life.log")

    listed = json.loads(kapi("list", "--output", "json", check=True).stdout)
    assert [(r["name"], r["status"], r["ready"]) for r in listed] == [("life", "running", True)]
    table = kapi("list", check=True).stdout
    assert "life" in table and "ready" in table

    status = kapi("status", "life", "--output", "json", check=True)
    record = json.loads(status.stdout)
    assert record["status"] == "running" and record["ready"] is True
    assert record["pid"] == state["pid"] and record["backend"] == "file"
    assert record["objects"]["namespaces"] == 4
    assert record["objects"]["pizzas.restaurant.wukong.com"] == 0
    assert record["uptime_seconds"] >= 0
    assert "life" in kapi("status", "life", check=True).stdout

    logs = kapi("logs", "life", check=True).stdout
    assert "Application startup complete" in logs and "kapi start: life" in logs
    assert "/readyz" not in logs  # no line per request by default, as kube-apiserver (issue 23)
    assert kapi("logs", "life", "--tail", "1", check=True).stdout.count("\n") == 1

    stopped = kapi("stop", "life", check=True)
    assert "stopped instance 'life'" in stopped.stderr and "gracefully" in stopped.stderr
    assert wait_gone(state["pid"])
    assert kapi.state("life") is None
    assert "Finished server process" in (kapi.home / "logs" / "life.log").read_text()
    down = kapi("status", "life", "--output", "json")
    assert down.returncode == 1 and json.loads(down.stdout)["status"] == "not running"
    assert kapi("status", "life").returncode == 1
    assert kapi("stop", "life").returncode == 1
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{insecure}/readyz", timeout=1)


def test_follow_stops_when_instance_stops(kapi: Kapi) -> None:
    kapi.start("follow")
    follower = subprocess.Popen([sys.executable, "-m", "kapi_cli.main", "logs", "follow", "--follow"],
                                stdout=subprocess.PIPE, text=True, env=kapi.env)
    try:
        time.sleep(0.5)
        kapi("stop", "follow", check=True)
        out, _ = follower.communicate(timeout=15)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0
    assert "Application startup complete" in out and "Finished server process" in out


def test_killed_instance_is_reported_stale_and_cleaned(kapi: Kapi) -> None:
    root, secure, insecure = kapi.start("victim")
    pid = kapi.state("victim")["pid"]  # type: ignore[index]
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    assert kapi.state("victim") is not None  # SIGKILL leaves the state file behind

    status = kapi("status", "victim", "--output", "json")
    assert status.returncode == 1
    assert json.loads(status.stdout)["status"] == "stale"
    assert "not running" in status.stderr and str(pid) in status.stderr
    assert kapi.state("victim") is None
    assert json.loads(kapi("list", "-o", "json", check=True).stdout) == []

    # stale state found by `list` is shown once and removed
    kapi.start("victim", root=root)
    pid = kapi.state("victim")["pid"]  # type: ignore[index]
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    listed = json.loads(kapi("list", "-o", "json", check=True).stdout)
    assert [(r["name"], r["status"]) for r in listed] == [("victim", "stale")]
    assert kapi.state("victim") is None

    # `stop` of a killed instance cleans up too, and the name and ports are free again
    kapi.start("victim", root=root)
    os.kill(kapi.state("victim")["pid"], signal.SIGKILL)  # type: ignore[index]
    stop = kapi("stop", "victim")
    assert stop.returncode == 0 and "stale" in stop.stderr
    assert kapi.state("victim") is None


def test_second_start_with_same_name_or_port_is_refused(kapi: Kapi) -> None:
    root, secure, insecure = kapi.start("first")
    log_before = (kapi.home / "logs" / "first.log").read_text()
    other_secure, other_insecure = free_ports(2)

    same_name = kapi("start", "--detach", "--name", "first", "--secure-port", str(other_secure),
                     "--insecure-port", str(other_insecure), "--file-rootpath", str(kapi.tmp / "other"))
    assert same_name.returncode == 1
    assert "an instance named 'first' is already running" in " ".join(same_name.stderr.split())

    same_port = kapi("start", "--detach", "--name", "second", "--secure-port", str(secure),
                     "--insecure-port", str(other_insecure), "--file-rootpath", str(kapi.tmp / "other"))
    assert same_port.returncode == 1
    assert f"port {secure} is already used by kapi instance 'first'" in " ".join(same_port.stderr.split())

    # the foreground server refuses just the same
    foreground = kapi("start", "--name", "third", "--secure-port", "0", "--insecure-port", str(insecure),
                      "--file-rootpath", str(kapi.tmp / "other"))
    assert foreground.returncode == 1 and f"port {insecure}" in foreground.stderr

    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        taken = foreign.getsockname()[1]
        busy = kapi("start", "--detach", "--name", "fourth", "--secure-port", "0", "--insecure-port", str(taken),
                    "--file-rootpath", str(kapi.tmp / "other"))
    assert busy.returncode == 1
    assert f"port {taken} on 127.0.0.1 is already in use" in " ".join(busy.stderr.split())

    assert kapi.state("second") is None and kapi.state("third") is None and kapi.state("fourth") is None
    assert (kapi.home / "logs" / "first.log").read_text().startswith(log_before)  # not clobbered
    assert json.loads(kapi("status", "first", "-o", "json", check=True).stdout)["ready"] is True


def test_detached_start_that_fails_shows_the_log(kapi: Kapi, tmp_path: Path) -> None:
    bad = tmp_path / "bad-crds"
    bad.mkdir()
    (bad / "broken.yaml").write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                                     "metadata: {name: broken}\nspec: {}\n")
    secure, insecure = free_ports(2)
    result = kapi("start", "--detach", "--name", "broken", "--secure-port", str(secure),
                  "--insecure-port", str(insecure), "--file-rootpath", str(tmp_path / "root"),
                  "--resources", str(bad))
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "exited with code 1 before it was ready" in said
    assert "broken.yaml" in said.split("last lines of", 1)[1]  # the child's own message, from its log
    assert kapi.state("broken") is None


def test_seed_command_line_starts_and_serves(kapi: Kapi, tmp_path: Path) -> None:
    """The issue's command line, verbatim but for the backend, the root and free ports, from the repo root."""
    secure, insecure = free_ports(2)
    root = tmp_path / "custom-apiserver"
    cmd = [sys.executable, "-m", "kapi_cli.main", "start", *SEED, f"--file-rootpath={root}",
           "--secure-port", str(secure), "--insecure-port", str(insecure)]
    log = tmp_path / "seed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=kapi.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:  # the listeners open one after the other: wait for both
                if (httpx.get(f"http://127.0.0.1:{insecure}/readyz", timeout=1).status_code == 200 and
                        httpx.get(f"https://127.0.0.1:{secure}/readyz", timeout=1,
                                  verify=_ctx(str(root / "cert" / "ca.crt"))).status_code == 200):
                    break
            except (httpx.HTTPError, OSError):
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        state = kapi.state("default")
        assert state is not None and state["pid"] == proc.pid and state["log_file"] is None
        ca = str(root / "cert" / "ca.crt")
        with httpx.Client(base_url=f"https://127.0.0.1:{secure}", verify=_ctx(ca), timeout=10) as https:
            review = https.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
                                json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
            assert review.status_code == 201, review.text
            assert review.json()["status"]["userInfo"]["username"] == "alice"
        with httpx.Client(base_url=f"http://127.0.0.1:{insecure}", timeout=10) as http:  # localhost allowance
            pizza = {"apiVersion": "restaurant.wukong.com/v1alpha1", "kind": "Pizza",
                     "metadata": {"name": "margherita", "namespace": "default"}, "spec": {"size": "small", "toppings": [{"name": "basil"}]}}
            path = "/apis/restaurant.wukong.com/v1alpha1/namespaces/default/pizzas"
            assert http.post(path, json=pizza).status_code == 201
            # --unrestricted-update=true: PUT without metadata.resourceVersion is accepted
            put = http.put(f"{path}/margherita", json={**pizza, "spec": {"size": "large", "toppings": [{"name": "basil"}]}})
            assert put.status_code == 200, put.text

        kubeconfig = root / "kubeconfig"
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        got = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
                              "get", "pizzas", "-A", "-o", "name"], capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == "pizza.restaurant.wukong.com/margherita"
        assert "kubeconfig" in log.read_text()  # the banner says how to use it
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0, log.read_text()
    assert kapi.state("default") is None  # the foreground server removes its state on exit


def _ctx(cafile: str):  # type: ignore[no-untyped-def]
    import ssl

    return ssl.create_default_context(cafile=cafile)
