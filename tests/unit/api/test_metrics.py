"""ServerMetrics (server/api/metrics.py): kube's names, labels, buckets and verbs, one registry per server."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kapi.api.metrics import (
    CONTENT_TYPE,
    REQUEST_BUCKETS,
    ServerMetrics,
    clean_dry_run,
    metric_scope,
    metric_verb,
)

GET_POD = ("GET", "", "", "v1", "pods", "", "resource")


def samples(metrics: ServerMetrics, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` in the exposition, read by Prometheus' own parser."""
    text = metrics.exposition().decode()
    return [(s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name]


def value(metrics: ServerMetrics, metric: str, **labels: str) -> float | None:
    found = [v for got, v in samples(metrics, metric) if all(got.get(k) == want for k, want in labels.items())]
    assert len(found) <= 1, found
    return found[0] if found else None


# -- kube's label values ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, scope, watch, connect, content_type, expected", [
    ("GET", "resource", False, False, "", "GET"),
    ("HEAD", "resource", False, False, "", "GET"),
    ("GET", "namespace", False, False, "", "LIST"),
    ("GET", "cluster", False, False, "", "LIST"),
    ("GET", "namespace", True, False, "", "WATCH"),
    ("GET", "resource", True, False, "", "WATCH"),  # the legacy /watch/<resource>/<name>
    ("POST", "resource", False, False, "application/json", "POST"),  # a create stays POST, as kube reports it
    ("PUT", "resource", False, False, "", "PUT"),
    ("PATCH", "resource", False, False, "application/merge-patch+json", "PATCH"),
    ("PATCH", "resource", False, False, "application/apply-patch+yaml", "APPLY"),
    ("PATCH", "resource", False, False, "application/apply-patch+yaml; charset=utf-8", "APPLY"),
    ("DELETE", "resource", False, False, "", "DELETE"),
    ("DELETE", "namespace", False, False, "", "DELETE"),  # deletecollection: kube reports the method
    ("GET", "resource", False, True, "", "CONNECT"),  # pods/log
    ("POST", "resource", False, True, "", "CONNECT"),  # pods/exec
    ("GET", "", False, False, "", "GET"),  # /healthz: a non-resource GET is never a LIST
    ("OPTIONS", "", False, False, "", "other"),
    ("BREW", "resource", False, False, "", "other"),
])
def test_verbs_are_kubes(method: str, scope: str, watch: bool, connect: bool, content_type: str,
                         expected: str) -> None:
    assert metric_verb(method, scope, watch, connect, content_type) == expected


@pytest.mark.parametrize("is_resource, namespace, name, verb, expected", [
    (True, "default", "a", "get", "resource"),
    (True, "", "node-1", "get", "resource"),
    (True, "default", "", "create", "resource"),  # every create is a "resource" request in kube's metrics
    (True, "", "", "create", "resource"),
    (True, "default", "", "list", "namespace"),
    (True, "", "", "list", "cluster"),
    (True, "default", "", "deletecollection", "namespace"),
    (False, "", "", "get", ""),
])
def test_scopes_are_kubes(is_resource: bool, namespace: str, name: str, verb: str, expected: str) -> None:
    assert metric_scope(is_resource, namespace, name, verb) == expected


def test_dry_run_label() -> None:
    assert clean_dry_run([]) == ""
    assert clean_dry_run(["All"]) == "All"
    assert clean_dry_run(["All", "All"]) == "All"
    assert clean_dry_run(["Yes"]) == "invalid"
    assert clean_dry_run(["All", ""]) == "invalid"


# -- recording and exposition -----------------------------------------------------------------------------------------

def test_requests_are_counted_per_code_and_timed_in_kubes_buckets() -> None:
    metrics = ServerMetrics()
    metrics.observe_request(GET_POD, 200, 0.003)
    metrics.observe_request(GET_POD, 200, 0.07)
    metrics.observe_request(GET_POD, 404, 0.001)
    labels = dict(verb="GET", dry_run="", group="", version="v1", resource="pods", subresource="", scope="resource",
                  component="apiserver")
    assert value(metrics, "apiserver_request_total", code="200", **labels) == 2
    assert value(metrics, "apiserver_request_total", code="404", **labels) == 1
    assert value(metrics, "apiserver_request_duration_seconds_count", **labels) == 3
    assert value(metrics, "apiserver_request_duration_seconds_sum", **labels) == pytest.approx(0.074)
    buckets = {got["le"]: v for got, v in samples(metrics, "apiserver_request_duration_seconds_bucket")}
    assert [float(le) for le in buckets if le != "+Inf"] == [float(b) for b in REQUEST_BUCKETS]
    assert (buckets["0.005"], buckets["0.05"], buckets["0.1"], buckets["+Inf"]) == (2, 2, 3, 3)


def test_each_server_has_its_own_registry() -> None:
    one, other = ServerMetrics(), ServerMetrics()
    one.observe_request(GET_POD, 200, 0.001)
    assert value(one, "apiserver_request_total", code="200") == 1
    assert value(other, "apiserver_request_total", code="200") is None


def test_exposition_is_kubes_text_format_without_created_samples() -> None:
    metrics = ServerMetrics()
    metrics.observe_request(GET_POD, 200, 0.001)
    metrics.watch_event_counter("", "v1", "Pod").inc()
    text = metrics.exposition().decode()
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert "_created" not in text
    assert "# TYPE apiserver_request_total counter" in text
    assert "# TYPE apiserver_request_duration_seconds histogram" in text
    assert 'apiserver_watch_events_total{group="",kind="Pod",version="v1"} 1.0' in text


def test_process_and_python_runtime_metrics() -> None:
    names = {family.name for family in text_string_to_metric_families(ServerMetrics().exposition().decode())}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds", "python_info",
            "python_gc_objects_collected"} <= names


def test_inflight_reports_the_peak_since_the_previous_scrape() -> None:
    metrics = ServerMetrics()
    metrics.inflight_started("readOnly")
    metrics.inflight_started("readOnly")
    metrics.inflight_started("mutating")
    metrics.inflight_ended("readOnly")
    metrics.inflight_ended("mutating")
    def scrape() -> dict[str, float]:
        return {labels["request_kind"]: v for labels, v in samples(metrics, "apiserver_current_inflight_requests")}

    assert scrape() == {"readOnly": 2, "mutating": 1}
    assert scrape() == {"readOnly": 1, "mutating": 0}  # the peaks were reported: what is in flight now is left


def test_longrunning_gauge_goes_up_and_down() -> None:
    metrics = ServerMetrics()
    gauge = metrics.longrunning_gauge("WATCH", "", "v1", "pods", "", "namespace")
    assert metrics.longrunning_gauge("WATCH", "", "v1", "pods", "", "namespace") is gauge  # looked up once
    gauge.inc()
    labels = dict(verb="WATCH", group="", version="v1", resource="pods", subresource="", scope="namespace",
                  component="apiserver")
    assert value(metrics, "apiserver_longrunning_requests", **labels) == 1
    gauge.dec()
    assert value(metrics, "apiserver_longrunning_requests", **labels) == 0


def test_etcd_and_webhook_and_watch_event_metrics() -> None:
    metrics = ServerMetrics()
    metrics.observe_etcd("get", "deployments.apps", 0.002)
    metrics.observe_etcd("get", "deployments.apps", 0.3)
    metrics.observe_webhook("deny.example.com", "validating", "CREATE", True, 0.02)
    metrics.observe_webhook("label.example.com", "admit", "UPDATE", False, 0.004)
    counter = metrics.watch_event_counter("apps", "v1", "Deployment")
    assert metrics.watch_event_counter("apps", "v1", "Deployment") is counter
    counter.inc()
    counter.inc()
    assert value(metrics, "etcd_request_duration_seconds_count", operation="get", type="deployments.apps") == 2
    assert value(metrics, "etcd_request_duration_seconds_bucket", operation="get", type="deployments.apps",
                 le="0.005") == 1
    assert value(metrics, "apiserver_admission_webhook_admission_duration_seconds_count", name="deny.example.com",
                 type="validating", operation="CREATE", rejected="true") == 1
    assert value(metrics, "apiserver_admission_webhook_admission_duration_seconds_bucket",
                 name="label.example.com", type="admit", operation="UPDATE", rejected="false", le="0.005") == 1
    assert value(metrics, "apiserver_watch_events_total", group="apps", version="v1", kind="Deployment") == 2


async def test_storage_objects_are_read_when_refreshed_and_kept_when_reading_hangs() -> None:
    metrics = ServerMetrics()
    await metrics.refresh_object_counts()  # no source yet: nothing to read, nothing shown
    assert samples(metrics, "apiserver_storage_objects") == []
    counts = {"pods": 3, "deployments.apps": 1}

    async def read() -> dict[str, int]:
        return dict(counts)

    metrics.object_counts = read
    await metrics.refresh_object_counts()
    assert value(metrics, "apiserver_storage_objects", resource="pods") == 3
    assert value(metrics, "apiserver_storage_objects", resource="deployments.apps") == 1

    async def hang() -> Any:
        await asyncio.sleep(30)

    metrics.object_counts = hang
    await metrics.refresh_object_counts(timeout=0.05)
    assert value(metrics, "apiserver_storage_objects", resource="pods") == 3  # the last counts stay
