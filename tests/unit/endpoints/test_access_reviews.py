"""SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview and SelfSubjectRulesReview over in-process
HTTP, answered from a small rule-table authorizer (RBAC's own decisions are tested in tests/unit/auth)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.app import create_app
from kapi.auth.factory import build_authenticator
from kapi.auth.interfaces import Decision, RulesAnswer
from kapi.auth.rbac_rules import PolicyRule, rules_allow
from kapi.config import ServerConfig
from kapi.endpoints.router import make_api_handler

GROUP_PATH = "/apis/authorization.k8s.io/v1"
SAR = GROUP_PATH + "/subjectaccessreviews"
LSAR = GROUP_PATH + "/namespaces/team/localsubjectaccessreviews"
SSAR = GROUP_PATH + "/selfsubjectaccessreviews"
SSRR = GROUP_PATH + "/selfsubjectrulesreviews"
ALICE = {"Authorization": "Bearer alice-token"}  # in group "admins": anything
BOB = {"Authorization": "Bearer bob-token"}  # only what system:authenticated may
PROTOBUF = "application/vnd.kubernetes.protobuf"
INVALID = '.authorization.k8s.io "" is invalid: '  # kube's decoded review has no kind, so its 422 names none


class RuleTable:
    """An Authorizer with fixed rules per `user:<name>` / `group:<name>`, and what `rules_for` reports."""

    def __init__(self, rules: dict[str, list[PolicyRule]], rule_errors: tuple[str, ...] = ()) -> None:
        self.rules, self.rule_errors = rules, rule_errors
        self.asked: list[tuple[UserInfo, RequestInfo]] = []

    def _rules(self, user: UserInfo) -> list[PolicyRule]:
        keys = ["user:" + user.name, *("group:" + g for g in user.groups)]
        return [rule for key in keys for rule in self.rules.get(key, ())]

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        self.asked.append((user, info))
        allowed = rules_allow(self._rules(user), info)
        return Decision(allowed, "" if allowed else f"nothing allows {user.name}")

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        rules = self._rules(user) + self.rules.get(f"namespace:{namespace}", [])
        return RulesAnswer(tuple(r for r in rules if r.resources), tuple(r for r in rules if r.non_resource_urls),
                           incomplete=bool(self.rule_errors), errors=self.rule_errors)


def table(rule_errors: tuple[str, ...] = ()) -> RuleTable:
    return RuleTable({
        "group:admins": [PolicyRule(("*",), ("*",), ("*",)), PolicyRule(("*",), non_resource_urls=("*",))],
        "group:system:authenticated": [
            PolicyRule(("create",), ("authorization.k8s.io",), ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
            PolicyRule(("get",), non_resource_urls=("/healthz", "/api/*"))],
        "user:carol": [PolicyRule(("get", "list"), ("",), ("configmaps",), ("c1",))],
        "group:viewers": [PolicyRule(("get", "list", "watch"), ("", "apps"), ("pods", "deployments"))],
    }, rule_errors)


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, authorizer: RuleTable | None = None) -> AsyncIterator[httpx.AsyncClient]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("alice-token,alice,1001,\"admins\"\nbob-token,bob,1002\n")
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path / "root", token_auth_file=tokens,
                                  load_examples=False, authorization_modes=("AlwaysAllow",)))
    handler = make_api_handler(app.state.api, build_authenticator(token_auth_file=tokens), authorizer or table())
    chained = Starlette(routes=[Route("/{path:path}", handler, methods=["GET", "POST", "PUT"])])
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=chained), base_url="http://kapi") as http:
            yield http


def attrs(**kw: Any) -> dict[str, Any]:
    return {"resourceAttributes": kw}


# -- SubjectAccessReview -------------------------------------------------------------------------------------------
async def test_subject_access_review_asks_about_the_named_subject_exactly(tmp_path: Path) -> None:
    authorizer = table()
    async with serve(tmp_path, authorizer) as http:
        spec = {**attrs(verb="get", resource="configmaps", name="c1", namespace="team"), "user": "carol",
                "uid": "u-1", "extra": {"scopes": ["view"]}}
        resp = await http.post(SAR, headers=ALICE, json={"apiVersion": "authorization.k8s.io/v1",
                                                         "kind": "SubjectAccessReview", "spec": spec})
        assert resp.status_code == 201
        assert resp.json() == {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                               "metadata": {"creationTimestamp": None}, "spec": spec, "status": {"allowed": True}}
        user, info = authorizer.asked[-1]
        assert user == UserInfo("carol", uid="u-1", groups=(), extra={"scopes": ("view",)})  # no authenticated group
        assert (info.verb, info.namespace, info.resource, info.name, info.version) == (
            "get", "team", "configmaps", "c1", "*")  # no version asks about all of them, as kube's
        other = await http.post(SAR, headers=ALICE, json={"spec": {
            **attrs(verb="get", resource="configmaps", name="c2", namespace="team"), "user": "carol"}})
        assert other.json()["status"] == {"allowed": False, "reason": "nothing allows carol"}
        # bob's groups come only from the spec: system:authenticated may review, the plain name may not
        bare = await http.post(SAR, headers=ALICE, json={"spec": {
            **attrs(verb="create", group="authorization.k8s.io", resource="selfsubjectaccessreviews"), "user": "bob"}})
        assert bare.json()["status"]["allowed"] is False
        grouped = await http.post(SAR, headers=ALICE, json={"spec": {
            **attrs(verb="create", group="authorization.k8s.io", resource="selfsubjectaccessreviews"), "user": "bob",
            "groups": ["system:authenticated"]}})
        assert grouped.json()["status"] == {"allowed": True}
        path = await http.post(SAR, headers=ALICE, json={"spec": {
            "nonResourceAttributes": {"path": "/api/v1", "verb": "get"}, "groups": ["system:authenticated"]}})
        assert path.json()["status"] == {"allowed": True}
        assert path.json()["spec"] == {"nonResourceAttributes": {"path": "/api/v1", "verb": "get"},
                                       "groups": ["system:authenticated"]}


async def test_subject_access_review_is_authorized_like_any_create(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        resp = await http.post(SAR, headers=BOB, json={"spec": {**attrs(verb="get"), "user": "x"}})
        assert resp.status_code == 403
        assert resp.json()["message"] == (
            'subjectaccessreviews.authorization.k8s.io is forbidden: User "bob" cannot create resource '
            '"subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope: nothing allows bob')


async def test_subject_access_review_validation_is_kubes(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        empty = await http.post(SAR, headers=ALICE, json={"spec": {}})
        assert empty.status_code == 422
        body = empty.json()
        assert body["message"] == INVALID + (
            '[spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or '
            'resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group '
            "must be specified]")
        assert body["details"] == {"group": "authorization.k8s.io", "causes": [
            {"reason": "FieldValueInvalid", "field": "spec.resourceAttributes", "message":
             'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified'},
            {"reason": "FieldValueInvalid", "field": "spec.user",
             "message": 'Invalid value: "": at least one of user or group must be specified'}]}
        both = await http.post(SAR, headers=ALICE, json={"spec": {
            **attrs(verb="get"), "nonResourceAttributes": {"path": "/healthz", "verb": "get"}, "user": "u"}})
        assert both.json()["message"] == INVALID + (
            'spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/healthz", '
            'Verb:"get"}: cannot be specified in combination with resourceAttributes')
        named = await http.post(SAR, headers=ALICE, json={"metadata": {"name": "mine", "uid": "wiped"},
                                                          "spec": {**attrs(verb="get"), "user": "u"}})
        assert named.status_code == 422
        assert named.json()["message"] == INVALID + (
            'metadata: Invalid value: v1.ObjectMeta{Name:"mine", GenerateName:"", Namespace:"", SelfLink:"", UID:"", '
            'ResourceVersion:"", Generation:0, CreationTimestamp:time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC), '
            "DeletionTimestamp:<nil>, DeletionGracePeriodSeconds:(*int64)(nil), Labels:map[string]string(nil), "
            "Annotations:map[string]string(nil), OwnerReferences:[]v1.OwnerReference(nil), Finalizers:[]string(nil), "
            "ManagedFields:[]v1.ManagedFieldsEntry(nil)}: must be empty")
        # what kube's create handler wipes (uid, creationTimestamp, ...) and a cluster review's namespace are fine
        wiped = await http.post(SAR, headers=ALICE, json={
            "metadata": {"uid": "x", "creationTimestamp": "2024-01-01T00:00:00Z", "namespace": "ignored"},
            "spec": {**attrs(verb="get"), "user": "u"}})
        assert wiped.status_code == 201 and wiped.json()["metadata"] == {"creationTimestamp": None}
        typed = await http.post(SAR, headers=ALICE, json={"spec": {**attrs(verb=["get"]), "user": "u"}})
        assert typed.status_code == 400
        assert typed.json()["message"] == (
            'SubjectAccessReview in version "v1" cannot be handled as a SubjectAccessReview: json: cannot unmarshal '
            "array into Go struct field ResourceAttributes.spec.resourceAttributes.verb of type string")
        groups = await http.post(SAR, headers=ALICE, json={"spec": {**attrs(verb="get"), "groups": ["a", 1]}})
        assert groups.status_code == 400 and "SubjectAccessReviewSpec.spec.groups of type string" in \
            groups.json()["message"]


async def test_field_and_label_selectors_are_read_not_refused(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        selected = attrs(verb="list", resource="pods", namespace="team",
                         fieldSelector={"rawSelector": "spec.nodeName=n1"},
                         labelSelector={"requirements": [{"key": "app", "operator": "In", "values": ["web"]}]})
        resp = await http.post(SAR, headers=ALICE, json={"spec": {**selected, "groups": ["viewers"]}})
        assert resp.status_code == 201
        assert resp.json()["status"] == {"allowed": True}
        assert resp.json()["spec"]["resourceAttributes"] == selected["resourceAttributes"]
        # selectors that do not parse are ignored and said so, as kube's BuildEvaluationError does
        unparsable = attrs(verb="list", resource="pods", fieldSelector={"rawSelector": "no-operator"},
                           labelSelector={"requirements": [{"key": "app", "operator": "In", "values": ["web"]},
                                                           {"key": "tier", "operator": "Gt", "values": ["1"]}]})
        resp = await http.post(SAR, headers=ALICE, json={"spec": {**unparsable, "groups": ["viewers"]}})
        assert resp.status_code == 201
        assert resp.json()["status"] == {"allowed": True, "evaluationError": (
            "spec.resourceAttributes.fieldSelector ignored due to parse error; "
            "spec.resourceAttributes.labelSelector partially ignored due to parse error")}
        # what kube's validation refuses
        bad = attrs(verb="list", resource="pods",
                    fieldSelector={"rawSelector": "a=b", "requirements": [{"key": "a", "operator": "In",
                                                                          "values": ["b"]}]},
                    labelSelector={"requirements": [{"key": "bad key", "operator": "Exists", "values": ["x"]},
                                                    {"key": "app", "operator": "In"}]})
        resp = await http.post(SAR, headers=ALICE, json={"spec": {**bad, "user": "u"}})
        assert resp.status_code == 422
        fields = [c["field"] for c in resp.json()["details"]["causes"]]
        assert fields == ["spec.resourceAttributes.fieldSelector.rawSelector",
                          "spec.resourceAttributes.labelSelector.requirements[0].values",
                          "spec.resourceAttributes.labelSelector.requirements[0].key",
                          "spec.resourceAttributes.labelSelector.requirements[1].values"]
        messages = [c["message"] for c in resp.json()["details"]["causes"]]
        assert messages[0] == 'Invalid value: "a=b": may not specified at the same time as requirements'
        assert messages[1] == "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        assert messages[3] == "Required value: must be specified when `operator` is 'In' or 'NotIn'"
        empty = await http.post(SAR, headers=ALICE, json={"spec": {**attrs(verb="list", fieldSelector={}), "user": "u"}})
        assert empty.json()["details"]["causes"] == [{
            "reason": "FieldValueRequired", "field": "spec.resourceAttributes.fieldSelector.requirements",
            "message": "Required value: when spec.resourceAttributes.fieldSelector is specified, requirements or "
                       "rawSelector is required"}]


# -- LocalSubjectAccessReview --------------------------------------------------------------------------------------
async def test_local_subject_access_review_is_one_namespace(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        spec = {**attrs(verb="get", resource="configmaps", name="c1", namespace="team"), "user": "carol"}
        resp = await http.post(LSAR, headers=ALICE, json={"kind": "LocalSubjectAccessReview", "spec": spec})
        assert resp.status_code == 201
        assert resp.json() == {"kind": "LocalSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                               "metadata": {"namespace": "team", "creationTimestamp": None}, "spec": spec,
                               "status": {"allowed": True}}
        same = await http.post(LSAR, headers=ALICE, json={"metadata": {"namespace": "team"}, "spec": spec})
        assert same.status_code == 201
        other = await http.post(LSAR, headers=ALICE, json={"metadata": {"namespace": "elsewhere"}, "spec": spec})
        assert other.status_code == 400
        assert other.json()["message"] == ("the namespace of the provided object does not match the namespace sent "
                                           "on the request")
        # kube fills metadata.namespace from the path, never the spec's: an empty one does not match
        unset = await http.post(LSAR, headers=ALICE, json={"spec": {**attrs(verb="get", resource="pods"),
                                                                    "user": "carol"}})
        assert unset.status_code == 422
        assert unset.json()["message"] == INVALID + (
            'spec.resourceAttributes.namespace: Invalid value: "": must match metadata.namespace')
        non_resource = await http.post(LSAR, headers=ALICE, json={"spec": {
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"}, "user": "carol"}})
        assert non_resource.json()["message"] == INVALID + (
            'spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/healthz", '
            'Verb:"get"}: disallowed on this kind of request')
        named = await http.post(LSAR, headers=ALICE, json={"metadata": {"name": "x"}, "spec": spec})
        assert named.status_code == 422 and named.json()["message"].endswith("must be empty except for namespace")
        # it lives under a namespace only, and the cluster-wide reviews never do
        assert (await http.post(GROUP_PATH + "/localsubjectaccessreviews", headers=ALICE,
                                json={"spec": spec})).status_code == 404
        assert (await http.post(GROUP_PATH + "/namespaces/team/subjectaccessreviews", headers=ALICE,
                                json={"spec": spec})).status_code == 404
        assert (await http.get(LSAR, headers=ALICE)).status_code == 405


# -- SelfSubjectAccessReview ---------------------------------------------------------------------------------------
async def test_self_subject_access_review_is_the_callers_with_kubes_validation(tmp_path: Path) -> None:
    authorizer = table()
    async with serve(tmp_path, authorizer) as http:
        spec = attrs(verb="list", resource="configmaps", namespace="team")
        resp = await http.post(SSAR, headers=BOB, json={"spec": spec})
        assert resp.status_code == 201
        assert resp.json() == {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                               "metadata": {"creationTimestamp": None}, "spec": spec,
                               "status": {"allowed": False, "reason": "nothing allows bob"}}
        assert authorizer.asked[-1][0].groups == ("system:authenticated",)  # the caller as authenticated
        empty = await http.post(SSAR, headers=BOB, json={"spec": {}})
        assert empty.json()["message"] == INVALID + (
            'spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or '
            "resourceAttributes must be specified")  # no user check: the caller is the subject
        named = await http.post(SSAR, headers=BOB, json={"metadata": {"generateName": "x-"}, "spec": spec})
        assert named.status_code == 422 and named.json()["message"].endswith(": must be empty")


# -- SelfSubjectRulesReview ----------------------------------------------------------------------------------------
async def test_self_subject_rules_review_lists_the_callers_rules(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        resp = await http.post(SSRR, headers=BOB, json={"kind": "SelfSubjectRulesReview",
                                                        "spec": {"namespace": "team"}})
        assert resp.status_code == 201
        assert resp.json() == {
            "kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": {},  # kube answers a new object: the spec is not echoed
            "status": {
                "resourceRules": [{"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                                   "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}],
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]}],
                "incomplete": False}}
        missing = await http.post(SSRR, headers=BOB, json={"spec": {}})
        assert missing.status_code == 400 and missing.json()["message"] == "no namespace on request"


async def test_self_subject_rules_review_reports_names_incomplete_and_errors(tmp_path: Path) -> None:
    authorizer = table(rule_errors=('clusterrole.rbac.authorization.k8s.io "gone" not found',
                                    'role.rbac.authorization.k8s.io "lost" not found'))
    authorizer.rules["namespace:team"] = [PolicyRule(("get",), ("",), ("configmaps",), ("c1", "c2"))]
    async with serve(tmp_path, authorizer) as http:
        status = (await http.post(SSRR, headers=BOB, json={"spec": {"namespace": "team"}})).json()["status"]
        assert status["resourceRules"][-1] == {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                                               "resourceNames": ["c1", "c2"]}
        assert status["incomplete"] is True
        assert status["evaluationError"] == ('[clusterrole.rbac.authorization.k8s.io "gone" not found, '
                                             'role.rbac.authorization.k8s.io "lost" not found]')
        elsewhere = (await http.post(SSRR, headers=BOB, json={"spec": {"namespace": "other"}})).json()["status"]
        assert {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                "resourceNames": ["c1", "c2"]} not in elsewhere["resourceRules"]


def _field(number: int, data: bytes) -> bytes:
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


async def test_can_i_list_as_kubectl_sends_it_in_protobuf(tmp_path: Path) -> None:
    # k8s\0 + Unknown{TypeMeta{authorization.k8s.io/v1, SelfSubjectRulesReview}, raw{metadata{}, spec{namespace}}}
    body = b"k8s\x00" + _field(1, _field(1, b"authorization.k8s.io/v1") + _field(2, b"SelfSubjectRulesReview")) \
        + _field(2, _field(1, b"") + _field(2, _field(1, b"team"))) + _field(3, b"") + _field(4, b"")
    async with serve(tmp_path) as http:
        resp = await http.post(SSRR, content=body, headers={**ALICE, "Content-Type": PROTOBUF,
                                                            "Accept": f"{PROTOBUF},application/json"})
        assert resp.status_code == 201
        assert resp.json()["status"]["resourceRules"][0] == {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}


# -- discovery -----------------------------------------------------------------------------------------------------
async def test_discovery_and_openapi_list_the_four_reviews(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        listed = (await http.get(GROUP_PATH, headers=ALICE)).json()["resources"]
        assert [(r["name"], r["namespaced"], r["kind"], r["verbs"]) for r in listed] == [
            ("localsubjectaccessreviews", True, "LocalSubjectAccessReview", ["create"]),
            ("selfsubjectaccessreviews", False, "SelfSubjectAccessReview", ["create"]),
            ("selfsubjectrulesreviews", False, "SelfSubjectRulesReview", ["create"]),
            ("subjectaccessreviews", False, "SubjectAccessReview", ["create"])]
        paths = (await http.get("/openapi/v3/apis/authorization.k8s.io/v1", headers=ALICE)).json()["paths"]
        reviews = {path: list(ops) for path, ops in paths.items() if path.endswith("reviews")}
        assert reviews == {GROUP_PATH + "/namespaces/{namespace}/localsubjectaccessreviews": ["post"],
                           SSAR: ["post"], SSRR: ["post"], SAR: ["post"]}
