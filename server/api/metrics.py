"""kube-apiserver's Prometheus metrics for one kapi server: the metric objects and small record methods.

One `ServerMetrics` per server (made by `create_app`, shared by the root
cluster and every logical cluster), each with its own `CollectorRegistry`:
nothing lives in module globals, so a test process can run many servers and
each `/metrics` shows its own server's numbers only. The names, labels and
buckets are kube-apiserver's (k8s.io/apiserver endpoints/metrics, storage/etcd3
metrics, admission metrics), so the dashboards and alerts written for kube
read kapi unchanged:

- `apiserver_request_total` {verb, dry_run, group, version, resource,
  subresource, scope, component, code} and `apiserver_request_duration_seconds`
  (the same labels but code), verbs as kube reports them (`metric_verb`);
- `apiserver_current_inflight_requests` {request_kind = readOnly | mutating}
  and `apiserver_longrunning_requests` (watches and connect requests);
- `apiserver_storage_objects` {resource}, counted when scraped;
- `etcd_request_duration_seconds` {operation, type} (the etcd backend);
- `apiserver_watch_events_total` {group, version, kind};
- `apiserver_admission_webhook_admission_duration_seconds` {name, operation,
  rejected, type};
- prometheus_client's process_*, python_info and python_gc_* collectors.

Recording sits on every request's path, so it must cost next to nothing:
the two request metrics are plain counters per label set (a dictionary
lookup, two increments and a bisect, about a quarter of prometheus_client's
locked Counter.inc plus Histogram.observe), turned into metric families
only when scraped; the other metrics are prometheus_client's own objects
with their label children looked up once and cached.
"""
from __future__ import annotations

import asyncio
from bisect import bisect_left
from itertools import accumulate
from typing import Any, Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

# kube-apiserver's apiserver_request_duration_seconds buckets (etcd_request_duration_seconds uses the same).
REQUEST_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
                   45, 60)
WEBHOOK_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10, 25)
OBJECT_COUNT_TIMEOUT = 2.0  # seconds a scrape waits for the stored-object counts
COMPONENT = "apiserver"
READ_ONLY, MUTATING = "readOnly", "mutating"
# What kube's /metrics answers with (its promhttp handler writes the 0.0.4 text format).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
LONGRUNNING_LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "component")

# kube's validRequestMethods: any other verb is reported as "other" (bounded label values).
_VALID_VERBS = frozenset({"APPLY", "CONNECT", "CREATE", "DELETE", "DELETECOLLECTION", "GET", "LIST", "PATCH",
                          "POST", "PROXY", "PUT", "UPDATE", "WATCH", "WATCHLIST"})
# kube's validConnectRequests: these subresources are reported as CONNECT whatever the method.
CONNECT_SUBRESOURCES = frozenset({"log", "exec", "portforward", "attach", "proxy"})
APPLY_PATCH = "application/apply-patch+yaml"

RequestKey = tuple[str, str, str, str, str, str, str]  # REQUEST_LABELS but component
ObjectCounts = Callable[[], Awaitable[dict[str, int]]]


def metric_scope(is_resource_request: bool, namespace: str, name: str, verb: str) -> str:
    """kube's CleanScope: "resource" for one object (and every create), "namespace" for a namespace's
    collection, "cluster" for a cluster-wide one, "" for non-resource paths."""
    if name or verb == "create":
        return "resource"
    if namespace:
        return "namespace"
    return "cluster" if is_resource_request else ""


def metric_verb(method: str, scope: str, watch: bool = False, connect: bool = False, content_type: str = "") -> str:
    """The verb label kube-apiserver's MonitorRequest gives a request.

    From the HTTP method, as kube's CanonicalVerb and CleanVerb: a GET (or
    HEAD) of a collection is LIST, a watch WATCH, a server-side apply patch
    APPLY, a request to a log/exec/attach/portforward/proxy subresource
    (`connect`) CONNECT; a create stays POST, an update PUT, a delete (of one
    object or a collection) DELETE. A method kube does not know is "other".
    """
    verb = method.upper()
    if verb == "GET" or verb == "HEAD":
        verb = "LIST" if scope == "namespace" or scope == "cluster" else "GET"
        if watch:
            verb = "WATCH"
    elif verb == "PATCH" and content_type.split(";", 1)[0].strip().lower() == APPLY_PATCH:
        verb = "APPLY"
    if connect:
        verb = "CONNECT"
    return verb if verb in _VALID_VERBS else "other"


def clean_dry_run(values: list[str]) -> str:
    """kube's dry_run label: "" (not a dry run), "All", or "invalid" for a value kube would refuse."""
    if not values:
        return ""
    if any(v != "All" for v in values):
        return "invalid"
    return "All"


class _Inflight:
    """apiserver_current_inflight_requests from two plain counters (cheaper than a Gauge per request).

    kube reports the highest use within the last second; kapi reports the
    highest number of requests in flight at once since the previous scrape
    (at least the current number), which is the same on a 1 s scrape and
    never misses a burst between slower ones.
    """

    def __init__(self) -> None:
        self.current = {READ_ONLY: 0, MUTATING: 0}
        self.peak = {READ_ONLY: 0, MUTATING: 0}

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "apiserver_current_inflight_requests",
            "Maximal number of requests in flight at once per request kind since the previous scrape.",
            labels=["request_kind"])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for kind in (MUTATING, READ_ONLY):
            family.add_metric([kind], max(self.peak[kind], self.current[kind]))
            self.peak[kind] = self.current[kind]
        yield family


class _StorageObjects:
    """apiserver_storage_objects from the counts the last scrape read (`ServerMetrics.refresh_object_counts`)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily("apiserver_storage_objects",
                                 "Number of stored objects at the time of last check split by kind.",
                                 labels=["resource"])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for resource, count in sorted(self.counts.items()):
            family.add_metric([resource], count)
        yield family


class _RequestSeries:
    """One request label set: its count per response code, and its durations as histogram buckets."""

    __slots__ = ("codes", "buckets", "seconds")

    def __init__(self) -> None:
        self.codes: dict[int, int] = {}
        self.buckets = [0] * (len(REQUEST_BUCKETS) + 1)  # per bucket, not cumulative; the last is +Inf
        self.seconds = 0.0


class _Requests:
    """apiserver_request_total and apiserver_request_duration_seconds from `_RequestSeries` counters."""

    _BOUNDS = [floatToGoString(b) for b in REQUEST_BUCKETS] + ["+Inf"]

    def __init__(self) -> None:
        self.series: dict[RequestKey, _RequestSeries] = {}

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(
                "apiserver_request_total",
                "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, "
                "scope, component, and HTTP response code.", labels=[*REQUEST_LABELS, "code"]),
            HistogramMetricFamily(
                "apiserver_request_duration_seconds",
                "Response latency distribution in seconds for each verb, dry run value, group, version, resource, "
                "subresource, scope and component.", labels=REQUEST_LABELS))

    def describe(self) -> Iterator[Any]:
        yield from self._families()

    def collect(self) -> Iterator[Any]:
        total, duration = self._families()
        for key, series in list(self.series.items()):
            labels = [*key, COMPONENT]
            for code, count in sorted(series.codes.items()):
                total.add_metric([*labels, str(code)], count)
            duration.add_metric(labels, list(zip(self._BOUNDS, accumulate(series.buckets))), series.seconds)
        yield total
        yield duration


class ServerMetrics:
    """The metrics of one server on their own registry; `exposition()` is what /metrics answers."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = _Requests()
        registry.register(self.requests)  # type: ignore[arg-type]
        self.longrunning = Gauge(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, "
            "scope and component. Not all requests are tracked this way.",
            LONGRUNNING_LABELS, registry=registry)
        self.etcd_duration = Histogram(
            "etcd_request_duration_seconds", "Etcd request latency in seconds for each operation and object type.",
            ["operation", "type"], buckets=REQUEST_BUCKETS, registry=registry)
        self.watch_events = Counter(
            "apiserver_watch_events", "Number of events sent in watch clients", ["group", "version", "kind"],
            registry=registry)
        self.webhook_duration = Histogram(
            "apiserver_admission_webhook_admission_duration_seconds",
            "Admission webhook latency histogram in seconds, identified by name and broken out for each operation "
            "and API resource and type (validate or admit).",
            ["name", "type", "operation", "rejected"], buckets=WEBHOOK_BUCKETS, registry=registry)
        self.inflight = _Inflight()
        self.storage_objects = _StorageObjects()
        registry.register(self.inflight)  # type: ignore[arg-type]
        registry.register(self.storage_objects)  # type: ignore[arg-type]
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        # Where the stored-object counts come from (`create_app` sets it: every cluster's stores).
        self.object_counts: ObjectCounts | None = None
        self._series = self.requests.series
        self._longrunning: dict[tuple[str, ...], Any] = {}
        self._watch_events: dict[tuple[str, str, str], Any] = {}
        self._etcd: dict[tuple[str, str], Any] = {}

    # -- requests ------------------------------------------------------------------------------------------------

    def observe_request(self, key: RequestKey, code: int, seconds: float) -> None:
        """Count one finished request and observe its duration; `key` is REQUEST_LABELS' values but component."""
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _RequestSeries()
        codes = series.codes
        codes[code] = codes.get(code, 0) + 1
        series.buckets[bisect_left(REQUEST_BUCKETS, seconds)] += 1  # the first bound >= seconds: `le` semantics
        series.seconds += seconds

    def longrunning_gauge(self, verb: str, group: str, version: str, resource: str, subresource: str,
                          scope: str) -> Any:
        """The gauge child of one long-running label set (inc when the request starts, dec when it ends)."""
        key = (verb, group, version, resource, subresource, scope)
        gauge = self._longrunning.get(key)
        if gauge is None:
            gauge = self._longrunning[key] = self.longrunning.labels(*key, COMPONENT)
        return gauge

    def inflight_started(self, kind: str) -> None:
        current = self.inflight.current
        count = current[kind] = current[kind] + 1
        if count > self.inflight.peak[kind]:
            self.inflight.peak[kind] = count

    def inflight_ended(self, kind: str) -> None:
        self.inflight.current[kind] -= 1

    # -- storage, watches, admission -------------------------------------------------------------------------------

    def observe_etcd(self, operation: str, kind: str, seconds: float) -> None:
        key = (operation, kind)
        child = self._etcd.get(key)
        if child is None:
            child = self._etcd[key] = self.etcd_duration.labels(operation, kind)
        child.observe(seconds)

    def watch_event_counter(self, group: str, version: str, kind: str) -> Any:
        """The counter child one watch increments per event it sends."""
        key = (group, version, kind)
        counter = self._watch_events.get(key)
        if counter is None:
            counter = self._watch_events[key] = self.watch_events.labels(*key)
        return counter

    def observe_webhook(self, name: str, kind: str, operation: str, rejected: bool, seconds: float) -> None:
        """One admission webhook call; `kind` is kube's type label: "admit" (mutating) or "validating"."""
        self.webhook_duration.labels(name, kind, operation, "true" if rejected else "false").observe(seconds)

    async def refresh_object_counts(self, timeout: float = OBJECT_COUNT_TIMEOUT) -> None:
        """Read the stored-object counts now (before an exposition); the last ones stay when the storage
        cannot answer within `timeout` seconds, so a scrape never hangs on an unreachable etcd."""
        if self.object_counts is None:
            return
        try:
            counts = await asyncio.wait_for(self.object_counts(), timeout)
        except TimeoutError:
            return
        self.storage_objects.counts = dict(counts)

    # -- exposition ------------------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (0.0.4, as kube-apiserver's /metrics).

        Without prometheus_client's `*_created` samples, which kube does not
        write (turning them off is a process-wide switch in prometheus_client,
        which a server must not flip for the program it runs in).
        """
        return generate_latest(_WithoutCreated(self.registry))  # type: ignore[arg-type]


class _WithoutCreated:
    """A registry's metric families without their `_created` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family
