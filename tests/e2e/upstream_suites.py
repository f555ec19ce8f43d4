"""Third-party test suites run against kapi: obtained from PyPI at test time, never stored here.

The source distribution of each installed client (`kubernetes`, `kopf`) is fetched once with
`pip download --no-deps --no-binary :all: <name>==<installed version>` and unpacked into a cache:
pytest's cache when the cache provider is on (so later runs skip the download), else the
session's temporary directory. The suites then run from the unpacked tree in a subprocess
(`python -m pytest`), each pointed at a kapi server its test started, and their outcomes are
read back from a JUnit XML report.

Test modules load this file by path (the suite is imported in importlib mode, so tests/e2e is
not on sys.path), under the one module name `kapi_e2e_upstream_suites`.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

# The clients whose sdists are fetched together (one pip run, ~15 s, for both).
SDISTS = ("kubernetes", "kopf")
PIP_TIMEOUT = 300.0

# Environment variables of the outer pytest run that must not leak into a suite's own run.
_OUTER_ENV = ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "PYTEST_PLUGINS", "PYTEST_VERSION",
              "KUBECONFIG", "KUBECACHEDIR", "PYTHONPATH")


def installed_version(dist: str) -> str:
    return importlib.metadata.version(dist)


def cache_dir(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where sdists are unpacked: pytest's cache if it is on, else this session's base temp dir."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("kapi-upstream-suites"))
    path = tmp_path_factory.getbasetemp() / "upstream-suites"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pip(*args: str, cwd: Path) -> None:
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]
    try:
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd)} took more than {PIP_TIMEOUT:.0f}s")
    if result.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _archive_for(downloads: Path, dist: str, version: str) -> Path:
    wanted = f"{dist}-{version}".lower().replace("_", "-")
    for path in downloads.iterdir():
        if path.name.endswith(".tar.gz") and path.name[:-len(".tar.gz")].lower().replace("_", "-") == wanted:
            return path
    pytest.fail(f"pip download left no sdist of {dist}=={version} in {downloads}: "
                f"{sorted(p.name for p in downloads.iterdir())}")


def sdist(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory, dist: str) -> Path:
    """The unpacked sdist of the installed `dist`, downloaded (with the other SDISTS) if not cached."""
    root = cache_dir(config, tmp_path_factory)
    versions = {name: installed_version(name) for name in SDISTS}
    target = root / f"{dist}-{versions[dist]}"
    if (target / ".complete").exists():
        return target
    missing = [name for name in SDISTS if not (root / f"{name}-{versions[name]}" / ".complete").exists()]
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        downloads = Path(tmp) / "downloads"
        _pip("download", "--no-deps", "--no-binary", ":all:", "-d", str(downloads),
             *(f"{name}=={versions[name]}" for name in missing), cwd=Path(tmp))
        for name in missing:
            unpacked = Path(tmp) / f"unpacked-{name}"
            with tarfile.open(_archive_for(downloads, name, versions[name])) as archive:
                archive.extractall(unpacked, filter="data")
            (top,) = unpacked.iterdir()  # an sdist holds one directory, <name>-<version>
            (top / ".complete").write_text(f"{name}=={versions[name]}\n")
            final = root / f"{name}-{versions[name]}"
            shutil.rmtree(final, ignore_errors=True)  # a half-written tree from an interrupted run
            try:
                top.rename(final)
            except OSError:
                if not (final / ".complete").exists():  # another session won the race, or not
                    raise
    return target


def pip_target(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory, requirement: str) -> Path:
    """A directory (for PYTHONPATH) holding `requirement` installed without its dependencies."""
    target = cache_dir(config, tmp_path_factory) / ("site-" + requirement.replace("==", "-"))
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        _pip("install", "--no-deps", "--target", str(target), requirement, cwd=target.parent)
        (target / ".complete").write_text(requirement + "\n")
    return target


def write_kubeconfig(path: Path, url: str, namespace: str = "default") -> Path:
    """A kubeconfig for a kapi on plain HTTP: no credentials (the server trusts loopback)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kapi",
        "clusters": [{"name": "kapi", "cluster": {"server": url}}],
        "users": [{"name": "loopback", "user": {}}],
        "contexts": [{"name": "kapi", "context": {"cluster": "kapi", "user": "loopback", "namespace": namespace}}],
    }))
    return path


# ---------------------------------------------------------------- running a suite

@dataclass
class Case:
    nodeid: str
    outcome: str  # passed, failed, error, skipped
    message: str = ""


@dataclass
class SuiteRun:
    """One `python -m pytest` over a third-party suite, and what each of its tests did."""

    cmd: list[str]
    cwd: Path
    returncode: int
    output_path: Path
    cases: list[Case] = field(default_factory=list)

    def ids(self, *outcomes: str) -> list[str]:
        return [c.nodeid for c in self.cases if c.outcome in outcomes]

    def output_tail(self, chars: int = 6000) -> str:
        text = self.output_path.read_text(errors="replace")
        return text if len(text) <= chars else "...\n" + text[-chars:]

    def report(self, server_log: Path | None = None) -> str:
        """What went wrong, for an assertion message: the failing tests, their first lines, the logs."""
        lines = [f"$ (cd {self.cwd} && {' '.join(self.cmd)})", f"exit code {self.returncode}",
                 f"passed: {self.ids('passed')}", f"skipped: {self.ids('skipped')}"]
        for case in self.cases:
            if case.outcome in ("failed", "error"):
                lines.append(f"--- {case.outcome.upper()} {case.nodeid}\n{case.message[:3000]}")
        if server_log is not None:
            lines.append(f"kapi server log: {server_log}")
        lines.append(f"full output: {self.output_path}\n--- output tail:\n{self.output_tail()}")
        return "\n".join(lines)


def _cases(junit: Path) -> list[Case]:
    if not junit.exists():
        return []
    cases = []
    for tc in ET.parse(junit).getroot().iter("testcase"):
        nodeid = f"{tc.get('classname', '')}::{tc.get('name', '')}"
        outcome, message = "passed", ""
        for child in tc:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or "") + "\n" + (child.text or "")
                break
        cases.append(Case(nodeid, outcome, message.strip()))
    return cases


def run_pytest(cwd: Path, args: list[str], run_dir: Path, env: dict[str, str] | None = None,
               timeout: float = 600.0) -> SuiteRun:
    """Run a suite in `cwd` (its own rootdir), without kapi's pytest plugin or any outer options."""
    run_dir.mkdir(parents=True, exist_ok=True)
    junit = run_dir / "junit.xml"
    output_path = run_dir / "output.txt"
    # --rootdir: node ids (and --deselect) relative to the suite's top (kubernetes/aio has a
    # setup.py that pytest would otherwise take for the rootdir of tests below it).
    cmd = [sys.executable, "-m", "pytest", f"--rootdir={cwd}", "-p", "no:cacheprovider", "-p", "no:kapi",
           "-o", "junit_family=xunit2", f"--junitxml={junit}", "-rA", *args]
    base = {k: v for k, v in os.environ.items() if k not in _OUTER_ENV}
    full_env = {**base, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    with open(output_path, "wb") as out:
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout)
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = -1
    run = SuiteRun(cmd, cwd, returncode, output_path, _cases(junit))
    if returncode == -1:
        pytest.fail(f"the suite ran longer than {timeout:.0f}s\n" + run.report())
    return run


def defined_tests(path: Path) -> set[str]:
    """Names of the test functions a module defines (to check deselections name real tests)."""
    import ast
    return {node.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")}
