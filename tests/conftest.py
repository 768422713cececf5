"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from infra.clock import SimulatedClock

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin DSN of a real PostgreSQL: DUDAO_TEST_DATABASE_URL, or an embedded server for this session."""
    if url := os.environ.get("DUDAO_TEST_DATABASE_URL"):
        yield url
        return
    from infra.runtime.embedded import start_postgres

    # Not under pytest's basetemp: that is 0700 and pruned by concurrent pytest runs, while the
    # server runs as its own system user when we are root.
    base = Path(tempfile.mkdtemp(prefix="dudao-test-pg-"))
    base.chmod(0o755)
    server = start_postgres(base / "data")
    try:
        yield server.uri
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database_url(pg_server_url: str) -> str:
    """A DSN to a brand-new empty database, so each test starts from an empty event store."""
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_dbname(pg_server_url, name)


def with_dbname(url: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc))
