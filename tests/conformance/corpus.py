"""The conformance corpus: scenarios of HTTP exchanges, kube-apiserver's recorded answers, and the comparison.

One runner drives both servers. `scripts/conformance.py record` runs every scenario against a fresh real
kube-apiserver and stores its normalised answers in `recorded/<file>.json`; the replay test and
`scripts/conformance.py` run the same scenarios against kapi and compare field by field. Whatever differs
between two runs of one server (uids, timestamps, resourceVersions, continue tokens, allocated IPs, ports) is
masked by `normalize`, so every remaining difference is a real one: it is either fixed in kapi or listed in
`accepted.yaml` with its reason. This is a helper module, not tests.

A scenario file (`scenarios/*.yaml`) is a list of scenarios:

    - name: configmap-crud              # unique in the corpus; also names its namespace `c-<name>`
      about: what it checks, and the source of the expectation
      namespaced: true                  # default: the runner creates namespace `c-<name>` first
      steps:
      - {method: POST, path: /api/v1/namespaces/$NS/configmaps, body: {...}}
      - {path: /api/v1/namespaces/$NS/configmaps/a, accept: table}

Step keys (every step is one exchange, one request and its answer):
- method: GET (default), POST, PUT, PATCH, DELETE; path: `$NS` is the scenario's namespace (in paths,
  query values and bodies).
- query: query parameters; headers: more request headers.
- accept: json (default), yaml, table, protobuf, protobuf-or-json, aggregated (discovery v2), or a literal value.
- content: the body's type: json (default), yaml, protobuf, merge, json-patch, strategic, apply; or a literal.
  body: the object (YAML in the scenario); a string is sent as it is (for malformed bodies).
- rv: current -> before sending, GET `path` and put its resourceVersion into the body's metadata
  (for PUTs: the static file cannot spell it); rv: $name -> the resourceVersion saved under that name.
- save: name -> remember the answer's metadata.resourceVersion as `$name` (usable in query values and `rv`).
- save_continue: name -> remember the answer's metadata.continue as `$name` (for the next page's `continue`).
- watch: {events: N, timeout: seconds} -> the request is a watch: read events until N were kept or the
  timeout. BOOKMARK events are dropped (their timing is the server's choice) except the one that ends the
  initial events (annotation k8s.io/initial-events-end), which is deterministic.
- select: [dotted paths] -> keep only these parts of the body (for large documents such as OpenAPI);
  a segment `[k=v]` picks the list item whose key k (a dotted path: `[metadata.name=apps]`) equals v,
  `[3]` the list item at that index, a segment `<name>` a map key with dots.
- wait: established -> after the step, wait until the CRD named by the body is Established and served.
- wait: deleted -> after the step, wait until GET `path` answers 404.
- wait: <seconds> (a number) -> after the step, sleep that long (e.g. for kube to see a new webhook configuration).
- webhook placeholders in bodies: `$WEBHOOK_URL` (the runner's HTTPS webhook server, see `WebhookServer`)
  and `$WEBHOOK_CA` (its CA bundle).
- note: free text (why the step is there).
"""
from __future__ import annotations

import base64
import fnmatch
import json
import re
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
RECORDED = HERE / "recorded"
ACCEPTED_FILE = HERE / "accepted.yaml"

ACCEPT = {
    "json": "application/json",
    "yaml": "application/yaml",
    "table": "application/json;as=Table;v=v1;g=meta.k8s.io",
    "protobuf": "application/vnd.kubernetes.protobuf",
    "protobuf-or-json": "application/vnd.kubernetes.protobuf, application/json",
    "aggregated": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
}
CONTENT = {
    "json": "application/json",
    "yaml": "application/yaml",
    "protobuf": "application/vnd.kubernetes.protobuf",
    "merge": "application/merge-patch+json",
    "json-patch": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
USER_AGENT = "kapi-conformance/1.0"
KEPT_HEADERS = ("content-type", "warning")
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LOOPBACK_PORT = re.compile(r"127\.0\.0\.1:\d+")
RESOURCE_VERSION_NUMBERS = re.compile(r"(resource ?version:? )\d+( \(\d+\))?", re.I)
IN_RECORD_NUMBER = re.compile(r"(ResourceVersion in record \()\d+\)")
OPENAPI_HASH = re.compile(r"\?hash=[0-9A-F]+")  # a digest of the served document: differs with any wording
# Fields whose values a server allocates or stamps: masked wherever they appear, their presence still compared.
MASKED_KEYS = {"uid": "<uid>", "resourceVersion": "<rv>", "continue": "<continue>", "clusterIP": "<ip>",
               "nodePort": "<port>", "token": "<token>", "selfLink": "<selfLink>"}


# --------------------------------------------------------------------------------------------- loading
def load_scenarios(directory: Path = SCENARIOS) -> dict[str, list[dict[str, Any]]]:
    """{file stem: scenarios}, in file order; names are unique across the corpus (they key recordings)."""
    files: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        scenarios = yaml.safe_load(path.read_text()) or []
        for scenario in scenarios:
            name = scenario["name"]
            if name in seen:
                raise ValueError(f"{path.name}: scenario {name!r} is defined twice")
            if len(namespace_for(scenario)) > 63:
                raise ValueError(f"{path.name}: scenario name {name!r} is too long for a namespace")
            seen.add(name)
            for index, step in enumerate(scenario["steps"]):
                unknown = set(step) - STEP_KEYS
                if unknown:
                    raise ValueError(f"{name} step {index}: unknown keys {sorted(unknown)}")
        files[path.stem] = scenarios
    return files


STEP_KEYS = {"method", "path", "query", "headers", "accept", "content", "body", "rv", "save", "watch", "select",
             "wait", "note", "save_continue"}


def load_recorded(directory: Path = RECORDED) -> dict[str, list[dict[str, Any]]]:
    """{scenario name: recorded exchanges} from every recording file; `_`-keys are provenance.

    The exchanges are normalised again, so a mask added after recording applies to old recordings too.
    """
    recorded: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.json")):
        recorded.update({k: [normalize(e) for e in v] for k, v in json.loads(path.read_text()).items()
                         if not k.startswith("_")})
    return recorded


def recorded_from(directory: Path = RECORDED) -> set[str]:
    """The server versions the recordings came from."""
    return {json.loads(p.read_text()).get("_recorded_from", "?") for p in directory.glob("*.json")}


@dataclass(frozen=True)
class Accepted:
    """One accepted difference: scenario, step and path are fnmatch patterns; reason says why kapi differs."""

    scenario: str
    path: str
    reason: str
    step: str = "*"
    # The difference depends on how far kapi's controllers got before the next request (a namespace or a
    # Foreground deletion finishing): it may be absent from a run, so it is never reported stale.
    racy: bool = False

    def covers(self, scenario: str, step: int, path: str) -> bool:
        return (fnmatch.fnmatchcase(scenario, self.scenario) and fnmatch.fnmatchcase(str(step), self.step)
                and fnmatch.fnmatchcase(path, self.path))


def load_accepted(path: Path = ACCEPTED_FILE) -> list[Accepted]:
    entries = yaml.safe_load(path.read_text()) or []
    return [Accepted(scenario=e["scenario"], path=e["path"], reason=e["reason"], step=str(e.get("step", "*")),
                     racy=bool(e.get("racy", False))) for e in entries]


def stale_entries(accepted: list[Accepted], used: set[Accepted]) -> list[Accepted]:
    """Accepted entries that covered nothing in a run (racy ones aside): they must go."""
    return [a for a in accepted if a not in used and not a.racy]


def namespace_for(scenario: dict[str, Any]) -> str:
    return f"c-{scenario['name']}"


# --------------------------------------------------------------------------------------------- running
@dataclass
class Runner:
    """Runs scenarios against one server (`client` has its base URL and credentials)."""

    client: httpx.Client
    webhook: "WebhookServer | None" = None
    saved: dict[str, str] = field(default_factory=dict)

    def run(self, scenario: dict[str, Any]) -> list[dict[str, Any]]:
        """Every step's normalised answer; steps run on after an unexpected answer (the recording decides)."""
        namespace = namespace_for(scenario)
        if scenario.get("namespaced", True):
            self.client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": namespace}})
        self.saved = {}
        return [self.step(step, namespace) for step in scenario["steps"]]

    def step(self, step: dict[str, Any], namespace: str) -> dict[str, Any]:
        path = self._fill(step.get("path", "/"), namespace)
        method = step.get("method", "GET").upper()
        query = {k: self._fill(str(v), namespace) for k, v in (step.get("query") or {}).items()}
        headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT.get(step.get("accept", "json"), step.get("accept")),
                   **(step.get("headers") or {})}
        content = self._body(step, path, namespace, headers)
        if "watch" in step:
            result = self._watch(path, query, headers, step["watch"])
        else:
            response = self.client.request(method, path, params=query, headers=headers, content=content)
            result = answer(response, step)
        if step.get("save") and isinstance(result.get("raw_rv"), str):
            self.saved[step["save"]] = result["raw_rv"]
        if step.get("save_continue") and isinstance(result.get("raw_continue"), str):
            self.saved[step["save_continue"]] = result["raw_continue"]
        result.pop("raw_rv", None)
        result.pop("raw_continue", None)
        self._wait(step, path)
        return result

    def _fill(self, text: str, namespace: str) -> str:
        text = text.replace("$NS", namespace)
        for name, value in self.saved.items():
            text = text.replace(f"${name}", value)
        if self.webhook is not None:
            text = text.replace("$WEBHOOK_URL", self.webhook.url).replace("$WEBHOOK_CA", self.webhook.ca_bundle)
        return text

    def _body(self, step: dict[str, Any], path: str, namespace: str, headers: dict[str, str]) -> bytes | None:
        if "body" not in step:
            return None
        kind = step.get("content", "json")
        headers["Content-Type"] = CONTENT.get(kind, kind)
        body = step["body"]
        if isinstance(body, str):
            return self._fill(body, namespace).encode()
        body = json.loads(self._fill(json.dumps(body), namespace))
        rv = step.get("rv")
        if rv == "current":
            current = self.client.get(path, headers={"Accept": "application/json"})
            if current.status_code == 200:
                body.setdefault("metadata", {})["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
        elif isinstance(rv, str) and rv.startswith("$"):
            body.setdefault("metadata", {})["resourceVersion"] = self.saved.get(rv[1:], "0")
        if kind == "yaml" or kind == "apply":
            return yaml.safe_dump(body).encode()
        if kind == "protobuf":
            return encode_protobuf(body)
        return json.dumps(body).encode()

    def _watch(self, path: str, query: dict[str, str], headers: dict[str, str], spec: dict[str, Any]
               ) -> dict[str, Any]:
        wanted = int(spec.get("events", 1))
        timeout = float(spec.get("timeout", 3))
        params = {"watch": "true", **query}
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        code, kept = 0, {}
        try:
            with self.client.stream("GET", path, params=params, headers=headers, timeout=timeout + 5) as response:
                code, kept = response.status_code, kept_headers(response)
                if code != 200:
                    response.read()
                    return {"code": code, "headers": kept, "body": normalize(parse_body(response))}
                for line in _lines_until(response, deadline):
                    event = json.loads(line)
                    if event.get("type") == "BOOKMARK" and not _ends_initial_events(event):
                        continue
                    events.append({"type": event.get("type"), "object": normalize(event.get("object"))})
                    if len(events) >= wanted:
                        break
        except httpx.ReadTimeout:
            pass
        return {"code": code, "headers": kept, "events": events}

    def _wait(self, step: dict[str, Any], path: str, timeout: float = 30.0) -> None:
        what = step.get("wait")
        if what is None:
            return
        if isinstance(what, (int, float)) and not isinstance(what, bool):
            time.sleep(float(what))
            return
        deadline = time.monotonic() + timeout
        if what == "deleted":
            while self.client.get(path).status_code != 404 and time.monotonic() < deadline:
                time.sleep(0.05)
            return
        if what == "established":
            name = step["body"]["metadata"]["name"]
            crd = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            while time.monotonic() < deadline:
                got = self.client.get(crd)
                if got.status_code == 200 and _established(got.json()) and self._served(got.json()):
                    return
                time.sleep(0.05)
            raise RuntimeError(f"CRD {name} was not established within {timeout}s")
        raise ValueError(f"unknown wait {what!r}")

    def _served(self, crd: dict[str, Any]) -> bool:
        """kube serves a new CRD's endpoints a moment after Established: list it once to be sure."""
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        version = next(v["name"] for v in crd["spec"]["versions"] if v.get("served"))
        return self.client.get(f"/apis/{group}/{version}/{plural}").status_code == 200


def _established(crd: dict[str, Any]) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _ends_initial_events(event: dict[str, Any]) -> bool:
    annotations = ((event.get("object") or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(INITIAL_EVENTS_END) == "true"


def _lines_until(response: httpx.Response, deadline: float) -> Iterator[str]:
    """The stream's lines until the deadline (the read timeout ends a quiet stream)."""
    for line in response.iter_lines():
        if line.strip():
            yield line
        if time.monotonic() > deadline:
            return


def kept_headers(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}


def parse_body(response: httpx.Response) -> Any:
    """JSON, YAML or protobuf (decoded to its JSON form) by the answer's content type; else the text."""
    kind = response.headers.get("content-type", "")
    raw = response.content
    if not raw:
        return None
    if kind.startswith("application/vnd.kubernetes.protobuf"):
        return decode_protobuf(raw)
    if "yaml" in kind:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            return raw.decode(errors="replace")
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def answer(response: httpx.Response, step: dict[str, Any]) -> dict[str, Any]:
    """{"code", "headers", "body"} of one exchange, normalised; `raw_rv` carries the unmasked resourceVersion."""
    body = parse_body(response)
    metadata = body.get("metadata") if isinstance(body, dict) and isinstance(body.get("metadata"), dict) else {}
    raw_rv = metadata.get("resourceVersion")
    raw_continue = metadata.get("continue")
    if step.get("select") and isinstance(body, dict):
        body = select(body, step["select"])
    return {"code": response.status_code, "headers": kept_headers(response), "body": normalize(body),
            "raw_rv": raw_rv, "raw_continue": raw_continue}


# --------------------------------------------------------------------------------------------- protobuf
def decode_protobuf(raw: bytes) -> Any:
    """kapi's reader of kube's protobuf envelope, used for both servers' answers alike."""
    from kapi.api.protobuf import decode_object

    try:
        return {"<protobuf>": decode_object(raw)}
    except Exception as exc:  # an answer kapi's reader cannot read is itself a finding
        return {"<protobuf-undecodable>": f"{type(exc).__name__}: {base64.b64encode(raw[:64]).decode()}"}


def encode_protobuf(body: dict[str, Any]) -> bytes:
    """Request bodies in protobuf come pre-encoded from tests/data/protobuf (`body: {file: name.pb}`)."""
    source = body.get("file")
    if not source:
        raise ValueError("a protobuf body names a file of tests/data/protobuf: body: {file: x.pb}")
    return (HERE.parent / "data" / "protobuf" / source).read_bytes()


# --------------------------------------------------------------------------------------------- normalising
def select(body: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Only the parts of `body` named by `paths` (absent parts become null)."""
    return {p: _get(body, p) for p in paths}


def _segments(path: str) -> list[str]:
    return re.findall(r"<[^>]*>|\[[^\]]*\]|[^.\[<]+", path)


def _get(value: Any, path: str) -> Any:
    for segment in _segments(path):
        if segment.startswith("["):
            key, equals, wanted = segment[1:-1].partition("=")
            if not equals and key.isdigit():
                value = value[int(key)] if isinstance(value, list) and int(key) < len(value) else None
            else:
                value = next((v for v in value or [] if isinstance(v, dict) and str(_get(v, key)) == wanted), None)
        elif segment.startswith("<"):
            value = (value or {}).get(segment[1:-1]) if isinstance(value, dict) else None
        else:
            value = value.get(segment) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def normalize(value: Any, key: str = "") -> Any:
    """Mask what varies between runs of one server; keep the presence of every field."""
    if isinstance(value, dict):
        out = {k: normalize(v, k) for k, v in value.items()}
        metadata = out.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("generateName"), str) and "name" in metadata:
            metadata["name"] = metadata["generateName"] + "<random>"
        if out.get("kind") == "Table" and isinstance(out.get("rows"), list):
            _mask_table_ages(out)
        return out
    if isinstance(value, list):
        items = [normalize(v, key) for v in value]
        if key == "managedFields":  # kube orders the entries by their times, which are masked: compare them in
            items.sort(key=lambda entry: json.dumps(entry, sort_keys=True))  # an order times cannot change
        return items
    if key in MASKED_KEYS and value not in (None, "", "None"):
        return MASKED_KEYS[key]
    if key == "clusterIPs" and isinstance(value, str) and value != "None":
        return "<ip>"
    if isinstance(value, str):
        value = RFC3339.sub("<time>", value)
        value = UUID.sub("<uid>", value)
        value = LOOPBACK_PORT.sub("127.0.0.1:<port>", value)
        value = IN_RECORD_NUMBER.sub(r"\1<n>)", value)
        value = OPENAPI_HASH.sub("?hash=<hash>", value)
        return RESOURCE_VERSION_NUMBERS.sub(lambda m: m.group(1) + "<n>" + (" (<n>)" if m.group(2) else ""), value)
    return value


def _mask_table_ages(table: dict[str, Any]) -> None:
    ages = [i for i, c in enumerate(table.get("columnDefinitions") or []) if c.get("name") == "Age"]
    for row in table["rows"]:
        cells = row.get("cells")
        for i in ages:
            if isinstance(cells, list) and i < len(cells):
                cells[i] = "<age>"


# --------------------------------------------------------------------------------------------- comparing
@dataclass(frozen=True)
class Difference:
    """One field where kapi's answer is not kube's. kind: changed | missing (kube has it) | extra (kapi has it)."""

    path: str
    kind: str
    kube: Any
    kapi: Any

    @property
    def kind_class(self) -> str:
        """The class the conformance figure counts: status code, header, watch events or body fields."""
        if self.path == "code":
            return "status code"
        if self.path.startswith("headers."):
            return "header"
        if self.path.startswith("events"):
            return "watch events"
        return f"body field {self.kind}"

    def render(self) -> str:
        return f"{self.path}: {self.kind}: kube={_short(self.kube)} kapi={_short(self.kapi)}"


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def compare(kube: Any, kapi: Any, path: str = "") -> list[Difference]:
    """Field-level differences; lists of named items are matched by name, other lists by position."""
    if isinstance(kube, dict) and isinstance(kapi, dict):
        diffs: list[Difference] = []
        for key in kube:
            sub = f"{path}.{key}" if path else str(key)
            if key not in kapi:
                diffs.append(Difference(sub, "missing", kube[key], None))
            else:
                diffs.extend(compare(kube[key], kapi[key], sub))
        for key in kapi:
            if key not in kube:
                diffs.append(Difference(f"{path}.{key}" if path else str(key), "extra", None, kapi[key]))
        return diffs
    if isinstance(kube, list) and isinstance(kapi, list):
        keys_kube, keys_kapi = _item_keys(kube), _item_keys(kapi)
        if keys_kube is not None and keys_kapi is not None:
            return compare(dict(zip(keys_kube, kube)), dict(zip(keys_kapi, kapi)), path)
        diffs = []
        for i in range(max(len(kube), len(kapi))):
            sub = f"{path}[{i}]"
            if i >= len(kapi):
                diffs.append(Difference(sub, "missing", kube[i], None))
            elif i >= len(kube):
                diffs.append(Difference(sub, "extra", None, kapi[i]))
            else:
                diffs.extend(compare(kube[i], kapi[i], sub))
        return diffs
    if kube != kapi:
        return [Difference(path, "changed", kube, kapi)]
    return []


def _item_keys(items: list[Any]) -> list[str] | None:
    """`[name]` keys when every item is a dict named uniquely (by metadata.name, name, type, group, resource, subresource or version), else None."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for field_name in ("metadata.name", "name", "type", "group", "resource", "subresource", "version"):
        keys = [_get(i, field_name) for i in items]
        if all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys):
            return [f"[{k}]" for k in keys]
    return None


def compare_exchange(kube: dict[str, Any], kapi: dict[str, Any]) -> list[Difference]:
    """The differences of one exchange; list paths keyed by name read `body.items.[a].data` as `body.items[a].data`."""
    return [Difference(d.path.replace(".[", "["), d.kind, d.kube, d.kapi) for d in compare(kube, kapi)]


@dataclass
class Outcome:
    """One exchange compared: its differences, split into accepted (with the entries that cover them) and not."""

    scenario: str
    step: int
    differences: list[Difference]
    unaccepted: list[Difference]
    # A racy accepted entry covers this exchange: whether kapi's controllers won the race this time decides
    # whether it differs, so it counts as an accepted difference either way and the figure stays the same.
    racy: bool = False

    @property
    def identical(self) -> bool:
        return not self.differences and not self.racy


def judge(scenarios: dict[str, dict[str, Any]], recorded: dict[str, list[dict[str, Any]]],
          results: dict[str, list[dict[str, Any]]], accepted: list[Accepted]) -> tuple[list[Outcome], set[Accepted]]:
    """Every exchange's outcome, and the accepted entries that covered something (the rest are stale)."""
    outcomes: list[Outcome] = []
    used: set[Accepted] = set()
    for name in scenarios:
        for index, (kube, kapi) in enumerate(zip(recorded[name], results[name])):
            diffs = compare_exchange(kube, kapi)
            unaccepted = []
            for diff in diffs:
                covering = [a for a in accepted if a.covers(name, index, diff.path)]
                used.update(covering)
                if not covering:
                    unaccepted.append(diff)
            racy = any(a.racy and a.covers(name, index, "*") for a in accepted)
            outcomes.append(Outcome(name, index, diffs, unaccepted, racy))
    return outcomes, used


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """The conformance figure: exchanges, identical, differing only in accepted ways, differing; by class."""
    classes: dict[str, int] = {}
    for outcome in outcomes:
        for cls in {d.kind_class for d in outcome.differences}:
            classes[cls] = classes.get(cls, 0) + 1
    return {
        "exchanges": len(outcomes),
        "identical": sum(o.identical for o in outcomes),
        "accepted": sum(not o.identical and not o.unaccepted for o in outcomes),
        "differing": sum(bool(o.unaccepted) for o in outcomes),
        "exchanges_by_difference_class": dict(sorted(classes.items())),
    }


# --------------------------------------------------------------------------------------------- webhook
class WebhookServer:
    """An HTTPS admission webhook on 127.0.0.1 with fixed behaviours, for scenarios that register webhooks.

    - `/allow`: allows everything.
    - `/deny-labelled`: denies objects labelled `deny: "yes"` with code 403 and a fixed message.
    - `/add-label`: a mutating webhook: adds label `mutated: "yes"` by JSONPatch.
    - `/slow`: answers after 2 s (longer than a scenario's timeoutSeconds: 1).
    - `/broken`: answers 500.
    """

    def __init__(self) -> None:
        from kapi_certs import pki

        ca, ca_key = pki.make_ca("kapi-conformance-webhook-ca")
        cert, key = pki.issue_serving_cert(ca, ca_key, ["127.0.0.1", "localhost"])
        self.ca_bundle = base64.b64encode(pki.cert_pem(ca)).decode()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "tls.crt").write_bytes(pki.cert_pem(cert))
            (Path(tmp) / "tls.key").write_bytes(pki.key_pem(key))
            context.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _WebhookHandler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _WebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        review = json.loads(self.rfile.read(length) or b"{}")
        request = review.get("request") or {}
        route = self.path.partition("?")[0]
        if route == "/broken":
            self._send(500, b"broken")
            return
        if route == "/slow":
            time.sleep(2)
        response: dict[str, Any] = {"uid": request.get("uid"), "allowed": True}
        obj = request.get("object") or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if route == "/deny-labelled" and labels.get("deny") == "yes":
            response = {"uid": request.get("uid"), "allowed": False,
                        "status": {"code": 403, "message": "objects labelled deny=yes are refused"}}
        if route == "/add-label":
            patch = ([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}] if labels else
                     [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        reply = {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview",
                 "response": response}
        self._send(200, json.dumps(reply).encode())

    def _send(self, code: int, payload: bytes) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass


# --------------------------------------------------------------------------------------------- whole corpus
def run_corpus(client: httpx.Client, files: dict[str, list[dict[str, Any]]], only: set[str] | None = None
               ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{file stem: {scenario: answers}} for every scenario (or those in `only`), with one webhook server."""
    webhook = WebhookServer()
    try:
        runner = Runner(client, webhook)
        return {stem: {s["name"]: runner.run(s) for s in scenarios if only is None or s["name"] in only}
                for stem, scenarios in files.items()}
    finally:
        webhook.close()
