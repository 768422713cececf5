"""Runs projections: reads the notification log in batches, applies each batch in one transaction
together with the projection's position (exactly once), and rebuilds a projection from zero.

Positions live in `dudao_projection_positions`; the row is locked (FOR UPDATE) for the batch, so
two runners of one projection never apply the same event twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row

from eventsourcing.persistence import InterfaceError as EsInterfaceError
from eventsourcing.persistence import OperationalError as EsOperationalError

from infra.store.event_store import Dudao
from projections.base import Projection, RecordedEvent

log = structlog.get_logger("dudao.projector")

POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS dudao_projection_positions ("
    " name text PRIMARY KEY, position bigint NOT NULL DEFAULT 0,"
    " updated_at timestamptz NOT NULL DEFAULT clock_timestamp())"
)

Progress = Callable[[int, int], None]


class Projector:
    """Keeps a set of projections up to date with the event store."""

    def __init__(self, app: Dudao, database_url: str, projections: Iterable[Projection], batch_size: int = 500) -> None:
        self.app = app
        self.database_url = database_url
        self.projections = list(projections)
        self.batch_size = batch_size
        self._stop = threading.Event()

    def connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.database_url, row_factory=dict_row)

    def create_tables(self) -> None:
        with self.connect() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_projection_ddl'))")
            curs.execute(POSITIONS_DDL)
            for p in self.projections:
                p.create(curs)
                curs.execute(
                    "INSERT INTO dudao_projection_positions (name) VALUES (%s) ON CONFLICT DO NOTHING", (p.name,)
                )

    def position(self, projection: Projection) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT position FROM dudao_projection_positions WHERE name = %s", (projection.name,)).fetchone()
        return int(row["position"]) if row else 0

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def run_once(self, projection: Projection, head: int | None = None) -> int:
        """Apply at most one batch up to `head`; returns how many notifications it moved past."""
        head = self.head() if head is None else head
        with self.connect() as conn, conn.transaction(), conn.cursor() as curs:
            row = curs.execute(
                "SELECT position FROM dudao_projection_positions WHERE name = %s FOR UPDATE", (projection.name,)
            ).fetchone()
            assert row is not None, f"projection {projection.name} has no position row (create_tables first)"
            start = int(row["position"])
            if start >= head:
                return 0
            stop = min(head, start + self.batch_size)
            notifications = self.app.recorder.select_notifications(
                start + 1, limit=self.batch_size, stop=stop, topics=projection.topics
            )
            for n in notifications:
                stored = self.app.mapper.to_domain_event(n)
                projection.apply(curs, RecordedEvent(n.id, stored.originator_id, stored.originator_version, stored.event))
            curs.execute(
                "UPDATE dudao_projection_positions SET position = %s, updated_at = clock_timestamp() WHERE name = %s",
                (stop, projection.name),
            )
            return stop - start

    def catch_up(self, progress: Progress | None = None) -> None:
        """Bring every projection up to the log head as it is now."""
        head = self.head()
        for p in self.projections:
            while self.run_once(p, head):
                if progress:
                    progress(self.position(p), head)

    def rebuild(self, projection: Projection, progress: Progress | None = None) -> int:
        """Truncate the projection's tables, reset its position and replay the whole log."""
        with self.connect() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SELECT position FROM dudao_projection_positions WHERE name = %s FOR UPDATE", (projection.name,))
            for table in projection.tables:
                curs.execute(f"TRUNCATE {table}")
            curs.execute("UPDATE dudao_projection_positions SET position = 0 WHERE name = %s", (projection.name,))
        head = self.head()
        done = 0
        while moved := self.run_once(projection, head):
            done += moved
            if progress:
                progress(done, head)
        log.info("projection_rebuilt", projection=projection.name, head=head)
        return head

    def run_forever(self, poll_seconds: float = 0.2) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                head = self.head()
                for p in self.projections:
                    busy = bool(self.run_once(p, head)) or busy
            except (psycopg.OperationalError, EsOperationalError, EsInterfaceError) as exc:
                # The database is briefly gone: nothing was committed for the failed batch; retry.
                log.warning("projection_batch_failed", error=str(exc))
                self._stop.wait(1.0)
                continue
            if not busy:
                self._stop.wait(poll_seconds)

    def stop(self) -> None:
        self._stop.set()
