"""Watches over WebSocket (server/endpoints/websocket_watch.py): one JSON event per text message, the same
filters and errors as a plain watch (fabric8's default transport; tests/e2e/test_client_fabric8.py drives it
with the real client)."""
from __future__ import annotations

import asyncio
import json
from typing import Iterator

import httpx
import pytest
import websockets

from kapi.testing import RunningServer, start_server

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with start_server() as running:
        yield running


def _ws(server: RunningServer, path: str) -> str:
    return server.url.replace("http://", "ws://", 1) + path


def test_events_arrive_one_per_text_message(server: RunningServer) -> None:
    async def scenario() -> list[dict]:
        url = _ws(server, f"{CONFIGMAPS}?watch=true&labelSelector=ws%3Dyes")
        async with websockets.connect(url) as socket:
            async with httpx.AsyncClient(base_url=server.url) as http:
                for name in ("ws-a", "ws-b"):
                    made = await http.post(CONFIGMAPS, json={"metadata": {"name": name, "labels": {"ws": "yes"}}})
                    assert made.status_code == 201, made.text
                await http.post(CONFIGMAPS, json={"metadata": {"name": "ws-other"}})
                assert (await http.delete(f"{CONFIGMAPS}/ws-a")).status_code == 200
            messages = [await asyncio.wait_for(socket.recv(), 5) for _ in range(3)]
        assert all(isinstance(m, str) for m in messages)  # kube frames JSON as text
        return [json.loads(m) for m in messages]

    events = asyncio.run(scenario())
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "ws-a"), ("ADDED", "ws-b"), ("DELETED", "ws-a")]


def test_a_refused_watch_is_refused_before_the_upgrade_with_its_status(server: RunningServer) -> None:
    async def refused(path: str) -> websockets.exceptions.InvalidStatus:
        with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
            async with websockets.connect(_ws(server, path)):
                pass
        return caught.value

    unknown = asyncio.run(refused("/api/v1/namespaces/default/frobs?watch=true"))
    assert unknown.response.status_code == 404
    assert json.loads(unknown.response.body)["reason"] == "NotFound"
    bad_option = asyncio.run(refused(f"{CONFIGMAPS}?watch=true&resourceVersionMatch=Sometimes"))
    assert bad_option.response.status_code == 422
    assert json.loads(bad_option.response.body)["details"]["causes"][0]["field"] == "resourceVersionMatch"
