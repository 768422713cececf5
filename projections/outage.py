"""Riding out an outage (停机) of a dependency: spaced retries, and one log line per change of state.

Every long-running process meets the same thing: PostgreSQL (or the broker) stops answering, for a
second or for an hour. The process must neither exit nor write a line per attempt. `Backoff` spaces
the attempts (doubling up to a cap); `Outage` remembers whether the dependency is up and logs only
the transitions: `<what>_unavailable` once when it goes (with the error and the first retry delay),
`<what>_available` once when it is back (with how long it was gone and how many attempts failed).
`DATABASE_UNAVAILABLE` names the exceptions that mean "the database is not reachable now" rather than
"this statement is wrong": the retry loops, the HTTP API's 503 and the dead letters (an event whose
effect failed with one of these is retried as is, never set aside) all decide by this one list.

It sits in `projections` beside the dead letters, not in `infra`, because the Kafka consumers ride
out outages too and the layers (infra → consumers → projections → domain) let every reader and
process import it from here; `infra.outage` re-exports it for the processes in `infra`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import eventsourcing.persistence as es
import psycopg

CONNECT_TIMEOUT_S = 5  # libpq connect_timeout of a process's own connections: a dead host must not hang it

# psycopg_pool's PoolTimeout/PoolClosed and every server-side "cannot connect now" / "admin shutdown"
# error are psycopg.OperationalError subclasses; eventsourcing wraps them in its own two classes;
# psycopg.InterfaceError is what a connection closed under our feet raises; ConnectionError covers a
# refused socket reaching us unwrapped. The database's own timeouts and conflicts (statement or lock
# timeout, deadlock, serialization failure) are psycopg.OperationalError subclasses too: done again,
# the same work goes through.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError, psycopg.InterfaceError, es.OperationalError, es.InterfaceError, ConnectionError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    """The error means the database cannot be reached now (retry later), not that the request is wrong."""
    return isinstance(exc, DATABASE_UNAVAILABLE)


@dataclass
class Backoff:
    """Delays that double from `start` up to `cap`; `reset()` after a success."""

    start: float = 0.5
    cap: float = 5.0
    current: float = field(default=0.0, init=False)

    def next(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.start)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class Outage:
    """Whether a dependency is reachable, logging only when that changes (thread-safe)."""

    def __init__(self, log: Any, what: str = "database", backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.what = what
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.since: float | None = None  # when it went down; None while up
        self.attempts = 0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt; returns how long to wait before the next one."""
        with self._lock:
            delay = self.backoff.next()
            self.attempts += 1
            if self.since is None:
                self.since = self.clock()
                self.log.warning(f"{self.what}_unavailable", error=f"{type(exc).__name__}: {exc}".strip(),
                                 retry_in_s=delay)
            return delay

    def recovered(self) -> None:
        """Record a success; logs once if the dependency had been down."""
        with self._lock:
            self.backoff.reset()
            if self.since is None:
                return
            down_for = self.clock() - self.since
            self.log.info(f"{self.what}_available", down_for_s=round(down_for, 1), failed_attempts=self.attempts)
            self.since, self.attempts = None, 0
