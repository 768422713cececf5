"""Backoff and the outage state every long-running process uses to ride out a database outage."""

from __future__ import annotations

import psycopg
import structlog
from eventsourcing.persistence import OperationalError as EsOperationalError
from psycopg_pool import PoolTimeout
from structlog.testing import capture_logs

from infra.outage import Backoff, Outage, is_database_unavailable


def test_backoff_doubles_from_its_start_up_to_its_cap_and_starts_over_after_a_reset() -> None:
    """0.5, 1, 2, 4, 5, 5 with a 5 s cap; after reset() the next delay is 0.5 again."""
    backoff = Backoff(0.5, 5.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() -> None:
    """Ten failed attempts write one `database_unavailable` line, the success after them one `database_available`."""
    now = [100.0]
    outage = Outage(structlog.get_logger("test"), clock=lambda: now[0])
    with capture_logs() as logs:
        outage.recovered()  # up and staying up: nothing to say
        delays = [outage.failed(psycopg.OperationalError("connection refused")) for _ in range(10)]
        now[0] = 130.0
        outage.recovered()
        outage.recovered()
    assert [e["event"] for e in logs] == ["database_unavailable", "database_available"]
    assert logs[0]["retry_in_s"] == 0.5 and "connection refused" in logs[0]["error"]
    assert logs[1]["down_for_s"] == 30.0 and logs[1]["failed_attempts"] == 10
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and not outage.down


def test_a_second_outage_starts_its_backoff_from_the_first_delay() -> None:
    """After a recovery the next outage's first retry comes after the shortest delay, not the last one used."""
    outage = Outage(structlog.get_logger("test"))
    for _ in range(5):
        outage.failed(ConnectionRefusedError())
    outage.recovered()
    assert outage.failed(ConnectionRefusedError()) == 0.5


def test_only_errors_of_reaching_the_database_count_as_unavailable() -> None:
    """Refused connections, pool timeouts and eventsourcing's wrappers are outages; a bad statement is not."""
    assert is_database_unavailable(PoolTimeout("couldn't get a connection after 5.00 sec"))
    assert is_database_unavailable(EsOperationalError("server closed the connection unexpectedly"))
    assert is_database_unavailable(ConnectionRefusedError())
    assert not is_database_unavailable(psycopg.errors.UndefinedTable("no such table"))
    assert not is_database_unavailable(ValueError("bad input"))
