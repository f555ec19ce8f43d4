"""Go-style boolean flags: `--flag=true|false` as well as `--flag` / `--no-flag`.

Kubernetes-style apiservers take `--unrestricted-update=true`; Typer takes
`--unrestricted-update` / `--no-unrestricted-update`. Rewriting argv before
Typer parses it keeps both spellings without a custom parameter type.
"""
from __future__ import annotations

from typing import Iterable

BOOL_FLAGS = frozenset({
    "unrestricted-update", "kubectl-disabled", "kubectl-ephemeral-token", "authn-allow-localhost",
    "examples", "detach", "core-resources", "etcd-wait", "simulate", "simulate-manual-clock",
})
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}


class FlagError(ValueError):
    pass


def normalize_bool_flags(argv: Iterable[str], flags: frozenset[str] = BOOL_FLAGS) -> list[str]:
    """Turn `--name=true` into `--name` and `--name=false` into `--no-name` for known bool flags."""
    out = []
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            name, value = arg[2:].split("=", 1)
            if name in flags:
                lowered = value.lower()
                if lowered in _TRUE:
                    out.append(f"--{name}")
                    continue
                if lowered in _FALSE:
                    out.append(f"--no-{name}")
                    continue
                raise FlagError(f"invalid boolean value {value!r} for --{name}: use true or false")
        out.append(arg)
    return out
