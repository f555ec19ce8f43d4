"""Shared fixtures of the simulation tests: a simulated server on a manual clock, and polling."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import pytest

from kapi.testing import RunningServer, start_server


def wait_until(probe: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    """Poll `probe` until it returns something truthy; its last answer is in the failure message."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout} s; last seen: {last!r}")


@pytest.fixture
def eventually() -> Callable[..., Any]:
    return wait_until


@pytest.fixture
def sim() -> Iterator[RunningServer]:
    """kapi with 3 simulated nodes on a manual clock: time moves only when the test advances it."""
    with start_server(simulate=True, simulate_manual_clock=True) as kapi:
        yield kapi
