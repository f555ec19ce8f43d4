"""System-field helpers: the timestamps every write stamps."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from kapi.api import meta


def test_now_is_kube_metav1_time_in_utc() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    stamped = datetime.strptime(meta.now_rfc3339(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamped <= datetime.now(timezone.utc)


def test_now_follows_the_clock_from_second_to_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_700_000_000.2]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    assert meta.now_rfc3339() == "2023-11-14T22:13:20Z"
    clock[0] += 0.5
    assert meta.now_rfc3339() == "2023-11-14T22:13:20Z"
    clock[0] += 0.5
    assert meta.now_rfc3339() == "2023-11-14T22:13:21Z"
