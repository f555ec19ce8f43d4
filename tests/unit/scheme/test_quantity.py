"""Quantities come out as kube's decoder leaves them."""
from __future__ import annotations

import pytest

from kapi.api import errors
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.catalogue import builtin
from kapi.scheme.quantity import QuantityError, canonical
from kapi.storage.memory import MemoryStorage


@pytest.mark.parametrize("sent, kept", [
    (0.5, "500m"), (1, "1"), (1000, "1k"), ("1000", "1k"), ("100m", "100m"), ("1000m", "1"), ("1500m", "1500m"),
    ("1.5", "1500m"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("2048Ki", "2Mi"), ("0.5Gi", "512Mi"),
    ("1e3", "1e3"), ("-0.5", "-500m"), ("128974848", "128974848"), ("0", "0"), ("0.0000000001", "1n"),
])
def test_canonical_forms(sent: object, kept: str) -> None:
    assert canonical(sent) == kept


@pytest.mark.parametrize("bad", ["abc", "1.2.3", "12Qi", True, None, [1]])
def test_not_a_quantity(bad: object) -> None:
    with pytest.raises(QuantityError, match="quantities must match the regular expression"):
        canonical(bad)


async def test_pods_store_canonical_requests_and_refuse_garbage() -> None:
    pods = Store(strategy_for(builtin("", "pods")), MemoryStorage(), None, StoreOptions())
    pod = await pods.create("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"},
                                                                   "limits": {"cpu": 2}}}]}}, "v1", WriteOptions())
    assert pod["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                         "limits": {"cpu": "2"}}
    with pytest.raises(errors.BadRequest, match='Pod in version "v1" cannot be handled as a Pod: quantities must'):
        await pods.create("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}, "spec": {
            "containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "lots"}}}]}}, "v1",
            WriteOptions())
