"""`/metrics` end to end: a real `kapi start`, a scripted workload, then Prometheus' own text parser reads
exactly the requests made, per verb, resource, scope and code, as kube-apiserver would count them."""
from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

EVE, PROM = "eve-token-0123456789", "prom-token-0123456789"  # eve: no RBAC; prom: in system:monitoring
NS = "metrics-e2e"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"
Key = tuple[str, str, str, str]  # verb, resource, scope, code


def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text(f'{EVE},eve,3001\n{PROM},prometheus,3002,"system:monitoring"\n')
    return path


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def request_counts(text: str, resources: set[str]) -> Counter[Key]:
    counts: Counter[Key] = Counter()
    for s in families(text)["apiserver_request"].samples:
        if s.name == "apiserver_request_total" and s.labels["resource"] in resources:
            assert s.labels["component"] == "apiserver" and s.labels["dry_run"] == ""
            counts[(s.labels["verb"], s.labels["resource"], s.labels["scope"], s.labels["code"])] += int(s.value)
    return counts


class Workload:
    """Requests against the server, each tallied under the labels kube-apiserver would give it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: Counter[Key] = Counter()

    def do(self, method: str, path: str, verb: str, scope: str, code: int, *, token: str | None = None,
           body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = httpx.request(method, self.url + path, json=body, headers=headers, timeout=10)
        assert answer.status_code == code, (method, path, answer.text)
        resource = path.split("?")[0].split("/")[-1 if verb in ("LIST", "POST", "WATCH") else -2]
        self.made[(verb, resource, scope, str(code))] += 1
        return answer


def test_request_counters_match_the_requests_made(kapi_factory: Any, tmp_path: Path) -> None:
    kapi = kapi_factory("--token-auth-file", str(tokens(tmp_path)))
    run = Workload(kapi.url)
    run.do("POST", "/api/v1/namespaces", "POST", "resource", 201, body={"metadata": {"name": NS}})
    for name in ("a", "b", "c"):
        run.do("POST", CONFIGMAPS, "POST", "resource", 201, body={"metadata": {"name": name}, "data": {"k": name}})
    run.do("POST", CONFIGMAPS, "POST", "resource", 409, body={"metadata": {"name": "a"}})
    for name in ("a", "b", "c"):
        run.do("GET", f"{CONFIGMAPS}/{name}", "GET", "resource", 200)
    run.do("GET", f"{CONFIGMAPS}/missing", "GET", "resource", 404)
    run.do("GET", CONFIGMAPS, "LIST", "namespace", 200)
    run.do("GET", CONFIGMAPS, "LIST", "namespace", 403, token=EVE)
    run.do("GET", f"{CONFIGMAPS}/a", "GET", "resource", 403, token=EVE)
    run.do("DELETE", f"{CONFIGMAPS}/c", "DELETE", "resource", 200)
    watched = run.do("GET", f"{CONFIGMAPS}?watch=true&timeoutSeconds=1", "WATCH", "namespace", 200)
    events = [json.loads(line) for line in watched.text.splitlines() if line]
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert [e for e in seen if e[1] != "kube-root-ca.crt"] == [("ADDED", "a"), ("ADDED", "b")]
    everything = run.do("GET", "/api/v1/configmaps", "LIST", "cluster", 200).json()["items"]
    assert httpx.get(kapi.url + "/metrics", headers={"Authorization": f"Bearer {EVE}"}).status_code == 403
    assert httpx.get(kapi.url + "/metrics", headers={"Authorization": f"Bearer {PROM}"}).status_code == 200

    scraped = httpx.get(kapi.url + "/metrics", timeout=10)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = scraped.text
    assert request_counts(text, {"configmaps", "namespaces"}) == run.made
    found = families(text)
    metrics_requests = {(s.labels["code"]): s.value for s in found["apiserver_request"].samples
                        if s.name == "apiserver_request_total" and s.labels["subresource"] == "/metrics"}
    assert metrics_requests == {"403": 1, "200": 1}  # this scrape is counted once it is answered
    watch_events = {s.labels["kind"]: s.value for s in found["apiserver_watch_events"].samples}
    assert watch_events["ConfigMap"] == len(events)
    stored = {s.labels["resource"]: s.value for s in found["apiserver_storage_objects"].samples}
    assert stored["configmaps"] == len(everything) and stored["namespaces"] >= 5
    longrunning = [s for s in found["apiserver_longrunning_requests"].samples if s.labels["verb"] == "WATCH"]
    assert longrunning and all(s.value == 0 for s in longrunning)  # the watch ended
    durations = {s.labels["verb"]: s.value for s in found["apiserver_request_duration_seconds"].samples
                 if s.name.endswith("_count") and s.labels["resource"] == "configmaps"
                 and s.labels["scope"] == "resource"}
    assert durations["GET"] == 5 and durations["POST"] == 4  # 200s, 403 and 404 alike; 201s and the 409
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= set(found)
    kinds = {s.labels["request_kind"] for s in found["apiserver_current_inflight_requests"].samples}
    assert kinds == {"readOnly", "mutating"}


def test_kubectl_get_raw_metrics(kapi_factory: Any) -> None:
    kapi = kapi_factory()
    kapi.kubectl("get", "namespaces")
    raw = kapi.kubectl("get", "--raw", "/metrics").stdout
    samples = [s for s in families(raw)["apiserver_request"].samples if s.name == "apiserver_request_total"]
    assert any(s.labels["resource"] == "namespaces" and s.labels["verb"] == "LIST" and s.labels["code"] == "200"
               for s in samples)


def test_etcd_requests_are_timed_on_the_etcd_backend(kapi_factory: Any) -> None:
    kapi = kapi_factory(etcd_prefix=f"/kapi-e2e-metrics-{uuid.uuid4().hex[:8]}")
    with kapi.client() as http:
        assert http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "e"}}).status_code == 201
        assert http.get("/api/v1/namespaces/default/configmaps/e").status_code == 200
        assert http.get("/api/v1/namespaces/default/configmaps").status_code == 200
        text = http.get("/metrics").text
    samples = [s for s in families(text)["etcd_request_duration_seconds"].samples if s.name.endswith("_count")]
    counts = {(s.labels["operation"], s.labels["type"]): s.value for s in samples}
    assert counts[("create", "configmaps")] >= 1
    assert counts[("get", "configmaps")] >= 1
    assert counts[("list", "configmaps")] >= 1
    assert all(kind for _, kind in counts)  # every etcd request is under its resource
