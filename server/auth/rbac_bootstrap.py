"""kube-apiserver's bootstrap RBAC policy, and how kube reconciles it with what is stored.

kube-apiserver creates `cluster-admin`, `admin`/`edit`/`view`, the `system:`
roles, the controllers' roles and their bindings on every start, and brings
existing ones up to date. `load()` reads kube's own record of that policy
(`data/rbac-bootstrap-<release>.json.gz`, made by `scripts/gen_rbac_bootstrap.py`).

The reconcile functions follow kube's `reconciliation` package as the
apiserver runs it at start (additive: `RemoveExtraPermissions` false):

- an object annotated `rbac.authorization.kubernetes.io/autoupdate: "false"`
  is left alone;
- missing labels and annotations are added, existing values win;
- a role gets the expected rules its rules do not cover, broken down as kube's
  `Covers` reports them (one verb, group, resource and name per added rule);
  rules a user added stay. The aggregated roles (`admin`, `edit`, `view`)
  expect no rules, so their rules are never touched here: the aggregation
  controller owns them;
- missing aggregationRule selectors are added (compared by equality); an
  aggregationRule on a role kube does not aggregate is removed;
- a binding gets its missing subjects; one whose roleRef differs from kube's
  is replaced by kube's (roleRef is immutable: delete, then create).

Pure: no I/O besides reading the packaged data.
"""
from __future__ import annotations

import copy
import functools
import gzip
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterator

from kapi.auth.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES
from kapi.auth.rbac_rules import rules_of, uncovered

Object = dict[str, Any]
RELEASE = "v1.32.0"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING_LABEL = "kubernetes.io/bootstrapping"
# kube's post-start hook reconciles cluster roles, cluster role bindings, roles, role bindings, in that order.
ORDER = (CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS, ROLES, ROLE_BINDINGS)
_SUBJECT_FIELDS = ("kind", "apiGroup", "name", "namespace")
_ROLE_REF_FIELDS = ("apiGroup", "kind", "name")


@dataclass(frozen=True)
class BootstrapPolicy:
    """kube's bootstrap objects by plural, each list in kube's order. Shared: copy before changing one."""

    release: str
    by_plural: dict[str, tuple[Object, ...]]

    def objects(self) -> Iterator[tuple[str, Object]]:
        """Every (plural, object), in the order kube reconciles them."""
        for plural in ORDER:
            for obj in self.by_plural.get(plural, ()):
                yield plural, obj

    def get(self, plural: str, name: str, namespace: str = "") -> Object | None:
        for obj in self.by_plural.get(plural, ()):
            meta = obj["metadata"]
            if meta["name"] == name and meta.get("namespace", "") == namespace:
                return obj
        return None


@functools.cache
def load(release: str = RELEASE) -> BootstrapPolicy:
    """The recorded policy of `release` (read once per process)."""
    raw = (resources.files("kapi.auth") / "data" / f"rbac-bootstrap-{release}.json.gz").read_bytes()
    data = json.loads(gzip.decompress(raw))
    return BootstrapPolicy(release=data["release"],
                           by_plural={plural: tuple(data.get(plural) or ()) for plural in ORDER})


# -- reconciling ------------------------------------------------------------------------------------------------
def protected(existing: Object) -> bool:
    """kube skips objects whose owner opted out with `autoupdate: "false"`."""
    return _meta_map(existing, "annotations").get(AUTOUPDATE) == "false"


def reconcile_role(existing: Object, expected: Object) -> Object | None:
    """The Role or ClusterRole to write so `existing` holds at least `expected`; None when nothing changes."""
    if protected(existing):
        return None
    out = copy.deepcopy(existing)
    changed = _merge_meta(out, expected)
    have = _list(out.get("rules"))
    missing = uncovered(rules_of(out), rules_of(expected))
    if missing:
        out["rules"] = [*have, *(rule.to_dict() for rule in missing)]
        changed = True
    changed |= _reconcile_aggregation(out, existing, expected)
    return out if changed else None


def _reconcile_aggregation(out: Object, existing: Object, expected: Object) -> bool:
    want, have = expected.get("aggregationRule"), existing.get("aggregationRule")
    if want is None:
        if have is None:
            return False
        del out["aggregationRule"]  # kube does not aggregate this role: it stops being aggregated
        return True
    wanted = _selectors(want)
    present = _selectors(have) if have is not None else []
    known = [semantic(s) for s in present]
    missing = [s for s in wanted if semantic(s) not in known]
    if not missing:
        return False
    rule = dict(have) if isinstance(have, dict) else {}
    rule["clusterRoleSelectors"] = [*present, *copy.deepcopy(missing)]
    out["aggregationRule"] = rule
    return True


def reconcile_binding(existing: Object, expected: Object) -> Object | None:
    """The RoleBinding or ClusterRoleBinding to write; None when nothing changes.

    When the roleRef differs the answer is a copy of `expected`, to be created
    in place of `existing` (`must_recreate` says so).
    """
    if protected(existing):
        return None
    if must_recreate(existing, expected):
        return copy.deepcopy(expected)
    out = copy.deepcopy(existing)
    changed = _merge_meta(out, expected)
    have = _list(out.get("subjects"))
    known = {_subject_key(s) for s in have}
    missing: list[Object] = []
    for subject in _list(expected.get("subjects")):
        key = _subject_key(subject)
        if key not in known:
            known.add(key)
            missing.append(copy.deepcopy(subject))
    if missing:
        out["subjects"] = [*have, *missing]
        changed = True
    return out if changed else None


def must_recreate(existing: Object, expected: Object) -> bool:
    """kube replaces a binding whose roleRef is not the expected one (roleRef cannot be updated)."""
    return _role_ref_key(existing) != _role_ref_key(expected)


def reconcile(plural: str, existing: Object, expected: Object) -> Object | None:
    """`reconcile_role` or `reconcile_binding`, by the plural of the two objects."""
    if plural in (ROLES, CLUSTER_ROLES):
        return reconcile_role(existing, expected)
    return reconcile_binding(existing, expected)


# -- helpers ----------------------------------------------------------------------------------------------------
def _meta_map(obj: Object, field: str) -> dict[str, str]:
    meta = obj.get("metadata")
    value = meta.get(field) if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else {}


def _merge_meta(out: Object, expected: Object) -> bool:
    """kube's `merge(expected, existing)` of labels and annotations: add what is missing, keep what is there."""
    changed = False
    meta = out.setdefault("metadata", {})
    for field in ("annotations", "labels"):
        have = _meta_map(out, field)
        merged = {**_meta_map(expected, field), **have}
        if merged != have:
            meta[field] = merged
            changed = True
    return changed


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _selectors(rule: Any) -> list[Any]:
    selectors = rule.get("clusterRoleSelectors") if isinstance(rule, dict) else None
    return list(selectors) if isinstance(selectors, list) else []


def semantic(node: Any) -> Any:
    """`node` as kube's semantic equality compares it: an empty list or map is the same as an absent one."""
    if isinstance(node, dict):
        return {k: semantic(v) for k, v in node.items() if v not in (None, [], {})}
    if isinstance(node, list):
        return [semantic(v) for v in node]
    return node


def _subject_key(subject: Any) -> tuple[str, ...]:
    subject = subject if isinstance(subject, dict) else {}
    return tuple(str(subject.get(field) or "") for field in _SUBJECT_FIELDS)


def _role_ref_key(binding: Object) -> tuple[str, ...]:
    ref = binding.get("roleRef")
    ref = ref if isinstance(ref, dict) else {}
    return tuple(str(ref.get(field) or "") for field in _ROLE_REF_FIELDS)
