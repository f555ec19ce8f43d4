"""The Python client's own end-to-end tests, run unchanged against kapi.

kubernetes-client/python keeps its typed-API e2e suite in `kubernetes/e2e_test/` (test_client.py,
test_apps.py, test_batch.py, ...), but no artefact it publishes on PyPI contains that directory
(setup.py never lists it), so CI cannot obtain it. What the sdist does ship are the dynamic
client's e2e modules, synchronous and asyncio, which take the server's configuration from
`kubernetes.e2e_test.base` and `kubernetes.aio.e2e_test.base` -- two modules the sdist leaves
out as well. So this test writes those two itself: `get_e2e_configuration()` reads
`$KUBECONFIG`, which points at a kapi on plain HTTP with no credentials (the server trusts
loopback; the Python client would send a token over HTTP, and kapi rejects unknown tokens with
401 as kube-apiserver does).

One test per upstream module, each a `python -m pytest` run of that module from the unpacked
sdist (see upstream_suites.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest



# Every upstream e2e module, by its path in the sdist, with what it drives.
UPSTREAM_MODULES = {
    "kubernetes/dynamic/test_client.py":
        "DynamicClient: services, replication controllers, configmaps (+ watch), nodes, "
        "PartialObjectMetadataList, CRDs and custom resources, server-side apply of a pod",
    "kubernetes/dynamic/test_discovery.py": "DynamicClient discovery and its cache file",
    "kubernetes/aio/dynamic/client_test.py":
        "the asyncio DynamicClient: the same as dynamic/test_client.py, with v1 CRDs",
    "kubernetes/aio/dynamic/discovery_test.py": "the asyncio DynamicClient's discovery and its cache file",
}

# Waiting for server-side apply (a later issue): kapi answers apply patches 415 until then.
NEEDS_SERVER_SIDE_APPLY = {
    "kubernetes/dynamic/test_client.py::TestDynamicClient::test_server_side_apply_api":
        "applies a v1 Pod with application/apply-patch+yaml and reads metadata.managedFields",
}

# Tests that fail against kube-apiserver 1.32 just the same: nothing for kapi to fix.
NOT_FOR_KUBERNETES_1_32 = {
    "kubernetes/dynamic/test_client.py::TestDynamicClient::test_cluster_custom_resources":
        "creates an apiextensions.k8s.io/v1beta1 CRD; that version was removed in Kubernetes 1.22",
    "kubernetes/dynamic/test_client.py::TestDynamicClient::test_namespaced_custom_resources":
        "creates an apiextensions.k8s.io/v1beta1 CRD; that version was removed in Kubernetes 1.22",
    "kubernetes/dynamic/test_client.py::TestDynamicClient::test_async_namespaced_custom_resources":
        "creates an apiextensions.k8s.io/v1beta1 CRD; that version was removed in Kubernetes 1.22",
    "kubernetes/aio/dynamic/client_test.py::TestDynamicClient::test_server_side_apply_api":
        "server-side-applies an apps/v1 Deployment body at the pods endpoint; kube-apiserver answers 400 "
        "(Incorrect version specified in apply patch) -- the synchronous twin applies a v1 Pod and runs",
    "kubernetes/dynamic/test_discovery.py::TestDiscoverer::test_cache_decoder_resource_and_subresource":
        "compares two Resource objects with ==, which the sync Resource does not define (identity: "
        "false on any server); its asyncio twin compares to_dict() and runs",
}

DESELECT = {**NEEDS_SERVER_SIDE_APPLY, **NOT_FOR_KUBERNETES_1_32}

# The modules the sdist's tests import but the sdist does not contain (written by this test).
E2E_BASE = '''"""Written by kapi's tests/e2e/test_python_client_suite.py: the server is $KUBECONFIG's."""
import os

from kubernetes.client.configuration import Configuration
from kubernetes.config import kube_config


def get_e2e_configuration():
    config = Configuration()
    kube_config.load_kube_config(config_file=os.environ["KUBECONFIG"], client_configuration=config)
    return config
'''

AIO_E2E_BASE = '''"""Written by kapi's tests/e2e/test_python_client_suite.py: the server is $KUBECONFIG's."""
import asyncio
import os

from kubernetes.aio.client.configuration import Configuration
from kubernetes.aio.config import kube_config


def get_e2e_configuration():
    config = Configuration()
    asyncio.run(kube_config.load_kube_config(config_file=os.environ["KUBECONFIG"],
                                             client_configuration=config))
    return config
'''

SHIMS = {"kubernetes/e2e_test": E2E_BASE, "kubernetes/aio/e2e_test": AIO_E2E_BASE}

# One file-backed server for the module: the suites take ~30 s, too long to repeat on etcd here.
pytestmark = pytest.mark.parametrize("kapi", ["file"], indirect=True)


@pytest.fixture(scope="module")
def client_sdist(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, suites: Any) -> Path:
    """The installed kubernetes client's sdist, unpacked, with the two e2e base modules added."""
    root = suites.sdist(request.config, tmp_path_factory, "kubernetes")
    for package, source in SHIMS.items():
        directory = root / package
        directory.mkdir(exist_ok=True)
        if not (directory / "__init__.py").exists():
            (directory / "__init__.py").write_text("")
        base = directory / "base.py"
        if not base.exists() or base.read_text().startswith(source.split("\n", 1)[0]):
            base.write_text(source)  # ours, kept current; upstream's own, should it appear, stays
    return root


def _module_id(path: str) -> str:
    return path.removeprefix("kubernetes/").removesuffix(".py")


@pytest.mark.parametrize("module", list(UPSTREAM_MODULES), ids=_module_id)
def test_upstream_e2e_module(module: str, client_sdist: Path, kapi: Any, tmp_path: Path, suites: Any) -> None:
    path = client_sdist / module
    version = suites.installed_version("kubernetes")
    if not path.exists():
        pytest.fail(f"kubernetes {version}'s sdist has no {module} any more")

    deselect = [nodeid for nodeid in DESELECT if nodeid.startswith(module + "::")]
    defined = suites.defined_tests(path)
    stale = [nodeid for nodeid in deselect if nodeid.rsplit("::", 1)[1] not in defined]
    assert not stale, f"deselections naming no test of {module}: {stale}"

    tmp = tmp_path / "tmp"  # the dynamic client's discovery cache file goes to tempfile.gettempdir()
    tmp.mkdir()
    env = {"KUBECONFIG": str(suites.write_kubeconfig(tmp_path / "kubeconfig", kapi.url)), "TMPDIR": str(tmp)}
    args = ["-q", "-p", "no:asyncio", *(f"--deselect={nodeid}" for nodeid in deselect), module]
    run = suites.run_pytest(client_sdist, args, tmp_path / "run", env=env, timeout=300)

    assert run.ids("passed"), "no upstream test passed\n" + run.report(kapi.log_path)
    # A skip would be upstream's "Unable to find a running Kubernetes instance".
    assert not run.ids("failed", "error", "skipped"), run.report(kapi.log_path)
    assert run.returncode == 0, run.report(kapi.log_path)
