"""kopf's own example operators and their own tests, run unchanged against kapi.

kopf's sdist ships `examples/` (an operator per directory, a shared `crd.yaml` for the
KopfExample kind and an `obj.yaml` instance) and `tests/e2e/test_examples.py`, which runs each
example that has no test module of its own through `kopf.testing.KopfRunner`, applying the CRD
and the object with kubectl and reading the operator's log; examples 09-11 carry their own
test modules. Each test here starts a kapi (HTTP, loopback trusted), writes a kubeconfig
whose current context is that server, and runs one of those upstream tests from the unpacked
sdist (see upstream_suites.py) in a subprocess.

kopf's tests/conftest.py is left out (`--confcutdir`): it needs kopf's unit-test dependencies
(freezegun, kmock, looptime, ...) and only gives the e2e tests two fixtures, a fresh
`OperatorSettings` and a fresh global registry, which the small plugin below provides.
pykube-ng, which examples 02 and 10 import (kopf's examples/requirements.txt), is installed
into the cache with `pip install --no-deps --target`.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest



PYKUBE = "pykube-ng==23.6.0"
CRD = "kopfexamples.kopf.dev"
GENERIC = "tests/e2e/test_examples.py::test_all_examples_are_runnable"

# Upstream tests run by default, by node id in kopf's sdist, with what they drive on kapi.
EXAMPLES = {
    f"{GENERIC}[01-minimal]": "CRD via kubectl apply; an on.create handler on a KopfExample",
    f"{GENERIC}[02-children]": "on.create creates a child Pod (pykube) adopted by the KopfExample; status patch",
    "examples/10-builtins/test_example_10.py::test_pods_reacted": "on.create/on.delete handlers on built-in Pods",
    f"{GENERIC}[16-indexing]": "indexes every Pod; a timer patches the KopfExample's status",
}

# The rest of kopf 1.45's examples, run too with KAPI_E2E_KOPF_ALL=1 (about two minutes more; all pass).
MORE_EXAMPLES = {
    f"{GENERIC}[03-exceptions]": "handler retries, temporary and permanent errors",
    f"{GENERIC}[04-events]": "kopf.event/info/warn/exception post core v1 Events",
    f"{GENERIC}[05-handlers]": "resume, create, update, delete and field handlers; finalizers",
    f"{GENERIC}[06-peering]": "standalone: no peering objects",
    f"{GENERIC}[07-subhandlers]": "sub-handlers and their progress in status",
    f"{GENERIC}[08-events]": "raw watch-event handlers",
    "examples/09-testing/test_example_09.py::test_resource_lifecycle": "KopfRunner with kubectl create/delete",
    "examples/11-filtering-handlers/test_example_11.py::test_handler_filtering": "label/annotation/field filters",
    f"{GENERIC}[13-hooks]": "startup/cleanup/login/probe hooks; events on Pods",
    f"{GENERIC}[14-daemons]": "daemons, stopped on deletion",
    f"{GENERIC}[15-timers]": "timers",
    f"{GENERIC}[99-all-at-once]": "everything, with a child Pod",
    # 17-admission is left out: its operator needs certvalidator (kopf[dev]) for its webhook server.
}

SELECTED = {**EXAMPLES, **(MORE_EXAMPLES if os.environ.get("KAPI_E2E_KOPF_ALL") == "1" else {})}

# What kopf's tests/conftest.py gives its e2e tests, loaded with `-p` in the suite's process.
PLUGIN_NAME = "kapi_kopf_examples_plugin"
PLUGIN = '''"""Written by kapi's tests/e2e/test_kopf_examples.py: kopf's conftest fixtures its e2e tests use."""
import kopf
import pytest
from kopf._core.intents.registries import SmartOperatorRegistry


@pytest.fixture
def settings():
    return kopf.OperatorSettings()


@pytest.fixture(autouse=True)
def registry():
    """A fresh global registry per test: one example's handlers never leak into the next."""
    old = kopf.get_default_registry()
    new = SmartOperatorRegistry()
    kopf.set_default_registry(new)
    yield new
    kopf.set_default_registry(old)
'''


@pytest.fixture(scope="module")
def kopf_sdist(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, suites: Any) -> Path:
    return suites.sdist(request.config, tmp_path_factory, "kopf")


@pytest.fixture(scope="module")
def python_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, suites: Any) -> str:
    """PYTHONPATH for the suite: the plugin above and pykube-ng."""
    plugin_dir = tmp_path_factory.mktemp("kopf-plugin")
    (plugin_dir / f"{PLUGIN_NAME}.py").write_text(PLUGIN)
    pykube = suites.pip_target(request.config, tmp_path_factory, PYKUBE)
    return os.pathsep.join([str(plugin_dir), str(pykube)])


def _example_id(nodeid: str) -> str:
    match = re.search(r"\[(.+)\]$", nodeid) or re.search(r"examples/([^/]+)/", nodeid)
    assert match, nodeid
    return match.group(1)


def served_requests(log: str) -> list[tuple[str, str, str]]:
    """(verb, URI, code) of every request a `kapi start -v=3` logged (kube's httplog "HTTP" line)."""
    return re.findall(r'"HTTP" verb="(\w+)" URI="([^"]*)" .*? resp=(\d{3})', log)


@pytest.mark.parametrize("nodeid", list(SELECTED), ids=_example_id)
def test_kopf_example(nodeid: str, kopf_sdist: Path, python_path: str, kapi_factory: Any, tmp_path: Path,
                      suites: Any) -> None:
    path = kopf_sdist / nodeid.split("::")[0]
    assert path.exists(), f"kopf {suites.installed_version('kopf')}'s sdist has no {path}"
    example = _example_id(nodeid)
    assert (kopf_sdist / "examples" / example / "example.py").exists(), f"no example {example} in {kopf_sdist}"

    server = kapi_factory("-v=3")  # every request logged: the checks below read them
    env = {
        "KUBECONFIG": str(suites.write_kubeconfig(tmp_path / "kubeconfig", server.url)),
        "KUBECACHEDIR": str(server.cache_dir),  # the examples' kubectl: discovery of this server only
        "PYTHONPATH": python_path,
    }
    args = ["-q", "-p", "no:timeout", "-p", PLUGIN_NAME,
            "-o", "addopts=", "-o", "minversion=0",  # kopf's pytest config wants looptime, pytest 9
            "--confcutdir=tests/e2e", nodeid]
    run = suites.run_pytest(kopf_sdist, args, tmp_path / "run", env=env, timeout=180)

    assert len(run.cases) == 1, f"expected the one upstream test {nodeid}\n" + run.report(server.log_path)
    assert run.ids("passed"), run.report(server.log_path)
    assert run.returncode == 0, run.report(server.log_path)

    log = server.log_path.read_text(errors="replace")
    failed = [r for r in served_requests(log) if r[2].startswith("5")]
    assert not failed and "Traceback" not in log, f"kapi answered with server errors: {failed}\n{server.log_path}"
    if example != "10-builtins":
        with server.client() as c:
            assert c.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}").status_code == 200
    if example == "02-children":
        # The operator's child, created through pykube ...
        assert ("POST", "/api/v1/namespaces/default/pods", "201") in served_requests(log), server.log_path
        # ... and garbage-collected by kapi once its owner, the KopfExample, was deleted.
        deadline = time.monotonic() + 10
        with server.client() as c:
            while True:
                pods = c.get("/api/v1/namespaces/default/pods").json()["items"]
                owned = [p["metadata"]["name"] for p in pods
                         if any(o.get("kind") == "KopfExample" for o in p["metadata"].get("ownerReferences") or [])]
                if not owned:
                    break
                assert time.monotonic() < deadline, f"child pods outlived their KopfExample: {owned}"
                time.sleep(0.2)
