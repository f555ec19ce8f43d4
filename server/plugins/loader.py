"""Finding plugins: modules named with `--plugin`, and installed packages' `kapi.plugins` entry points.

A plugin module exposes `plugin = server.plugins.Plugin(...)`. Anything
wrong with one (cannot import, no `plugin`, a bad definition) stops the
start with a message naming the module, never a traceback.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from server.plugins.api import Plugin

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
