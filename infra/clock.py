"""Clocks: the wall clock for production, a settable one for tests, demos and simulations."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class SimulatedClock:
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start must be timezone-aware")
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now
