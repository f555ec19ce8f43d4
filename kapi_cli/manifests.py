"""`kapi manifests`: the YAML that runs kapi as an aggregated API server for one group-version.

kube-apiserver proxies `/apis/<group>/<version>` to kapi's Service through an
APIService. kapi then asks kube-apiserver who the caller is and what it may do
(TokenReview, SubjectAccessReview: hence `system:auth-delegator`) and trusts the
front proxy's client CA from kube-system/extension-apiserver-authentication
(hence the auth-reader RoleBinding). The served CRDs travel in a ConfigMap.
"""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any, List, Optional

import typer
import yaml

from kapi.scheme.crd import CRDError, crd_files, load_crd_manifests

SERVING_DIR = "/var/run/kapi/serving"
RESOURCES_DIR = "/etc/kapi/resources"
STATE_DIR = "/var/lib/kapi"  # HOME: kapi's default --file-rootpath (service-account key) lives under it
SECURE_PORT = 8443
SERVICE_PORT = 443
CONFIGMAP_LIMIT = 1024 * 1024  # kube refuses larger ConfigMaps

# Every `kapi start` flag the Deployment relies on (after `--name <name>`); a test checks each is real.
START_ARGS: tuple[str, ...] = (
    "--backend", "memory", "--bind-address", "0.0.0.0", "--secure-port", str(SECURE_PORT),
    "--insecure-port", "0", "--no-examples", "--no-core-resources", "--resources", RESOURCES_DIR,
    "--kubectl-disabled", "--tls-cert-file", f"{SERVING_DIR}/tls.crt",
    "--tls-private-key-file", f"{SERVING_DIR}/tls.key",
    "--authentication-kubeconfig", "in-cluster", "--authorization-kubeconfig", "in-cluster",
)

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class _Dumper(yaml.SafeDumper):
    """yaml.safe_dump's dumper, writing multi-line strings (the CRDs in the ConfigMap) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(doc: Any) -> str:
    return str(yaml.dump(doc, Dumper=_Dumper, sort_keys=False))


def start_args(name: str) -> list[str]:
    """The container's `kapi start` arguments."""
    return ["--name", name, *START_ARGS]


def _check(pattern: re.Pattern[str], value: str, hint: str, what: str) -> None:
    """Refuse here a name kube would refuse at apply time, with the flag that set it."""
    if not pattern.match(value) or len(value) > 253:
        raise typer.BadParameter(f"{value!r} is not a valid {what}", param_hint=hint)


def read_crds(dirs: list[Path], group: str, version: str) -> dict[str, str]:
    """The group's CRDs as ConfigMap data (`<crd name>.yaml` → YAML), checked as `kapi start` checks them.

    Every CRD must be of `group` and serve `version`: the APIService routes only
    that group-version to kapi, so anything else would be unreachable.
    """
    data: dict[str, str] = {}
    for directory in dirs:
        try:
            files = crd_files(directory)
            docs = [(path, crd) for path in files for crd in load_crd_manifests(path)]
        except (CRDError, OSError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--resources") from None
        for path, crd in docs:
            crd_name = str(crd["metadata"]["name"])
            crd_group = crd["spec"]["group"]
            if crd_group != group:
                raise typer.BadParameter(
                    f"{path}: CRD {crd_name} is of group {crd_group!r}, not {group!r} "
                    "(one deployment serves one group: pass a directory with only that group's CRDs)",
                    param_hint="--resources")
            served = [v["name"] for v in crd["spec"]["versions"] if v.get("served", True)]
            if version not in served:
                raise typer.BadParameter(
                    f"{path}: CRD {crd_name} does not serve {version!r} (it serves {', '.join(served)}): "
                    "pass --version", param_hint="--resources")
            key = f"{crd_name}.yaml"
            if key in data:
                raise typer.BadParameter(f"{path}: CRD {crd_name} is defined twice", param_hint="--resources")
            data[key] = yaml.safe_dump(crd, sort_keys=False)
    if not data:
        raise typer.BadParameter(f"no CustomResourceDefinition of group {group!r} in "
                                 f"{', '.join(map(str, dirs))}", param_hint="--resources")
    if sum(len(k) + len(v.encode()) for k, v in data.items()) > CONFIGMAP_LIMIT:
        raise typer.BadParameter("the CRDs are larger than a ConfigMap may be (1 MiB)", param_hint="--resources")
    return data


def read_ca_bundle(path: Path) -> str:
    """Base64 of a PEM bundle, as APIService.spec.caBundle wants it."""
    pem = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise typer.BadParameter(f"{path} holds no PEM certificate", param_hint="--ca-bundle-file")
    return base64.b64encode(pem).decode("ascii")


def _meta(name: str, namespace: Optional[str], labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(labels)
    return meta


def _deployment(name: str, namespace: str, labels: dict[str, str], image: str, replicas: int,
                secret: str, configmap: str, checksum: str) -> dict[str, Any]:
    """kapi on port 8443, probed over HTTPS, with a read-only root and writable HOME and /tmp."""
    def probe(path: str, delay: int, period: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "https", "scheme": "HTTPS"},
                "initialDelaySeconds": delay, "periodSeconds": period, "failureThreshold": 3}

    container = {
        "name": "kapi", "image": image, "command": ["kapi", "start"], "args": start_args(name),
        "env": [{"name": "HOME", "value": STATE_DIR}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "ports": [{"name": "https", "containerPort": SECURE_PORT, "protocol": "TCP"}],
        "readinessProbe": probe("/readyz", 2, 5),
        "livenessProbe": probe("/livez", 15, 20),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"name": "serving-cert", "mountPath": SERVING_DIR, "readOnly": True},
            {"name": "resources", "mountPath": RESOURCES_DIR, "readOnly": True},
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                # A changed CRD set changes the checksum, so the pods restart and load it.
                "metadata": {"labels": dict(labels), "annotations": {"checksum/resources": checksum}},
                "spec": {
                    "serviceAccountName": name,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "serving-cert", "secret": {"secretName": secret}},
                        {"name": "resources", "configMap": {"name": configmap}},
                        {"name": "state", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def build_manifests(*, name: str, namespace: str, group: str, version: str, image: str,
                    crds: dict[str, str], serving_cert_secret: str, replicas: int = 1,
                    ca_bundle: Optional[str] = None, group_priority_minimum: int = 1000,
                    version_priority: int = 15, create_namespace: bool = True) -> list[dict[str, Any]]:
    """The objects in apply order: the namespace and identity first, the APIService (which routes traffic) last."""
    labels = {"app.kubernetes.io/name": "kapi", "app.kubernetes.io/instance": name}
    sa = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    configmap = f"{name}-resources"
    checksum = hashlib.sha256(yaml.safe_dump(crds, sort_keys=True).encode()).hexdigest()
    service_ref = {"namespace": namespace, "name": name, "port": SERVICE_PORT}
    trust: dict[str, Any] = {"caBundle": ca_bundle} if ca_bundle else {"insecureSkipTLSVerify": True}
    docs: list[dict[str, Any]] = []
    if create_namespace:
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace, None, labels)})
    docs += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace, labels)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(f"{name}:system:auth-delegator", None, labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
         "subjects": [dict(sa)]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(f"{name}-auth-reader", "kube-system", labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "extension-apiserver-authentication-reader"},
         "subjects": [dict(sa)]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(configmap, namespace, labels), "data": crds},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, labels),
         "spec": {"selector": dict(labels),
                  "ports": [{"name": "https", "port": SERVICE_PORT, "targetPort": SECURE_PORT, "protocol": "TCP"}]}},
        _deployment(name, namespace, labels, image, replicas, serving_cert_secret, configmap, checksum),
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": _meta(f"{version}.{group}", None, labels),
         "spec": {"group": group, "version": version, "service": service_ref,
                  "groupPriorityMinimum": group_priority_minimum, "versionPriority": version_priority, **trust}},
    ]
    return docs


def render(docs: list[dict[str, Any]], header: str = "") -> str:
    """One multi-document YAML stream, keys in the order kube prints them."""
    return header + "".join("---\n" + _dump(doc) for doc in docs)


def _header(name: str, namespace: str, secret: str, version: str, group: str) -> str:
    """What the YAML needs that it cannot hold: the serving certificate (a key is no thing to print)."""
    return (f"# kapi as the aggregated API server for {group}/{version}: generated by `kapi manifests`.\n"
            f"# Needs the kubernetes.io/tls Secret {namespace}/{secret}, for the DNS name {name}.{namespace}.svc:\n"
            f"#   kubectl -n {namespace} create secret tls {secret} --cert=tls.crt --key=tls.key\n")


def manifests(
    group: str = typer.Option(..., help="The API group to serve (each CRD's spec.group)."),
    version: str = typer.Option("v1", help="The version of the group the APIService routes to kapi."),
    resources: List[Path] = typer.Option(
        ..., "--resources", exists=True, file_okay=False, help="Directory of the group's CRD manifests (repeatable)."),
    namespace: str = typer.Option("kapi-system", help="Namespace of kapi's Deployment, Service and ServiceAccount."),
    name: str = typer.Option("kapi", help="Name of the Deployment, Service, ServiceAccount and kapi instance."),
    image: str = typer.Option("kapi:latest", help="Container image (configs/docker/Dockerfile builds one)."),
    ca_bundle_file: Optional[Path] = typer.Option(
        None, exists=True, dir_okay=False,
        help="PEM CA that signed the serving certificate (else the APIService skips TLS verification)."),
    serving_cert_secret: Optional[str] = typer.Option(
        None, help="kubernetes.io/tls Secret with kapi's serving certificate (default: <name>-serving-cert)."),
    replicas: int = typer.Option(1, min=1, help="Pods (each keeps its own in-memory store)."),
    group_priority_minimum: int = typer.Option(1000, min=1, max=20000, help="APIService groupPriorityMinimum."),
    version_priority: int = typer.Option(15, min=1, max=1000, help="APIService versionPriority."),
    create_namespace: bool = typer.Option(True, "--create-namespace/--no-create-namespace",
                                          help="Include the Namespace object."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
) -> None:
    """Print the manifests that deploy kapi in a cluster as the aggregated API server of one group-version."""
    _check(_DNS1035, name, "--name", "name (DNS-1035 label: it names a Service)")
    _check(_DNS1123_LABEL, namespace, "--namespace", "namespace name (DNS-1123 label)")
    _check(_DNS1123_SUBDOMAIN, group, "--group", "API group (DNS-1123 subdomain)")
    _check(_DNS1035, version, "--version", "API version (DNS-1035 label, e.g. v1, v1alpha1)")
    secret = serving_cert_secret or f"{name}-serving-cert"
    _check(_DNS1123_SUBDOMAIN, secret, "--serving-cert-secret", "Secret name")
    if not image.strip():
        raise typer.BadParameter("an image is required", param_hint="--image")
    crds = read_crds(list(resources), group, version)
    ca_bundle = read_ca_bundle(ca_bundle_file) if ca_bundle_file is not None else None
    if replicas > 1:
        typer.echo(f"warning: {replicas} replicas of the memory backend do not share objects: "
                   "a client sees whichever pod answers", err=True)
    docs = build_manifests(name=name, namespace=namespace, group=group, version=version, image=image, crds=crds,
                           serving_cert_secret=secret, replicas=replicas, ca_bundle=ca_bundle,
                           group_priority_minimum=group_priority_minimum, version_priority=version_priority,
                           create_namespace=create_namespace)
    text = render(docs, _header(name, namespace, secret, version, group))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(docs)} objects to {output}", err=True)
