"""No write waits, or holds the events table, without bound (DESIGN §12), against the real PostgreSQL.

Store connections carry lock, statement and idle-in-transaction timeouts, and taking one from the pool
gives up after the pool wait: a transaction that holds the events table's lock too long is ended by
the server and the next write proceeds; a write that cannot get the lock, or any connection during an
outage, fails within seconds with the persistence error the HTTP layer answers with 503.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import date
from typing import TypeVar
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import InterfaceError, OperationalError

from domain.kernel.base import Actor
from domain.structure.campaign import RenameCampaign, StartCampaign
from infra.bootstrap import System, bootstrap
from infra.commands.service import CommandResult
from infra.store.event_store import StoreTimeouts
from tests.support.deadlines import in_background
from tests.support.pg_proxy import PgProxy

pytestmark = pytest.mark.integration

T = TypeVar("T")
HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")
# A lock wait is bounded by the smaller of the lock and statement timeouts, so the statement timeout is the larger.
SHORT = StoreTimeouts(lock_s=3, statement_s=4, idle_in_transaction_s=1, connect_s=2, pool_wait_s=2)


@pytest.fixture
def system(database_url: str, clock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock, timeouts=SHORT)
    yield s
    s.close()


def start_campaign(system: System) -> StartCampaign:
    cmd = StartCampaign(command_id=str(uuid4()), campaign_id=uuid4(), name="高安市“三城同创”",
                        jurisdiction="江西省宜春市高安市", launched_on=date(2021, 12, 3))
    system.service.handle(cmd, HQ)
    return cmd


def rename(campaign: StartCampaign, name: str = "高安市创建文明城市") -> RenameCampaign:
    return RenameCampaign(command_id=str(uuid4()), campaign_id=campaign.campaign_id, name=name)


def events_table(system: System) -> str:
    return system.app.store.events_table_name


def log_head(system: System) -> int:
    return system.app.recorder.max_notification_id() or 0


def test_a_transaction_left_idle_holding_the_events_lock_is_ended_and_the_next_write_proceeds(system: System) -> None:
    """A store session that locks the events table and goes idle is ended after 1 s; the write queued behind it succeeds."""
    campaign = start_campaign(system)
    with system.app.store.datastore.get_connection() as holder:
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {events_table(system)} IN EXCLUSIVE MODE")
        started = time.monotonic()
        write = in_background(lambda: system.service.handle(rename(campaign), HQ))
        result: CommandResult = write(SHORT.lock_s + 5)
        waited = time.monotonic() - started
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            holder.execute("SELECT 1")  # the server ended the idle session
    assert len(result.events) == 1
    assert SHORT.idle_in_transaction_s * 0.8 <= waited < SHORT.lock_s


def test_a_statement_running_past_the_statement_timeout_is_cancelled_which_frees_the_events_table(system: System) -> None:
    """A session holding the events lock through a 60 s statement is cancelled after 4 s; a write right after succeeds."""
    campaign = start_campaign(system)
    with system.app.store.datastore.get_connection() as holder:
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {events_table(system)} IN EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            holder.execute("SELECT pg_sleep(60)")
        assert time.monotonic() - started < SHORT.statement_s + 2
        # The abort released the lock although the client has not rolled back (the idle timeout ends it later).
        result = in_background(lambda: system.service.handle(rename(campaign), HQ))(2)
        holder.execute("ROLLBACK")
    assert len(result.events) == 1


def test_a_write_that_cannot_get_the_events_lock_in_time_fails_fast_and_writes_nothing(system: System,
                                                                                        database_url: str) -> None:
    """With the events table locked by a session outside the store, a write fails after the lock timeout, not later."""
    campaign = start_campaign(system)
    cmd = rename(campaign)
    head = log_head(system)
    with psycopg.connect(database_url) as foreign:
        foreign.execute(f"LOCK TABLE {events_table(system)} IN EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(OperationalError) as refused:
            system.service.handle(cmd, HQ)
        waited = time.monotonic() - started
        foreign.rollback()
    assert isinstance(refused.value.__cause__, psycopg.errors.LockNotAvailable)
    assert SHORT.lock_s * 0.8 <= waited < SHORT.lock_s + 2
    assert log_head(system) == head
    retried = system.service.handle(cmd, HQ)
    assert not retried.replayed and len(retried.events) == 1


@pytest.fixture
def proxy(pg_server_url: str, database_url: str) -> Iterator[PgProxy]:
    p = PgProxy(database_url)
    yield p
    p.close()


def eventually(fn: Callable[[], T], deadline_s: float) -> T:
    """`fn()` retried on persistence errors until it succeeds, or the last error after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return fn()
        except (OperationalError, InterfaceError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("outage", ["refuse", "blackhole"])
def test_a_write_during_an_outage_fails_within_seconds_and_writes_resume_after_it(proxy: PgProxy, clock,
                                                                                   outage: str) -> None:
    """With the database unreachable (down, or a silent host), a write fails within the pool wait; then writes resume."""
    system = bootstrap(proxy.url, clock=clock, pool_size=2, timeouts=SHORT)
    try:
        campaign = start_campaign(system)
        proxy.cut(outage)  # type: ignore[arg-type]  # parametrised with the two outage modes
        started = time.monotonic()
        with pytest.raises((OperationalError, InterfaceError)):
            in_background(lambda: system.service.handle(rename(campaign), HQ))(30)
        assert time.monotonic() - started < SHORT.pool_wait_s + SHORT.connect_s + 2
        proxy.restore()
        result = eventually(lambda: system.service.handle(rename(campaign, "高安市三城同创"), HQ), 30)
        assert len(result.events) == 1
    finally:
        system.close()


def test_reads_after_the_server_ended_every_pooled_connection_go_through_on_fresh_ones(system: System) -> None:
    """After an outage the pool still holds connections the old server ended; the first read on each must not fail
    (the relay logged a second outage a second after the first one ended, on such a connection). A read is retried
    once on a fresh connection when its connection turns out ended; writes already were."""
    campaign = start_campaign(system)
    recorder = system.app.store
    pool = recorder.datastore.pool  # psycopg_pool's ConnectionPool
    held = [pool.getconn() for _ in range(pool.max_size)]  # every connection the pool may hold, open and returned
    for conn in held:
        conn.execute("SELECT 1")
        pool.putconn(conn)
    with psycopg.connect(system.database_url, autocommit=True) as admin:
        ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
    assert ended is not None and ended[0] >= pool.max_size
    time.sleep(0.2)  # the server has closed them; the pool does not know
    assert [n.originator_id for n in recorder.select_notifications(1, 10)] == [campaign.campaign_id]
    assert recorder.max_notification_id() == 1
    assert len(recorder.select_events(campaign.campaign_id)) == 1
    assert recorder.latest_versions([campaign.campaign_id]) == {campaign.campaign_id: 1}
    system.service.handle(rename(campaign), HQ)
    assert recorder.max_notification_id() == 2


def test_reads_resume_within_seconds_of_the_database_returning_after_a_long_outage(proxy: PgProxy, clock) -> None:
    """The pool retries a lost connection with a pause that doubles (1, 2, 4, 8, 16 s ...), and by default keeps a
    retry going for five minutes: the relay and the projector, which read through it, sat out up to one whole pause
    after PostgreSQL was back (the 120-s outage test timed out waiting for the projector). A retry now gives up after
    `reconnect_s`, and the next read asks for a connection afresh."""
    timeouts = StoreTimeouts(lock_s=3, statement_s=4, idle_in_transaction_s=1, connect_s=2, pool_wait_s=1, reconnect_s=2)
    system = bootstrap(proxy.url, clock=clock, pool_size=2, timeouts=timeouts)
    stop = threading.Event()

    def keep_reading() -> None:  # as the projector does during an outage: try, fail, back off a little, try again
        while not stop.is_set():
            with suppress(OperationalError, InterfaceError):
                system.app.recorder.max_notification_id()
            stop.wait(0.5)

    try:
        start_campaign(system)
        reader = threading.Thread(target=keep_reading, daemon=True)
        proxy.cut("refuse")
        reader.start()
        time.sleep(16)  # long enough for the pool's pause to have grown to 16 s: the next retry would be ~15 s away
        proxy.restore()
        back = time.monotonic()
        eventually(lambda: system.app.recorder.max_notification_id(), 30)
        took = time.monotonic() - back
        print(f"a read went through {took:.1f} s after the database was back")  # 13 s before the bound
        assert took < 3 * timeouts.reconnect_s + timeouts.pool_wait_s
    finally:
        stop.set()
        system.close()
