"""The status fields a compiled kind always shows, even before anything wrote its status.

kube encodes its Go structs: a `status` struct is never omitted (`omitempty` does not drop structs), and
fields without `omitempty` appear at their zero value. Clients read `status.replicas` of a fresh
ReplicaSet or `status.loadBalancer` of a Service without a guard, so kapi stores them the same way.
"""
from __future__ import annotations

from typing import Any

_Z = 0
ZERO_STATUS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "services"): {"loadBalancer": {}},
    ("", "replicationcontrollers"): {"replicas": _Z},
    ("", "resourcequotas"): {},
    ("apps", "deployments"): {},
    ("apps", "replicasets"): {"replicas": _Z},
    ("apps", "statefulsets"): {"replicas": _Z, "availableReplicas": _Z},
    ("apps", "daemonsets"): {"currentNumberScheduled": _Z, "numberMisscheduled": _Z, "desiredNumberScheduled": _Z,
                             "numberReady": _Z},
    ("batch", "jobs"): {},
    ("batch", "cronjobs"): {},
    ("networking.k8s.io", "ingresses"): {"loadBalancer": {}},
    ("policy", "poddisruptionbudgets"): {"disruptionsAllowed": _Z, "currentHealthy": _Z, "desiredHealthy": _Z,
                                         "expectedPods": _Z},
    ("autoscaling", "horizontalpodautoscalers"): {"desiredReplicas": _Z, "currentMetrics": None},
    ("certificates.k8s.io", "certificatesigningrequests"): {},
    ("storage.k8s.io", "volumeattachments"): {"attached": False},
}


def fill_zero_status(group: str, plural: str, obj: dict[str, Any]) -> None:
    """Give `obj` the status fields its Go struct would always encode, keeping what is set."""
    zero = ZERO_STATUS.get((group, plural))
    if zero is not None:
        status = obj.get("status")
        obj["status"] = {**zero, **status} if isinstance(status, dict) else dict(zero)
