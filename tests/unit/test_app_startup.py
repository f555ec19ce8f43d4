"""The app's start-up cost: FastAPI is only imported for its docs pages, on first use."""
from __future__ import annotations

import subprocess
import sys

import httpx

from kapi.testing import start_server


def test_building_the_app_does_not_import_fastapi() -> None:
    code = ("import sys; from pathlib import Path; import tempfile\n"
            "from kapi.app import create_app; from kapi.config import ServerConfig\n"
            "create_app(ServerConfig(backend='memory', file_rootpath=Path(tempfile.mkdtemp())))\n"
            "print('fastapi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_docs_pages_are_served_by_fastapi_on_demand() -> None:
    with start_server() as server:
        docs = httpx.get(server.url + "/kapi/docs", timeout=10)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        schema = httpx.get(server.url + "/kapi/openapi.json", timeout=10)
        assert schema.status_code == 200 and schema.json()["info"]["title"] == "kapi"
        # Kubernetes paths are still the API's, next to the docs.
        assert httpx.get(server.url + "/api/v1/namespaces", timeout=10).status_code == 200
