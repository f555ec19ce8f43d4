"""The simulated clock: manual time moves only on advance; due timers fire once, at the new time."""
from __future__ import annotations

import asyncio
import time

import pytest

from kapi.controllers.simulation.clock import SimClock


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = SimClock(manual=True, start=1_000.0)
    assert clock.now() == pytest.approx(1_000.0, abs=0.5)
    assert clock.advance(90) == pytest.approx(1_090.0, abs=0.5)
    assert clock.now() == clock.now()  # ahead of the wall clock it stands still
    assert clock.rfc3339() == "1970-01-01T00:18:10Z"


def test_manual_clock_is_never_behind_the_wall_clock() -> None:
    clock = SimClock(manual=True)
    assert clock.now() == pytest.approx(time.time(), abs=0.5)  # objects are stamped with real time


def test_due_timers_fire_in_time_order_and_later_ones_wait() -> None:
    clock, fired = SimClock(manual=True, start=0.0), []
    clock.call_at(30, lambda: fired.append("b"))
    clock.call_at(10, lambda: fired.append("a"))
    clock.call_later(100, lambda: fired.append("c"))
    clock.advance(50)
    assert clock.fire_due() == pytest.approx(50, abs=0.5)
    assert fired == ["a", "b"]


def test_a_jump_fires_a_rescheduling_timer_once() -> None:
    clock, beats = SimClock(manual=True, start=0.0), []

    def beat() -> None:
        beats.append(clock.now())
        clock.call_later(10, beat)

    clock.call_later(10, beat)
    clock.advance(3600)
    clock.fire_due()
    assert beats == [pytest.approx(3600.0, abs=0.5)]  # an hour's jump is one heartbeat, not 360


def test_speed_runs_real_time_faster() -> None:
    clock = SimClock(speed=1000.0)
    before = clock.now()

    async def later() -> float:
        await asyncio.sleep(0.05)
        return clock.now()

    assert asyncio.run(later()) - before >= 40  # 50 ms of real time is about 50 simulated seconds


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        SimClock(speed=0)
    with pytest.raises(ValueError):
        SimClock(manual=True).advance(-1)


def test_run_fires_timers_on_the_loop() -> None:
    async def scenario() -> list[str]:
        clock, fired = SimClock(manual=True, start=0.0), []
        task = asyncio.create_task(clock.run())
        clock.call_at(5, lambda: fired.append("due"))
        await asyncio.sleep(0.01)
        assert fired == []
        clock.advance(5)
        await asyncio.sleep(0.01)
        task.cancel()
        return fired

    assert asyncio.run(scenario()) == ["due"]
