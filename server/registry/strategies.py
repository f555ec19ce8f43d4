"""Which strategy serves which definition: the one place that names them all."""
from __future__ import annotations

from server.registry.crd_strategy import CRDStrategy
from server.registry.secret_strategy import ConfigMapStrategy, CoreStrategy, SecretStrategy
from server.registry.strategy import NamespaceStrategy, Strategy
from server.registry.webhook_config_strategy import WebhookConfigurationStrategy
from server.scheme.builtin import NAMESPACES
from server.scheme.builtin_admission import ADMISSION_REGISTRATION
from server.scheme.builtin_core import CONFIG_MAPS, CORE_RESOURCES, SECRETS
from server.scheme.builtin_crd import CUSTOM_RESOURCE_DEFINITIONS
from server.scheme.definitions import ResourceDef

_CORE_KEYS = frozenset((d.group, d.plural) for d in CORE_RESOURCES)
_WEBHOOK_CONFIG_KEYS = frozenset((d.group, d.plural) for d in ADMISSION_REGISTRATION)


def strategy_for(definition: ResourceDef) -> Strategy:
    """The strategy that serves `definition`; custom resources get the generic one."""
    key = (definition.group, definition.plural)
    if definition.builtin and key == (NAMESPACES.group, NAMESPACES.plural):
        return NamespaceStrategy(definition)
    if definition.builtin and key == (CUSTOM_RESOURCE_DEFINITIONS.group, CUSTOM_RESOURCE_DEFINITIONS.plural):
        return CRDStrategy(definition)
    if definition.builtin and key == (SECRETS.group, SECRETS.plural):
        return SecretStrategy(definition)
    if definition.builtin and key == (CONFIG_MAPS.group, CONFIG_MAPS.plural):
        return ConfigMapStrategy(definition)
    if definition.builtin and key in _WEBHOOK_CONFIG_KEYS:
        return WebhookConfigurationStrategy(definition)
    if definition.builtin and key in _CORE_KEYS:
        return CoreStrategy(definition)
    return Strategy(definition)
