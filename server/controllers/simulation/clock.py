"""The simulation's clock: real time run faster (`--simulate-speed`), or a manual clock a test advances.

Controllers never sleep; they ask the clock to call them back at a simulated
time (`call_at`). A manual clock stands still except when a test advances it,
so a test of a CronJob or a grace period runs in milliseconds; it is never
behind the wall clock, though, because the API server stamps objects
(creationTimestamp, deletionTimestamp) with real time and controllers compare
the two. An advance jumps: each due timer fires once, at the new time, as
kube's controllers behave after a long pause (a CronJob starts only its latest
missed run), so an hour's jump does not replay every heartbeat.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timezone
from typing import Callable

Callback = Callable[[], None]


class SimClock:
    """Simulated epoch seconds; `speed` > 0 runs with real time (× speed), `manual` only moves on `advance`."""

    def __init__(self, speed: float = 1.0, manual: bool = False, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("the simulation speed must be above 0")
        self.speed, self.manual = speed, manual
        self._start = time.time() if start is None else start
        self._mono = time.monotonic()
        self._offset = 0.0  # what `advance` added (a running clock)
        self._virtual = self._start  # where a manual clock stands, unless the wall clock is further
        self._timers: list[tuple[float, int, Callback]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()

    def now(self) -> float:
        if self.manual:
            return max(self._virtual, self._start + time.monotonic() - self._mono)
        return self._start + (time.monotonic() - self._mono) * self.speed + self._offset

    def rfc3339(self, at: float | None = None) -> str:
        """kube's second-precision timestamp of `at` (default: now) on this clock."""
        moment = self.now() if at is None else at
        return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def call_at(self, when: float, callback: Callback) -> None:
        heapq.heappush(self._timers, (when, next(self._order), callback))
        self._wake.set()

    def call_later(self, seconds: float, callback: Callback) -> None:
        self.call_at(self.now() + max(seconds, 0.0), callback)

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by `seconds` (any clock); due timers fire on the running loop. Returns now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        if self.manual:
            self._virtual = self.now() + seconds
        else:
            self._offset += seconds
        self._wake.set()
        return self.now()

    def fire_due(self) -> float | None:
        """Run every timer due now; the simulated seconds until the next one (None: no timer)."""
        now = self.now()
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            callback()
        return self._timers[0][0] - now if self._timers else None

    async def run(self) -> None:
        """Fire timers as their time comes, for ever (a task of the server's loop)."""
        while True:
            self._wake.clear()
            wait = self.fire_due()
            timeout = None if wait is None else max(wait / self.speed, 0.001)  # a manual clock follows the wall
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
