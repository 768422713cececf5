"""The as-of view's lookup of who answered for a scope (责任分工、挂钩领导) reads the store through its holders index,
which start-up adds to a store created before it existed, once, and which the lookup's query is answered from."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import psycopg
import pytest

from infra.audit import asof
from infra.audit.history import events_table
from infra.bootstrap import System, bootstrap
from infra.store.event_store import HOLDER_TOPICS
from psycopg.sql import SQL

pytestmark = pytest.mark.integration


def holders_index(database_url: str, table: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s",
                            (table, f"{table}_holders_idx")).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def system(database_url: str) -> Iterator[System]:
    s = bootstrap(database_url)
    yield s
    s.close()


def test_start_up_adds_the_holders_index_to_a_store_created_without_it_and_keeps_one(blank_database_url: str) -> None:
    """A store whose events table predates the index gets it from the next start-up that creates tables (what
    `dudao migrate` runs); a further start-up leaves the one index as it is."""
    first = bootstrap(blank_database_url, create_tables=True, pool_size=1)
    table = first.app.store.events_table_name
    first.close()
    assert len(holders_index(blank_database_url, table)) == 1
    with psycopg.connect(blank_database_url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {table}_holders_idx")  # as the store stood before this release
    assert holders_index(blank_database_url, table) == []
    for _ in range(2):
        bootstrap(blank_database_url, create_tables=True, pool_size=1).close()
        (definition,) = holders_index(blank_database_url, table)
        assert "ResponsibilityAssigned" in definition and "LiaisonLinked" in definition


def test_the_holders_lookup_is_answered_from_the_index_not_a_scan_of_the_log(system: System) -> None:
    """Among many events of other types, the lookup finds exactly the aggregates holding a responsibility or a
    liaison event, and its query reads the index only, whatever the topics asked (a generic plan, as a statement
    prepared and reused gets; the planner knows the table is large, as a real store is)."""
    table = events_table(system.app)
    responsibility, liaison = uuid4(), uuid4()
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute(SQL("INSERT INTO {} (originator_id, originator_version, topic, state) SELECT gen_random_uuid(), 1,"
                         " 'dudao.place.PlaceRenamed', '\\x7b7d'::bytea FROM generate_series(1, 20000)").format(table))
        conn.execute(SQL("INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, ''),"
                         " (%s, 1, %s, '')").format(table), (responsibility, HOLDER_TOPICS[0], liaison, HOLDER_TOPICS[1]))
        conn.execute(SQL("ANALYZE {}").format(table))
        generic = asof.holders_query(system.app).as_string(conn).replace("%s", "$1")  # the topics not yet known
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN (GENERIC_PLAN) {generic}").fetchall())
    assert f"{system.app.store.events_table_name}_holders_idx" in plan and "Seq Scan" not in plan, plan
    assert set(asof.holder_aggregates(system.app)) == {responsibility, liaison}
    assert asof.holder_aggregates(system.app, HOLDER_TOPICS[1:]) == [liaison]
