"""Clocks: the wall clock for production, a settable one for tests and the demo, and the drill clock (演练时钟).

A drill deployment (演练模式: offices rehearse the escalation ladder before a campaign starts; acceptance checks
pass weeks in minutes) is one whose database holds the one shared drill clock, `dudao_drill_clock`: every
process of the deployment — API, escalator, projector, bulletin drafts, the demo — reads its time from there, so
they all agree, and an admin sets or advances it (`POST /drill/clock`). It runs on from the instant it was set at
the wall clock's pace (or stands still, `running: false`), and never goes back: a history cannot record a later
step before an earlier one. Every event written under it says so (`meta.drill`).

A deployment is started in drill mode once (`dudao run --drill-clock START`, or DUDAO_DRILL_CLOCK), on an empty
event store; one that already holds events and no drill clock was not started in drill mode and refuses the
setting (`DrillRefused`) — a real history never gets drill times mixed into it. `DeploymentClock` is what each
process uses: on first use it looks whether the database holds a drill clock, and reads it or the wall clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.rows import dict_row

DRILL_DDL = (
    "CREATE TABLE IF NOT EXISTS dudao_drill_clock ("
    " id smallint PRIMARY KEY CHECK (id = 1), base_at timestamptz NOT NULL,"
    " wall_at timestamptz NOT NULL DEFAULT clock_timestamp(), running bool NOT NULL DEFAULT true,"
    " started_at timestamptz NOT NULL DEFAULT clock_timestamp(), updated_by text NULL)",
)
# The drill's now: from the instant it was set, at the pace of the database's wall clock (unless it stands still).
_NOW = "CASE WHEN running THEN base_at + (clock_timestamp() - wall_at) ELSE base_at END"
EVENTS_TABLE = "dudao_events"


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


class DrillRefused(RuntimeError):
    """The drill clock was asked of a deployment not started in drill mode, or to go back in time."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    with conn.cursor() as curs:
        row = curs.execute(sql, params).fetchone()
    return row[0] if row else None


def is_drill_deployment(conn: psycopg.Connection[Any]) -> bool:
    """The database holds the drill clock: this deployment was started in drill mode."""
    if not _one(conn, "SELECT to_regclass('dudao_drill_clock') IS NOT NULL"):
        return False
    return bool(_one(conn, "SELECT count(*) FROM dudao_drill_clock"))


def has_events(conn: psycopg.Connection[Any]) -> bool:
    if not _one(conn, "SELECT to_regclass(%s) IS NOT NULL", (EVENTS_TABLE,)):
        return False
    return _one(conn, f"SELECT 1 FROM {EVENTS_TABLE} LIMIT 1") is not None


def start_drill(database_url: str, start: datetime) -> None:
    """Put the deployment in drill mode with its clock at `start` (a restart keeps the clock where it is);
    `DrillRefused` (drill_not_started) when the event store already holds a history written without it."""
    if start.tzinfo is None:
        raise ValueError("the drill clock's start needs an offset")
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_drill_clock'))")
        for statement in DRILL_DDL:
            conn.execute(statement)
        if is_drill_deployment(conn):
            return
        if has_events(conn):
            raise DrillRefused("drill_not_started", "this deployment was not started in drill mode (its event store "
                               "holds a history written on the wall clock): start a drill on a database of its own")
        conn.execute("INSERT INTO dudao_drill_clock (id, base_at) VALUES (1, %s)", (start,))


class DrillClock:
    """The shared drill clock in PostgreSQL: callable for its now; `set`, `advance` and `state` for the drill's admin."""

    drill = True

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _query(self, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row,
                                             connect_timeout=3)
            try:
                row: dict[str, Any] | None = self._conn.execute(sql, params or {}).fetchone()
            except psycopg.OperationalError:
                self._conn.close()  # a broken connection: the next read connects again
                raise
        return row

    def __call__(self) -> datetime:
        return self.state()["now"]

    def state(self) -> dict[str, Any]:
        """now, running, started_at (when drill mode began, on the wall clock)."""
        row = self._query(f"SELECT {_NOW} AS now, running, started_at FROM dudao_drill_clock WHERE id = 1")
        if row is None:
            raise DrillRefused("drill_mode_off", "this deployment is not in drill mode")
        return row

    def set(self, when: datetime, *, running: bool | None = None, by: str | None = None) -> datetime:
        """Move the clock to `when` (never back: `DrillRefused` drill_clock_backwards)."""
        row = self._query(
            f"UPDATE dudao_drill_clock SET base_at = %(when)s, wall_at = clock_timestamp(),"
            f" running = COALESCE(%(running)s, running), updated_by = %(by)s"
            f" WHERE id = 1 AND %(when)s >= {_NOW} RETURNING {_NOW} AS now",
            {"when": when, "running": running, "by": by})
        if row is None:
            raise DrillRefused("drill_clock_backwards", f"the drill clock never goes back (it reads {self()})")
        now: datetime = row["now"]
        return now

    def advance(self, delta: timedelta, *, running: bool | None = None, by: str | None = None) -> datetime:
        """Move the clock forward by `delta`."""
        if delta < timedelta(0):
            raise DrillRefused("drill_clock_backwards", "the drill clock never goes back")
        row = self._query(
            f"UPDATE dudao_drill_clock SET base_at = {_NOW} + %(delta)s, wall_at = clock_timestamp(),"
            f" running = COALESCE(%(running)s, running), updated_by = %(by)s WHERE id = 1 RETURNING {_NOW} AS now",
            {"delta": delta, "running": running, "by": by})
        if row is None:
            raise DrillRefused("drill_mode_off", "this deployment is not in drill mode")
        now: datetime = row["now"]
        return now

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


class DeploymentClock:
    """A process's clock: the drill clock when its database holds one (looked up on first use), else the wall clock."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._resolved: Callable[[], datetime] | None = None
        self._lock = threading.Lock()

    def resolve(self) -> Callable[[], datetime]:
        with self._lock:
            if self._resolved is None:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=3) as conn:
                    drill = is_drill_deployment(conn)
                self._resolved = DrillClock(self.database_url) if drill else wall_clock
            return self._resolved

    @property
    def drill(self) -> bool:
        return isinstance(self.resolve(), DrillClock)

    @property
    def drill_clock(self) -> DrillClock | None:
        resolved = self.resolve()
        return resolved if isinstance(resolved, DrillClock) else None

    def __call__(self) -> datetime:
        return self.resolve()()

    def set(self, when: datetime) -> None:
        """For the demo on a live drill deployment: move the shared clock (refused on the wall clock)."""
        self._drill().set(when, by="demo")

    def advance(self, delta: timedelta) -> datetime:
        return self._drill().advance(delta, by="demo")

    def _drill(self) -> DrillClock:
        found = self.drill_clock
        if found is None:
            raise DrillRefused("drill_mode_off", "this deployment is not in drill mode")
        return found


def is_drill(clock: Callable[[], datetime]) -> bool:
    """Whether events written on this clock are drill events (`meta.drill`)."""
    return bool(getattr(clock, "drill", False))
