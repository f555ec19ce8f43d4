"""`--kapi-plugin`: a user's project tests against its own Python API group with the pytest plugin."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGIN = '''
from pydantic import BaseModel
from kapi.plugins import APIGroup, KubeObject, Plugin, Resource, Version


class WidgetSpec(BaseModel):
    size: int = 1


class Widget(KubeObject):
    spec: WidgetSpec | None = None


plugin = Plugin(groups=[APIGroup("widgets.example.com", [
    Resource(kind="Widget", plural="widgets", versions=[Version("v1", Widget, storage=True)])])])
'''

TEST = '''
from kubernetes import client, config


def test_widgets(kapi_server, kapi_namespace):
    config.load_kube_config()
    api = client.CustomObjectsApi()
    api.create_namespaced_custom_object("widgets.example.com", "v1", kapi_namespace, "widgets",
                                        {"apiVersion": "widgets.example.com/v1", "kind": "Widget",
                                         "metadata": {"name": "w"}, "spec": {}})
    got = api.get_namespaced_custom_object("widgets.example.com", "v1", kapi_namespace, "widgets", "w")
    assert got["spec"] == {"size": 1}  # the model's default
'''


def test_a_project_tests_against_its_own_plugin(tmp_path: Path) -> None:
    (tmp_path / "widgets_plugin.py").write_text(PLUGIN)
    (tmp_path / "test_widgets.py").write_text(TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "KUBECONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "--kapi-plugin", "widgets_plugin"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=180, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout, result.stdout
