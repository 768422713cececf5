"""The wake-up (唤醒) the projector, the relay and the chain process wait on: the store's commit notification ends
the wait at once, a quiet store lets it time out, and a lost or unreachable database never raises out of it (the
readers' own loops meet the outage); once the database answers again it listens again. The projector, the relay
and the chain process, idle with an hour-long poll interval, still take up a new event: only the notification can
have woken them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any
from uuid import uuid4

import psycopg
import pytest

import infra.audit.process as chain_module
import infra.store.projector as projector_module
import infra.streams.relay as relay_module

from domain.kernel.base import Actor
from infra.audit import chain
from infra.audit.history import events_table
from infra.audit.process import ChainProcess
from domain.structure.campaign import StartCampaign
from infra.bootstrap import System, bootstrap
from infra.outage import Backoff
from infra.runtime.embedded import EmbeddedKafka
from infra.store.wakeup import Wakeup
from tests.integration.test_audit_chain import KEY
from tests.integration.test_relay import make_relay, relay_position
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")
LONG_S = 30.0  # a wait this long ending True was ended by a notification (a timeout returns False)
HOUR_S = 3600.0  # a poll interval no test outlasts


@pytest.fixture
def system(database_url: str, clock: Any) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


def start_campaign(system: System) -> None:
    system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=uuid4(), name="唤醒", jurisdiction="高安市",
                                        launched_on=date(2021, 12, 3)), HQ)


class FakeClock:
    """Monotonic time that moves only when told to (the reconnect pause, without sleeping through it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stored_event_ends_the_wait_and_a_quiet_store_lets_it_time_out(system: System) -> None:
    """The first wait reports listening; with nothing stored the next one times out (False); a commit made before or
    during a wait ends it (True)."""
    with Wakeup(system.database_url, system.app.store.channel_name) as wakeup:
        assert wakeup.wait(LONG_S) is True  # just started listening: the reader looks once
        assert wakeup.wait(0.05) is False
        start_campaign(system)
        assert wakeup.wait(LONG_S) is True
        wait_until(lambda: not wakeup.wait(0.05), "the wait to time out once the commits were heard", LONG_S)
        writer = threading.Timer(0.1, start_campaign, args=(system,))
        writer.start()
        try:
            assert wakeup.wait(LONG_S) is True  # woken while it waited
        finally:
            writer.join()


def test_a_lost_connection_wakes_the_reader_then_listening_resumes_after_a_pause(system: System) -> None:
    """When the listening connection is killed the wait returns True (look now) instead of raising; until the pause
    is over it only times out; after it, it listens again and commits wake it as before."""
    clock = FakeClock()
    with Wakeup(system.database_url, system.app.store.channel_name, backoff=Backoff(0.5, 5.0), clock=clock) as wakeup:
        assert wakeup.wait(LONG_S) is True
        with psycopg.connect(system.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN %%'"
                          " AND pid <> pg_backend_pid()")
        assert wakeup.wait(LONG_S) is True  # the broken connection ends the wait: the reader looks at once
        start_campaign(system)
        assert wakeup.wait(0.05) is False  # the 0.5 s pause is not over: not listening, so only the timeout
        clock.now += 0.5
        assert wakeup.wait(LONG_S) is True  # listening again: anything may have been missed
        start_campaign(system)
        assert wakeup.wait(LONG_S) is True


def test_an_unreachable_database_only_makes_the_wait_time_out() -> None:
    """Without a database to listen on, every wait sleeps its timeout and returns False, never raises."""
    nowhere = "postgresql://postgres@127.0.0.1:9/none?connect_timeout=2"
    with Wakeup(nowhere, "dudao_events") as wakeup:
        assert wakeup.wait(0.05) is False
        assert wakeup.wait(0.05) is False



class Watched(Wakeup):
    """A wake-up that says when its reader is really waiting: listening already, so only a notification (or the
    timeout) can end the wait."""

    waiting = threading.Event()

    def wait(self, timeout_s: float) -> bool:
        if self._conn is not None:
            Watched.waiting.set()
        try:
            return super().wait(timeout_s)
        finally:
            Watched.waiting.clear()


@contextmanager
def running(target: Callable[[], None], stop: Callable[[], None]) -> Iterator[None]:
    """Run a reader's loop in a thread; on exit stop it and check its wait ended within 10 s of stop()."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(10)
        assert not thread.is_alive(), "the loop did not end within 10 s of stop()"


def test_an_idle_projector_is_woken_by_a_commit_and_stops_promptly(system: System,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With an hour-long poll interval, a projector waiting at the head projects the next event (only the
    notification can have woken it), and stop() ends its wait at once."""
    monkeypatch.setattr(projector_module, "Wakeup", Watched)
    projector = system.projector
    start_campaign(system)
    with running(lambda: projector.run_forever(poll_seconds=HOUR_S), projector.stop):
        wait_until(Watched.waiting.is_set, "the projector waiting at the head", LONG_S)
        start_campaign(system)
        wait_until(lambda: all(projector.position(p) >= projector.head() for p in projector.projections),
                   "the projector at the new head, woken by the commit", LONG_S)


def test_an_idle_relay_is_woken_by_a_commit_and_stops_promptly(system: System, kafka: EmbeddedKafka, prefix: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With an hour-long poll interval, a relay waiting at the head publishes the next event (only the notification
    can have woken it), and stop() ends its wait at once."""
    monkeypatch.setattr(relay_module, "Wakeup", Watched)
    relay = make_relay(system, kafka, prefix, poll_seconds=HOUR_S)
    start_campaign(system)
    with running(relay.run_forever, relay.stop):
        wait_until(Watched.waiting.is_set, "the relay waiting at the head", LONG_S)
        start_campaign(system)
        wait_until(lambda: relay_position(system) >= (system.app.recorder.max_notification_id() or 0),
                   "the relay at the new head, woken by the commit", LONG_S)


def test_an_idle_chain_process_is_woken_by_a_commit_and_stops_promptly(system: System,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With an hour-long poll interval, a chain process caught up with the log chains the next event (only the
    notification can have woken it), and stop() ends its wait at once."""
    monkeypatch.setattr(chain_module, "Wakeup", Watched)
    process = ChainProcess(system.database_url, events_table(system.app), KEY, system.clock, poll=HOUR_S,
                           channel=system.app.store.channel_name)
    start_campaign(system)

    def chained_to_head() -> bool:
        with psycopg.connect(system.database_url) as conn:
            return chain.head(conn).position >= (system.app.recorder.max_notification_id() or 0)

    with running(process.run_forever, process.stop):
        wait_until(lambda: Watched.waiting.is_set() and chained_to_head(), "the chain process waiting at the head",
                   LONG_S)
        start_campaign(system)
        wait_until(chained_to_head, "the chain at the new head, woken by the commit", LONG_S)
