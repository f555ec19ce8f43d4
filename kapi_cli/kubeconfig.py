"""Print, write or merge a kubeconfig for a kapi instance.

By default the kubeconfig points at the instance's HTTPS URL with kapi's CA
embedded (`certificate-authority-data`) and authenticates with the kubectl
token from `<root>/kubectl.token`. `--client-cert` embeds the client
certificate and key from `<root>/cert/` instead; `--insecure-http` points at
the HTTP URL (note: kubectl sends no credentials over plain HTTP, the Python
client does). Cluster, user and context are all named `kapi-<name>`.

`build_kubeconfig` is the one builder, used by this command and by
`kapi start` (which writes `<root>/kubeconfig`).
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.console import Console

from kapi_certs.files import write_private
from kapi_certs.layout import CertPaths
from kapi_cli import state as st
from kapi_cli.probe import read_token

console = Console(stderr=True, soft_wrap=True)
DEFAULT_ROOT = Path.home() / ".kapi" / "data"
DEFAULT_SECURE_PORT = 8443
DEFAULT_INSECURE_PORT = 6080


class KubeconfigError(Exception):
    """The kubeconfig cannot be built (missing CA, token, certificate, port...)."""


def entry_name(name: str) -> str:
    return f"kapi-{name}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_kubeconfig(name: str, server: str, *, ca_pem: Optional[bytes] = None, token: Optional[str] = None,
                     client_cert_pem: Optional[bytes] = None, client_key_pem: Optional[bytes] = None,
                     ) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, all named `kapi-<name>`, and it as current context."""
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("a client certificate needs its key (and the other way round)")
    entry = entry_name(name)
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = _b64(ca_pem)
    user: dict[str, Any] = {}
    if client_cert_pem is not None and client_key_pem is not None:
        user["client-certificate-data"] = _b64(client_cert_pem)
        user["client-key-data"] = _b64(client_key_pem)
    if token is not None:
        user["token"] = token
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": entry, "cluster": cluster}],
        "users": [{"name": entry, "user": user}],
        "contexts": [{"name": entry, "context": {"cluster": entry, "user": entry}}],
        "current-context": entry,
        "preferences": {},
    }


def to_yaml(config: dict[str, Any]) -> str:
    return str(yaml.safe_dump(config, sort_keys=False, default_flow_style=False))


@dataclass(frozen=True)
class Target:
    """Where an instance is and how it was started: enough to build its kubeconfig."""

    name: str
    root: Path
    bind_address: str = "127.0.0.1"
    secure_port: int = DEFAULT_SECURE_PORT
    insecure_port: int = DEFAULT_INSECURE_PORT
    kubectl_disabled: bool = False

    @classmethod
    def from_state(cls, s: st.InstanceState) -> Target:
        return cls(s.name, s.root, s.bind_address, s.secure_port, s.insecure_port, s.kubectl_disabled)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KubeconfigError(f"{what} {path} does not exist (run `kapi gen-certs` or start the instance)") from None
    except OSError as exc:
        raise KubeconfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def kubeconfig_for(target: Target, *, client_cert: bool = False, insecure_http: bool = False,
                   server: Optional[str] = None, cluster: Optional[str] = None) -> dict[str, Any]:
    """Read the CA, token or client certificate under the instance's root and build its kubeconfig.

    With `cluster`, it points at that logical cluster (`<server>/clusters/<cluster>`), its entries named
    `kapi-<instance>-<cluster>`."""
    paths = CertPaths(target.root / "cert")
    if server is None:
        if insecure_http:
            if not target.insecure_port:
                raise KubeconfigError(f"instance {target.name!r} has no HTTP port (--insecure-port 0)")
            server = st.http_url(target.bind_address, target.insecure_port)
        else:
            if not target.secure_port:
                raise KubeconfigError(
                    f"instance {target.name!r} has no HTTPS port (--secure-port 0): use --insecure-http")
            server = st.https_url(target.bind_address, target.secure_port)
    https = server.startswith("https://")
    ca_pem = _read(paths.ca_crt, "CA certificate") if https else None
    name = target.name
    if cluster is not None:
        server, name = f"{server.rstrip('/')}/clusters/{_cluster_name(cluster)}", f"{target.name}-{cluster}"
    if client_cert:
        if not https:
            raise KubeconfigError("--client-cert needs HTTPS: a client certificate means nothing over plain HTTP")
        return build_kubeconfig(name, server, ca_pem=ca_pem,
                                client_cert_pem=_read(paths.client_crt, "client certificate"),
                                client_key_pem=_read(paths.client_key, "client key"))
    token_path = target.root / "kubectl.token"
    if target.kubectl_disabled:
        raise KubeconfigError(
            f"instance {target.name!r} runs with --kubectl-disabled: there is no kubectl token "
            "(use --client-cert for a certificate kubeconfig)")
    token = read_token(target.root)
    if token is None:
        raise KubeconfigError(
            f"no kubectl token at {token_path} (was the instance started with --kubectl-disabled?); "
            "use --client-cert for a certificate kubeconfig")
    return build_kubeconfig(name, server, ca_pem=ca_pem, token=token)


def _cluster_name(cluster: str) -> str:
    from kapi.clusters.clusterset import check_name
    from kapi.api.errors import StatusError

    try:
        return check_name(cluster, "cluster")
    except StatusError as exc:
        raise KubeconfigError(f"--cluster: {exc.message}") from None


# -- merging ------------------------------------------------------------------------------------------------
def default_merge_path() -> Path:
    """The first path of `$KUBECONFIG`, else `~/.kube/config` (where kubectl writes)."""
    for part in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if part.strip():
            return Path(part.strip()).expanduser()
    return Path.home() / ".kube" / "config"


def merge_kubeconfig(existing: Optional[dict[str, Any]], new: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`existing` with `new`'s clusters, users and contexts added or replaced by name; nothing else touched.

    current-context is set to `new`'s only when `existing` has none. Returns (merged, current_context_set).
    """
    merged: dict[str, Any] = dict(existing or {})
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for key in ("clusters", "users", "contexts"):
        entries = [e for e in (merged.get(key) or []) if isinstance(e, dict)]
        others = [e for e in (merged.get(key) or []) if not isinstance(e, dict)]
        for item in new.get(key) or []:
            for i, entry in enumerate(entries):
                if entry.get("name") == item["name"]:
                    entries[i] = item
                    break
            else:
                entries.append(item)
        merged[key] = entries + others
    set_current = not merged.get("current-context")
    if set_current:
        merged["current-context"] = new["current-context"]
    merged.setdefault("preferences", {})
    return merged, set_current


def _load_kubeconfig(path: Path) -> Optional[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KubeconfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"{path} is not valid YAML ({exc}); not touching it") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise KubeconfigError(f"{path} is not a kubeconfig (not a mapping); not touching it")
    return data


def merge_into(path: Path, new: dict[str, Any]) -> bool:
    """Merge `new` into the kubeconfig at `path` (created 0600 if missing). Returns current_context_set."""
    target = path.resolve() if path.is_symlink() else path
    merged, set_current = merge_kubeconfig(_load_kubeconfig(target), new)
    write_private(target, to_yaml(merged).encode("utf-8"))
    return set_current


# -- resolving the instance ---------------------------------------------------------------------------------
def resolve_target(name: Optional[str], file_rootpath: Optional[Path], server: Optional[str]) -> Target:
    if file_rootpath is not None:
        root = file_rootpath.expanduser().resolve()
        matches = [s for s in st.all_states() if Path(s.file_rootpath) == root and (name is None or s.name == name)]
        matches.sort(key=lambda s: not s.alive())
        if matches:
            return Target.from_state(matches[0])
        if server is None:
            console.print(f"[yellow]note:[/yellow] no recorded instance uses {root}; assuming "
                          f"{st.https_url('127.0.0.1', DEFAULT_SECURE_PORT)} "
                          f"(http port {DEFAULT_INSECURE_PORT}); pass --server to choose")
        return Target(name or "default", root)
    name = name or "default"
    found = st.read_state(name)
    if found is None:
        raise KubeconfigError(
            f"no instance named {name!r} is recorded under {st.instances_dir()}; "
            "start it, or pass --file-rootpath ROOT (and --server URL)")
    if not found.alive():
        console.print(f"[yellow]note:[/yellow] instance {name!r} is not running (pid {found.pid} is gone); "
                      "the kubeconfig points at its last address")
    return Target.from_state(found)


def kubeconfig(
    name: Optional[str] = typer.Option(None, "--name", help="Instance name (default: default)."),
    file_rootpath: Optional[Path] = typer.Option(
        None, "--file-rootpath", help="The instance's root (where cert/ and kubectl.token live)."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write to FILE (mode 0600) instead of printing; with --merge, merge into FILE."),
    client_cert: bool = typer.Option(False, "--client-cert", help="Authenticate with kapi's client certificate."),
    insecure_http: bool = typer.Option(False, "--insecure-http",
                                       help="Point at the HTTP port (kubectl sends no credentials over HTTP)."),
    merge: bool = typer.Option(False, "--merge",
                               help="Add or replace kapi-<name> in $KUBECONFIG (first path) or ~/.kube/config."),
    server: Optional[str] = typer.Option(None, "--server", help="Server URL to put in the kubeconfig instead."),
    cluster: Optional[str] = typer.Option(None, "--cluster",
                                          help="A logical cluster of the instance (POST /kapi/clusters makes one)."),
) -> None:
    """Print, write or merge a kubeconfig for a kapi instance (HTTPS + token by default)."""
    try:
        if name is not None:
            st.validate_name(name)
        target = resolve_target(name, file_rootpath, server)
        config = kubeconfig_for(target, client_cert=client_cert, insecure_http=insecure_http, server=server,
                                cluster=cluster)
        entry = config["current-context"]
        if merge:
            path = output or default_merge_path()
            set_current = merge_into(path, config)
            console.print(f"merged cluster, user and context [cyan]{entry}[/cyan] into {path}")
            if set_current:
                console.print(f"current-context set to {entry} (none was set)")
            else:
                console.print(f"current-context unchanged; use it with: kubectl config use-context {entry}")
        elif output is not None:
            write_private(output, to_yaml(config).encode("utf-8"))
            console.print(f"wrote {output} (mode 0600); use it with: kubectl --kubeconfig {output} get namespaces")
        else:
            typer.echo(to_yaml(config), nl=False)
    except (KubeconfigError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
