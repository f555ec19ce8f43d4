"""What `pip install .` puts into site-packages: `kapi`, `kapi_certs`, `kapi_configs` and `kapi_cli`, and
nothing generic (`server`, `certs`, `configs`) that would collide with another project's modules.

A real wheel is built from this checkout and installed into a fresh venv (system site-packages visible
for the dependencies, the wheel installed into the venv itself), then used from there as a plugin author
and a test author would: the public imports, the shipped data files, a server started and answering.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = {"kapi": "server", "kapi_certs": "certs", "kapi_configs": "configs", "kapi_cli": "kapi_cli"}
GENERIC = ("server", "certs", "configs")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def folder_packages() -> set[str]:
    """Every folder with an `__init__.py` under the mapped folders, as the installed package name."""
    found = set()
    for name, folder in INSTALLED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "node_modules" not in init.parts:
                found.add(".".join([name, *init.parent.relative_to(ROOT / folder).parts]))
    return found


def test_the_package_list_matches_the_folders() -> None:
    """The packages are listed by hand (package-dir renames them): a new sub-package must be added."""
    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == INSTALLED
    assert set(setuptools["packages"]) == folder_packages()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300, cwd=out)
    (built,) = out.glob("kapi-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed into it; the dependencies come from this interpreter's site."""
    home = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(home)], check=True, timeout=300)
    subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return home


def site_packages(venv: Path) -> Path:
    (site,) = (venv / "lib").glob("python3*/site-packages")
    return site


def run_in(venv: Path, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`code` in the venv's interpreter, from a directory outside the checkout (so `server/` is not on the path)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KUBECONFIG")}
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_wheel_holds_only_kapi_names(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {*INSTALLED, wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    # the shipped data travel with the code
    assert any(name.startswith("kapi/scheme/data/") and name.endswith(".gz") for name in names)
    assert "kapi_configs/resources/pizzas.restaurant.wukong.com.yaml" in names
    assert "kapi_configs/examples/kopf_cluster_per_test/test_site_operator.py" in names


def test_a_fresh_venv_has_no_generic_top_level_package(venv: Path) -> None:
    site = site_packages(venv)
    entries = {entry.name for entry in site.iterdir()}
    assert set(INSTALLED) <= entries
    assert not entries & set(GENERIC), entries & set(GENERIC)


def test_the_public_api_imports_from_the_installed_package(venv: Path, tmp_path: Path) -> None:
    site = site_packages(venv)
    done = run_in(venv, (
        "import importlib, importlib.util, kapi\n"
        "for module, names in kapi.PUBLIC_API.items():\n"
        "    mod = importlib.import_module(module)\n"
        "    assert all(hasattr(mod, n) for n in names), module\n"
        "print(kapi.__file__)\n"
        "print([n for n in ('server', 'certs', 'configs') if importlib.util.find_spec(n)])\n"), tmp_path)
    assert done.returncode == 0, done.stderr
    origin, generic = done.stdout.splitlines()
    assert Path(origin).is_relative_to(site)
    assert generic == "[]"


def test_the_installed_package_serves(venv: Path, tmp_path: Path) -> None:
    """Started from the installed wheel: the built-in catalogue (package data) and the shipped CRDs load."""
    done = run_in(venv, (
        "from kapi.testing import start_server\n"
        "with start_server(examples=True) as server:\n"
        "    code, made = server.request('POST', '/api/v1/namespaces/default/configmaps',\n"
        "                                {'metadata': {'name': 'from-wheel'}, 'data': {'k': 'v'}})\n"
        "    _, pizzas = server.request('GET', '/apis/restaurant.wukong.com/v1alpha1/namespaces/default/pizzas')\n"
        "    print(code, made['metadata']['name'], pizzas['kind'])\n"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["201", "from-wheel", "PizzaList"]


def test_the_cli_runs_from_the_installed_package(venv: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(venv / "bin" / "kapi"), "--help"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    assert "start" in done.stdout and "kubeconfig" in done.stdout
