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
from typing import Any

import psycopg
import pytest

from infra.clock import SimulatedClock
from tests.support.databases import Databases, with_dbname
from tests.support.demo_data import Demo, load_demo_once

__all__ = ["with_dbname"]  # imported from here by tests/bench_relay.py

# A throwaway server need not survive a power cut: without fsync a CREATE DATABASE takes a third of the
# time and the shutdown checkpoint seconds less. Visibility and locking are unchanged. A small WAL budget keeps a
# server on tmpfs (below) from holding a gigabyte of recycled segments in memory.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_wal_size": "'256MB'",
                      "min_wal_size": "'64MB'"}
# Where a throwaway server keeps its files: in memory (/dev/shm) when there is room. Each test's database is a
# 9 MB copy of the template; on the 2-core machine's disk a copy took 0.5 s and removing a worker's data directory
# at the end of the run 10 s or more, in memory 0.03–0.08 s and a fraction of a second.
FAST_DIR = Path("/dev/shm")
FAST_DIR_MIN_FREE = 2 * 1024**3


def throwaway_base() -> Path:
    """A new directory for a throwaway server's files: under /dev/shm when it has room, else the usual temp dir."""
    fast = FAST_DIR.is_dir() and os.access(FAST_DIR, os.W_OK) and shutil.disk_usage(FAST_DIR).free > FAST_DIR_MIN_FREE
    base = Path(tempfile.mkdtemp(prefix="dudao-test-pg-", dir=FAST_DIR if fast else None))
    base.chmod(0o755)
    return base


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
    base = throwaway_base()
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


@pytest.fixture(scope="session")
def loaded_demo(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The 高安 demo, loaded once per session as `dudao demo` loads it; read it through `copy_of` (the copy source
    must have no connections)."""
    return load_demo_once(databases, tmp_path_factory.mktemp("demo-var"))


@pytest.fixture
def database_url(databases: Databases) -> Iterator[str]:
    """A DSN to a new database with the whole schema and an empty event store (dropped after the test)."""
    url = databases.clone()
    yield url
    databases.drop(url)


@pytest.fixture
def blank_database_url(databases: Databases) -> Iterator[str]:
    """A DSN to a new database with no tables at all, as on a brand-new installation (dropped after the test)."""
    url = databases.blank()
    yield url
    databases.drop(url)


# --- running in parallel (pytest-xdist: `make test` runs `pytest -n 4 --dist loadscope`) ----------------------
#
# A worker takes whole modules (module-scoped fixtures — a Kafka broker, a world built once — are set up once),
# except that the modules reading the session's demo go to one worker together, so it is loaded once. The
# longest modules are handed out first, so none of them starts last and holds the run up on its own.
# (xdist's own `loadgroup` cannot be used: on pytest 9.2 its group suffix no longer reaches the node ids.)
DEMO_READERS = frozenset({"tests/integration/test_demo.py", "tests/integration/test_demo_leadership.py",
                          "tests/browser/test_dashboard.py"})
LONGEST_FIRST = (  # measured: each takes one to five minutes on the 2-core machine
    "tests/integration/test_postgres_outage.py", "tests/e2e/test_make_run.py", "tests/integration/test_fuzz_api.py",
    *sorted(DEMO_READERS), "tests/integration/test_escalator.py", "tests/integration/test_task_import.py",
    "tests/integration/test_demo_first_batch.py", "tests/integration/test_readers_ride_out_postgres_outage.py",
    "tests/integration/test_audit.py", "tests/integration/test_as_of_everywhere.py",
    "tests/integration/test_projection_workers.py", "tests/integration/test_bad_input.py",
    "tests/integration/test_relay_faults.py", "tests/integration/test_audit_chain.py",
)


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, the rest in their usual order (every worker sorts the same collection alike)."""
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(module_of(item.nodeid), len(rank)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Whole modules per worker, the demo's readers as one unit, in the order of the collection."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]  # xdist ships no type hints

    class ModulesAndTheDemo(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = module_of(nodeid)
            return "demo" if module in DEMO_READERS else module

    config.option.loadscopereorder = False
    return ModulesAndTheDemo(config, log)


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
