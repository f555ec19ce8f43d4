"""The real Go clients against kapi: client-go's clientset, dynamic client, informers and leader
election, and a controller-runtime manager, on the memory and the etcd backends.

Why: most Kubernetes controllers and operators are Go programs built on exactly these libraries;
their behaviour (protobuf bodies, watch-list streams, resuming watches from a resourceVersion,
relisting on 410, status subresources, finalizers) is what kapi has to get right for them.

The program lives in tests/clients/go (go.mod and go.sum pin client-go, api, apimachinery and
apiextensions-apiserver v0.37.2 and controller-runtime v0.25.3). It is built once per session
into ~/.cache/kapi-clients/go (Go's own module and build caches make rebuilds take seconds) and
run once per subcommand and backend against a fresh `kapi start`. Every check it passes prints
"PASS <subcommand>/<check>: ..."; the first failure prints "FAIL ..." on stderr and exits 1.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

GO_DIR = Path(__file__).resolve().parents[1] / "clients" / "go"
CACHE_DIR = Path.home() / ".cache" / "kapi-clients" / "go"

# The informer checks write more than this many events while a watch is held back, so that
# resuming it must get 410 Expired; the server is started with the same window.
WATCH_EVENT_WINDOW = 20

# Known kapi gaps the program steps around when told to (each is a --kapi-workaround name, and
# the program says so on stderr). "protobuf-crds": client-go >= 0.35 sends typed request bodies as
# protobuf, and kapi's protobuf index has no apiextensions.k8s.io/v1 messages (it answers 415 to a
# protobuf CustomResourceDefinition); with it the apiextensions clientset sends JSON. Every other
# client in the program runs on client-go's defaults, protobuf DeleteOptions included.
KAPI_WORKAROUNDS = ["protobuf-crds"]

# The checks each subcommand must pass, in order.
EXPECTED: dict[str, list[str]] = {
    "typed": [
        "namespace-create", "configmap-create", "configmap-get", "configmap-list-selector", "configmap-update",
        "update-conflict", "configmap-merge-patch", "configmap-json-patch", "deployment-create",
        "deployment-strategic-patch", "deployment-merge-patch", "deployment-update-status",
        "deployment-update-ignores-status", "lease", "protobuf", "delete", "delete-collection", "namespace-delete",
    ],
    "dynamic": [
        "crd-established", "discovery", "restmapper", "cr-create", "cr-get", "cr-list", "cr-merge-patch", "cr-watch",
        "cr-json-patch", "cr-apply", "cr-update-conflict", "cr-status", "cr-delete", "crd-delete",
    ],
    "informer": [
        "raw-watch-expired", "raw-watch-current",
        *(f"{mode}/{check}" for mode in ("watch-list", "list-watch")
          for check in ("sync", "events", "resync", "watch-resume", "expired-resume", "after-relist")),
    ],
    "leader": ["one-leader", "lease-holder", "takeover", "release"],
    "controller-runtime": ["manager", "reconcile-ready", "reconcile-generation", "finalize", "manager-stop"],
}


@pytest.fixture(scope="module")
def client_go() -> Path:
    """`go build` of tests/clients/go, once per module; fails (never skips) without a Go toolchain."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("the Go toolchain (`go`, 1.26) is not on PATH: it is needed to build tests/clients/go")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    binary = CACHE_DIR / "kapi-client-go"
    # GOTOOLCHAIN=local: never download another toolchain behind the test's back; -mod=readonly:
    # go.sum is committed and complete; -buildvcs=false: the build must not depend on git metadata.
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    started = time.monotonic()
    result = subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_DIR, env=env,
                            capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        pytest.fail(f"go build in {GO_DIR} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    print(f"go build: {time.monotonic() - started:.1f}s")
    return binary


@dataclass
class Target:
    """A running kapi and a kubeconfig that points the Go program at it."""

    server: Any
    kubeconfig: Path


def write_kubeconfig(path: Path, url: str) -> Path:
    """Plain HTTP, no credentials: kapi trusts loopback requests (--authn-allow-localhost)."""
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: kapi
  cluster:
    server: {url}
users:
- name: admin
  user: {{}}
contexts:
- name: kapi
  context:
    cluster: kapi
    user: admin
current-context: kapi
""")
    return path


@pytest.fixture(params=["memory", "etcd"])
def target(request: pytest.FixtureRequest, kapi_factory: Any, tmp_path: Path) -> Iterator[Target]:
    """A fresh server per test, on each backend, with the small watch event window."""
    window = ("--watch-event-window", str(WATCH_EVENT_WINDOW))
    if request.param == "memory":
        server = kapi_factory("--backend", "memory", *window)
    else:
        server = kapi_factory(*window, etcd_prefix=f"/kapi-client-go-{uuid.uuid4().hex[:10]}")
    yield Target(server, write_kubeconfig(tmp_path / "kubeconfig", server.url))


def failure_report(result: subprocess.CompletedProcess[str], server: Any) -> str:
    """The FAIL lines first, then the program's output and the tail of the server's log."""
    fails = "\n".join(line for line in result.stderr.splitlines() if line.startswith("FAIL "))
    stderr_tail = "\n".join(result.stderr.splitlines()[-150:])
    log_tail = "\n".join(server.log_path.read_text(errors="replace").splitlines()[-40:])
    return (f"exit status {result.returncode}\n{fails or '(no FAIL line)'}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr (tail) ---\n{stderr_tail}\n"
            f"--- kapi log (tail) ---\n{log_tail}")


@pytest.mark.parametrize("subcommand", list(EXPECTED))
def test_client_go(subcommand: str, client_go: Path, target: Target) -> None:
    cmd = [str(client_go), "--kubeconfig", str(target.kubeconfig), "--watch-window", str(WATCH_EVENT_WINDOW),
           "--timeout", "150s"]
    for name in KAPI_WORKAROUNDS:
        cmd += ["--kapi-workaround", name]
    result = subprocess.run([*cmd, subcommand], capture_output=True, text=True, timeout=200)
    report = failure_report(result, target.server)
    assert result.returncode == 0, report
    passed = re.findall(r"^PASS (\S+):", result.stdout, re.MULTILINE)
    assert passed == [f"{subcommand}/{check}" for check in EXPECTED[subcommand]], report
