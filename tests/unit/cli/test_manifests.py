"""`kapi manifests`: the objects that deploy kapi as an aggregated API server (no cluster, no server)."""
from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from kapi_cli import manifests as mf
from kapi_cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]
PIZZAS = REPO / "configs" / "resources" / "pizzas.restaurant.wukong.com.yaml"
JENKINS = REPO / "configs" / "resources" / "jenkinsservices.autobusi.group.cicd.yaml"
GROUP = "restaurant.wukong.com"
CA = b"-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"


@pytest.fixture
def crds(tmp_path: Path) -> Path:
    """A directory with only the restaurant group's CRD (configs/resources also holds another group)."""
    directory = tmp_path / "crds"
    directory.mkdir()
    shutil.copy(PIZZAS, directory)
    return directory


def run(*args: str) -> Any:
    return runner.invoke(app, ["manifests", *args])


def says(result: Any, text: str) -> bool:
    """Whether the (rich, boxed and wrapped) output holds `text`: compared without borders and whitespace."""
    flat = "".join(ch for ch in result.output if ch not in "│╭╮╰╯─" and not ch.isspace())
    return "".join(text.split()) in flat


def generate(crds: Path, *args: str) -> list[dict[str, Any]]:
    result = run("--group", GROUP, "--version", "v1alpha1", "--resources", str(crds), *args)
    assert result.exit_code == 0, result.output
    return documents(result.stdout)


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {d["kind"]: d for d in docs}


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(only)


# -- the objects -------------------------------------------------------------------------------------------
def test_kinds_names_and_namespaces_in_apply_order(crds: Path) -> None:
    docs = generate(crds)
    assert [(d["apiVersion"], d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs] == [
        ("v1", "Namespace", "kapi-system", None),
        ("v1", "ServiceAccount", "kapi", "kapi-system"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "kapi:system:auth-delegator", None),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", "kapi-auth-reader", "kube-system"),
        ("v1", "ConfigMap", "kapi-resources", "kapi-system"),
        ("v1", "Service", "kapi", "kapi-system"),
        ("apps/v1", "Deployment", "kapi", "kapi-system"),
        ("apiregistration.k8s.io/v1", "APIService", f"v1alpha1.{GROUP}", None),
    ]


def test_name_and_namespace_options(crds: Path) -> None:
    docs = generate(crds, "--name", "pizza-api", "--namespace", "food", "--no-create-namespace")
    kinds = by_kind(docs)
    assert "Namespace" not in kinds
    assert {d["metadata"].get("namespace") for d in docs} == {"food", "kube-system", None}
    assert kinds["ClusterRoleBinding"]["metadata"]["name"] == "pizza-api:system:auth-delegator"
    assert kinds["RoleBinding"]["metadata"]["name"] == "pizza-api-auth-reader"
    assert kinds["APIService"]["spec"]["service"] == {"namespace": "food", "name": "pizza-api", "port": 443}
    assert container(docs)["args"][:2] == ["--name", "pizza-api"]


def test_rbac_binds_the_service_account(crds: Path) -> None:
    kinds = by_kind(generate(crds, "--namespace", "food"))
    subject = [{"kind": "ServiceAccount", "name": "kapi", "namespace": "food"}]
    crb, rb = kinds["ClusterRoleBinding"], kinds["RoleBinding"]
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "system:auth-delegator"}
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "extension-apiserver-authentication-reader"}
    assert crb["subjects"] == rb["subjects"] == subject
    assert kinds["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "kapi"


def test_apiservice_defaults_skip_tls_verify(crds: Path) -> None:
    api = by_kind(generate(crds))["APIService"]
    assert api["spec"] == {"group": GROUP, "version": "v1alpha1",
                           "service": {"namespace": "kapi-system", "name": "kapi", "port": 443},
                           "groupPriorityMinimum": 1000, "versionPriority": 15, "insecureSkipTLSVerify": True}


def test_apiservice_ca_bundle_and_priorities(crds: Path, tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(CA)
    spec = by_kind(generate(crds, "--ca-bundle-file", str(tmp_path / "ca.crt"), "--group-priority-minimum", "2000",
                            "--version-priority", "20"))["APIService"]["spec"]
    assert base64.b64decode(spec["caBundle"]) == CA
    assert "insecureSkipTLSVerify" not in spec
    assert (spec["groupPriorityMinimum"], spec["versionPriority"]) == (2000, 20)


def test_ca_bundle_must_be_pem(crds: Path, tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not a certificate")
    result = run("--group", GROUP, "--version", "v1alpha1", "--resources", str(crds),
                 "--ca-bundle-file", str(tmp_path / "ca.crt"))
    assert result.exit_code == 2 and says(result, "holds no PEM certificate")


def test_service_and_deployment(crds: Path) -> None:
    kinds = by_kind(generate(crds, "--image", "registry.example/kapi:0.1.0", "--replicas", "1"))
    service, deployment = kinds["Service"], kinds["Deployment"]
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"] == labels
    assert deployment["spec"]["replicas"] == 1
    box = container(list(kinds.values()))
    assert box["image"] == "registry.example/kapi:0.1.0"
    assert box["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        assert box[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}


def test_volumes_mount_the_secret_and_the_configmap(crds: Path) -> None:
    docs = generate(crds)
    pod = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    assert volumes[mounts["/var/run/kapi/serving"]]["secret"] == {"secretName": "kapi-serving-cert"}
    assert volumes[mounts["/etc/kapi/resources"]]["configMap"] == {"name": "kapi-resources"}
    custom = by_kind(generate(crds, "--serving-cert-secret", "my-tls"))["Deployment"]
    assert {"name": "serving-cert", "secret": {"secretName": "my-tls"}} in custom["spec"]["template"]["spec"]["volumes"]


def test_container_runs_delegated_kapi_start(crds: Path) -> None:
    box = container(generate(crds))
    assert box["command"] + box["args"] == (
        "kapi start --name kapi --backend memory --bind-address 0.0.0.0 --secure-port 8443 --insecure-port 0 "
        "--no-examples --no-core-resources --resources /etc/kapi/resources --kubectl-disabled "
        "--tls-cert-file /var/run/kapi/serving/tls.crt --tls-private-key-file /var/run/kapi/serving/tls.key "
        "--authentication-kubeconfig in-cluster --authorization-kubeconfig in-cluster").split()


def test_replicas_warn_that_memory_stores_are_not_shared(crds: Path) -> None:
    result = run("--group", GROUP, "--version", "v1alpha1", "--resources", str(crds), "--replicas", "2")
    assert result.exit_code == 0, result.output
    assert "do not share objects" in result.stderr and "do not share" not in result.stdout
    assert by_kind(documents(result.stdout))["Deployment"]["spec"]["replicas"] == 2


def test_configmap_holds_the_crds(crds: Path) -> None:
    data = by_kind(generate(crds))["ConfigMap"]["data"]
    assert list(data) == ["pizzas.restaurant.wukong.com.yaml"]
    assert yaml.safe_load(data["pizzas.restaurant.wukong.com.yaml"]) == yaml.safe_load(PIZZAS.read_text())


def test_output_file(crds: Path, tmp_path: Path) -> None:
    out = tmp_path / "kapi.yaml"
    result = run("--group", GROUP, "--version", "v1alpha1", "--resources", str(crds), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "apiVersion" not in result.stdout
    assert len([d for d in yaml.safe_load_all(out.read_text()) if d]) == 8


# -- refusals ----------------------------------------------------------------------------------------------
def test_crd_of_another_group_is_refused(crds: Path) -> None:
    shutil.copy(JENKINS, crds)
    result = run("--group", GROUP, "--version", "v1alpha1", "--resources", str(crds))
    assert result.exit_code == 2
    assert says(result, "CRD jenkinsservices.autobusi.group.cicd is of group 'autobusi.group.cicd', "
                        f"not '{GROUP}'")


def test_resources_are_required() -> None:
    result = run("--group", GROUP)
    assert result.exit_code == 2 and says(result, "Missing option '--resources'")


def test_version_the_crds_do_not_serve_is_refused(crds: Path) -> None:
    result = run("--group", GROUP, "--resources", str(crds))  # default version v1; pizzas serve v1alpha1
    assert result.exit_code == 2 and says(result, "does not serve 'v1' (it serves v1alpha1)")


def test_directory_without_crds_is_refused(tmp_path: Path) -> None:
    result = run("--group", GROUP, "--resources", str(tmp_path))
    assert result.exit_code == 2 and says(result, f"no CustomResourceDefinition of group '{GROUP}'")


@pytest.mark.parametrize(("flag", "value"), [("--name", "Bad_Name"), ("--namespace", "a.b"),
                                             ("--group", "Not A Group"), ("--version", "1")])
def test_invalid_names_are_refused(crds: Path, flag: str, value: str) -> None:
    args = {"--group": GROUP, "--version": "v1alpha1", flag: value}
    result = run(*[x for kv in args.items() for x in kv], "--resources", str(crds))
    assert result.exit_code == 2 and says(result, f"Invalid value for {flag}: '{value}' is not a valid")


def test_read_crds_names_the_option(crds: Path) -> None:
    with pytest.raises(typer.BadParameter) as exc:
        mf.read_crds([crds], "other.example.com", "v1alpha1")
    assert exc.value.param_hint == "--resources"


# -- the flags exist ---------------------------------------------------------------------------------------
def start_options() -> set[str]:
    """Every option string of `kapi start`, read from the Typer command itself."""
    start = typer.main.get_command(app).commands["start"]  # type: ignore[attr-defined]
    return {opt for param in start.params for opt in (*param.opts, *param.secondary_opts)}


def test_every_container_flag_is_a_kapi_start_option() -> None:
    """Fails until `kapi start` has the delegated-serving flags (--tls-cert-file, --authentication-kubeconfig...)."""
    flags = [arg for arg in mf.start_args("kapi") if arg.startswith("--")]
    missing = [flag for flag in flags if flag not in start_options()]
    assert not missing, f"`kapi manifests` runs `kapi start` with options it does not have: {missing}"
