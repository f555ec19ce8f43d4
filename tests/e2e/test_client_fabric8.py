"""The fabric8 kubernetes-client (Java) against kapi, on memory and on etcd.

Java operators and tools mostly talk to the API server through fabric8: its kubeconfig loading, discovery,
patch flavours, server-side apply, watches and informers each make requests of their own shape, so a real
fabric8 program (tests/clients/java/src/main/java/Main.java) is built here with Maven and run once per
subcommand. Every check the program passes prints one `ok <subcommand>: <check>` line; the first failing
one ends it with `FAIL ...` and a non-zero exit, and the test shows the whole output.

fabric8 watches over WebSocket by default; the watch and informer checks run once with that and once with plain
HTTP watches (FABRIC8_WATCH_TRANSPORT=http, see Main.java), the two transports kube-apiserver serves.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

JAVA_PROJECT = Path(__file__).resolve().parents[1] / "clients" / "java"
# Maven's local repository survives between runs here, so only a fresh machine downloads the ~70 MB of jars.
M2_REPO = Path(os.environ.get("KAPI_CLIENTS_CACHE", Path.home() / ".cache" / "kapi-clients")) / "java" / "m2"
# A short-lived JVM: C1 only and the serial collector start faster and the program does little work.
JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]

EXPECTED = {
    "crud": [
        "namespace create", "namespace get", "namespace list by label selector",
        "configmap create x3", "configmap create existing is 409", "configmap get",
        "configmap get missing is null", "configmap require missing throws ResourceNotFoundException",
        "configmap list withLabel", "configmap list set-based selector", "configmap list withoutLabel",
        "configmap list exists selector", "configmap list field selector",
        "configmap list paging first page", "configmap list paging second page",
        "configmap JSON merge patch", "configmap JSON patch", "configmap JSON patch failing test op is 422",
        "configmap strategic merge patch", "configmap edit", "configmap edit visible on get",
        "configmap update with current resourceVersion", "configmap update with stale resourceVersion is 409",
        "409 carries a Conflict status", "stale update was not applied",
        "server-side apply creates", "server-side apply records the field manager",
        "server-side apply conflict with another manager is 409", "server-side apply forceConflicts takes the field",
        "server-side apply drops fields no longer applied",
        "configmap delete", "configmap get after delete is null", "configmap delete missing returns empty",
        "configmap delete collection by label",
        "deployment create", "deployment defaults applied (strategy RollingUpdate)", "deployment list withLabel",
        "deployment strategic merge patch merges containers by name", "deployment spec change bumps generation",
        "deployment edit", "deployment scale subresource", "deployment server-side apply keeps other fields",
        "deployment delete then get is null",
        "secret stringData stored as base64 data", "secret merge patch with stringData",
        "secret type is immutable (422)", "secret list withLabel", "secret delete then get is null",
        "crd create (apiextensions v1, status subresource)", "crd Established", "crd kind discoverable",
        "custom resource create", "custom resource unknown field pruned", "custom resource schema violation is 422",
        "custom resource get", "custom resource list withLabel", "custom resource list in any namespace",
        "custom resource JSON merge patch", "custom resource status subresource update",
        "custom resource main endpoint ignores status", "custom resource server-side apply",
        "custom resource update with stale resourceVersion is 409", "custom resource delete then get is null",
        "crd delete",
        "namespace delete then get is null", "namespace list after delete",
    ],
    "watch": [
        "watch without resourceVersion starts with the existing object",
        "watch ADDED", "watch MODIFIED", "watch DELETED",
        "watch close calls onClose() without error", "no further events after close",
        "watch from a resourceVersion replays later events",
        "25 writes made after the old resourceVersion",
        "watch from a too-old resourceVersion closes with a WatcherException",
        "the WatcherException is HTTP Gone (410)", "no events delivered from a too-old resourceVersion",
        "streamingList (watch-list) returns the objects and a resourceVersion",
    ],
    "informer": [
        "informer started and synced", "informer initial list gives onAdd for existing objects",
        "informer onAdd called 7 times", "informer onUpdate called 3 times", "informer onDelete called 3 times",
        "informer store holds exactly the live objects", "informer store has the latest version",
        "informer index byColor", "informer resync period delivers onUpdate with an unchanged object",
        "resync adds no real updates", "label-filtered informer lists only matching objects",
        "object no longer matching the selector is a delete",
        "informer stopped cleanly", "stopped informer gets no more events",
    ],
}


@dataclass(frozen=True)
class Fabric8Program:
    """The built program: how to start a JVM on it."""

    java: str
    classpath: str

    def run(self, subcommand: str, kubeconfig: Path, timeout: float = 180,
            transport: str = "websocket") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "FABRIC8_WATCH_TRANSPORT": transport}
        # fabric8 would also honour these; the kubeconfig alone must configure it.
        for name in ("KUBERNETES_MASTER", "KUBERNETES_SERVICE_HOST", "KUBERNETES_NAMESPACE"):
            env.pop(name, None)
        return subprocess.run([self.java, *JVM_FLAGS, "-cp", self.classpath, "Main", subcommand],
                              capture_output=True, text=True, timeout=timeout, env=env)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: the fabric8 client test needs Java 17 and Maven 3.8 "
                    f"(apt-get install openjdk-17-jdk-headless maven)")
    return path


@pytest.fixture(scope="module")
def fabric8(tmp_path_factory: pytest.TempPathFactory) -> Fabric8Program:
    """Build tests/clients/java once per module, outside the source tree, with a cached local Maven repo."""
    java, mvn = _tool("java"), _tool("mvn")
    build = tmp_path_factory.mktemp("fabric8-build")
    shutil.copy(JAVA_PROJECT / "pom.xml", build / "pom.xml")
    shutil.copytree(JAVA_PROJECT / "src", build / "src")
    M2_REPO.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([mvn, "-q", "-B", f"-Dmaven.repo.local={M2_REPO}", "package"], cwd=build,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"mvn package failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    jar = build / "target" / "kapi-fabric8-client.jar"
    classpath_file = build / "target" / "classpath.txt"
    assert jar.is_file() and classpath_file.is_file(), f"the build made no jar/classpath:\n{result.stdout}"
    return Fabric8Program(java=java, classpath=os.pathsep.join([str(jar), classpath_file.read_text().strip()]))


@pytest.fixture(params=["memory", "etcd"])
def kubeconfig(request: pytest.FixtureRequest, kapi_factory: Any, tmp_path: Path) -> Iterator[Path]:
    """A kapi on each backend keeping only 20 past events, and a kubeconfig for it with no credentials."""
    window = ("--watch-event-window", "20")
    if request.param == "memory":
        server = kapi_factory("--backend", "memory", *window, name="fabric8")
    else:
        server = kapi_factory(*window, name="fabric8", etcd_prefix=f"/kapi-fabric8-{uuid.uuid4().hex[:10]}")
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: kapi
  cluster:
    server: {server.url}
users:
- name: nobody
  user: {{}}
contexts:
- name: kapi
  context:
    cluster: kapi
    user: nobody
    namespace: default
current-context: kapi
""")
    yield path


def _assert_passes(program: Fabric8Program, subcommand: str, kubeconfig: Path, transport: str = "websocket") -> None:
    result = program.run(subcommand, kubeconfig, transport=transport)
    output = f"exit code {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, output
    lines = result.stdout.splitlines()
    assert f"watches over {transport}" in result.stdout, output
    passed = {line.removeprefix(f"ok {subcommand}: ") for line in lines if line.startswith(f"ok {subcommand}: ")}
    missing = [check for check in EXPECTED[subcommand] if check not in passed]
    assert not missing, f"checks not reported as passed: {missing}\n{output}"
    assert f"PASSED {subcommand} ({len(EXPECTED[subcommand])} checks)" in lines, output


def test_fabric8_crud(fabric8: Fabric8Program, kubeconfig: Path) -> None:
    _assert_passes(fabric8, "crud", kubeconfig)


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_fabric8_watch(fabric8: Fabric8Program, kubeconfig: Path, transport: str) -> None:
    _assert_passes(fabric8, "watch", kubeconfig, transport)


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_fabric8_informer(fabric8: Fabric8Program, kubeconfig: Path, transport: str) -> None:
    _assert_passes(fabric8, "informer", kubeconfig, transport)
