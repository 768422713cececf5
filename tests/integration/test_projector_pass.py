"""The projector's live pass (一次读日志) against the real PostgreSQL: the log is read once for every projection, each
is handed the events after its own position, and nothing of the exactly-once and dead-letter rules is lost by it.
Why: one read and one transaction per projection a pass was the read models' latency at 100 commands/s."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from infra.store.projector import Projector
from projections import dead_letters as dl
from projections.base import Projection
from tests.support.problem_world import World, report_at

pytestmark = pytest.mark.integration


def named(projector: Projector, name: str) -> Projection:
    return next(p for p in projector.projections if p.name == name)


def rows(w: World, projection: Projection) -> dict[str, list[str]]:
    """Every row of the projection's tables, as sorted text (comparable across a rebuild)."""
    with psycopg.connect(w.system.database_url) as conn:
        return {t: sorted(repr(r) for r in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t))))
                for t in projection.tables}


def stamps(w: World) -> dict[str, Any]:
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        return {r["name"]: (r["position"], r["updated_at"])
                for r in conn.execute("SELECT name, position, updated_at FROM dudao_projection_positions")}


def test_projections_at_different_positions_each_apply_the_events_after_their_own_once(world: World) -> None:
    """With the ledger ahead of the others, passes bring all to the head and the ledger's and the work items' rows equal
    those a rebuild from zero leaves (no event applied twice or missed)."""
    projector = world.system.projector
    projector.catch_up()
    report_at(world, "s1")
    ledger, work_items = named(projector, "ledger"), named(projector, "work_items")
    while projector.run_once(ledger):
        pass
    report_at(world, "s3")
    head = world.log_head()
    assert projector.position(ledger) < head and projector.position(work_items) < projector.position(ledger)
    while projector.run_pass():
        pass
    assert {p.name: projector.position(p) for p in projector.projections} == {p.name: head for p in projector.projections}
    live = {p.name: rows(world, p) for p in (ledger, work_items)}
    projector.rebuild(ledger)
    projector.rebuild(work_items)
    assert {p.name: rows(world, p) for p in (ledger, work_items)} == live


def test_a_pass_with_nothing_new_writes_no_position(world: World) -> None:
    """Once every projection is at the head, a pass moves nothing and leaves every position row as it was."""
    projector = world.system.projector
    report_at(world, "s1")
    projector.catch_up()
    before = stamps(world)
    assert projector.run_pass() == 0
    assert stamps(world) == before


def test_a_projector_started_after_the_fix_closes_the_dead_letter_its_shared_pass_applies(world: World) -> None:
    """A dead letter left by an earlier run (a column too narrow, since widened) is applied by a new projector's shared
    pass, which knows nothing of the pause, and is closed as retried by the projector."""
    projector = world.system.projector
    with psycopg.connect(world.system.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_timeline ALTER COLUMN summary_zh TYPE varchar(4)")
    report_at(world, "s1")
    projector.catch_up()
    with psycopg.connect(world.system.database_url, row_factory=dict_row) as conn:
        [letter] = dl.listing(conn, reader="ledger", state="open")
    assert projector.position(named(projector, "ledger")) == letter["position"] - 1
    with psycopg.connect(world.system.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_timeline ALTER COLUMN summary_zh TYPE text")
    restarted = Projector(world.system.app, world.system.database_url, projector.projections)
    try:
        while restarted.run_pass():
            pass
        assert restarted.position(named(restarted, "ledger")) == world.log_head()
    finally:
        restarted.close()
    with psycopg.connect(world.system.database_url, row_factory=dict_row) as conn:
        [done] = dl.listing(conn, reader="ledger")
    assert (done["state"], done["resolved_by"]) == ("retried", "projector")
