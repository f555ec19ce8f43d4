"""Finding plugins: modules named with `--plugin`, and installed packages' `kapi.plugins` entry points.

A plugin module exposes `plugin = kapi.plugins.Plugin(...)`. Anything
wrong with one (cannot import, no `plugin`, a bad definition) stops the
start with a message naming the module, never a traceback.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from typing import Any, Callable

from kapi.plugins.api import AdmissionFactory, Plugin
from kapi.plugins.typed import definition_of
from kapi.scheme.definitions import ResourceDef
from kapi.scheme.registry import Scheme
from kapi.storage.interfaces import Storage
from kapi.storage.memory import MemoryStorage

ENTRY_POINT_GROUP = "kapi.plugins"


class PluginError(ValueError):
    """A plugin that cannot be loaded; the text says which and why."""


def load_module_plugin(module_name: str) -> Plugin:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure in someone else's module is that module's problem
        raise PluginError(f"plugin {module_name}: cannot import: {type(exc).__name__}: {exc}") from None
    found = getattr(module, "plugin", None)
    if not isinstance(found, Plugin):
        raise PluginError(f"plugin {module_name}: the module has no `plugin = Plugin(...)`")
    return found


def installed_plugin_modules() -> tuple[str, ...]:
    """Modules that installed packages declare under the `kapi.plugins` entry point group."""
    return tuple(ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_plugins(module_names: tuple[str, ...]) -> list[tuple[str, Plugin]]:
    """Each named module's plugin, in order, each module once."""
    seen: list[str] = []
    for name in module_names:
        if name not in seen:
            seen.append(name)
    return [(name, load_module_plugin(name)) for name in seen]


class PluginSet:
    """What the loaded plugin modules add: typed resources, their storages, admission and routers."""

    def __init__(self, module_names: tuple[str, ...]) -> None:
        loaded = load_plugins(module_names)
        self.definitions: list[ResourceDef] = []
        self.storages: dict[tuple[str, str], Storage] = {}
        self.admission: dict[str, AdmissionFactory] = {}
        self.routers: list[Callable[[], Any]] = []
        for module, plugin in loaded:
            for group in plugin.groups:
                for resource in group.resources:
                    try:
                        definition = definition_of(group.name, resource)
                    except Exception as exc:  # a plugin's mistake stops the start with its name, not a traceback
                        raise PluginError(f"plugin {module}: resource {resource.plural}.{group.name}: {exc}") from None
                    self.definitions.append(definition)
                    if resource.storage is not None:
                        self.storages[(group.name, resource.plural)] = (
                            MemoryStorage() if resource.storage == "memory" else resource.storage)  # type: ignore[assignment]
            self.admission.update(plugin.admission)
            self.routers.extend(plugin.routers)

    def add_to(self, scheme: Scheme) -> None:
        for definition in self.definitions:
            try:
                scheme.add(definition)
            except ValueError as exc:
                raise PluginError(str(exc)) from None
