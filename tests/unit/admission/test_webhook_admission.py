"""Mutating and validating admission webhooks over real Stores and a real HTTPS webhook server."""
from __future__ import annotations

import base64
import json
import socket
import time
from typing import Any, Callable

import pytest

from kapi.admission.chain import AdmissionChain
from kapi.admission.webhook import MutatingAdmissionWebhook, ValidatingAdmissionWebhook
from kapi.api import errors
from kapi.api.user import UserInfo
from kapi.registry.reader import StoreReader
from kapi.registry.store import Store, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.builtin import NAMESPACES
from kapi.scheme.builtin_admission import ADMISSION_REGISTRATION
from kapi.scheme.builtin_core import CONFIG_MAPS, SECRETS
from kapi.storage import keys
from kapi.storage.memory import MemoryStorage
from kapi.webhook.client import close_clients

Review = dict[str, Any]
Answer = Callable[[Review], Any]
GROUP = "admissionregistration.k8s.io"


Server = Any  # tests/conftest.py's HttpsJsonServer (conftest modules cannot be imported)


def admission(answer: Answer) -> Callable[[Review], tuple[int, Any]]:
    """An AdmissionReview route: `answer(review)` gives the response's fields (uid and allowed: true filled in)
    or, with a `response`, the whole review to send."""
    def route(review: Review) -> tuple[int, Any]:
        fields = answer(review)
        if isinstance(fields, dict) and "response" not in fields:
            return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "response": {"uid": review["request"]["uid"], "allowed": True, **fields}}
        return 200, fields
    return route


class CountingReader(StoreReader):
    """The StoreReader, counting lists: a server without webhooks must not list on every write."""

    lists = 0

    async def list(self, group: str, resource: str, namespace: str = "") -> list[dict[str, Any]]:
        self.lists += 1
        return await super().list(group, resource, namespace)


class World:
    def __init__(self, hooks: Server) -> None:
        self.hooks = hooks
        self.storage = MemoryStorage()
        self.stores: dict[tuple[str, str], Store] = {}
        self.reader = CountingReader(self.stores)
        chain = AdmissionChain([MutatingAdmissionWebhook(self.reader), ValidatingAdmissionWebhook(self.reader)])
        for d in (NAMESPACES, CONFIG_MAPS, SECRETS, *ADMISSION_REGISTRATION):
            self.stores[(d.group, d.plural)] = Store(strategy_for(d), self.storage, chain)

    def answer(self, path: str, answer: Answer) -> None:
        """The webhook answers POSTs to path with `answer(review)`, as `admission` wraps it."""
        self.hooks.routes[path] = admission(answer)

    def reviews(self) -> list[Review]:
        """The AdmissionReviews the webhook got, in order."""
        return [r.body for r in self.hooks.requests]

    def paths(self) -> list[str]:
        return [r.path for r in self.hooks.requests]

    def store(self, plural: str) -> Store:
        return next(s for (_, p), s in self.stores.items() if p == plural)

    async def namespace(self, name: str, **labels: str) -> None:
        await self.store("namespaces").create("", {"metadata": {"name": name, "labels": labels}}, "v1", WriteOptions())

    async def configure(self, kind: str, *webhooks: dict[str, Any], name: str = "cfg") -> dict[str, Any]:
        plural = kind.lower() + "s"
        obj = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, "webhooks": list(webhooks)}
        return await self.store(plural).create("", obj, "v1", WriteOptions())

    def hook(self, name: str, path: str = "", **extra: Any) -> dict[str, Any]:
        spec = {"name": name, "clientConfig": self.hooks.client_config(path or "/" + name.split(".")[0]),
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["configmaps"]}],
                "sideEffects": "None", "admissionReviewVersions": ["v1"]}
        spec.update(extra)
        return spec

    async def create_cm(self, name: str = "cm", namespace: str = "default", opts: WriteOptions | None = None,
                        **labels: str) -> dict[str, Any]:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
               "data": {"k": "v"}}
        return await self.store("configmaps").create(namespace, obj, "v1", opts or WriteOptions())


@pytest.fixture
def hooks(https_json_server: Callable[..., Server]) -> Server:
    return https_json_server()


@pytest.fixture
async def world(hooks: Server) -> Any:
    w = World(hooks)
    await w.namespace("default")
    yield w
    await close_clients()


def add_label(key: str, value: str) -> Answer:
    """A JSON patch adding one label, or the labels map when the object has none (kube drops an empty one)."""
    def answer(review: Any) -> dict[str, Any]:
        has_labels = "labels" in ((review["request"].get("object") or {}).get("metadata") or {"labels": 1})
        patch = [{"op": "add", "path": f"/metadata/labels/{key}", "value": value} if has_labels else
                 {"op": "add", "path": "/metadata/labels", "value": {key: value}}]
        return {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(patch).encode()).decode()}
    return answer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_no_configurations_no_listing(world: World) -> None:
    await world.create_cm()
    assert world.reader.lists == 0 and world.reviews() == []


async def test_configurations_get_kube_defaults(world: World) -> None:
    stored = await world.configure("MutatingWebhookConfiguration", world.hook("m.example.com"))
    hook = stored["webhooks"][0]
    assert (hook["failurePolicy"], hook["matchPolicy"], hook["timeoutSeconds"], hook["reinvocationPolicy"]) == \
        ("Fail", "Equivalent", 10, "Never")
    assert hook["namespaceSelector"] == {} and hook["objectSelector"] == {} and hook["rules"][0]["scope"] == "*"


async def test_required_fields_are_422_with_kube_causes(world: World) -> None:
    with pytest.raises(errors.Invalid) as exc:
        await world.configure("ValidatingWebhookConfiguration", {"rules": []}, {"name": "short", "clientConfig": {
            "url": "http://x"}, "sideEffects": "Some", "admissionReviewVersions": ["v9"]})
    causes = {c.field: c.message for c in exc.value.causes}
    assert causes["webhooks[0].name"] == "Required value"
    assert causes["webhooks[0].clientConfig"] == "Required value: exactly one of url or service is required"
    assert causes["webhooks[0].sideEffects"] == "Required value: must specify one of None, NoneOnDryRun"
    assert causes["webhooks[0].admissionReviewVersions"] == "Required value: must specify one of v1, v1beta1"
    assert causes["webhooks[1].name"].endswith("should be a domain with at least three segments separated by dots")
    assert causes["webhooks[1].clientConfig.url"].startswith('Invalid value: "http": \'https\' is the only allowed')
    assert causes["webhooks[1].sideEffects"] == \
        'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"'
    assert causes["webhooks[1].admissionReviewVersions"] == \
        'Invalid value: []string{"v9"}: must include at least one of v1, v1beta1'
    assert exc.value.code == 422


async def test_mutating_webhook_patches_and_sees_the_request(world: World) -> None:
    world.answer("/mutate", add_label("mutated", "yes"))
    await world.configure("MutatingWebhookConfiguration", world.hook("mutate.example.com"))
    created = await world.create_cm(opts=WriteOptions(user=UserInfo("alice", groups=("devs",))))
    assert created["metadata"]["labels"] == {"mutated": "yes"}
    stored = await world.store("configmaps").get("default", "cm", "v1")
    assert stored["metadata"]["labels"] == {"mutated": "yes"}
    request = world.reviews()[0]["request"]
    assert world.reviews()[0]["apiVersion"] == "admission.k8s.io/v1"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert request["requestKind"] == request["kind"] and request["requestResource"] == request["resource"]
    assert (request["operation"], request["namespace"], request["name"]) == ("CREATE", "default", "cm")
    assert request["userInfo"] == {"username": "alice", "groups": ["devs"]}
    assert request["object"]["data"] == {"k": "v"} and request["oldObject"] is None
    assert request["dryRun"] is False and request["options"]["kind"] == "CreateOptions"


async def test_mutating_webhooks_see_the_object_as_sent_and_validating_ones_the_final_one(world: World) -> None:
    """kube admits mutations before the strategy fills in uid, creationTimestamp and a generated name (but after
    it records field owners); the admission record keeps the name the client sent ("" with generateName)."""
    world.answer("/m", lambda _r: {})
    world.answer("/v", lambda _r: {})
    await world.configure("MutatingWebhookConfiguration", world.hook("m.example.com"))
    await world.configure("ValidatingWebhookConfiguration", world.hook("v.example.com"))
    sent = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-", "uid": "mine"},
            "data": {"k": "v"}}
    created = await world.store("configmaps").create("default", sent, "v1", WriteOptions())
    mutating, validating = (r["request"] for r in world.reviews())
    assert "name" not in mutating and "name" not in validating  # kube's omitempty of the record's ""
    as_sent = dict(mutating["object"]["metadata"])
    assert [e["manager"] for e in as_sent.pop("managedFields")] == ["kube-apiserver"]
    assert as_sent == {"generateName": "gen-", "namespace": "default", "uid": "mine"}
    final = validating["object"]["metadata"]
    assert final["name"] == created["metadata"]["name"] and final["name"].startswith("gen-")
    assert final["uid"] == created["metadata"]["uid"] != "mine" and final["creationTimestamp"]


async def test_a_secrets_string_data_is_folded_before_admission(world: World) -> None:
    world.answer("/m", lambda _r: {})
    spec = world.hook("m.example.com")
    spec["rules"][0]["resources"] = ["secrets"]
    await world.configure("MutatingWebhookConfiguration", spec)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"user": "ann"}}
    await world.store("secrets").create("default", secret, "v1", WriteOptions())
    sent = world.reviews()[0]["request"]["object"]
    assert "stringData" not in sent and sent["data"] == {"user": "YW5u"} and sent["type"] == "Opaque"


async def test_update_sends_the_old_object(world: World) -> None:
    world.answer("/v", lambda _r: {})
    await world.create_cm()
    await world.configure("ValidatingWebhookConfiguration", world.hook("v.example.com"))
    await world.store("configmaps").patch("default", "cm", "v1", "", lambda o: {**o, "data": {"k": "new"}},
                                          WriteOptions())
    request = world.reviews()[-1]["request"]
    assert request["operation"] == "UPDATE" and request["options"]["kind"] == "UpdateOptions"
    assert request["oldObject"]["data"] == {"k": "v"} and request["object"]["data"] == {"k": "new"}


@pytest.mark.parametrize(("status", "code", "reason", "message"), [
    ({"message": "no thanks"}, 403, "", 'admission webhook "deny.example.com" denied the request: no thanks'),
    ({"code": 422, "reason": "Invalid", "message": "bad"}, 422, "Invalid",
     'admission webhook "deny.example.com" denied the request: bad'),
    (None, 403, "", 'admission webhook "deny.example.com" denied the request without explanation'),
])
async def test_validating_webhook_refusal_is_the_webhooks_status(world: World, status: Any, code: int,
                                                                 reason: str, message: str) -> None:
    world.answer("/deny", lambda _r: {"allowed": False, **({"status": status} if status else {})})
    await world.configure("ValidatingWebhookConfiguration", world.hook("deny.example.com"))
    with pytest.raises(errors.StatusError) as exc:
        await world.create_cm()
    assert (exc.value.code, exc.value.message) == (code, message)
    rendered = exc.value.to_status()
    assert rendered.get("reason", "") == reason and rendered["code"] == code
    with pytest.raises(errors.NotFound):
        await world.store("configmaps").get("default", "cm", "v1")


async def test_failure_policy_fail_and_ignore(world: World) -> None:
    port = closed_port()
    down = {"url": f"https://127.0.0.1:{port}/", "caBundle": world.hooks.ca_bundle}
    await world.configure("ValidatingWebhookConfiguration",
                          world.hook("down.example.com", clientConfig=down, failurePolicy="Ignore"), name="a")
    await world.create_cm("allowed")
    await world.configure("ValidatingWebhookConfiguration", world.hook("closed.example.com", clientConfig=down),
                          name="b")
    with pytest.raises(errors.StatusError) as exc:
        await world.create_cm("refused")
    assert exc.value.code == 500 and exc.value.reason == "InternalError"
    assert exc.value.message == (
        f'Internal error occurred: failed calling webhook "closed.example.com": failed to call webhook: '
        f'Post "https://127.0.0.1:{port}/?timeout=10s": dial tcp 127.0.0.1:{port}: connect: connection refused')


async def test_a_response_for_another_uid_is_a_call_failure(world: World) -> None:
    world.answer("/uid", lambda _r: {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                     "response": {"uid": "other", "allowed": True}})
    await world.configure("ValidatingWebhookConfiguration", world.hook("uid.example.com"))
    with pytest.raises(errors.StatusError) as exc:
        await world.create_cm()
    assert "received invalid webhook response: expected response.uid=" in exc.value.message
    assert exc.value.message.endswith('got "other"') and exc.value.code == 500


async def test_warnings_reach_the_write_options(world: World) -> None:
    world.answer("/warn", lambda _r: {"warnings": ["careful now"]})
    await world.configure("ValidatingWebhookConfiguration", world.hook("warn.example.com"))
    opts = WriteOptions()
    await world.create_cm(opts=opts)
    assert "careful now" in opts.warnings


async def test_rules_select_operations_resources_and_scope(world: World) -> None:
    world.answer("/r", lambda _r: {})
    rules = [
        {"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]},
        {"operations": ["*"], "apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["*"]},
        {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["configmaps/status"]},
        {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"},
    ]
    await world.configure("ValidatingWebhookConfiguration", world.hook("r.example.com", rules=rules))
    await world.create_cm()
    assert world.reviews() == []
    await world.namespace("other")  # cluster-scoped: the Cluster-scope rule matches
    assert [r["request"]["namespace"] for r in world.reviews()] == ["other"]
    await world.store("configmaps").delete("default", "cm", "v1", None, WriteOptions())
    request = world.reviews()[-1]["request"]
    assert request["operation"] == "DELETE" and request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "cm" and request["options"]["kind"] == "DeleteOptions"


async def test_configurations_themselves_never_reach_webhooks(world: World) -> None:
    world.answer("/all", lambda _r: {"allowed": False})
    everything = [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}]
    await world.configure("ValidatingWebhookConfiguration", world.hook("all.example.com", rules=everything))
    await world.configure("MutatingWebhookConfiguration", world.hook("m.example.com", "/all"), name="second")
    assert world.reviews() == []


async def test_namespace_and_object_selectors(world: World) -> None:
    world.answer("/sel", lambda _r: {"allowed": False})
    await world.namespace("prod", env="prod")
    await world.namespace("dev", env="dev")
    await world.configure("ValidatingWebhookConfiguration", world.hook(
        "sel.example.com",
        namespaceSelector={"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
        objectSelector={"matchLabels": {"guard": "on"}}))
    await world.create_cm("a", "dev", guard="on")
    await world.create_cm("b", "prod")
    with pytest.raises(errors.StatusError):
        await world.create_cm("c", "prod", guard="on")
    by_name = {"kubernetes.io/metadata.name": "dev"}
    await world.configure("MutatingWebhookConfiguration", world.hook(
        "byname.example.com", "/sel", namespaceSelector={"matchLabels": by_name}), name="m")
    with pytest.raises(errors.StatusError):
        await world.create_cm("d", "dev")


async def test_dry_run_and_side_effects(world: World) -> None:
    world.answer("/safe", lambda _r: {})
    await world.configure("ValidatingWebhookConfiguration", world.hook("safe.example.com",
                                                                       sideEffects="NoneOnDryRun"))
    await world.create_cm("dry", opts=WriteOptions(dry_run=True))
    assert world.reviews()[-1]["request"]["dryRun"] is True
    # A configuration kube v1 would no longer accept (sideEffects Some), stored before validation existed.
    legacy = {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingWebhookConfiguration",
              "metadata": {"name": "legacy", "uid": "u1"},
              "webhooks": [world.hook("legacy.example.com", "/safe", sideEffects="Some")]}
    await world.storage.create(keys.object_key(GROUP, "validatingwebhookconfigurations", "", "legacy"), legacy)
    with pytest.raises(errors.BadRequest) as exc:
        await world.create_cm("dry2", opts=WriteOptions(dry_run=True))
    assert exc.value.message == 'admission webhook "legacy.example.com" does not support dry run'
    await world.create_cm("wet")  # without dry run it is called as usual


async def test_reinvocation_if_needed(world: World) -> None:
    world.answer("/first", lambda r: add_label("first", str(sum(p == "/first" for p in world.paths())))(r))
    world.answer("/second", add_label("second", "x"))
    await world.configure("MutatingWebhookConfiguration", world.hook("first.example.com", reinvocationPolicy="IfNeeded"),
                          world.hook("second.example.com"))
    created = await world.create_cm()
    assert world.paths() == ["/first", "/second", "/first"]
    assert created["metadata"]["labels"] == {"first": "2", "second": "x"}


async def test_validating_webhooks_run_concurrently(world: World) -> None:
    def slow(_review: Review) -> dict[str, Any]:
        time.sleep(0.6)
        return {}

    world.answer("/slow", slow)
    await world.configure("ValidatingWebhookConfiguration", world.hook("a.example.com", "/slow"),
                          world.hook("b.example.com", "/slow"), world.hook("c.example.com", "/slow"))
    started = time.monotonic()
    await world.create_cm()
    assert time.monotonic() - started < 1.5 and len(world.reviews()) == 3


async def test_a_patched_object_is_still_validated(world: World) -> None:
    world.answer("/bad", add_label("bad", "not a valid label value!"))
    await world.configure("MutatingWebhookConfiguration", world.hook("bad.example.com"))
    with pytest.raises(errors.Invalid) as exc:
        await world.create_cm()
    assert exc.value.causes[0].field == "metadata.labels"


async def test_a_patch_for_a_delete_is_an_internal_error(world: World) -> None:
    world.answer("/del", add_label("x", "y"))
    await world.create_cm()
    rule = [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]
    await world.configure("MutatingWebhookConfiguration", world.hook("del.example.com", rules=rule))
    with pytest.raises(errors.StatusError) as exc:
        await world.store("configmaps").delete("default", "cm", "v1", None, WriteOptions())
    assert exc.value.code == 500 and "attempted to modify the object" in exc.value.message
