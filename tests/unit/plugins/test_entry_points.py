"""An installed package's `kapi.plugins` entry point is loaded without any `--plugin` flag."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kapi.plugins.loader import installed_plugin_modules
from kapi.testing import start_server

MODULE = '''
from kapi.plugins import APIGroup, KubeObject, Plugin, Resource, Version


class Gadget(KubeObject):
    pass


plugin = Plugin(groups=[APIGroup("gadgets.example.com", [
    Resource(kind="Gadget", plural="gadgets", versions=[Version("v1", Gadget, storage=True)])])])
'''


def install_fake_distribution(site: Path) -> None:
    """What pip leaves behind for a package declaring the entry point: a module and its dist-info."""
    (site / "gadgets_plugin.py").write_text(MODULE)
    info = site / "gadgets_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gadgets-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kapi.plugins]\ngadgets = gadgets_plugin:plugin\n")


def test_an_installed_entry_point_is_found_and_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "gadgets_plugin" not in installed_plugin_modules()
    install_fake_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "gadgets_plugin" in installed_plugin_modules()
    with start_server() as server, httpx.Client(base_url=server.url) as http:
        made = http.post("/apis/gadgets.example.com/v1/namespaces/default/gadgets",
                         json={"apiVersion": "gadgets.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}})
        assert made.status_code == 201, made.text
        assert http.get("/apis/gadgets.example.com").json()["preferredVersion"]["version"] == "v1"
