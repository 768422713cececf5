"""A projection applied a batch at a time (`apply_batch`, a few statements per batch) must leave exactly the rows it
leaves one event at a time (`apply`, the rule), whatever the batch boundaries; and rebuilding every projection in one
pass over the log must leave the rows of rebuilding each alone, setting a poison event aside the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from structlog.testing import capture_logs

from domain import problem as pr
from domain.escalation.ladder import DEFAULT_LADDER, SetEscalationLadder
from domain.structure.place import MovePlace, RenamePlace
from domain.structure.responsibility import AssignResponsibility, RevokeResponsibility, new_assignment_id, responsibility_id
from domain.structure.unit import MoveUnit, RenameUnit
from infra.bootstrap import System, bootstrap
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from infra.store.projector import Projector
from projections import dead_letters as dl
from projections.base import Projection
from tests.support.databases import Databases
from tests.support.escalation_kit import (at, close_problem, escalation_world, issue_week_one_bulletin, report_and_assign,
                                          run_hourly)
from tests.support.poison import store_transfer_request_with_nul
from tests.support.problem_world import ADMIN, World

pytestmark = pytest.mark.integration

Rows = dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def world(databases: Databases) -> Iterator[World]:
    """Three weeks of escalation over three problems (one closed), a bulletin listing a step, a place and a unit moved
    and renamed, a lead revoked and a new lead named: steps, notices, records naming earlier records, holds that end."""
    clock = SimulatedClock(at("2021-12-23", "09:00"))
    system = bootstrap(databases.clone("batches"), clock=clock, pool_size=10)
    w = escalation_world(system)
    clock.set(at("2021-12-23"))
    a, b, _ = (report_and_assign(w, place, text) for place, text in
               (("s1", "人行道垃圾堆积"), ("s2", "绿化带杂物"), ("s3", "背街小巷污水外溢")))
    bulletin = uuid4()

    def reshape() -> None:
        close_problem(w, b)
        w.send(ADMIN, MovePlace, place_id=w["s3"], parent_id=w["grid1"], reason="网格调整")
        w.send(ADMIN, RenamePlace, place_id=w["s3"], name="s3（并入一网格）")
        w.send(ADMIN, MoveUnit, unit_id=w["unit_b"], parent_id=w["office"], reason="划归办公室管理")
        w.send(ADMIN, RenameUnit, unit_id=w["unit_b"], name="住建局（办）")
        scope = responsibility_id(w.campaign_id, "place", w["grid2"])
        lead = w.send(ADMIN, AssignResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=w["grid2"],
                      party_kind="unit", party_id=w["unit_a"], role="co", reason="协办")
        w.send(ADMIN, RevokeResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=w["grid2"],
               assignment_id=new_assignment_id(scope, lead.command_id), reason="协办结束")

    def issue_bulletin() -> None:
        issue_week_one_bulletin(w, bulletin, a)

    shorter = tuple(s.model_copy(update={"offset_working_hours": {"bulletin_listing": 40}.get(s.name, s.offset_working_hours)})
                    for s in DEFAULT_LADDER.steps)
    run_hourly(Escalator.for_system(system), clock, at("2022-01-15"),
               {at("2021-12-24"): reshape, at("2022-01-14"): issue_bulletin,
                at("2021-12-29", "11:00"): lambda: w.send("hq", SetEscalationLadder, campaign_id=w.campaign_id,
                                                          steps=shorter, effective_from=at("2021-12-30", "12:00"),
                                                          reason="提速督办")})
    w.catch_up()
    yield w
    system.close()


def rows_of(system: System, projections: list[Projection]) -> Rows:
    """Every row of the projections' tables, in a canonical order."""
    with psycopg.connect(system.database_url) as conn:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for p in projections for table in p.tables}


def one_event_at_a_time(system: System, projection: Projection, monkeypatch: pytest.MonkeyPatch) -> Rows:
    with monkeypatch.context() as patch:
        patch.setattr(projection, "batched", False)
        system.projector.rebuild(projection)
    return rows_of(system, [projection])


def in_batches_of(system: System, projection: Projection, size: int) -> Rows:
    """The projection rebuilt by the live path, `size` events a batch (so lookups cross batch boundaries)."""
    projector = Projector(system.app, system.database_url, [projection], batch_size=size)
    with capture_logs() as logged:
        projector.rebuild(projection)  # truncates; its batches are `REBUILD_BATCH` long: one here
        first = rows_of(system, [projection])
        with psycopg.connect(system.database_url, autocommit=True) as conn:
            for table in projection.tables:
                conn.execute(f"TRUNCATE {table}")
            conn.execute("UPDATE dudao_projection_positions SET position = 0 WHERE name = %s", (projection.name,))
        head = projector.head()
        while projector.run_once(projection, head):
            pass
    assert projector.position(projection) == head
    assert not [e for e in logged if e["event"] == "projection_batch_one_by_one"], "a batch fell back to one by one"
    assert rows_of(system, [projection]) == first, f"{projection.name}: batches of {size} differ from one batch"
    return first


def test_each_batched_projection_leaves_the_rows_it_leaves_one_event_at_a_time(world: World,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Trail, structure and campaigns rebuilt in one batch and in batches of 7 hold the same rows as applied event by
    event, on a history with steps, notices, a bulletin naming a step, moves, renames and ended holds."""
    batched = [p for p in world.system.projector.projections if p.batched]
    assert {p.name for p in batched} >= {"trail", "structure", "campaigns"}
    for projection in batched:
        reference = one_event_at_a_time(world.system, projection, monkeypatch)
        assert sum(len(rows) for rows in reference.values()) > 0
        assert in_batches_of(world.system, projection, 7) == reference, projection.name


def test_rebuilding_all_in_one_pass_leaves_the_rows_of_rebuilding_each_alone(world: World) -> None:
    """`rebuild_all` reads the log once and hands each event to every projection; every table ends as `rebuild` of that
    projection alone leaves it, and every position at the head."""
    projector = world.system.projector
    for projection in projector.projections:
        projector.rebuild(projection)
    alone = rows_of(world.system, projector.projections)
    head = projector.rebuild_all()
    assert rows_of(world.system, projector.projections) == alone
    assert {projector.position(p) for p in projector.projections} == {head}


def test_rebuilding_all_sets_a_poison_event_aside_and_the_other_projections_reach_the_head(databases: Databases) -> None:
    """A 申请转办 whose reason holds a NUL stops each projection that stores it just before it, with one open dead
    letter each (the batched trail included), while every other projection of the one-pass rebuild reaches the head."""
    system = bootstrap(databases.clone("batches_poison"), clock=SimulatedClock(at("2021-12-23")))
    try:
        w = escalation_world(system)
        problem = report_and_assign(w, "s1")
        poison = store_transfer_request_with_nul(system.app, problem, w["unit_a"])
        report_and_assign(w, "s3")
        head = system.projector.rebuild_all()
        positions = {p.name: system.projector.position(p) for p in system.projector.projections}
        with psycopg.connect(system.database_url, row_factory=psycopg.rows.dict_row) as conn:
            letters = dl.listing(conn, state="open")
        poisoned = {d["reader"] for d in letters}
        assert "trail" in poisoned and {d["position"] for d in letters} == {poison}
        assert all(positions[n] == poison - 1 for n in poisoned)
        assert all(position == head for n, position in positions.items() if n not in poisoned)
        assert pr.TransferRequested.event_name in {d["event_type"] for d in letters}
    finally:
        system.close()
