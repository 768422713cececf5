"""The database gate (数据库闸门): during a PostgreSQL outage the API answers 503 at once instead of hanging.

Without it every request in an outage waits for a pooled connection until the pool gives up, and
a write's store call retries that wait several times: the client hangs and holds a server thread.
The gate is open while the database answers. When a request meets an unreachable database (a
pool timeout, a refused connection, a connection that fails its check), the gate is *suspected*:
one background probe connects directly (bounded by a short connect timeout). If that fails the gate
closes, and from then on every request that needs the database is refused with 503 and
`Retry-After` before touching a pool, while the probe keeps trying with backoff (0.25 s doubling to
2 s) and reopens the gate on its first success. Opening and closing are each logged once.
A suspicion the probe disproves (a pool briefly exhausted under load) closes nothing.
"""

from __future__ import annotations

import threading

import psycopg
import structlog

from infra.outage import Backoff, Outage

log = structlog.get_logger("dudao.http")

PROBE_CONNECT_TIMEOUT_S = 2
PROBE_FIRST_S = 0.25
PROBE_CAP_S = 2.0


class DatabaseGate:
    """Open while the database answers; closed (503 at once) from a failed probe until a successful one."""

    def __init__(self, database_url: str, *, connect_timeout: int = PROBE_CONNECT_TIMEOUT_S,
                 backoff: Backoff | None = None) -> None:
        self.database_url = database_url
        self.connect_timeout = connect_timeout
        self.outage = Outage(log, backoff=backoff or Backoff(PROBE_FIRST_S, PROBE_CAP_S))
        self._lock = threading.Lock()
        self._probe: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def closed(self) -> bool:
        return self.outage.down

    @property
    def probing(self) -> bool:
        probe = self._probe
        return probe is not None and probe.is_alive()

    def suspect(self, exc: BaseException) -> None:
        """A request met the database unreachable: make sure a probe is checking (returns at once)."""
        with self._lock:
            if self._stop.is_set() or self.probing:
                return
            log.debug("database_suspected", error=f"{type(exc).__name__}: {exc}")
            self._probe = threading.Thread(target=self._watch, name="dudao-db-probe", daemon=True)
            self._probe.start()

    def close(self) -> None:
        """Stop probing (the app is shutting down)."""
        self._stop.set()
        probe = self._probe
        if probe is not None:
            probe.join(timeout=self.connect_timeout + 1)

    def answers(self) -> bool:
        """One direct connection and `SELECT 1`, bypassing every pool."""
        return self._probe_error() is None

    def _probe_error(self) -> psycopg.Error | None:
        try:
            with psycopg.connect(self.database_url, connect_timeout=self.connect_timeout, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return exc
        return None

    def _watch(self) -> None:
        """Probe until the database answers; the gate is closed from the first failed probe until then."""
        while not self._stop.is_set():
            error = self._probe_error()
            if error is None:
                self.outage.recovered()
                return
            self._stop.wait(self.outage.failed(error))
