"""The documented import surface (`kapi.PUBLIC_API`): every name is importable from `kapi.…`, each
module's `__all__` is exactly its list, and the names the README's examples import are among them."""
import importlib
import re
from pathlib import Path

import pytest

import kapi

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("module", sorted(kapi.PUBLIC_API))
def test_each_public_module_exports_exactly_its_list(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(kapi.PUBLIC_API[module])
    missing = [name for name in kapi.PUBLIC_API[module] if not hasattr(mod, name)]
    assert missing == []


def test_the_public_modules_live_under_kapi() -> None:
    assert all(module.startswith("kapi.") for module in kapi.PUBLIC_API)
    assert Path(kapi.__file__).parent.name == "server"  # the repository folder keeps its name


def test_readme_imports_only_the_public_surface() -> None:
    """A README example that imported an internal module would teach users what may break."""
    imports = re.findall(r"^from (kapi[\w.]*) import \(?([^)\n]+(?:\n[^)\n]+)*)\)?", README.read_text(), re.M)
    assert imports, "the README shows no import from kapi"
    for module, names in imports:
        assert module in kapi.PUBLIC_API, module
        for name in re.split(r"[,\s]+", names.strip()):
            if name:
                assert name in kapi.PUBLIC_API[module], f"{module}.{name}"

