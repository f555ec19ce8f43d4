"""A structural lint of configs/docker/Dockerfile, in Python: no Docker engine or hadolint needed.

The checks are the ones that matter for `kapi manifests`' Deployment: a reproducible base,
a numeric non-root user (`runAsNonRoot` can only verify a number), an exec-form
ENTRYPOINT (signals reach kapi, not a shell), every package kapi imports, port 8443,
and a CMD that is the Deployment's own flags.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kapi_cli import manifests as mf

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "configs" / "docker" / "Dockerfile"
PACKAGES = ("kapi_cli", "server", "certs", "configs")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not pending and not line):
            continue  # Docker drops comment lines, even inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def args_of(steps: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in steps if kw == keyword]


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) instruction's words; fails on shell form."""
    try:
        words = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"not exec (JSON) form: {args}")
    assert isinstance(words, list) and all(isinstance(w, str) for w in words), args
    return words


def test_parser_joins_continuations() -> None:
    assert instructions("# c\nFROM a:1\nRUN x \\\n  # inner\n    && y\n") == [("FROM", "a:1"), ("RUN", "x && y")]


def test_from_is_pinned_to_a_tag(steps: list[tuple[str, str]]) -> None:
    (base,) = args_of(steps, "FROM")
    image = base.split()[0]
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    assert tag and tag != "latest", f"FROM {image}: pin a tag"
    assert name == "python" and tag.startswith("3.11"), image


def test_runs_as_a_numeric_non_root_user_before_entrypoint(steps: list[tuple[str, str]]) -> None:
    keywords = [kw for kw, _ in steps]
    users = args_of(steps, "USER")
    assert users, "no USER: the container would run as root"
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: use a non-zero number"


def test_entrypoint_and_cmd_in_exec_form(steps: list[tuple[str, str]]) -> None:
    (entrypoint,) = args_of(steps, "ENTRYPOINT")
    assert exec_form(entrypoint) == ["kapi", "start"]
    (cmd,) = args_of(steps, "CMD")
    exec_form(cmd)


def test_cmd_is_the_deployments_flags_without_resources(steps: list[tuple[str, str]]) -> None:
    (cmd,) = args_of(steps, "CMD")
    expected = mf.start_args("kapi")
    i = expected.index("--resources")
    del expected[i:i + 2]
    assert exec_form(cmd) == expected


def test_copies_every_package_kapi_needs(steps: list[tuple[str, str]]) -> None:
    sources = {src.rstrip("/") for args in args_of(steps, "COPY") for src in args.split()[:-1]
               if not src.startswith("--")}
    assert {"pyproject.toml", "README.md", *PACKAGES} <= sources
    for package in PACKAGES:
        assert (REPO / package / "__init__.py").is_file(), package


def test_exposes_8443(steps: list[tuple[str, str]]) -> None:
    ports = {p.split("/")[0] for args in args_of(steps, "EXPOSE") for p in args.split()}
    assert str(mf.SECURE_PORT) in ports


def test_no_add_of_urls(steps: list[tuple[str, str]]) -> None:
    for args in args_of(steps, "ADD"):
        assert not re.search(r"\b(https?|ftp)://", args), f"ADD {args}: fetch with a checked RUN, or COPY"


def test_pip_installs_without_cache(steps: list[tuple[str, str]]) -> None:
    pip_runs = [args for args in args_of(steps, "RUN") if re.search(r"\bpip3? install\b", args)]
    assert pip_runs, "no pip install"
    for args in pip_runs:
        for command in re.split(r"&&|;", args):
            if re.search(r"\bpip3? install\b", command):
                assert "--no-cache-dir" in command, command
