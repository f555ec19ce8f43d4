"""Request logging as kube's httplog: verbs as kube reports them, the URI as sent, and what each verbosity
logs, against real in-process servers (records read from Python logging)."""
from __future__ import annotations

import logging
from typing import Any, Iterator

import httpx
import pytest

from kapi.api.klog import KV_ATTR, V_ATTR
from kapi.api.requestinfo import parse_request_info
from kapi.endpoints.httplog import reported_verb, request_uri, with_http_logging
from kapi.testing import start_server

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.mark.parametrize("method, path, watch, content_type, expected", [
    ("GET", "/api/v1/namespaces/default/pods", False, "", "LIST"),
    ("GET", "/api/v1/pods", False, "", "LIST"),
    ("GET", "/api/v1/namespaces/default/pods/p", False, "", "GET"),
    ("GET", "/api/v1/namespaces/default/pods", True, "", "WATCH"),
    ("GET", "/api/v1/watch/namespaces/default/pods", False, "", "WATCH"),
    ("POST", "/api/v1/namespaces/default/pods", False, "", "POST"),
    ("PUT", "/api/v1/namespaces/default/pods/p", False, "", "PUT"),
    ("PATCH", "/api/v1/namespaces/default/pods/p", False, "application/merge-patch+json", "PATCH"),
    ("PATCH", "/api/v1/namespaces/default/pods/p", False, "application/apply-patch+yaml", "APPLY"),
    ("PATCH", "/api/v1/namespaces/default/pods/p", False, "application/apply-patch+yaml; charset=utf-8", "APPLY"),
    ("DELETE", "/api/v1/namespaces/default/pods", False, "", "DELETE"),
    ("POST", "/api/v1/namespaces/default/pods/p/exec", False, "", "CONNECT"),
    ("GET", "/api/v1/namespaces/default/pods/p/log", False, "", "CONNECT"),  # as kube's metrics count it
    ("GET", "/version", False, "", "GET"),
    ("GET", "/apis", False, "", "GET"),
])
def test_verbs_as_kube_reports_them(method: str, path: str, watch: bool, content_type: str, expected: str) -> None:
    assert reported_verb(method, parse_request_info(method, path, watch), content_type) == expected


def test_verb_without_request_info_is_the_method() -> None:
    assert reported_verb("get", None) == "GET"


def test_request_uri_is_what_the_client_sent() -> None:
    assert request_uri({"path": "/api/v1/pods", "raw_path": b"/api/v1/pods", "query_string": b"limit=5"}) == \
        "/api/v1/pods?limit=5"
    assert request_uri({"path": "/api/v1/pods", "raw_path": b"/api/v1/pods", "root_path": "/clusters/a",
                        "query_string": b""}) == "/clusters/a/api/v1/pods"
    assert request_uri({"path": "/a b", "raw_path": b"/a%20b"}) == "/a%20b"
    assert request_uri({"path": "/x"}) == "/x"


def test_below_verbosity_two_the_chain_is_left_as_it_is() -> None:
    async def handler(request: Any) -> Any:
        raise AssertionError("not called")

    assert with_http_logging(handler, 0) is handler
    assert with_http_logging(handler, 1) is handler
    assert with_http_logging(handler, 2) is not handler


def http_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "kapi.httplog"]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="kapi.httplog")
    yield caplog


def test_verbosity_three_logs_every_request_with_kubes_fields(logged: pytest.LogCaptureFixture) -> None:
    with start_server(verbosity=3) as kapi, httpx.Client(base_url=kapi.url, timeout=10,
                                                        headers={"User-Agent": "unit/1.0"}) as http:
        created = http.post(CMS, json={"metadata": {"name": "a"}, "data": {"k": "v"}})
        assert created.status_code == 201
        assert http.get(CMS, params={"limit": "5"}, headers={"Audit-ID": "x" * 80}).status_code == 200
        assert http.get(CMS + "/a").status_code == 200
        assert http.get(CMS + "/missing").status_code == 404
        with http.stream("GET", CMS, params={"watch": "true", "timeoutSeconds": "1"}) as watch:
            assert watch.status_code == 200
            list(watch.iter_lines())
        assert http.patch(CMS + "/a", params={"fieldManager": "t"}, content=b'{"data": {"k": "w"}}',
                          headers={"Content-Type": "application/apply-patch+yaml"}).status_code in (200, 400)
        clusters = http.get("/clusters/nope/api/v1/namespaces")
        assert clusters.status_code == 404
    mine = [r for r in http_lines(logged) if getattr(r, KV_ATTR)["userAgent"] == "unit/1.0"]  # not readiness polls
    fields = [getattr(r, KV_ATTR) for r in mine]
    seen = [(f["verb"], f["URI"], f["resp"]) for f in fields]
    assert seen[:5] == [("POST", CMS, 201), ("LIST", CMS + "?limit=5", 200), ("GET", CMS + "/a", 200),
                        ("GET", CMS + "/missing", 404), ("WATCH", CMS + "?watch=true&timeoutSeconds=1", 200)]
    assert seen[5][0] == "APPLY"
    assert len(seen) == 6  # an unknown logical cluster is answered before any cluster's chain
    for f in fields:
        assert f["srcIP"].startswith("127.0.0.1:")
        assert list(f) == ["verb", "URI", "latency", "userAgent", "audit-ID", "srcIP", "resp"]
    assert fields[0]["audit-ID"] == created.headers["Audit-Id"] != ""  # the ID the client was given
    assert fields[1]["audit-ID"] == "x" * 64  # a client's own, truncated as kube's
    watch_latency = fields[4]["latency"]
    assert watch_latency.endswith("s") and not watch_latency.endswith(("ms", "µs", "ns"))  # logged at its end
    assert all(getattr(r, V_ATTR) == 3 for r in mine[:4])


def test_verbosity_two_logs_only_slow_requests(logged: pytest.LogCaptureFixture) -> None:
    with start_server(verbosity=2) as kapi, httpx.Client(base_url=kapi.url, timeout=10) as http:
        assert http.post("/kapi/faults", json={"type": "Delay", "delaySeconds": 1.2, "resource": "configmaps",
                                               "count": 1}).status_code == 201
        slow = http.get(CMS, params={"slow": "1"})  # delayed 1.2 s
        fast = [http.get(CMS, params={"fast": str(i)}) for i in range(20)]  # the fault was used up
    assert slow.status_code == 200 and all(r.status_code == 200 for r in fast)
    logged_uris = [getattr(r, KV_ATTR)["URI"] for r in http_lines(logged)]
    assert logged_uris.count(CMS + "?slow=1") == 1
    # what the client got in under a second took the server under a second: never logged at -v=2
    quick = [str(r.request.url.raw_path.decode()) for r in fast if r.elapsed.total_seconds() < 0.9]
    assert quick and not set(quick) & set(logged_uris)
    (record,) = [r for r in http_lines(logged) if getattr(r, KV_ATTR)["URI"] == CMS + "?slow=1"]
    latency = getattr(record, KV_ATTR)["latency"]
    assert getattr(record, V_ATTR) == 2 and latency.endswith("s") and float(latency[:-1]) >= 1.19  # e.g. 1.2013s (asyncio timers may fire a hair early)


def test_verbosity_zero_logs_no_request(logged: pytest.LogCaptureFixture) -> None:
    with start_server() as kapi, httpx.Client(base_url=kapi.url, timeout=10) as http:
        for _ in range(20):
            assert http.get("/api/v1/namespaces").status_code == 200
    assert http_lines(logged) == []
