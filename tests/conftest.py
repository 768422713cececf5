"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test.

Each test's database is a clone of a schema template built once per session (tests/support/databases.py
says why and what it holds); `blank_database_url` gives a database with no tables for tests of a
brand-new installation.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from infra.clock import SimulatedClock
from tests.support.databases import Databases, with_dbname

__all__ = ["with_dbname"]  # imported from here by tests/bench_relay.py

# A throwaway server need not survive a power cut: without fsync a CREATE DATABASE takes a third of the
# time and the shutdown checkpoint seconds less. Visibility and locking are unchanged.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def make_throwaway(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name, value in THROWAWAY_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        conn.execute("SELECT pg_reload_conf()")


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
        make_throwaway(server.uri)
        yield server.uri
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def databases(pg_server_url: str) -> Iterator[Databases]:
    """Makes the tests' databases; the schema template is built on first use, dropped at the end."""
    made = Databases(pg_server_url)
    made.build_template()
    yield made
    made.drop_template()


@pytest.fixture
def database_url(databases: Databases) -> str:
    """A DSN to a new database with the whole schema and an empty event store."""
    return databases.clone()


@pytest.fixture
def blank_database_url(databases: Databases) -> str:
    """A DSN to a new database with no tables at all, as on a brand-new installation."""
    return databases.blank()


@pytest.fixture
def rng() -> random.Random:
    """A random generator of this test's own, seeded from DUDAO_TEST_SEED or afresh; the seed is printed, so a
    failing run shows it (captured output) and DUDAO_TEST_SEED=<seed> replays the same random choices."""
    seed = int(os.environ.get("DUDAO_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"random seed {seed} (replay with DUDAO_TEST_SEED={seed})")
    return random.Random(seed)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc))
