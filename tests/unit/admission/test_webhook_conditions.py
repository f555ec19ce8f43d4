"""Webhook matchConditions: kube's validation when stored, and CEL deciding which webhooks a real HTTPS server gets."""
from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any, Callable

import pytest

from kapi.admission.chain import AdmissionChain
from kapi.admission.webhook import MutatingAdmissionWebhook, ValidatingAdmissionWebhook
from kapi.admission.webhook_conditions import MAX_CONDITIONS, condition_causes, evaluate
from kapi.api import errors
from kapi.api.attributes import AdmissionAttributes
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.auth.interfaces import Decision
from kapi.registry.reader import StoreReader
from kapi.registry.store import Store, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.builtin import NAMESPACES
from kapi.scheme.builtin_admission import ADMISSION_REGISTRATION
from kapi.scheme.builtin_core import CONFIG_MAPS
from kapi.storage.memory import MemoryStorage
from kapi.webhook.client import close_clients

GROUP = "admissionregistration.k8s.io"
Server = Any  # tests/conftest.py's HttpsJsonServer
ALICE = UserInfo("alice", "u-1", ("devs", "system:authenticated"), {"team": ("blue",)})


def messages(conditions: Any) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in condition_causes("webhooks[0].matchConditions", conditions)]


# -- validation ------------------------------------------------------------------------------------

def test_valid_conditions_have_no_causes() -> None:
    assert messages([
        {"name": "exclude-leases", "expression": '!(request.resource.group == "coordination.k8s.io" && '
                                                 'request.resource.resource == "leases")'},
        {"name": "not-kubelet", "expression": '!("system:nodes" in request.userInfo.groups)'},
        {"name": "kapi.dev/breakglass", "expression": '!authorizer.group("admissionregistration.k8s.io")'
                                                      '.resource("validatingwebhookconfigurations")'
                                                      '.name("my-webhook.example.com").check("breakglass").allowed()'},
        {"name": "labels", "expression": "object.metadata.labels.exists(k, k.startsWith('team'))"},
    ]) == []


def test_bad_conditions_are_refused_in_kubes_words() -> None:
    found = messages([
        {"name": "undeclared", "expression": "foo == 1"},
        {"name": "not-bool", "expression": "'a string'"},
        {"name": "", "expression": "  "},
        {"name": "Bad Name!", "expression": "true"},
        {"name": "undeclared", "expression": "true"},
    ])
    assert found[0][0] == "webhooks[0].matchConditions[0].expression"
    assert found[0][1].startswith('Invalid value: "foo == 1": compilation failed: ERROR: <input>:1:1: '
                                  "undeclared reference to 'foo'")
    assert found[1:] == [
        ("webhooks[0].matchConditions[1].expression", "Invalid value: \"'a string'\": must evaluate to bool"),
        ("webhooks[0].matchConditions[2].expression", "Required value"),
        ("webhooks[0].matchConditions[2].name", "Required value"),
        ("webhooks[0].matchConditions[3].name",
         'Invalid value: "Bad Name!": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', '
         "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
         "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        ("webhooks[0].matchConditions[4].name", 'Duplicate value: "undeclared"'),
    ]


def test_at_most_64_conditions() -> None:
    many = [{"name": f"c{i}", "expression": "true"} for i in range(MAX_CONDITIONS + 1)]
    assert messages(many) == [("webhooks[0].matchConditions", "Too many: 65: must have at most 64 items")]
    assert messages(many[:MAX_CONDITIONS]) == []


# -- evaluation ------------------------------------------------------------------------------------

def attrs(operation: str = "CREATE", obj: Any = None, old: Any = None, **extra: Any) -> AdmissionAttributes:
    return AdmissionAttributes(operation, "", "v1", "configmaps", "ConfigMap", "default", "cm", obj=obj,
                               old_obj=old, user=ALICE, **extra)


def conditions(*expressions: str) -> list[dict[str, str]]:
    return [{"name": f"c{i}", "expression": e} for i, e in enumerate(expressions)]


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"team": "blue"}}}


@pytest.mark.parametrize("expression, matches", [
    ("object.metadata.labels.team == 'blue'", True),
    ("oldObject == null", True),
    ("request.operation == 'CREATE' && request.kind.kind == 'ConfigMap' && request.resource.resource == 'configmaps'",
     True),
    ("request.userInfo.username == 'alice' && 'devs' in request.userInfo.groups "
     "&& request.userInfo.extra.team == ['blue']", True),
    ("request.subResource == '' && request.namespace == 'default' && request.name == 'cm' && !request.dryRun", True),
    ("request.requestKind.version == 'v1' && request.options.kind == 'CreateOptions'", True),
    ("object.metadata.name.matches('^c')", True),
    ("object.metadata.labels.team == 'red'", False),
])
async def test_conditions_see_object_request_and_user(expression: str, matches: bool) -> None:
    outcome = await evaluate(conditions(expression), attrs(obj=CM), None)
    assert (outcome.matches, outcome.error) == (matches, "")


async def test_one_false_condition_skips_even_when_another_errs() -> None:
    outcome = await evaluate(conditions("object.spec.x == 1", "false"), attrs(obj=CM), None)
    assert (outcome.matches, outcome.error) == (False, "")


async def test_errors_are_aggregated_as_kube_words_them() -> None:
    one = await evaluate(conditions("true", "object.missing == 1"), attrs(obj=CM), None)
    assert (one.matches, one.error) == (False, "expression 'object.missing == 1' resulted in error: "
                                               "no such key: missing")
    two = await evaluate(conditions("object.a == 1", "object.b == 1"), attrs(obj=CM), None)
    assert two.error == ("[expression 'object.a == 1' resulted in error: no such key: a, "
                         "expression 'object.b == 1' resulted in error: no such key: b]")


async def test_delete_has_no_object_but_an_old_one() -> None:
    outcome = await evaluate(conditions("object == null && oldObject.metadata.name == 'cm'"),
                             attrs("DELETE", old=CM), None)
    assert outcome.matches


class RecordingAuthorizer:
    """Allows everything but the `breakglass` verb, and remembers who asked from which thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[UserInfo, RequestInfo]] = []
        self.threads: set[int] = set()

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        await asyncio.sleep(0)  # a real await: the answer must come back through the event loop
        self.calls.append((user, info))
        self.threads.add(threading.get_ident())
        if info.verb == "breakglass":
            return Decision(False, f"{user.name} may not break glass")
        return Decision(True)


async def test_authorizer_checks_reach_the_servers_authorizer() -> None:
    authz = RecordingAuthorizer()
    breakglass = ('authorizer.group("admissionregistration.k8s.io").resource("validatingwebhookconfigurations")'
                  '.namespace("ns").name("hook").subresource("status").check("breakglass")')
    outcome = await evaluate(conditions(f"!{breakglass}.allowed()", f"{breakglass}.reason() == 'alice may not break "
                                        "glass'", f"!{breakglass}.errored() && {breakglass}.error() == ''"),
                             attrs(obj=CM), authz.authorize)
    assert (outcome.matches, outcome.error) == (True, "")
    user, info = authz.calls[0]
    assert user.name == "alice" and user.groups == ALICE.groups and dict(user.extra) == {"team": ("blue",)}
    assert (info.verb, info.is_resource_request, info.group, info.resource, info.namespace, info.name,
            info.subresource) == ("breakglass", True, GROUP, "validatingwebhookconfigurations", "ns", "hook", "status")
    assert authz.threads == {threading.get_ident()}  # authorize ran on the loop, not in CEL's thread


async def test_request_resource_path_and_service_account_checks() -> None:
    authz = RecordingAuthorizer()
    outcome = await evaluate(conditions(
        "authorizer.requestResource.check('create').allowed()",
        "authorizer.path('/healthz').check('get').allowed()",
        "authorizer.serviceAccount('kube-system', 'robot').group('').resource('pods').check('list').allowed()"),
        attrs(obj=CM), authz.authorize)
    assert outcome.matches
    (u1, resource), (u2, path), (robot, pods) = authz.calls
    assert (resource.resource, resource.namespace, resource.name, resource.verb) == ("configmaps", "default", "cm",
                                                                                     "create")
    assert (path.path, path.verb, path.is_resource_request) == ("/healthz", "get", False)
    assert robot.name == "system:serviceaccount:kube-system:robot"
    assert robot.groups == ("system:serviceaccounts", "system:serviceaccounts:kube-system")
    assert (u1.name, u2.name, pods.resource, pods.verb) == ("alice", "alice", "pods", "list")


async def test_a_failing_authorizer_is_the_decisions_error() -> None:
    async def broken(_user: UserInfo, _info: RequestInfo) -> Decision:
        raise RuntimeError("authorizer is down")
    outcome = await evaluate(conditions("authorizer.path('/x').check('get').error() == 'authorizer is down'"),
                             attrs(obj=CM), broken)
    assert outcome.matches


# -- the webhooks, called or not --------------------------------------------------------------------

class World:
    """Namespaces, ConfigMaps and webhook configurations in real Stores, webhooks on a real HTTPS server."""

    def __init__(self, hooks: Server) -> None:
        self.hooks = hooks
        storage = MemoryStorage()
        self.stores: dict[tuple[str, str], Store] = {}
        reader = StoreReader(self.stores)
        authz = RecordingAuthorizer()
        chain = AdmissionChain([MutatingAdmissionWebhook(reader, authz.authorize),
                                ValidatingAdmissionWebhook(reader, authz.authorize)])
        for d in (NAMESPACES, CONFIG_MAPS, *ADMISSION_REGISTRATION):
            self.stores[(d.group, d.plural)] = Store(strategy_for(d), storage, chain)

    def store(self, plural: str) -> Store:
        return next(s for (_, p), s in self.stores.items() if p == plural)

    def hook(self, name: str, *expressions: str, **extra: Any) -> dict[str, Any]:
        path = "/" + name.split(".")[0]
        self.hooks.routes.setdefault(path, self.answer(lambda _r: {}))
        return {"name": name, "clientConfig": self.hooks.client_config(path),
                "rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["configmaps"]}],
                "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "matchConditions": conditions(*expressions), **extra}

    @staticmethod
    def answer(fields: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], tuple[int, Any]]:
        def route(review: dict[str, Any]) -> tuple[int, Any]:
            return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "response": {"uid": review["request"]["uid"], "allowed": True, **fields(review)}}
        return route

    async def configure(self, kind: str, *webhooks: dict[str, Any]) -> dict[str, Any]:
        obj = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "cfg"}, "webhooks": list(webhooks)}
        return await self.store(kind.lower() + "s").create("", obj, "v1", WriteOptions())

    async def create_cm(self, name: str, **labels: str) -> dict[str, Any]:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
        return await self.store("configmaps").create("default", obj, "v1", WriteOptions(user=ALICE))

    def called(self) -> list[str]:
        return [f"{r.path} {r.body['request']['name']}" for r in self.hooks.requests]


@pytest.fixture
async def world(https_json_server: Callable[..., Server]) -> Any:
    w = World(https_json_server())
    await w.store("namespaces").create("", {"metadata": {"name": "default"}}, "v1", WriteOptions())
    yield w
    await close_clients()


async def test_a_webhook_is_called_only_when_its_conditions_hold(world: World) -> None:
    await world.configure("ValidatingWebhookConfiguration",
                          world.hook("audited.kapi.test", "has(object.metadata.labels) && 'audit' in object.metadata"
                                                          ".labels && object.metadata.labels.audit == 'yes'"),
                          world.hook("everyone.kapi.test", "request.userInfo.username == 'alice'"))
    await world.create_cm("plain")
    await world.create_cm("audited", audit="yes")
    assert sorted(world.called()) == ["/audited audited", "/everyone audited", "/everyone plain"]


async def test_mutating_conditions_see_earlier_patches(world: World) -> None:
    patch = [{"op": "add", "path": "/metadata/labels/stamped", "value": "yes"}]
    world.hooks.routes["/stamp"] = world.answer(lambda _r: {
        "patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(patch).encode()).decode()})
    await world.configure("MutatingWebhookConfiguration",
                          world.hook("stamp.kapi.test", "!('stamped' in object.metadata.labels)"),
                          world.hook("after.kapi.test", "object.metadata.labels.stamped == 'yes'"))
    stored = await world.create_cm("cm", x="1")
    assert stored["metadata"]["labels"] == {"x": "1", "stamped": "yes"}
    assert world.called() == ["/stamp cm", "/after cm"]


async def test_an_erring_condition_follows_the_failure_policy(world: World) -> None:
    await world.configure("ValidatingWebhookConfiguration",
                          world.hook("strict.kapi.test", "object.metadata.labels.tier == 'gold'"),
                          world.hook("lenient.kapi.test", "object.metadata.labels.tier == 'gold'",
                                     failurePolicy="Ignore"))
    with pytest.raises(errors.Forbidden) as refused:
        await world.create_cm("no-tier", x="1")
    assert refused.value.message == ('configmaps "no-tier" is forbidden: expression '
                                     "'object.metadata.labels.tier == 'gold'' resulted in error: no such key: tier")
    assert world.called() == []
    with pytest.raises(errors.NotFound):
        await world.store("configmaps").get("default", "no-tier", "v1")
    await world.create_cm("gold", tier="gold")
    assert sorted(world.called()) == ["/lenient gold", "/strict gold"]


async def test_bad_conditions_are_a_422_when_stored(world: World) -> None:
    with pytest.raises(errors.Invalid) as refused:
        await world.configure("MutatingWebhookConfiguration", world.hook("bad.kapi.test", "object.x + 1"))
    assert 'webhooks[0].matchConditions[0].expression: Invalid value: "object.x + 1": must evaluate to bool' \
        in refused.value.message
