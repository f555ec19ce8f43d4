"""The README's example plugin runs as printed: loaded with `plugins=("shop",)`, it serves its group."""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from server.testing import start_server

README = Path(__file__).resolve().parents[3] / "README.md"
ORDERS = "/apis/shop.example.com/v1/namespaces/default/orders"


def readme_plugin() -> str:
    section = README.read_text().split("## API groups in Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README's plugin section has no python block"
    return found.group(1)


def test_the_readme_plugin_is_under_40_lines() -> None:
    assert len(readme_plugin().splitlines()) < 40


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> httpx.Client:
    (tmp_path / "shop.py").write_text(readme_plugin())
    monkeypatch.syspath_prepend(str(tmp_path))
    with start_server(plugins=("shop",)) as server:
        with httpx.Client(base_url=server.url) as client:
            yield client


def order(name: str, item: str, quantity: int) -> dict[str, object]:
    return {"apiVersion": "shop.example.com/v1", "kind": "Order", "metadata": {"name": name},
            "spec": {"item": item, "quantity": quantity}}


def test_the_readme_plugin_serves_validates_and_admits(shop: httpx.Client) -> None:
    created = shop.post(ORDERS, json=order("tea", "tea", 2))
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == {"item": "tea", "quantity": 2}
    too_many = shop.post(ORDERS, json=order("lots", "tea", 100))
    assert too_many.status_code == 422
    assert too_many.json()["details"]["causes"][0]["field"] == "spec.quantity"
    lunch = shop.post(ORDERS, json=order("free", "lunch", 1))
    assert lunch.status_code == 403
    assert "no free lunch" in lunch.json()["message"]
    defaulted = shop.post(ORDERS, json={**order("one", "cake", 1), "spec": {"item": "cake"}})
    assert defaulted.json()["spec"]["quantity"] == 1
    table = shop.get(ORDERS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Item"]
    missing = shop.post(ORDERS, json={**order("none", "x", 1), "spec": {"quantity": 1}})
    assert missing.status_code == 422
    assert missing.json()["details"]["causes"][0]["field"] == "spec.item"
