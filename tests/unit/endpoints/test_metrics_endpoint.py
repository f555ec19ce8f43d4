"""`/metrics` and the metrics filter (server/endpoints/metrics.py), over in-process HTTP and a real server."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from kapi.app import create_app
from kapi.config import ServerConfig
from kapi.endpoints.metrics import path_label
from kapi.testing import RunningServer, start_server
from kapi.webhook.client import close_clients

LOCAL = ("127.0.0.1", 40000)  # --authn-allow-localhost: the local admin (system:masters)
REMOTE = ("10.0.0.7", 40000)
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
APPLY = "application/apply-patch+yaml"
Series = dict[tuple[tuple[str, str], ...], float]


def config(tmp_path: Path, **kw: Any) -> ServerConfig:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('bob-token,bob,1001\nprom-token,prometheus,1002,"system:monitoring"\n')
    base: dict[str, Any] = dict(backend="memory", file_rootpath=tmp_path / "root", token_auth_file=tokens,
                                authn_allow_localhost=True, kubectl_disabled=True)
    base.update(kw)
    return ServerConfig(**base)


@contextlib.asynccontextmanager
async def serve(cfg: ServerConfig) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """`client(peer=LOCAL, token=None)`: HTTP clients of one in-process server."""
    app = create_app(cfg)
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as stack:
        async def client(peer: tuple[str, int] = LOCAL, token: str | None = None) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=peer)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://kapi", headers=headers))
        yield client


def parse(text: str, name: str) -> Series:
    """Every sample called `name`, by its sorted labels, as Prometheus' own parser reads them."""
    return {tuple(sorted(s.labels.items())): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def requests_of(text: str, resource: str) -> dict[tuple[str, str, str, str], float]:
    """apiserver_request_total of `resource` by (verb, scope, code, dry_run)."""
    out: dict[tuple[str, str, str, str], float] = {}
    for labels, value in parse(text, "apiserver_request_total").items():
        got = dict(labels)
        if got["resource"] == resource:
            assert got["component"] == "apiserver"
            out[(got["verb"], got["scope"], got["code"], got["dry_run"])] = value
    return out


def sample(text: str, metric: str, **labels: str) -> float | None:
    found = [v for got, v in parse(text, metric).items() if all(dict(got).get(k) == w for k, w in labels.items())]
    assert len(found) <= 1, found
    return found[0] if found else None


async def scrape(http: httpx.AsyncClient) -> str:
    answer = await http.get("/metrics")
    assert answer.status_code == 200, answer.text
    return answer.text


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_requests_are_counted_by_kubes_verb_scope_and_code(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as client:
        http = await client()
        assert (await http.post(CONFIGMAPS, json=cm("a"))).status_code == 201
        assert (await http.post(CONFIGMAPS, json=cm("a"))).status_code == 409
        assert (await http.post(CONFIGMAPS + "?dryRun=All", json=cm("dry"))).status_code == 201
        assert (await http.get(CONFIGMAPS + "/a")).status_code == 200
        assert (await http.get(CONFIGMAPS + "/missing")).status_code == 404
        assert (await http.get(CONFIGMAPS)).status_code == 200
        assert (await http.get("/api/v1/configmaps")).status_code == 200
        merge = {"Content-Type": "application/merge-patch+json"}
        assert (await http.patch(CONFIGMAPS + "/a", content=b'{"data":{"k":"v"}}', headers=merge)).status_code == 200
        applied = await http.patch(CONFIGMAPS + "/b?fieldManager=test", content=json.dumps(cm("b")),
                                   headers={"Content-Type": APPLY})
        assert applied.status_code == 201, applied.text
        current = (await http.get(CONFIGMAPS + "/a")).json()
        assert (await http.put(CONFIGMAPS + "/a", json=current)).status_code == 200
        assert (await http.delete(CONFIGMAPS + "/a")).status_code == 200
        assert (await http.delete(CONFIGMAPS)).status_code == 200  # deletecollection
        text = await scrape(http)
    assert requests_of(text, "configmaps") == {
        ("POST", "resource", "201", ""): 1,
        ("POST", "resource", "409", ""): 1,
        ("POST", "resource", "201", "All"): 1,
        ("GET", "resource", "200", ""): 2,
        ("GET", "resource", "404", ""): 1,
        ("LIST", "namespace", "200", ""): 1,
        ("LIST", "cluster", "200", ""): 1,
        ("PATCH", "resource", "200", ""): 1,
        ("APPLY", "resource", "201", ""): 1,
        ("PUT", "resource", "200", ""): 1,
        ("DELETE", "resource", "200", ""): 1,
        ("DELETE", "namespace", "200", ""): 1,
    }
    durations = parse(text, "apiserver_request_duration_seconds_count")
    configmaps = {(dict(k)["verb"], dict(k)["scope"], dict(k)["dry_run"]): v for k, v in durations.items()
                  if dict(k)["resource"] == "configmaps"}
    assert configmaps[("GET", "resource", "")] == 3 and configmaps[("POST", "resource", "")] == 2
    assert configmaps[("POST", "resource", "All")] == 1 and configmaps[("LIST", "cluster", "")] == 1
    assert sample(text, "apiserver_storage_objects", resource="configmaps") == 0  # the deletecollection took b
    assert sample(text, "apiserver_request_total", verb="GET", subresource="/metrics", code="200") is None  # own


async def test_refusals_are_counted_and_made_up_paths_do_not_grow_the_labels(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as client:
        admin, anonymous, bob = await client(), await client(REMOTE), await client(REMOTE, "bob-token")
        assert (await anonymous.get(CONFIGMAPS)).status_code == 401
        assert (await bob.get(CONFIGMAPS)).status_code == 403
        assert (await bob.get(CONFIGMAPS + "/x")).status_code == 403
        assert (await bob.get("/metrics")).status_code == 403
        assert (await admin.get("/api/v1/namespaces/default/frobs/x")).status_code == 404
        assert (await admin.get("/apis/made.up.example.com/v1/things")).status_code == 404
        assert (await admin.get(CONFIGMAPS + "/x/nonsense")).status_code == 404
        for path in ("/nope", "/nope/1", "/nope/2"):
            assert (await admin.get(path)).status_code == 404
        assert (await admin.get("/kapi/clusters/none-such")).status_code == 404
        throttle = {"type": "Fail", "verbs": ["create"], "resource": "configmaps", "code": 429, "count": 1}
        assert (await admin.post("/kapi/faults", json=throttle)).status_code == 201
        assert (await admin.post(CONFIGMAPS, json=cm("throttled"))).status_code == 429
        text = await scrape(admin)
    assert requests_of(text, "configmaps") == {
        ("LIST", "namespace", "401", ""): 1,
        ("LIST", "namespace", "403", ""): 1,
        ("GET", "resource", "403", ""): 1,
        ("GET", "resource", "404", ""): 1,  # the unknown subresource: the resource kept, not the subresource
        ("POST", "resource", "429", ""): 1,
    }
    assert sample(text, "apiserver_request_total", verb="POST", subresource="/kapi/faults", code="201") == 1
    assert sample(text, "apiserver_request_total", subresource="/metrics", code="403") == 1
    assert sample(text, "apiserver_request_total", resource="", subresource="", scope="resource", code="404") == 1
    assert sample(text, "apiserver_request_total", resource="", subresource="", scope="cluster", code="404") == 1
    assert sample(text, "apiserver_request_total", resource="", subresource="", scope="", code="404") == 3
    assert sample(text, "apiserver_request_total", subresource="/kapi/clusters/{name}", code="404") == 1
    labels = {value for key in parse(text, "apiserver_request_total") for name, value in key
              if name in ("resource", "subresource", "group")}
    assert not labels & {"frobs", "nonsense", "made.up.example.com", "things", "/nope", "/nope/1", "none-such"}


def test_non_resource_path_labels() -> None:
    assert path_label("/healthz", 500) == "/healthz"
    assert path_label("/readyz/etcd", 200) == "/readyz/etcd"
    assert path_label("/readyz/made-up", 404) == ""
    assert path_label("/apis/apps/v1", 200) == "/apis/apps/v1"
    assert path_label("/apis/made.up/v1", 404) == ""
    assert path_label("/kapi/faults/f-1", 200) == "/kapi/faults/{name}"
    assert path_label("/wukong/pizzas/123", 200) == ""


async def test_metrics_are_for_masters_and_system_monitoring_only(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as client:
        for http in (await client(), await client(REMOTE, "prom-token")):
            answer = await http.get("/metrics")
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        refused = await (await client(REMOTE, "bob-token")).get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["message"] == 'forbidden: User "bob" cannot get path "/metrics"'


async def test_logical_clusters_count_into_the_servers_metrics(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as client:
        http = await client()
        assert (await http.post("/kapi/clusters", json={"name": "t1"})).status_code == 201
        assert (await http.post(CONFIGMAPS, json=cm("root-cm"))).status_code == 201
        for name in ("one", "two"):
            assert (await http.post("/clusters/t1" + CONFIGMAPS, json=cm(name))).status_code == 201
        assert (await http.get("/clusters/t1/metrics")).status_code == 404  # the server's numbers: root only
        text = await scrape(http)
    assert requests_of(text, "configmaps")[("POST", "resource", "201", "")] == 3
    assert sample(text, "apiserver_storage_objects", resource="configmaps") == 3
    assert sample(text, "apiserver_request_total", verb="POST", subresource="/kapi/clusters", code="201") == 1


async def test_webhook_calls_are_timed(tmp_path: Path, https_json_server: Callable[..., Any]) -> None:
    def answer(allowed: bool) -> Callable[[Any], tuple[int, Any]]:
        def route(review: Any) -> tuple[int, Any]:
            return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "response": {"uid": review["request"]["uid"], "allowed": allowed}}
        return route

    hooks = https_json_server(routes={"/allow": answer(True), "/deny": answer(False)})

    def hook(name: str, path: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "clientConfig": hooks.client_config(path), "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "objectSelector": {"matchLabels": labels},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["configmaps"]}]}

    try:
        async with serve(config(tmp_path)) as client:
            http = await client()
            for kind, spec in (("Mutating", hook("allow.example.com", "/allow", {"hook": "allow"})),
                               ("Validating", hook("deny.example.com", "/deny", {"hook": "deny"}))):
                made = await http.post(f"/apis/admissionregistration.k8s.io/v1/{kind.lower()}webhookconfigurations",
                                       json={"metadata": {"name": kind.lower()}, "webhooks": [spec]})
                assert made.status_code == 201, made.text
            allowed = {**cm("allowed"), "metadata": {"name": "allowed", "labels": {"hook": "allow"}}}
            denied = {**cm("denied"), "metadata": {"name": "denied", "labels": {"hook": "deny"}}}
            assert (await http.post(CONFIGMAPS, json=allowed)).status_code == 201
            assert (await http.post(CONFIGMAPS, json=denied)).status_code == 403
            text = await scrape(http)
    finally:
        await close_clients()
    name = "apiserver_admission_webhook_admission_duration_seconds_count"
    assert sample(text, name, name="allow.example.com", type="admit", operation="CREATE", rejected="false") == 1
    assert sample(text, name, name="deny.example.com", type="validating", operation="CREATE", rejected="true") == 1
    assert requests_of(text, "configmaps") == {("POST", "resource", "201", ""): 1, ("POST", "resource", "403", ""): 1}


# -- long-running requests, on a real server ------------------------------------------------------------------------

def _metrics(server: RunningServer) -> str:
    answer = httpx.get(server.url + "/metrics", timeout=10)
    assert answer.status_code == 200
    return answer.text


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_watches_are_long_running_and_their_events_counted() -> None:
    with start_server() as server:
        base = {"verb": "WATCH", "resource": "configmaps", "scope": "namespace"}
        with httpx.Client(base_url=server.url, timeout=10) as http:
            rv = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
            with http.stream("GET", f"{CONFIGMAPS}?watch=true&resourceVersion={rv}") as watch:
                lines = watch.iter_lines()
                for name in ("w1", "w2"):
                    assert http.post(CONFIGMAPS, json=cm(name)).status_code == 201
                assert [json.loads(next(lines))["type"] for _ in range(2)] == ["ADDED", "ADDED"]
                open_watch = _metrics(server)
                assert sample(open_watch, "apiserver_longrunning_requests", **base) == 1
                assert sample(open_watch, "apiserver_request_total", **base) is None  # counted when it ends
            _until(lambda: sample(_metrics(server), "apiserver_longrunning_requests", **base) == 0,
                   "the watch is still counted as running after its client left")
        text = _metrics(server)
    assert sample(text, "apiserver_request_total", code="200", **base) == 1
    assert sample(text, "apiserver_watch_events_total", group="", version="v1", kind="ConfigMap") == 2


def test_websocket_watches_are_counted_too() -> None:
    async def watch(server: RunningServer) -> None:
        url = server.url.replace("http://", "ws://", 1) + CONFIGMAPS + "?watch=true"
        async with websockets.connect(url) as socket, httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.post(CONFIGMAPS, json=cm("ws"))).status_code == 201
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "ADDED"

    with start_server() as server:
        asyncio.run(watch(server))
        base = {"verb": "WATCH", "resource": "configmaps", "scope": "namespace"}
        _until(lambda: sample(_metrics(server), "apiserver_request_total", code="200", **base) == 1,
               "the WebSocket watch was not counted once it ended")
        text = _metrics(server)
    assert sample(text, "apiserver_longrunning_requests", **base) == 0
    assert sample(text, "apiserver_watch_events_total", kind="ConfigMap") == 1


async def test_no_metrics_counts_nothing_and_serves_no_metrics_path(tmp_path: Path) -> None:
    """`kapi start --no-metrics` (to measure what counting costs): requests work, /metrics is kube's 404."""
    async with serve(config(tmp_path, metrics=False)) as client:
        http = await client()
        assert (await http.post(CONFIGMAPS, json=cm("plain"))).status_code == 201
        assert (await http.get(f"{CONFIGMAPS}/plain")).status_code == 200
        missing = await http.get("/metrics")
        assert missing.status_code == 404 and missing.json()["kind"] == "Status"
    async with serve(config(tmp_path, file_rootpath=tmp_path / "on")) as client:
        assert (await (await client()).get("/metrics")).status_code == 200
