"""Wake-up (唤醒) of a reader of the notification log when an event is stored, instead of a fixed poll.

The library's PostgreSQL recorder sends `NOTIFY <channel>` inside every transaction that stores events
(the channel is the events table's name, `recorder.channel_name`); PostgreSQL delivers it when that
transaction commits, so the rows are visible by the time a listener hears of them. The projector and
the relay `LISTEN` on a dedicated connection and wait until notified or until their poll interval
passes, whichever comes first: a command reaches them in milliseconds, and a notification lost for
any reason (the listening connection was down, the recorder was swapped for one that does not
notify) costs at most the poll interval they used before.

The wait never fails. While PostgreSQL is unreachable it simply sleeps the interval, trying to
listen again with a growing pause (0.5 s doubling to 5 s); the reader's own loop meets the outage,
logs it and backs off as before. Right after it (re)connects it reports a wake-up, since anything
may have been stored while it was not listening.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress

import psycopg
import structlog
from psycopg import sql

from infra.outage import CONNECT_TIMEOUT_S, DATABASE_UNAVAILABLE, Backoff

log = structlog.get_logger("dudao.wakeup")

STOP_CHECK_S = 0.5  # a stopped reader's wait ends within this, however long its poll interval


class Wakeup:
    """Waits for the store's commit notifications on `channel`, or for a timeout (one connection, one thread)."""

    def __init__(self, database_url: str, channel: str, stop: threading.Event | None = None, *,
                 backoff: Backoff | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.database_url = database_url
        self.channel = channel
        self.stop = stop or threading.Event()
        self.backoff = backoff or Backoff(0.5, 5.0)
        self.clock = clock
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._retry_at = 0.0

    def wait(self, timeout_s: float) -> bool:
        """Block until an event is stored (True) or `timeout_s` passes (False); True too right after listening
        (again), and when the connection broke while waiting (look now: the reader meets the outage itself)."""
        if self._conn is None:
            return self._listen() or self._sleep(timeout_s)
        end = time.monotonic() + timeout_s
        try:
            while not self.stop.is_set():
                remaining = end - time.monotonic()
                if any(True for _ in self._conn.notifies(timeout=max(0.0, min(remaining, STOP_CHECK_S)), stop_after=1)):
                    for _ in self._conn.notifies(timeout=0):  # commits heard meanwhile: one look covers them all
                        pass
                    return True
                if remaining <= STOP_CHECK_S:
                    break
        except DATABASE_UNAVAILABLE as exc:
            self._lost(exc)
            return True
        return False

    def close(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Wakeup:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _listen(self) -> bool:
        """Open the connection and LISTEN, unless a failed attempt's pause is not over; True when listening now."""
        if self.clock() < self._retry_at:
            return False
        try:
            conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except DATABASE_UNAVAILABLE as exc:
            self._lost(exc)
            return False
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except DATABASE_UNAVAILABLE as exc:
            with suppress(psycopg.Error):
                conn.close()
            self._lost(exc)
            return False
        self._conn = conn
        self.backoff.reset()
        log.debug("wakeup_listening", channel=self.channel)
        return True

    def _lost(self, exc: BaseException) -> None:
        self.close()
        self._retry_at = self.clock() + self.backoff.next()
        log.debug("wakeup_not_listening", channel=self.channel, error=f"{type(exc).__name__}: {exc}".strip())

    def _sleep(self, timeout_s: float) -> bool:
        self.stop.wait(timeout_s)
        return False
