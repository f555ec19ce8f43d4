"""Built-in types every kapi serves, whatever `--api-groups` says: core `v1` namespaces."""
from __future__ import annotations

from kapi.scheme.catalogue import builtin

NAMESPACES = builtin("", "namespaces")

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
