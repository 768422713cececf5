"""Runs projections: reads the notification log in batches, applies each batch in one transaction
together with the projection's position (exactly once), and rebuilds a projection from zero.

Positions live in `dudao_projection_positions`; the row is locked (FOR UPDATE) for the batch, so
two runners of one projection never apply the same event twice.

An event a projection cannot apply never stops the projector (DESIGN §12). The batch is rolled
back, re-applied up to that event, and the event becomes a dead letter (死信,
projections/dead_letters.py) in the same transaction that leaves the position just before it: that
projection waits there, retried with a growing pause, while every other projection goes on. A
failure of the database itself (connection lost, deadlock, timeout) is no dead letter: the batch is
simply tried again. An operator retries the event after fixing the cause, or skips it with a reason
(`dudao project retry|skip NAME POSITION`).

A PostgreSQL outage of any length is ridden out by `run_forever`: it retries with backoff (0.5 s
doubling to 5 s) and logs `database_unavailable` once when a pass first fails and
`database_available` once when a whole pass goes through again, not a line per attempt.
"""

from __future__ import annotations

import gc
import select
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg import sql
from eventsourcing.persistence import Notification
from psycopg.rows import dict_row

from infra.store.event_store import Dudao, event_id
from infra.store.wakeup import Wakeup
from projections import dead_letters as dl
from projections.base import Projection, RecordedEvent
from projections.outage import CONNECT_TIMEOUT_S, DATABASE_UNAVAILABLE, Outage, is_database_unavailable

log = structlog.get_logger("dudao.projector")

POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS dudao_projection_positions ("
    " name text PRIMARY KEY, position bigint NOT NULL DEFAULT 0,"
    " updated_at timestamptz NOT NULL DEFAULT clock_timestamp())"
)
SCHEMA = "public"

Progress = Callable[[int, int], None]
REBUILD_BATCH = 5000  # events a rebuild applies per transaction (a live batch is `batch_size`)


@dataclass(frozen=True)
class Resolution:
    """Who closes a dead letter that applies on a later attempt, and why."""

    by: str
    reason: str


AUTOMATIC = Resolution(by="projector", reason="applied on a later attempt (自动重试成功)")


class Unapplied(Exception):
    """A projection could not apply one event (not a database outage): the event goes to a dead letter."""

    def __init__(self, failure: dl.Failure) -> None:
        super().__init__(f"{failure.event_type} at {failure.position}: {failure.error_class}: {failure.error_message}")
        self.failure = failure


class _GcPause:
    """Pause Python's cyclic garbage collector while a batch is decoded and applied.

    A batch holds thousands of freshly decoded events; every few hundred allocations the collector walked them
    all again (and the whole heap every tenth pass), which tripled the cost of decoding an event. Nothing in a
    batch makes reference cycles that must be collected before the batch ends, and it runs as usual after.
    Threads that pause it at once share one pause: it resumes when the last of them is done, if it was running.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pausers = 0
        self.resume = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.pausers == 0:
                self.resume = gc.isenabled()
                gc.disable()
            self.pausers += 1
        try:
            yield
        finally:
            with self.lock:
                self.pausers -= 1
                if self.pausers == 0 and self.resume:
                    gc.enable()


gc_paused = _GcPause()


class Projector:
    """Keeps a set of projections up to date with the event store."""

    def __init__(self, app: Dudao, database_url: str, projections: Iterable[Projection], batch_size: int = 500, *,
                 first_backoff_s: float = 1.0, max_backoff_s: float = 60.0) -> None:
        self.app = app
        self.database_url = database_url
        self.projections = list(projections)
        self.batch_size = batch_size
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._waiting: dict[str, dl.Waiting] = {}  # projection name → the dead letter it waits before
        self.outage = Outage(log)
        self._sessions = threading.local()  # each thread's kept connection (`_session`)

    def connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.database_url, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S)

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """This thread's connection, kept from one batch to the next (in autocommit: each use is one transaction or
        one read). A connection per batch of each projection cost a server process start every time, eleven per pass
        of the live projector, more than the batches themselves when events trickle in. After an error that leaves it
        broken or not idle it is closed, and the next use connects again; so is one the server has written to while it
        sat idle (it ended the session, or went away), without a round trip to find out."""
        conn: psycopg.Connection[dict[str, Any]] | None = getattr(self._sessions, "conn", None)
        if conn is not None and not conn.closed and select.select([conn.fileno()], [], [], 0)[0]:
            conn.close()
        if conn is None or conn.closed or conn.broken:
            conn = self.connect()
            conn.autocommit = True
            self._sessions.conn = conn
        try:
            yield conn
        except BaseException:
            if conn.broken or conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self._sessions.conn = None
                conn.close()
            raise

    def close(self) -> None:
        """Close this thread's kept connection (others close with their threads' end or the projector's)."""
        conn = getattr(self._sessions, "conn", None)
        self._sessions.conn = None
        if conn is not None:
            conn.close()

    def create_tables(self) -> None:
        with self.connect() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_projection_ddl'))")
            curs.execute(POSITIONS_DDL)
            for statement in dl.ddl(SCHEMA):
                curs.execute(statement)
            for p in self.projections:
                p.create(curs)
                curs.execute(
                    "INSERT INTO dudao_projection_positions (name) VALUES (%s) ON CONFLICT DO NOTHING", (p.name,)
                )

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(f"unknown projection {name!r}; one of: {', '.join(p.name for p in self.projections)}")

    def position(self, projection: Projection) -> int:
        with self._session() as conn:
            row = conn.execute("SELECT position FROM dudao_projection_positions WHERE name = %s", (projection.name,)).fetchone()
        return int(row["position"]) if row else 0

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    # --- one batch -------------------------------------------------------------------------------

    def run_once(self, projection: Projection, head: int | None = None, *,
                 resolution: Resolution = AUTOMATIC, batch_size: int | None = None) -> int:
        """Apply at most one batch up to `head`; returns how many notifications it moved past.

        A batch is the projection's next `batch_size` events (of its topics), so a projection that reads few topics
        crosses the log in few batches. A projection waiting before a dead letter is left alone until its pause is
        over (0 moved).
        """
        head = self.head() if head is None else head
        try:
            with self._session() as conn, conn.transaction(), conn.cursor() as curs:
                start = self._lock(curs, projection)
                if start >= head or self._still_waiting(projection, start):
                    return 0
                found, stop = self._read(projection, start, head, batch_size or self.batch_size)
                self._apply(curs, projection, found)
                self._advance(curs, projection, start, stop, resolution)
        except Unapplied as unapplied:
            return self._set_aside(projection, start, unapplied.failure, resolution)
        self._waiting.pop(projection.name, None)
        return stop - start

    def _read(self, projection: Projection, start: int, head: int, size: int) -> tuple[list[Notification], int]:
        """The projection's next `size` notifications after `start` up to `head`, and the position the batch moves
        to: the last of them when there are `size`, else `head` (none of its topics lie between)."""
        found = list(self.app.recorder.select_notifications(start + 1, limit=size, stop=head, topics=projection.topics))
        return found, (found[-1].id if len(found) == size else head)

    def _lock(self, curs: psycopg.Cursor[Any], projection: Projection) -> int:
        row = curs.execute(
            "SELECT position FROM dudao_projection_positions WHERE name = %s FOR UPDATE", (projection.name,)
        ).fetchone()
        assert row is not None, f"projection {projection.name} has no position row (create_tables first)"
        return int(row["position"])

    def _still_waiting(self, projection: Projection, start: int) -> bool:
        """Whether the projection's pause before a dead letter is not over (an operator moving it ends the pause)."""
        waiting = self._waiting.get(projection.name)
        if waiting is None or waiting.position != start:
            self._waiting.pop(projection.name, None)
            return False
        return not waiting.due()

    def _apply(self, curs: psycopg.Cursor[Any], projection: Projection, found: list[Notification]) -> None:
        """Apply the projection's notifications `found`; raises Unapplied for the first event it cannot apply.

        A batched projection writes the batch at once, inside a savepoint; if that fails (not for want of the
        database), the savepoint is rolled back and the batch applied again one event at a time, which names the
        event at fault exactly as before.
        """
        if projection.batched and found:
            try:
                with curs.connection.transaction(), gc_paused():
                    projection.apply_batch(curs, [self._recorded(n) for n in found])
                return
            except Exception as exc:
                if is_database_unavailable(exc):
                    raise
                log.info("projection_batch_one_by_one", projection=projection.name, error=f"{type(exc).__name__}: {exc}")
        for n in found:
            try:
                projection.apply(curs, self._recorded(n))
            except Exception as exc:
                if is_database_unavailable(exc):
                    raise
                raise Unapplied(self._failure(n, exc)) from exc

    def _recorded(self, n: Notification) -> RecordedEvent:
        stored = self.app.decode(n)
        return RecordedEvent(n.id, stored.originator_id, stored.originator_version, stored.event)

    @staticmethod
    def _failure(n: Notification, exc: Exception) -> dl.Failure:
        return dl.Failure(position=n.id, error=exc, event_id=event_id(UUID(str(n.originator_id)), n.originator_version),
                          event_type=n.topic, notification_id=n.id)

    def _advance(self, curs: psycopg.Cursor[Any], projection: Projection, start: int, stop: int,
                 resolution: Resolution) -> None:
        """Store the new position; dead letters it moved past applied this time, so they are closed as retried."""
        curs.execute("UPDATE dudao_projection_positions SET position = %s, updated_at = clock_timestamp() WHERE name = %s",
                     (stop, projection.name))
        for position in dl.resolve_applied(curs, SCHEMA, "projection", projection.name, start, stop,
                                           reason=resolution.reason, by=resolution.by):
            log.info("dead_letter_retried", projection=projection.name, position=position, by=resolution.by)

    def _set_aside(self, projection: Projection, start: int, failure: dl.Failure, resolution: Resolution) -> int:
        """Apply the events before the failed one and record it as a dead letter, or pass it if it was skipped."""
        try:
            with self._session() as conn, conn.transaction(), conn.cursor() as curs:
                if self._lock(curs, projection) != start:
                    return 0  # another runner moved the projection meanwhile: look again next time
                before = list(self.app.recorder.select_notifications(
                    start + 1, limit=max(1, failure.position - 1 - start), stop=failure.position - 1,
                    topics=projection.topics)) if failure.position - 1 > start else []
                self._apply(curs, projection, before)
                skipped = dl.find(curs, SCHEMA, "projection", projection.name, failure.position, state="skipped")
                stop = failure.position if skipped else failure.position - 1
                attempts = 0 if skipped else dl.record(curs, SCHEMA, "projection", projection.name, failure)
                self._advance(curs, projection, start, stop, resolution)
        except Unapplied as again:  # an event before it failed this time: not deterministic, so just wait
            log.warning("projection_batch_unsteady", projection=projection.name, error=str(again))
            self._waiting[projection.name] = dl.wait_again(None, start, self.first_backoff_s, self.max_backoff_s)
            return 0
        fields = {"reader_kind": "projection", "reader": projection.name, "position": failure.position,
                  "event_id": failure.event_id, "event_type": failure.event_type, "error_class": failure.error_class,
                  "error": failure.error_message}
        if skipped:
            log.info("dead_letter_skip_honoured", **fields)
            self._waiting.pop(projection.name, None)
            return stop - start
        if attempts == 1:
            log.error("dead_letter", attempts=attempts, **fields)
        else:
            log.warning("dead_letter_still_failing", attempts=attempts, **fields)
        self._waiting[projection.name] = dl.wait_again(self._waiting.get(projection.name), stop,
                                                       self.first_backoff_s, self.max_backoff_s)
        return stop - start

    # --- operator actions ------------------------------------------------------------------------

    def retry(self, name: str, position: int, *, reason: str, by: str) -> bool:
        """Apply the dead letter at `position` now (after its cause was fixed); True when it applied."""
        projection = self.projection(name)
        with self._session() as conn, conn.transaction(), conn.cursor() as curs:
            self._waiting_at(curs, projection, position)
        self._waiting.pop(name, None)
        self.run_once(projection, max(self.head(), position), resolution=Resolution(by=by, reason=reason))
        with self._session() as conn, conn.cursor() as curs:
            applied = dl.find(curs, SCHEMA, "projection", name, position, state="open") is None
        log.info("dead_letter_retry", projection=name, position=position, by=by, reason=reason, applied=applied)
        return applied

    def skip(self, name: str, position: int, *, reason: str, by: str) -> None:
        """Record the dead letter at `position` as skipped (who, why) and move the projection past it, at once."""
        projection = self.projection(name)
        with self._session() as conn, conn.transaction(), conn.cursor() as curs:
            letter = self._waiting_at(curs, projection, position)
            dl.resolve(curs, SCHEMA, letter["id"], "skipped", reason=reason, by=by, attempted=False)
            curs.execute("UPDATE dudao_projection_positions SET position = %s, updated_at = clock_timestamp()"
                         " WHERE name = %s", (position, name))
        self._waiting.pop(name, None)
        log.warning("dead_letter_skipped", projection=name, position=position, event_id=letter["event_id"],
                    event_type=letter["event_type"], by=by, reason=reason)

    def _waiting_at(self, curs: psycopg.Cursor[Any], projection: Projection, position: int) -> dict[str, Any]:
        """The open dead letter at `position`, locked with the projection's position; NotWaiting if it waits elsewhere."""
        at = self._lock(curs, projection)
        letter = dl.find(curs, SCHEMA, "projection", projection.name, position, state="open")
        if letter is None:
            raise dl.NotWaiting(f"projection {projection.name} has no open dead letter at {position}")
        if at != position - 1:
            raise dl.NotWaiting(f"projection {projection.name} is at {at}, not waiting before {position}"
                                " (it will reach the event by itself)")
        return letter

    # --- whole runs --------------------------------------------------------------------------------

    def catch_up(self, progress: Progress | None = None) -> None:
        """Bring every projection up to the log head as it is now (or to the dead letter it waits before)."""
        head = self.head()
        while moved := self.run_pass(head):
            if progress:
                progress(moved, head)

    def run_pass(self, head: int | None = None) -> int:
        """One live pass up to `head`: the next batch of the log from the lowest position among the projections that
        do not wait before a dead letter, read and decoded once and handed to every projection before it, each in a
        savepoint, every position moving in the batch's transaction (exactly once); returns the furthest position
        reached (0: nothing moved).

        A pass cost a transaction and a read per projection, eleven of them, so under load passes ran back to back
        and the read models lagged by a whole pass. A projection waiting before a dead letter, or one whose batch
        fails in the shared pass, goes on alone (`run_once`), where a failing event becomes its dead letter as
        before. With nothing new the pass costs the head and one read of the positions.
        """
        head = self.head() if head is None else head
        with self._session() as conn:
            rows = conn.execute("SELECT name, position FROM dudao_projection_positions WHERE name = ANY(%s)",
                                ([p.name for p in self.projections],)).fetchall()
        positions = {row["name"]: int(row["position"]) for row in rows}
        behind = [p for p in self.projections if positions.get(p.name, 0) < head]
        alone = [p for p in behind if self._waits(p, positions.get(p.name, 0))]
        together = [p for p in behind if p not in alone]
        reached = 0
        if together:
            with gc_paused():
                stop = self._run_together(together, {p.name: positions.get(p.name, 0) for p in together}, head,
                                          self.batch_size)
            reached = stop if together else 0  # (each left in it moved to `stop`, or was there already)
            alone += [p for p in behind if p not in together and p not in alone]
        for p in alone:
            if moved := self.run_once(p, head):
                reached = max(reached, positions.get(p.name, 0) + moved)
        return reached

    def _waits(self, projection: Projection, position: int) -> bool:
        """Whether the projection is set aside before a dead letter at `position` (it goes on alone, when due)."""
        waiting = self._waiting.get(projection.name)
        if waiting is not None and waiting.position != position:  # an operator moved it: the pause is over
            self._waiting.pop(projection.name, None)
            return False
        return waiting is not None

    def rebuild(self, projection: Projection, progress: Progress | None = None) -> int:
        """Truncate the projection's tables, reset its position and replay the whole log (up to a dead letter)."""
        self._reset([projection])
        head = self.head()
        done = 0
        while moved := self.run_once(projection, head, batch_size=max(self.batch_size, REBUILD_BATCH)):
            done += moved
            if progress:
                progress(done, head)
        self._rebuilt(projection, head)
        return head

    def rebuild_all(self, progress: Progress | None = None) -> int:
        """Rebuild every projection in one pass over the log: each batch is read and decoded once and handed to every
        projection that reads its topics, each in a savepoint, and every position moves in the batch's transaction.

        A projection whose batch fails there leaves the pass at that batch and goes on alone (`run_once`), where
        the event at fault becomes its dead letter as in `rebuild`; the others go on together.
        """
        self._reset(self.projections)
        head = self.head()
        together, position = list(self.projections), 0
        size = max(self.batch_size, REBUILD_BATCH)
        while together and position < head:
            with gc_paused():
                position = self._run_together(together, dict.fromkeys((p.name for p in together), position), head, size)
            if progress:
                progress(position, head)
        for p in self.projections:
            if p not in together:
                while self.run_once(p, head, batch_size=size):
                    pass
            self._rebuilt(p, head)
        if progress:
            progress(head, head)
        return head

    def _run_together(self, together: list[Projection], starts: dict[str, int], head: int, size: int) -> int:
        """One batch of the shared pass from the lowest of `starts` (each projection's position as last read); returns
        where it stops. Each projection is handed the events after its own position; one that must go on alone (it
        was moved back meanwhile, an event of its own would not decode, or its batch failed) is dropped from
        `together` with its savepoint rolled back."""
        start = min(starts.values())
        wanted = [set(p.topics) for p in together]
        topics = () if not all(wanted) else tuple(sorted(set().union(*wanted)))
        found = list(self.app.recorder.select_notifications(start + 1, limit=size, stop=head, topics=topics))
        stop = found[-1].id if len(found) == size else head
        decoded: dict[int, RecordedEvent | None] = {}
        for n in found:
            try:
                decoded[n.id] = self._recorded(n)
            except Exception as exc:
                if is_database_unavailable(exc):
                    raise
                decoded[n.id] = None  # its projections go on alone, to set it aside
        with self._session() as conn, conn.transaction(), conn.cursor() as curs:
            # Every position locked at once, in one order, so two runners never wait on each other crosswise.
            locked = {row["name"]: int(row["position"]) for row in curs.execute(
                "SELECT name, position FROM dudao_projection_positions WHERE name = ANY(%s) ORDER BY name FOR UPDATE",
                ([p.name for p in together],)).fetchall()}
            moved: list[tuple[Projection, int]] = []
            for p, topics_of_p in list(zip(together, wanted, strict=True)):
                at = locked.get(p.name)
                assert at is not None, f"projection {p.name} has no position row (create_tables first)"
                if at < start:  # moved back meanwhile: the events it needs are not all in this batch
                    together.remove(p)
                    continue
                if at >= stop:  # ahead of this batch already
                    continue
                mine = [n for n in found if n.id > at and (not topics_of_p or n.topic in topics_of_p)]
                if any(decoded[n.id] is None for n in mine):
                    together.remove(p)
                    continue
                try:
                    if mine:  # (none: nothing to apply, the position alone moves)
                        with conn.transaction():
                            p.apply_batch(curs, [r for n in mine if (r := decoded[n.id]) is not None])
                except Exception as exc:
                    if is_database_unavailable(exc):
                        raise
                    together.remove(p)
                    continue
                moved.append((p, at))
            self._advance_together(curs, moved, stop)
        return stop

    def _advance_together(self, curs: psycopg.Cursor[Any], moved: list[tuple[Projection, int]], stop: int) -> None:
        """`_advance` of every projection of a shared batch (each from its own position) to `stop`, in two statements
        when none of them has an open dead letter: a statement each cost 22 round trips a pass."""
        if not moved:
            return
        names = [p.name for p, _ in moved]
        curs.execute("UPDATE dudao_projection_positions SET position = %s, updated_at = clock_timestamp()"
                     " WHERE name = ANY(%s)", (stop, names))
        rows = curs.execute(sql.SQL("SELECT DISTINCT reader FROM {} WHERE state = 'open' AND reader_kind = 'projection'"
                                    " AND reader = ANY(%s) AND position <= %s").format(sql.Identifier(SCHEMA, dl.TABLE)),
                            (names, stop)).fetchall()
        lettered = {row["reader"] for row in rows}
        for p, at in moved:
            if p.name in lettered:
                self._advance(curs, p, at, stop, AUTOMATIC)

    def _reset(self, projections: list[Projection]) -> None:
        """Empty the projections' tables and move them to position 0, in one transaction."""
        with self._session() as conn, conn.transaction(), conn.cursor() as curs:
            for p in projections:
                curs.execute("SELECT position FROM dudao_projection_positions WHERE name = %s FOR UPDATE", (p.name,))
            for p in projections:
                for table in p.tables:
                    curs.execute(f"TRUNCATE {table}")
                curs.execute("UPDATE dudao_projection_positions SET position = 0 WHERE name = %s", (p.name,))
        for p in projections:
            self._waiting.pop(p.name, None)

    def _rebuilt(self, projection: Projection, head: int) -> None:
        position = self.position(projection)
        if position < head:
            log.warning("projection_rebuild_waits", projection=projection.name, head=head, position=position)
        else:
            log.info("projection_rebuilt", projection=projection.name, head=head)

    def run_forever(self, poll_seconds: float = 0.2) -> None:
        """Keep every projection at the log head until `stop()`, riding out database outages of any length.

        Idle, it waits for the store's commit notification (infra/store/wakeup.py), `poll_seconds` at most.
        """
        with Wakeup(self.database_url, self.app.store.channel_name, self._stop) as wakeup:
            while not self._stop.is_set():
                busy = False
                try:
                    busy = bool(self.run_pass())
                except DATABASE_UNAVAILABLE as exc:
                    # Nothing of the failed batch was committed: the next pass does it again.
                    self._stop.wait(self.outage.failed(exc))
                    continue
                self.outage.recovered()
                if not busy:
                    wakeup.wait(poll_seconds)

    def stop(self) -> None:
        self._stop.set()
