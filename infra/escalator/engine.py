"""The escalator (督办引擎): on each tick, takes every ladder step that fell due, exactly once.

A tick brings the open-work projection up to the log head, reads the open work items whose next
step may be due in one query, judges each by the domain's `due_steps` under its campaign's
ladder history and calendar, and issues `TakeEscalationStep` through the command service as the
system actor. Step and command ids derive from (work item, step), so a doubled, lagging or
restarted escalator cannot take a step twice. Then it proposes what the 黑榜 history leads to
(`infra.escalator.ranking_consequences`). Before the ladder, its liaison round reminds leaders of
undone liaison duties and records unmet ones as work items (`infra.escalator.liaison`), so an unmet
duty climbs the ladder in the tick that records it.

A cache (`infra.escalator.schedule`) remembers each item's next check time, so a tick over 100k open
items judges only those changed since the last tick or whose time has come; a changed item whose
deadline is too far off for any step to be due is not even read (a cold tick over 100k: 6 s → 0.3 s).

One escalator is active at a time: it holds a session advisory lock on a dedicated connection.
Standbys poll for the lock; when the active one dies its connection closes, the lock goes with
it, and a standby takes over within `poll` seconds. The clock is injected.

A database outage of any length is ridden out, not fatal: the lock goes with the connection, so
the escalator drops to standby, retries with backoff (0.5 s doubling to 5 s), logs the outage once
when it starts and once when it ends, and leads again (or stands by) once the database answers. A
tick cut short by the outage is simply done again: step ids make a step taken twice a no-op.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg.rows import dict_row

from domain.kernel.base import Actor, DomainError
from domain.escalation.ladder import DueStep
from domain.escalation.step import take_command
from infra.escalator import liaison
from infra.escalator import tasks
from infra.escalator import schedule as cache
from infra.audit.causes import step_cause
from infra.bootstrap import System
from infra.commands.escalation import calendar_for, ladders_of
from infra.store.projector import Projector
from infra.escalator.ranking_consequences import propose_consequences
from infra.outage import DATABASE_UNAVAILABLE, Outage
from infra.commands.service import CommandService, StoreReader
from projections.base import Projection

log = structlog.get_logger("dudao.escalator")

SYSTEM_ACTOR = Actor(role="system", name="督办引擎")
LOCK_KEY = 0x6475_6461_6F65_7363  # "dudaoesc": the one advisory lock every escalator competes for
CONNECT_TIMEOUT_S = 5  # libpq connect_timeout of the escalator's own connections (a dead host must not hang it)
ALREADY = frozenset({"step_already_taken"})
NOT_NOW = frozenset({"step_not_due", "work_item_closed", "work_item_not_found"})


@dataclass
class TickReport:
    """What one tick did: candidates judged, steps due, and how each attempt ended."""

    at: datetime
    items_read: int = 0
    due: int = 0
    taken: int = 0
    already: int = 0
    skipped: int = 0
    failed: int = 0
    consequences: int = 0
    duties: int = 0  # liaison duties reminded, recorded unmet or resolved (infra.escalator.liaison)
    missed_reports: int = 0  # task progress reports recorded missed (infra.escalator.tasks)
    duration_ms: float = 0.0


class Escalator:
    """One escalator process: leadership by advisory lock, and the tick."""

    def __init__(self, service: CommandService, projector: Projector, database_url: str, *,
                 clock: Callable[[], datetime] | None = None, interval: float = 60.0, poll: float = 2.0,
                 workers: int = 4, dry_run: bool = False) -> None:
        self.service = service
        self.projector = projector
        self.database_url = database_url
        self.clock = clock or service.clock
        self.interval, self.poll, self.workers, self.dry_run = interval, poll, workers, dry_run
        self._stop = threading.Event()
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._read: psycopg.Connection[Any] | None = None
        self.outage = Outage(log)
        self.ticks = 0
        self._tables_ready = False  # created on the first connection, so a start during an outage waits

    @classmethod
    def for_system(cls, system: System, **kwargs: Any) -> Escalator:
        return cls(system.service, system.projector, system.database_url, **kwargs)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database_url, row_factory=dict_row, autocommit=True,
                               connect_timeout=CONNECT_TIMEOUT_S)

    def _reads(self) -> psycopg.Connection[Any]:
        """The connection every tick reads on (kept between ticks; reopened after a failure)."""
        if self._read is None or self._read.closed or self._read.broken:
            self._read = self._connect()
            if not self._tables_ready:
                cache.create(self._read)
                self._tables_ready = True
        return self._read

    def _projection(self, name: str) -> Projection:
        return next(p for p in self.projector.projections if p.name == name)

    # --- leadership -------------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self._lock_conn is not None

    @property
    def lock_backend_pid(self) -> int | None:
        return self._lock_conn.info.backend_pid if self._lock_conn is not None else None

    def try_lead(self) -> bool:
        """Take the escalator lock if free (on a connection kept for as long as this one leads).

        Raises what psycopg raises when the database cannot be reached; `run` rides that out.
        """
        if self._lock_conn is not None and self.still_leading():
            return True
        conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        except BaseException:
            conn.close()
            raise
        if row is not None and row[0]:
            self._lock_conn = conn
            log.info("escalator_active", lock_pid=conn.info.backend_pid)
            return True
        conn.close()
        return False

    def still_leading(self) -> bool:
        """The lock connection is alive (the lock lives exactly as long as it)."""
        if self._lock_conn is None:
            return False
        try:
            self._lock_conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            log.warning("escalator_lost_lock")
            self.release()
            return False

    def release(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def stop(self) -> None:
        self._stop.set()

    def run(self, once: bool = False) -> None:
        """Stand by until leading, then tick every `interval` seconds (once: one tick if the lock is free).

        While the database is unreachable it retries with backoff instead of exiting (`--once` gives up:
        the error propagates).
        """
        try:
            while not self._stop.is_set():
                try:
                    self._lead_and_tick(once)
                except DATABASE_UNAVAILABLE as exc:
                    if once:
                        raise
                    self.release()
                    self.close()
                    self._stop.wait(self.outage.failed(exc))
                    continue
                if once:
                    return
        finally:
            self.release()
            self.close()

    def _lead_and_tick(self, once: bool) -> None:
        """One turn of `run`: stand by for `poll` seconds, or tick and rest for `interval` seconds."""
        if not self.try_lead():
            self.outage.recovered()  # the database answered: another escalator holds the lock
            if once:
                log.info("escalator_standby", reason="another escalator is active")
                return
            self._stop.wait(self.poll)
            return
        try:
            self.tick()
        except DATABASE_UNAVAILABLE:
            raise
        except Exception:  # a bug: log it and try again next interval
            log.exception("escalator_tick_failed")
        self.outage.recovered()  # back only once a tick went through (its store pool may lag the lock)
        if not once:
            self._stop.wait(self.interval)

    def close(self) -> None:
        conn, self._read = self._read, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    # --- the tick ---------------------------------------------------------------------------------

    def tick(self) -> TickReport:
        started = time.perf_counter()
        now = self.clock()
        report = TickReport(at=now)
        report.duties = self.liaison_round(now)
        report.missed_reports = self.task_round(now)
        self.catch_up("work_items", "bulletins")
        conn = self._reads()
        campaigns = [r["campaign_id"] for r in conn.execute(cache.OPEN_CAMPAIGNS).fetchall()]
        rules = self.rules(campaigns)
        keys = {c: r.key for c, r in rules.items()}
        found = cache.read_candidates(conn, rules, now)
        report.items_read = len(found.rows)
        plans, checks = cache.judge(found.rows, rules, now)
        if checks or found.changed:
            cache.save(conn, checks, found, keys)
        report.due = sum(len(p) for p in plans)
        if plans and not self.dry_run:
            self.take(plans, report)
        report.consequences = self.consequences()
        report.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        self.ticks += 1
        log.info("escalator_tick", at=now.isoformat(), items_read=report.items_read, due=report.due,
                 taken=report.taken, already=report.already, skipped=report.skipped, failed=report.failed,
                 consequences=report.consequences, duties=report.duties, missed_reports=report.missed_reports,
                 duration_ms=report.duration_ms)
        return report

    def liaison_round(self, now: datetime) -> int:
        """Liaison duties first: an unmet one recorded now is a work item the ladder climbs in this same tick."""
        if self.dry_run:
            return 0
        self.catch_up("liaison_duties", "structure", "matrix", "work_items")
        return liaison.run_round(self._reads(), self.service, SYSTEM_ACTOR, now).written

    def task_round(self, now: datetime) -> int:
        """Missed progress reports first, likewise: a miss recorded now is a work item the ladder judges this tick."""
        if self.dry_run:
            return 0
        self.catch_up("tasks")
        return tasks.run_round(self._reads(), self.service, SYSTEM_ACTOR, now).recorded

    def catch_up(self, *names: str) -> None:
        """Bring the projections the tick reads up to the log head (a batch only when behind)."""
        head = self.projector.head()
        rows = self._reads().execute("SELECT name, position FROM dudao_projection_positions WHERE name = ANY(%s)",
                                     (list(names),)).fetchall()
        for row in rows:
            if row["position"] < head:
                projection = self._projection(row["name"])
                while self.projector.run_once(projection, head):
                    pass

    def rules(self, campaigns: Sequence[UUID]) -> dict[UUID, cache.Rules]:
        reader = StoreReader(self.service.app)
        return {c: cache.rules_for(ladders_of(reader, c), calendar_for(reader, c)) for c in campaigns}

    def take(self, plans: list[list[DueStep]], report: TickReport) -> None:
        """Each item's due steps in ladder order; items in parallel (their steps are separate aggregates)."""
        lock = threading.Lock()

        def one(steps: list[DueStep]) -> None:
            for step in steps:
                if self._stop.is_set():
                    return
                outcome = self.take_step(step)
                with lock:
                    setattr(report, outcome, getattr(report, outcome) + 1)

        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            list(pool.map(one, plans))

    def take_step(self, step: DueStep) -> str:
        try:
            cause = step_cause(self.service.app, step.item_kind, step.item_id, step.campaign_id)
            result = self.service.handle(take_command(step), SYSTEM_ACTOR, causation_id=cause)
        except DomainError as err:
            if err.code in ALREADY:
                return "already"
            if err.code in NOT_NOW:
                return "skipped"
            log.warning("escalation_step_failed", step_id=str(step.step_id), code=err.code, details=err.details)
            return "failed"
        return "already" if result.replayed else "taken"

    def consequences(self) -> int:
        return propose_consequences(self._reads(), self.service, SYSTEM_ACTOR)
