"""Which strategy serves which definition: the one place that names them all."""
from __future__ import annotations

from kapi.registry.apiservice_strategy import APIServiceStrategy
from kapi.registry.builtin_strategy import BuiltinStrategy
from kapi.registry.crd_strategy import CRDStrategy
from kapi.registry.secret_strategy import ConfigMapStrategy, SecretStrategy
from kapi.registry.service_store import ServiceStrategy
from kapi.registry.namespace_strategy import NamespaceStrategy
from kapi.registry.rbac_strategy import BindingStrategy, RoleStrategy
from kapi.registry.strategy import Strategy
from kapi.registry.volume_strategies import PersistentVolumeClaimStrategy, PersistentVolumeStrategy
from kapi.registry.webhook_config_strategy import WebhookConfigurationStrategy
from kapi.registry.workload_strategies import (
    CronJobStrategy,
    DaemonSetStrategy,
    DeploymentStrategy,
    JobStrategy,
    PodStrategy,
    ReplicaSetStrategy,
    ReplicationControllerStrategy,
    StatefulSetStrategy,
)
from kapi.scheme.builtin_admission import ADMISSION_REGISTRATION
from kapi.scheme.builtin_apiregistration import API_SERVICES
from kapi.scheme.builtin_crd import CUSTOM_RESOURCE_DEFINITIONS
from kapi.scheme.definitions import ResourceDef

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
