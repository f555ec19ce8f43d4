"""The suite's prepared state, made once: a cluster with the Site CRD and one Site, saved as a snapshot.

Tests marked `@pytest.mark.kapi_snapshot("prepared_sites")` get a `kapi_cluster`
forked from it (copy-on-write: a few milliseconds, and nothing a test writes
leaks into another test).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def prepared_sites(kapi_server: Any) -> str:
    with kapi_server.create_cluster() as base:  # deleted once saved: the snapshot keeps its state
        base.apply_crds(HERE / "crd.yaml")
        base.apply({"apiVersion": "examples.kapi.dev/v1", "kind": "Site",
                    "metadata": {"name": "existing", "namespace": "default"}, "spec": {"domain": "example.org"}})
        kapi_server.save_snapshot("prepared_sites", cluster=base.name)
    return "prepared_sites"
