"""Files and manifests for `kapi.testing`: kubeconfigs, staged CRD directories, test users' token
file, and the documents of YAML manifests."""
from __future__ import annotations

import csv
import io
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import yaml

from kapi_certs.files import write_private


class KapiStartError(RuntimeError):
    """The server could not start (bad manifest, lifespan failure, not ready in time)."""


def write_kubeconfig(path: Path, url: str, *, name: str = "kapi", namespace: str | None = None,
                     impersonate: str | None = None, impersonate_groups: Sequence[str] = ()) -> Path:
    """Write a credential-free kubeconfig (cluster, user and context `name`) for `url`; returns `path`.

    `impersonate` (and `impersonate_groups`) make its clients act as that user (kubeconfig's `as`)."""
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    user: dict[str, Any] = {}
    if impersonate:
        user["as"] = impersonate
        if impersonate_groups:
            user["as-groups"] = list(impersonate_groups)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path

def staged_resource_dirs(resources: Iterable[str | Path], root: Path) -> tuple[Path, ...]:
    """Directories as they are; single manifest files are copied into one staging directory under `root`."""
    dirs: list[Path] = []
    files: list[Path] = []
    for item in map(lambda r: Path(r).expanduser().resolve(), resources):
        if item.is_dir():
            dirs.append(item)
        elif item.is_file():
            files.append(item)
        else:
            raise KapiStartError(f"resources: {item} is neither a file nor a directory")
    if files:
        staging = root / "resources"
        staging.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            shutil.copyfile(f, staging / f"{i:03d}-{f.name}")
        dirs.append(staging)
    return tuple(dirs)

def user_tokens(users: dict[str, Sequence[str]]) -> dict[str, str]:
    for name, groups in users.items():
        if not name or isinstance(groups, str):
            raise KapiStartError(f"users: {name!r} needs a name and a list of groups, not {groups!r}")
    return {name: secrets.token_urlsafe(24) for name in users}

def write_token_file(path: Path, tokens: dict[str, str], users: dict[str, Sequence[str]]) -> Path:
    """A kube token file for the declared test users (uid = their position)."""
    rows = [[token, name, str(1000 + i), ",".join(users[name])] for i, (name, token) in enumerate(tokens.items())]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    write_private(path, buffer.getvalue().encode())
    return path

def documents(objects: Iterable[dict[str, Any] | str | Path]) -> Iterator[dict[str, Any]]:
    for item in objects:
        if isinstance(item, dict):
            yield item
            continue
        for doc in yaml.safe_load_all(Path(item).read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "List":
                yield from doc.get("items") or []
            elif isinstance(doc, dict):
                yield doc
