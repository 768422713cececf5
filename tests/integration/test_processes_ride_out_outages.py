"""The escalator and the relay, in-process, against a database they cannot reach: neither exits, each
keeps one outage open however many attempts fail, and each takes its lock once the database answers.
(The end-to-end version with the real processes, a stopped server and their logs is test_postgres_outage.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from infra.bootstrap import System, bootstrap
from infra.escalator.engine import Escalator
from infra.streams.relay import Relay

from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

UNREACHABLE = "host=/nonexistent-dudao-socket-dir dbname=nothing user=nobody"


@pytest.fixture
def system(database_url: str) -> Iterator[System]:
    s = bootstrap(database_url)
    yield s
    s.close()


def test_the_escalator_keeps_trying_while_the_database_is_unreachable_and_leads_once_it_answers(system: System) -> None:
    """try_lead's refused connection no longer ends run(): it backs off within one outage, then leads and ticks."""
    escalator = Escalator.for_system(system, interval=0.05, poll=0.05)
    escalator.database_url = UNREACHABLE
    escalator.outage.backoff.start, escalator.outage.backoff.cap = 0.02, 0.05
    thread = threading.Thread(target=escalator.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: escalator.outage.attempts >= 5, "escalator.outage.attempts >= 5", 20.0, interval_s=0.02)
        assert thread.is_alive() and escalator.outage.down and not escalator.leading
        escalator.database_url = system.database_url  # the database is back
        wait_until(lambda: escalator.ticks >= 1, "escalator.ticks >= 1", 20.0, interval_s=0.02)
        assert not escalator.outage.down and escalator.outage.attempts == 0
    finally:
        escalator.stop()
        thread.join(30)


def test_the_relay_keeps_trying_while_the_database_is_unreachable_and_takes_its_lock_once_it_answers(
        system: System) -> None:
    """The relay's lock connection refused again and again is one open outage, not an exit; then it holds the lock."""
    name = f"outage-{time.monotonic_ns()}"
    relay = Relay(system.app, UNREACHABLE, "127.0.0.1:9", name=name, standby_seconds=0.05, timeout_s=1.0)
    relay.outage.backoff.start, relay.outage.backoff.cap = 0.02, 0.05
    thread = threading.Thread(target=relay.run_forever, daemon=True)
    thread.start()
    try:
        wait_until(lambda: relay.outage.attempts >= 5, "relay.outage.attempts >= 5", 20.0, interval_s=0.02)
        assert thread.is_alive() and relay.outage.down
        relay.database_url = system.database_url

        def registered() -> bool:  # the active relay inserts its position row right after taking the lock
            with psycopg.connect(system.database_url) as conn:
                if conn.execute("SELECT to_regclass('dudao_relay_position')").fetchone() in (None, (None,)):
                    return False
                return conn.execute("SELECT 1 FROM dudao_relay_position WHERE name = %s", (name,)).fetchone() is not None

        wait_until(registered, "registered", 20.0, interval_s=0.02)
        assert thread.is_alive()
    finally:
        relay.stop()
        thread.join(30)
