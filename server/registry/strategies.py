"""Which strategy serves which definition: the one place that names them all."""
from __future__ import annotations

from server.registry.apiservice_strategy import APIServiceStrategy
from server.registry.builtin_strategy import BuiltinStrategy
from server.registry.crd_strategy import CRDStrategy
from server.registry.secret_strategy import ConfigMapStrategy, SecretStrategy
from server.registry.service_store import ServiceStrategy
from server.registry.namespace_strategy import NamespaceStrategy
from server.registry.rbac_strategy import BindingStrategy, RoleStrategy
from server.registry.strategy import Strategy
from server.registry.volume_strategies import PersistentVolumeClaimStrategy, PersistentVolumeStrategy
from server.registry.webhook_config_strategy import WebhookConfigurationStrategy
from server.registry.workload_strategies import (
    CronJobStrategy,
    DaemonSetStrategy,
    DeploymentStrategy,
    JobStrategy,
    PodStrategy,
    ReplicaSetStrategy,
    ReplicationControllerStrategy,
    StatefulSetStrategy,
)
from server.scheme.builtin_admission import ADMISSION_REGISTRATION
from server.scheme.builtin_apiregistration import API_SERVICES
from server.scheme.builtin_crd import CUSTOM_RESOURCE_DEFINITIONS
from server.scheme.definitions import ResourceDef

_BUILTIN: dict[tuple[str, str], type[Strategy]] = {
    ("", "namespaces"): NamespaceStrategy,
    ("", "secrets"): SecretStrategy,
    ("", "configmaps"): ConfigMapStrategy,
    ("", "pods"): PodStrategy,
    ("", "services"): ServiceStrategy,
    ("", "replicationcontrollers"): ReplicationControllerStrategy,
    ("", "persistentvolumeclaims"): PersistentVolumeClaimStrategy,
    ("", "persistentvolumes"): PersistentVolumeStrategy,
    ("apps", "deployments"): DeploymentStrategy,
    ("apps", "replicasets"): ReplicaSetStrategy,
    ("apps", "statefulsets"): StatefulSetStrategy,
    ("apps", "daemonsets"): DaemonSetStrategy,
    ("batch", "jobs"): JobStrategy,
    ("batch", "cronjobs"): CronJobStrategy,
    ("rbac.authorization.k8s.io", "roles"): RoleStrategy,
    ("rbac.authorization.k8s.io", "clusterroles"): RoleStrategy,
    ("rbac.authorization.k8s.io", "rolebindings"): BindingStrategy,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): BindingStrategy,
    (CUSTOM_RESOURCE_DEFINITIONS.group, CUSTOM_RESOURCE_DEFINITIONS.plural): CRDStrategy,
    **{(d.group, d.plural): WebhookConfigurationStrategy for d in ADMISSION_REGISTRATION},
    (API_SERVICES.group, API_SERVICES.plural): APIServiceStrategy,
}


def strategy_for(definition: ResourceDef) -> Strategy:
    """The strategy that serves `definition`; other built-ins get kube's shared rules, custom resources the generic ones."""
    if not definition.builtin:
        return Strategy(definition)
    chosen = _BUILTIN.get((definition.group, definition.plural), BuiltinStrategy)
    return chosen(definition)
