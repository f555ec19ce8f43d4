"""Every ```bash, ```sh and ```python block of README.md, run as printed.

A newcomer copies these blocks into a terminal; if one is wrong, they are the first to find out. So each
section's blocks run here in a sandbox of their own (tests/e2e/readme_harness.py): a temporary HOME
(`~/.kapi`, `~/.kube/config` and kubectl's cache are the sandbox's), KAPI_HOME, TMPDIR and working
directory (the checkout's top-level entries linked into it, so `configs/token.csv` and `scripts/etcd.py`
resolve as in a clone), with this checkout's `kapi`, this interpreter as `python`, and the real kubectl.
Paths under /tmp/ in a block move into the sandbox; nothing else is rewritten, except the placeholders
of the one block that needs a real kube-apiserver.

Every command of a shell block must exit 0, unless a `# error: ...` comment below it says how it fails
(then it must fail with that message); beyond that, each test checks what the comments promise. A block
ending in a foreground `kapi start` runs until that instance answers /readyz. Blocks are checked to stop
what they start, since a reader runs them one after another on the same ports. The README's servers
listen on fixed ports (6080, 6081, 8443, 8444): sandboxes take turns under a file lock, each once those
ports are free. The conformance replays use none of them and run in the background meanwhile. A section
without a test of its own here runs by the generic rules alone (`run_generic`).
"""
from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import httpx
import pytest
import yaml
from cryptography import x509


def _harness() -> ModuleType:
    """tests/e2e/readme_harness.py, loaded by path (test modules cannot import siblings in importlib mode)."""
    name = "kapi_e2e_readme_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("readme_harness.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


harness = _harness()
REPO, README = harness.REPO, harness.README
Run, Sandbox, Section = harness.Run, harness.Sandbox, harness.Section
free_port, normalised, readme_blocks, run_generic = (harness.free_port, harness.normalised, harness.readme_blocks,
                                                      harness.run_generic)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Any]:
    """A sandbox holding the README's fixed ports for the test."""
    with harness.fixed_ports():
        sandbox = Sandbox(tmp_path / "sandbox")
        try:
            yield sandbox
        finally:
            sandbox.stop_everything()


@pytest.fixture(scope="module", autouse=True)
def conformance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """The Conformance section's replays (20 s of mostly waiting, on free ports), started first, checked last."""
    sandbox = Sandbox(tmp_path_factory.mktemp("conformance") / "sandbox", fixed_ports=False)
    blocks = [b for b in readme_blocks() if b.section == "Conformance" and "--show" in b.text]
    started = sandbox.start(blocks[0].text) if len(blocks) == 1 else None  # test_conformance says if not
    try:
        yield sandbox, started
    finally:
        sandbox.stop_everything()


# ---------------------------------------------------------------- the sections

def test_every_runnable_block_is_found() -> None:
    fences = re.findall(r"^```(bash|sh|python)\s*$", README.read_text(), re.M)
    assert fences and len(readme_blocks()) == len(fences)


def test_the_test_command_is_what_ci_runs() -> None:
    block = Section("Set-up").take("pytest")
    command = block.text.strip()
    assert "\n" not in command and command in (REPO / ".ci" / "run").read_text().splitlines()


def test_set_up_starts_a_file_backed_server(box: Any) -> None:
    section = Section("Set-up")
    block = section.take("kapi start")
    section.take("pytest")  # the test command: checked against .ci/run above
    install, _, start = block.text.strip().partition(" && ")
    assert install.startswith("pip install") and start.startswith("kapi start"), block.text
    run = box.run(start, foreground=True)
    assert run.ready and run.ready["insecure_port"] == 6080 and run.ready["backend"] == "file", run.ready
    assert Path(run.ready["file_rootpath"]) == box.home / ".kapi" / "data"
    box.shell("kubectl --kubeconfig ~/.kapi/data/kubeconfig create configmap readme-probe")
    stored = [p for p in (box.home / ".kapi" / "data").rglob("*") if p.is_file() and "readme-probe" in p.name]
    assert stored, "the configmap is not stored under ~/.kapi/data"
    assert httpx.get("http://127.0.0.1:6080/readyz").status_code == 200
    box.stop_everything()
    section.run_the_rest(box)


def test_quick_tour(box: Any) -> None:
    section = Section("A quick tour with kubectl")
    run = box.run(section.take("kapi start").text)
    box.check_statuses(run)
    rows = {line.split()[0]: line.split() for line in run.command("$K api-resources").stdout.splitlines()[1:]}
    assert {"pods", "deployments", "foos", "pizzas", "jenkinsservices"} <= set(rows) and rows["foos"][1] == "fo"
    assert run.command("$K get foos").stdout.splitlines()[0].split() == ["NAME", "IMAGE", "MESSAGE", "PHASE", "AGE"]
    assert run.command("$K get foos.v2.hello.zeng.dev hello").stdout == "hello world"
    header = run.command("$K get foos.v1.hello.zeng.dev").stdout.splitlines()[0].split()
    assert "MESSAGE" in header and "MESSAGE1" in header, header
    assert "msg1" in run.command("$K explain foos.spec.config").stdout
    assert json.loads(run.command("curl").stdout)["name"] == "margherita"
    assert "margherita" in run.command("$K get pizzas").stdout
    box.assert_nothing_left(run)
    section.run_the_rest(box)


def test_https_quick_start_and_static_tokens(box: Any) -> None:
    section = Section("HTTPS quick start")
    run = box.run(section.take("--name demo").text)
    box.check_statuses(run)
    assert "default" in run.command("kubectl --kubeconfig").stdout
    assert "kapi-demo" in (box.home / ".kube" / "config").read_text()
    whoami = normalised(run.command("kubectl --context kapi-demo auth whoami").stdout)
    assert "Username kubectl" in whoami and "system:masters" in whoami, whoami
    kubeconfig = yaml.safe_load((box.work / "demo-cert.kubeconfig").read_text())
    assert (box.work / "demo-cert.kubeconfig").stat().st_mode & 0o777 == 0o600
    pem = base64.b64decode(kubeconfig["users"][0]["user"]["client-certificate-data"])
    subject = x509.load_pem_x509_certificate(pem).subject
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "kapi-admin"
    assert json.loads(run.command("curl").stdout)["kind"] == "PizzaList"
    assert "ready" in run.command("kapi status demo").stdout
    box.assert_nothing_left(run)

    tokens = box.run(section.take("--token-auth-file").text, foreground=True)
    box.check_statuses(tokens)
    whoami = box.shell("kubectl --server https://127.0.0.1:8443 --certificate-authority ~/.kapi/data/cert/ca.crt "
                       "--token kapi-example-token-change-me auth whoami").stdout
    assert "alice" in whoami and "developers editors" in normalised(whoami), whoami
    box.stop_everything()
    section.run_the_rest(box)


RBAC = """\
apiVersion: v1
kind: Namespace
metadata: {name: operators}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: my-operator, namespace: operators}
"""
RBAC_SECRETS = """\
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: my-operator, namespace: operators}
rules: [{apiGroups: [""], resources: [secrets], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: my-operator, namespace: operators}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: my-operator}
subjects: [{kind: ServiceAccount, name: my-operator, namespace: operators}]
"""


def test_authorization(box: Any) -> None:
    section = Section("Authorization")
    run = box.run(section.take("--name rbac").text)
    box.check_statuses(run)
    assert "kube-root-ca.crt" in run.command("$K get configmaps --as bob").stdout
    assert run.command("$K auth can-i create deployments").stdout.strip() == "yes"
    rules = [line.split() for line in run.command("$K auth can-i --list").stdout.splitlines()]
    assert ["configmaps", "[]", "[]", "[get", "list", "watch]"] in rules, rules
    box.assert_nothing_left(run)

    # The operator's own deploy/rbac.yaml: with the Role the block runs; without it, the promised 403.
    block = section.take("start_server(")
    (box.work / "deploy").mkdir()
    (box.work / "deploy" / "rbac.yaml").write_text(RBAC + RBAC_SECRETS)
    result = box.python(block.text, "operator_test.py")
    assert result.returncode == 0, result.stderr
    (box.work / "deploy" / "rbac.yaml").write_text(RBAC)
    denied = box.python(block.text, "operator_test.py")
    assert denied.returncode != 0 and "ApiException" in denied.stderr and "403" in denied.stderr, denied.stderr
    section.run_the_rest(box)


def test_server_side_apply(box: Any) -> None:
    section = Section("Server-side apply and dry run")
    run = box.run(section.take("--server-side").text, shell="sh")
    box.check_statuses(run, expect={"kubectl diff -f cm.yaml": 1})  # diff exits 1: there is a difference
    assert run.command("kubectl apply --server-side -f cm.yaml").stdout == "configmap/app serverside-applied"
    assert "serverside-applied" in run.command("kubectl apply --server-side --field-manager ci --force").stdout
    managed = yaml.safe_load(run.command("kubectl get cm app").stdout)["metadata"]["managedFields"]
    owners = {m["manager"]: m["fieldsV1"]["f:data"] for m in managed}
    assert "f:mode" in owners["ci"] and "f:mode" not in owners.get("kubectl", {}), owners
    diff = run.command("kubectl diff -f cm.yaml").stdout
    assert "-  mode: safe" in diff and "+  mode: fast" in diff, diff
    assert "(server dry run)" in run.command("kubectl delete cm app --dry-run=server").stdout
    box.assert_nothing_left(run)
    section.run_the_rest(box)


def test_built_in_api(box: Any) -> None:
    section = Section("The built-in API")
    run = box.run(section.take("create deployment web").text)
    box.check_statuses(run)
    assert run.command("$K get deploy").stdout.splitlines()[0].split() == [
        "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    pods = [line.split() for line in run.command("$K run p1").stdout.splitlines()]
    assert any(row[:3] == ["p1", "0/1", "Pending"] for row in pods), pods
    service = [line.split() for line in run.command("$K get all").stdout.splitlines() if line.startswith("service/web")]
    assert service and service[0][2].startswith("10.0.0."), service
    assert "containers" in run.command("$K get all").stdout
    box.assert_nothing_left(run)
    section.run_the_rest(box)


def test_simulated_workloads(box: Any) -> None:
    section = Section("Simulated workloads")
    tour, clock = section.take("--simulate --detach"), section.take("--simulate-manual-clock")
    run = box.run(tour.text + clock.text)  # one shell: the second block uses the first one's $K
    box.check_statuses(run)
    assert 'deployment "web" successfully rolled out' in run.command("$K rollout status deployment/web").stdout
    assert "rolled back" in run.command("$K rollout undo").stdout
    header, *rows = [line.split() for line in run.command("$K get pods -o wide").stdout.splitlines()]
    assert header[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"] and rows, header
    assert all(r[2] == "Running" and r[5].startswith("10.") and r[6].startswith("kapi-node-") for r in rows), rows
    slices = run.command("$K get endpointslices").stdout
    assert any(r[5] in slices for r in rows), slices
    assert "condition met" in run.command("$K create job pi").stdout
    assert "condition met" in run.command("$K wait --for=jsonpath").stdout
    assert re.search(r"^tick-\d+ ", run.command("$K wait --for=jsonpath").stdout, re.M)
    now = json.loads(run.command("$K get --raw /kapi/simulation/clock").stdout)
    assert (now["manual"], now["speed"], now["nodes"]) == (True, 1.0, 3), now
    box.assert_nothing_left(run)
    section.run_the_rest(box)


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object,
     x-kubernetes-preserve-unknown-fields: true}}}
"""
# Appended to the README's pytest example: what its fixtures promise, checked in a test of the same kind.
PROMISES = """

@pytest.mark.kapi_snapshot("prepared")
def test_readme_promises(kapi_cluster, kapi_faults):
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(kapi_cluster.api_client())
    assert extensions.read_custom_resource_definition("widgets.example.com")   # forked with the CRD
    kapi_faults.conflict("configmaps", count=2)
    core = client.CoreV1Api(kapi_cluster.api_client())
    for _ in range(2):
        with pytest.raises(client.ApiException) as refused:
            core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
        assert refused.value.status == 409
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
"""


def test_logical_clusters(box: Any) -> None:
    section = Section("A cluster per test: logical clusters, snapshots and faults")
    run = box.run(section.take("/kapi/clusters").text)
    box.check_statuses(run)
    created = [c for c in run.commands if c.code.startswith("echo '{\"name\": \"team-a\"}'")]
    assert json.loads(created[0].stdout) == {"name": "team-a", "path": "/clusters/team-a"}
    assert "only-in-a" in run.command("kubectl --kubeconfig team-a.kubeconfig get configmaps").stdout
    clusters = json.loads(run.command("$K get --raw /kapi/clusters").stdout)["clusters"]
    assert [c["name"] for c in clusters] == ["root", "team-a", "fork-1"], clusters
    box.assert_nothing_left(run)

    block = section.take("def test_")
    (box.root / "pytest-block").mkdir()
    (box.root / "pytest-block" / "crd.yaml").write_text(CRD)
    result = box.python(block.text + PROMISES, "test_readme_block.py", "-m", "pytest", "-q", "-p",
                        "no:cacheprovider", cwd=box.root / "pytest-block")
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout + result.stderr
    section.run_the_rest(box)


def order(name: str, spec: str) -> str:
    return f"apiVersion: shop.example.com/v1\nkind: Order\nmetadata: {{name: {name}}}\nspec: {spec}\n"


def test_a_plugin_in_python(box: Any) -> None:
    section = Section("API groups in Python")
    block = section.take("plugin = Plugin(")
    assert len(block.text.splitlines()) < 40, "the README promises a whole plugin in a few lines"
    run = run_generic(box, block)  # its first line: `# shop.py: kapi start --plugin shop`
    assert isinstance(run, Run) and run.ready
    kubectl = "kubectl --kubeconfig ~/.kapi/data/kubeconfig"
    box.shell(f"{kubectl} apply -f -", input=order("tea", "{item: tea, quantity: 2}"))
    box.shell(f"{kubectl} apply -f -", input=order("cake", "{item: cake}"))
    assert box.shell(f"{kubectl} get order cake -o jsonpath='{{.spec.quantity}}'").stdout == "1"
    header, *rows = [line.split() for line in box.shell(f"{kubectl} get orders").stdout.splitlines()]
    assert header == ["NAME", "ITEM", "AGE"] and ["tea", "tea"] in [r[:2] for r in rows], (header, rows)
    for spec, error in (("{item: tea, quantity: 100}", "spec.quantity: Invalid value: 100: at most 99 at a time"),
                        ("{item: lunch}", 'orders.shop.example.com "bad" is forbidden: no free lunch'),
                        ("{quantity: 1}", "spec.item")):
        refused = box.shell(f"{kubectl} apply -f -", check=False, input=order("bad", spec))
        assert refused.returncode == 1 and error in refused.stderr, refused.stderr
    box.stop_everything()
    section.run_the_rest(box)


def test_etcd_several_servers(box: Any) -> None:
    section = Section("etcd: several servers, one store")
    run = box.run(section.take("scripts/etcd.py").text)
    box.check_statuses(run)
    assert "shared" in [c for c in run.commands if "get configmap shared" in c.code][0].stdout
    status = run.command("kapi status a").stdout
    assert "etcd ok" in status and status.count("leader") == 1 and status.count("follower") == 2, status
    box.assert_nothing_left(run)
    section.run_the_rest(box)


def test_conformance(conformance: tuple[Any, Any]) -> None:
    box, started = conformance
    section = Section("Conformance")
    section.take("--show")  # the replays, started by the fixture
    assert started is not None
    run = box.finish(started)
    box.check_statuses(run)
    today = re.search(r"Today: \*\*(\d+) exchanges, (\d+) identical, (\d+) differing only in accepted ways, "
                      r"(\d+) differing otherwise\*\*", README.read_text())
    assert today, "the README states today's figure"
    figure = "exchanges {}: identical {}, accepted differences {}, differing {}".format(*today.groups())
    plain, shown = run.command("python scripts/conformance.py"), run.command("python scripts/conformance.py --show")
    assert figure in plain.stdout and figure in shown.stdout, plain.stdout
    assert shown.stderr.count("(accepted)") >= int(today.group(3)) > plain.stderr.count("(accepted)") == 0

    # Recording needs a kube-apiserver; kapi stands in for it, so the command line is checked as printed.
    block = section.take("conformance.py record")
    assert all(placeholder in block.text for placeholder in ("PORT", "TOKEN", "[--only NAME]")), block.text
    box.materialise("scripts", "tests/conformance")  # record writes beside the script: into the copy
    port = free_port()
    box.shell(f"kapi start --detach --name record --backend memory --insecure-port 0 --secure-port {port} "
              f"--file-rootpath {box.tmp}/record")
    token = (box.tmp / "record" / "kubectl.token").read_text().strip()
    checked_in = (REPO / "tests" / "conformance" / "recorded" / "discovery.json").read_bytes()
    record = box.run(block.text.replace("PORT", str(port)).replace("TOKEN", token)
                     .replace("[--only NAME]", "--only discovery-legacy"))
    box.check_statuses(record)
    assert "tests/conformance/recorded/discovery.json: 1 scenarios" in record.stderr, record.stderr
    written = json.loads((box.work / "tests" / "conformance" / "recorded" / "discovery.json").read_text())
    assert written["_recorded_from"] != json.loads(checked_in)["_recorded_from"] and "discovery-legacy" in written
    assert (REPO / "tests" / "conformance" / "recorded" / "discovery.json").read_bytes() == checked_in
    box.stop_everything()
    section.run_the_rest(box)


HANDLED = {"Set-up", "A quick tour with kubectl", "HTTPS quick start", "Authorization", "Server-side apply and dry run",
           "The built-in API", "Simulated workloads", "A cluster per test: logical clusters, snapshots and faults",
           "API groups in Python", "etcd: several servers, one store", "Conformance"}


def test_every_other_block(box: Any) -> None:
    """Blocks under headings without a test above (new sections included) follow the generic rules."""
    others = [b for b in readme_blocks() if b.section not in HANDLED]
    for block in others:
        run_generic(box, block)
        box.stop_everything()
    assert HANDLED <= {b.section for b in readme_blocks()}, "a section tested above has lost its blocks"
