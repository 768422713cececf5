"""Which errors mean "this connection is gone, a fresh one may do" (a read is then retried once) and which mean
the statement failed on a live connection or no connection could be had (raised as they are)."""

from __future__ import annotations

import eventsourcing.persistence as es
import psycopg
import psycopg_pool
import pytest
from psycopg import errors

from infra.store.event_store import connection_ended


def wrapped(exc: BaseException) -> es.PersistenceError:
    """As eventsourcing's datastore raises it: its own class, the driver's error as the cause."""
    outer = es.OperationalError(str(exc))
    outer.__cause__ = exc
    return outer


@pytest.mark.parametrize("exc", [
    errors.AdminShutdown("terminating connection due to administrator command"),
    errors.CrashShutdown("terminating connection because of crash of another server process"),
    errors.CannotConnectNow("the database system is starting up"),
    errors.ConnectionFailure("connection failure"),
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    psycopg.InterfaceError("the connection is closed"),
], ids=lambda e: type(e).__name__)
def test_an_ended_connection_is_told_apart_bare_or_wrapped(exc: BaseException) -> None:
    assert connection_ended(exc)
    assert connection_ended(wrapped(exc))


@pytest.mark.parametrize("exc", [
    errors.QueryCanceled("canceling statement due to statement timeout"),
    errors.LockNotAvailable("canceling statement due to lock timeout"),
    errors.DeadlockDetected("deadlock detected"),
    errors.SerializationFailure("could not serialize access"),
    psycopg_pool.PoolTimeout("couldn't get a connection after 3.00 sec"),
    psycopg_pool.PoolClosed("the pool is closed"),
    psycopg.DataError("invalid input syntax"),
], ids=lambda e: type(e).__name__)
def test_a_failure_on_a_live_connection_or_no_connection_at_all_is_not_an_ended_one(exc: BaseException) -> None:
    assert not connection_ended(exc)
    assert not connection_ended(wrapped(exc))
