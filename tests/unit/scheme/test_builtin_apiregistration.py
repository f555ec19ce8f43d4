"""`kubectl get apiservices` as a Table: kapi's columns and cells against the real kube-apiserver's.

The recorded Tables (`table_apiservices_*` in `tests/data/aggregation/reference.json`) carry only
PartialObjectMetadata rows, so each row's object is the APIService as the reference served it in the same
state (`get_local_apiservice_*`, `apiservice_*_status*`), or, where none was recorded, a minimal object with
the same `spec.service` and `status.conditions`. Age cells are `<age>` in the recording and are compared
only for their shape.
"""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kapi.registry.table import to_table
from kapi.scheme.builtin_apiregistration import API_SERVICES

Object = dict[str, Any]

REFERENCE: dict[str, Object] = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "aggregation" / "reference.json").read_text())
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
CREATED = (NOW - timedelta(minutes=7, seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
VERSION = API_SERVICES.versions[0]


def recorded(case: str) -> Object:
    return copy.deepcopy(REFERENCE[case]["response"])


def _v2_wardle_port_8443() -> Object:
    """No GET of v2.wardle.example.com was recorded: its spec (service port 8443) and the state its row shows."""
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v2.wardle.example.com"},
            "spec": {"service": {"namespace": "wardle", "name": "api", "port": 8443}, "group": "wardle.example.com",
                     "version": "v2", "insecureSkipTLSVerify": True, "groupPriorityMinimum": 1000,
                     "versionPriority": 15},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "FailedDiscoveryCheck",
                                       "message": "failing or missing response from https://localhost:8443/apis/"
                                                  "wardle.example.com/v2: connection refused"}]}}


CORE, APPS, NOTHERE = "get_local_apiservice_v1.core", "get_local_apiservice_v1.apps", \
    "apiservice_local_v1.nothere.example.com_status"
# table case -> the recorded objects behind its rows, in row order
ROW_SOURCES: dict[str, list[str]] = {
    "table_apiservices_service_not_found": [CORE, APPS, "apiservice_wardle_status_service_not_found"],
    "table_apiservices_endpoints_not_found": [CORE, APPS, "apiservice_wardle_status_endpoints_not_found"],
    "table_apiservices_externalname_refused": [CORE, APPS, "apiservice_wardle_status_externalname_refused"],
    # final state of run 1: v1alpha1 stayed behind the ExternalName service (FailedDiscoveryCheck)
    "table_apiservices_final": [CORE, APPS, NOTHERE, "apiservice_wardle_status_externalname_refused",
                                "apiservice_service_without_port_status"],
    "table_apiservices_service_port_8443": ["v2.wardle.example.com"],
    "table_apiservices_available_stub": [CORE, "apiservice_wardle_status_available_stub"],
}
TABLE_CASES = sorted(k for k in REFERENCE if k.startswith("table_apiservices_"))


def source_object(source: str) -> Object:
    obj = _v2_wardle_port_8443() if source == "v2.wardle.example.com" else recorded(source)
    obj["metadata"]["creationTimestamp"] = CREATED  # the recording has `<timestamp-N>` placeholders
    return obj


def table_of(objects: list[Object]) -> Object:
    return to_table(VERSION, objects, now=NOW)


def test_every_recorded_table_is_covered() -> None:
    assert TABLE_CASES == sorted(ROW_SOURCES)


def test_column_definitions_are_kubes() -> None:
    """Name (format name), Service, Available, Age (a string column, ObjectMeta's description), priority 0."""
    expected = recorded("table_apiservices_service_not_found")["columnDefinitions"]
    assert table_of([])["columnDefinitions"] == expected
    assert [c["name"] for c in expected] == ["Name", "Service", "Available", "Age"]


def test_the_definition_lists_service_available_age() -> None:
    assert [(c.name, c.type, c.priority) for c in VERSION.printer_columns] == [
        ("Service", "string", 0), ("Available", "string", 0), ("Age", "string", 0)]


ROWS = [(case, i) for case in TABLE_CASES for i in range(len(REFERENCE[case]["response"]["rows"]))]


@pytest.mark.parametrize(("case", "index"), ROWS, ids=[f"{c}-{i}" for c, i in ROWS])
def test_cells_are_kubes(case: str, index: int) -> None:
    expected = recorded(case)["rows"][index]["cells"]
    obj = source_object(ROW_SOURCES[case][index])
    assert obj["metadata"]["name"] == expected[0], "the row source names another APIService"
    cells = table_of([obj])["rows"][0]["cells"]
    assert cells[:3] == expected[:3]
    assert expected[3] == "<age>" and cells[3] == "7m3s"


def test_the_service_cell_has_no_port() -> None:
    """`wardle/api` even for port 8443 (table_apiservices_service_port_8443)."""
    assert table_of([source_object("v2.wardle.example.com")])["rows"][0]["cells"][1] == "wardle/api"


def test_rows_carry_partial_object_metadata() -> None:
    """The one recording that kept its row objects: `PartialObjectMetadata` with the object's metadata."""
    expected = recorded("table_apiservices_service_not_found")["rows"]
    objects = [recorded(source) for source in ROW_SOURCES["table_apiservices_service_not_found"]]
    rows = table_of(objects)["rows"]
    assert [r["object"] for r in rows] == [r["object"] for r in expected]


def test_a_table_of_several_keeps_the_order_given() -> None:
    """The final state's rows in one Table, in the (name) order the server lists them."""
    objects = [source_object(s) for s in ROW_SOURCES["table_apiservices_final"]]
    expected = [r["cells"][:3] for r in recorded("table_apiservices_final")["rows"]]
    assert [r["cells"][:3] for r in table_of(objects)["rows"]] == expected


def test_without_an_available_condition_the_cell_is_unknown() -> None:
    """kube's printer (`getAvailableStatus`) says Unknown until the controller has written a condition."""
    obj = recorded("create_wardle_apiservice")
    obj["metadata"]["creationTimestamp"] = CREATED
    assert obj["status"] == {}
    assert table_of([obj])["rows"][0]["cells"][1:3] == ["wardle/api", "Unknown"]


def test_age_cell_is_a_kube_duration() -> None:
    obj = source_object(CORE)
    obj["metadata"]["creationTimestamp"] = (NOW - timedelta(days=3, hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    age = table_of([obj])["rows"][0]["cells"][3]
    assert re.fullmatch(r"\d+d\d*h?", age) and age == "3d4h"
