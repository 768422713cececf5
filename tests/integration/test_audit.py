"""Audit replay for accountability against real PostgreSQL: trails with causes, as-of and knowledge views, the
matrix folded from the store, escalation replay and the dossier (the chain's tamper tests are in test_audit_chain)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from domain import problem as pr
from domain.consequences.accountability import case_id_for
from domain.consequences.bulletin import BulletinDrafted, BulletinIssued
from domain.consequences.summons import summons_id_for
from domain.escalation.ladder import DEFAULT_LADDER, SetEscalationLadder, step_id_for
from domain.escalation.step import EscalationStepTaken
from domain.kernel.base import Actor, Meta
from domain.structure.responsibility import (AssignResponsibility, RevokeResponsibility, new_assignment_id,
                                            responsibility_id)
from domain.structure.unit import MoveUnit, RenameUnit
from domain.visit import LogVisit
from infra.audit import asof, queries as aq
from infra.audit.history import events_table
from infra.audit.digests import SigningKey
from infra.audit.process import ChainProcess
from infra.bootstrap import System, bootstrap
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from infra.store.event_store import StoredDomainEvent
from projections import matrix as mx
from tests.support.databases import Databases
from tests.support.dossier import parse
from tests.support.escalation_kit import (at, close_problem, escalation_world, issue_week_one_bulletin, report_and_assign,
                                          run_hourly)
from tests.support.problem_world import ADMIN, World

pytestmark = pytest.mark.integration
KEY = SigningKey("test", b"k" * 32)
SHORTER = tuple(s.model_copy(update={"offset_working_hours": {"supervise": 16, "bulletin_listing": 40,
                                                              "summons_proposed": 40,
                                                              "accountability_proposed": 80}.get(s.name, s.offset_working_hours)})
                for s in DEFAULT_LADDER.steps)


@dataclass
class Story:
    world: World
    untouched: UUID
    closed: UUID
    parked: UUID
    bulletin: UUID


@pytest.fixture(scope="module")
def story(databases: Databases) -> Iterator[Story]:
    """From 2021-12-23 on an hourly clock: one problem untouched, one closed next day, one parked 12-24 to 12-29;
    the ladder shortened from 12-30 12:00; on 01-14 a bulletin issued that lists the untouched problem's 列入通报
    step and puts its unit on the 黑榜."""
    clock = SimulatedClock(at("2021-12-23", "09:00"))
    system = bootstrap(databases.clone("audit"), clock=clock, pool_size=10)
    w = escalation_world(system)
    clock.set(at("2021-12-23"))
    a, b, c = (report_and_assign(w, place, text) for place, text in
               (("s1", "人行道垃圾堆积"), ("s2", "绿化带杂物"), ("s3", "背街小巷污水外溢")))

    def close_b_and_park_c() -> None:
        close_problem(w, b)
        w.send("hq", pr.ParkProblem, problem_id=c, reason="等待管网改造")

    bulletin = uuid4()

    def issue_bulletin() -> None:
        issue_week_one_bulletin(w, bulletin, a)

    actions = {
        at("2021-12-24"): close_b_and_park_c,
        at("2021-12-29"): lambda: w.send("hq", pr.ResumeProblem, problem_id=c),
        at("2021-12-29", "11:00"): lambda: w.send("hq", SetEscalationLadder, campaign_id=w.campaign_id, steps=SHORTER,
                                                  effective_from=at("2021-12-30", "12:00"), reason="提速督办"),
        at("2022-01-14"): issue_bulletin,
    }
    run_hourly(Escalator.for_system(system), clock, at("2022-01-20"), actions)
    w.catch_up()
    yield Story(w, a, b, c, bulletin)
    system.close()


def conn_of(system: System) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(system.database_url, row_factory=dict_row)


def test_a_problems_trail_has_its_life_and_the_notices_steps_bulletin_summons_and_case_that_name_it_each_with_its_cause(
        story: Story) -> None:
    """Every event of the problem, plus each step, notice, bulletin, summons and case naming it; each caused event
    resolves to its cause, and the bulletin that lists the problem's step leads to the 黑榜 summons it caused."""
    system = story.world.system
    with conn_of(system) as conn:
        body = aq.trail(conn, story.untouched, limit=1000)
    rows = body["rows"]
    own = [r for r in rows if r["aggregate_id"] == str(story.untouched)]
    assert len(own) == len(system.app.history(story.untouched)) and body["total"] == len(rows)
    kinds = {r["kind"] for r in rows}
    assert {"problem", "notice", "escalation", "bulletin", "summons", "accountability_case"} <= kinds
    steps = [r for r in rows if r["kind"] == "escalation"]
    assert {r["payload"]["step_name"] for r in steps} == {s.name for s in DEFAULT_LADDER.steps}
    for r in rows:
        if r["kind"] in ("escalation", "summons", "accountability_case") or (r["kind"] == "notice" and r["version"] == 1):
            assert r["causation_chain"], f"{r['event_type']} names no cause"
    for step in steps:  # a step is caused by the problem's 交办 (the event that set its deadline)
        assert step["causation_chain"][0]["type"] == pr.ProblemAssigned.event_name
    case = next(r for r in rows if r["kind"] == "accountability_case")
    assert case["causation_chain"][0]["type"] == EscalationStepTaken.event_name
    assert case["root_command_id"] == case["causation_chain"][-1]["command_id"]
    unit_a = story.world["unit_a"]
    with conn_of(system) as conn:
        unit_rows = aq.trail(conn, unit_a, limit=5000)["rows"]
    lead = [r for r in unit_rows if r["aggregate_id"] == str(step_id_for("problem", story.untouched, "supervise"))]
    assert lead and "lead_of_place" in lead[0]["relations"]
    bulletin = [r for r in rows if r["kind"] == "bulletin"]  # named through the step it lists (列入通报)
    assert [r["event_type"] for r in bulletin] == [BulletinDrafted.event_name, BulletinIssued.event_name]
    assert "listed_escalations.step_id.item_id" in bulletin[0]["relations"]
    listing = next(r for r in steps if r["payload"]["step_name"] == "bulletin_listing")
    assert listing["notification_id"] < bulletin[0]["notification_id"]
    assert all(r["causation_id"] is None and r["root_command_id"] == r["command_id"] for r in bulletin)  # HQ decided
    summons = next(r for r in unit_rows if r["aggregate_id"] == str(summons_id_for("ranking", story.bulletin, unit_a)))
    assert summons["causation_chain"][0]["event_id"] == bulletin[1]["event_id"]  # the 黑榜 consequence, caused by 印发
    assert summons["root_command_id"] == bulletin[1]["command_id"]


def test_escalation_replay_agrees_with_the_escalator_across_a_ladder_change_and_a_parked_period(story: Story) -> None:
    """Each step the escalator took followed from the ladder in force and the facts recorded then; none is missing."""
    system = story.world.system
    with conn_of(system) as conn:
        result = aq.replay_scope(system.app, conn, campaign=story.world.campaign_id, until=at("2022-01-20"))
    verdicts = {(i.item_id, s.step_name): s for i in result.items for s in i.steps}
    assert result.agrees, [s.as_json() for i in result.items for s in i.steps if s.verdict not in ("followed", "manual")]
    assert verdicts[(story.untouched, "supervise")].detail.count("2021-12-30") == 2  # under the new ladder
    assert verdicts[(story.parked, "urge")].verdict == "followed"
    assert not any(k[0] == story.closed for k in verdicts)


def test_a_hand_inserted_escalation_step_is_reported_as_not_following_from_policy(story: Story) -> None:
    """A step written straight into the store for a closed problem is `not_called_for`; the rest still agree."""
    system = story.world.system
    step_id = step_id_for("problem", story.closed, "urge")
    now = system.clock()
    meta = Meta(actor=Actor(role="system", name="督办引擎"), occurred_at=now, recorded_at=now, correlation_id=uuid4(),
                command_id=f"escalation-step:{step_id}", campaign_id=story.world.campaign_id)
    system.app.save(StoredDomainEvent(step_id, 1, EscalationStepTaken(
        meta=meta, step_id=step_id, campaign_id=story.world.campaign_id, item_kind="problem", item_id=story.closed,
        step_name="urge", level=1, due_at=now)))
    story.world.catch_up()
    with conn_of(system) as conn:
        result = aq.replay_scope(system.app, conn, item=story.closed, until=now)
    [item] = result.items
    assert [(s.step_name, s.verdict) for s in item.steps] == [("urge", "not_called_for")]
    assert "closed" in item.steps[0].detail


def test_the_dossier_renders_and_parses_back_with_the_trails_and_the_integrity_proof(story: Story) -> None:
    """The HTML names the case, holds each basis item's whole trail and a proof that verifies against a signed digest."""
    system = story.world.system
    ChainProcess(system.database_url, events_table(system.app), KEY, system.clock).round(force_digest=True)
    case = case_id_for(step_id_for("problem", story.untouched, "accountability_proposed"))
    with conn_of(system) as conn:
        html = aq.dossier_html(system.app, system.database_url, conn, case, system.clock(), KEY)
        trail_size = aq.trail(conn, story.untouched, limit=5000)["total"]
    page = parse(html)
    assert page.sections["case"]["data-case-id"] == str(case)
    assert page.rows_in[f"trail-{story.untouched}"] == trail_size
    proof = page.sections["integrity"]
    assert proof["data-intact"] == "true" and int(proof["data-to"]) >= max(page.positions)
    assert page.digest["data-position"] == proof["data-to"] and page.digest["data-head-hash"] == proof["data-head-hash"]
    assert page.sections["replay"]["data-agrees"] in ("true", "false") and "@page" in html and "A4" in html


def test_as_of_day_nine_shows_the_old_lead_and_the_knowledge_view_leaves_out_a_visit_recorded_later(
        databases: Databases) -> None:
    """Lead changed on day 10, problem reported on day 8: as of day 9 the old lead answers for its place; a visit
    that occurred on day 7 but was recorded on day 12 is in what had happened by day 9, not in what HQ could see."""
    clock = SimulatedClock(at("2021-12-01", "09:00"))
    system = bootstrap(databases.clone("asof"), clock=clock)
    try:
        w = escalation_world(system)
        day = lambda n: at(f"2021-12-{n:02d}")  # noqa: E731  # day n of December 2021, 10:00 Beijing time
        clock.set(day(8))
        pid = uuid4()
        w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category="sanitation",
               place_id=w["grid1"], description="路面有垃圾堆积", source="hotline")
        clock.set(day(10))
        w.send(ADMIN, AssignResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=w["grid1"],
               party_kind="unit", party_id=w["unit_b"], role="lead", reason="调整包片")
        clock.set(day(12))
        w.send(ADMIN, RenameUnit, unit_id=w["unit_b"], name="住建局（更名）")  # the name in force on day 11 is the old one
        visit = uuid4()
        w.send("supervisor", LogVisit, visit_id=visit, campaign_id=w.campaign_id, place_id=w["grid1"],
               participants=(w["supervisor"],), occurred_at=day(7))
        w.catch_up()
        view = aq.as_of(system.app, ("problem",), pid, day(9), "recorded")
        assert [r["party_id"] for r in view["responsible"] if r["role"] == "lead"] == [w["unit_a"]]
        now_view = aq.as_of(system.app, ("place",), w["grid1"], day(11), "recorded")
        assert {r["party_name"] for r in now_view["responsible"] if r["role"] == "lead"} == {"unit_b"}
        with conn_of(system) as conn:
            seen = asof.knowledge(system.app, conn, ("place",), w["grid1"], day(9))
        known = {e["aggregate_id"] for e in seen["known"]}
        happened = {e["aggregate_id"] for e in seen["happened"]}
        assert str(visit) not in known and str(visit) in happened
        assert [e["aggregate_id"] for e in seen["recorded_later"]] == [str(visit)]
    finally:
        system.close()


def test_a_structure_move_without_a_reason_is_refused_and_with_one_the_reason_is_in_the_envelope(
        databases: Databases) -> None:
    """MoveUnit needs a reason (422 reason_required, nothing written); given, it is the event's `meta.reason`."""
    system = bootstrap(databases.clone("reason"), clock=SimulatedClock(at("2021-12-01")))
    try:
        w = escalation_world(system)
        head = w.log_head()
        with pytest.raises(Exception) as refused:
            w.send(ADMIN, MoveUnit, unit_id=w["unit_b"], parent_id=w["office"])
        assert getattr(refused.value, "code", None) == "reason_required" and w.log_head() == head
        w.send(ADMIN, MoveUnit, unit_id=w["unit_b"], parent_id=w["office"], reason="划归办公室管理")
        assert system.app.history(w["unit_b"])[-1].event.meta.reason == "划归办公室管理"
    finally:
        system.close()


def test_the_matrix_folded_from_the_store_agrees_with_the_projection_on_a_generated_history(databases: Databases) -> None:
    """60 random leads, co-units and revocations over 30 days: at every day the projection and the replay (as recorded
    by then, and as stored now — what `GET /campaigns/{id}/matrix?as_of` answers) give the same (scope, party, role)."""
    clock = SimulatedClock(at("2021-12-01"))
    system = bootstrap(databases.clone("mx"), clock=clock)
    try:
        w = escalation_world(system)
        rng = random.Random(11)
        places, units = [w[p] for p in ("grid1", "grid2", "s1", "s2", "s3")], [w["unit_a"], w["unit_b"], w["office"]]
        assignments: list[tuple[UUID, UUID]] = []
        for step in range(60):
            clock.advance(timedelta(hours=12))
            place, unit = rng.choice(places), rng.choice(units)
            if assignments and rng.random() < 0.2:
                scope, assignment = assignments.pop(rng.randrange(len(assignments)))
                try:
                    w.send(ADMIN, RevokeResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=scope,
                           assignment_id=assignment, reason="调整")
                except Exception:  # noqa: BLE001  # superseded meanwhile: no longer in force, nothing to revoke
                    pass
                continue
            try:
                result = w.send(ADMIN, AssignResponsibility, campaign_id=w.campaign_id, scope_kind="place",
                                scope_id=place, party_kind="unit", party_id=unit, role=rng.choice(("lead", "co")),
                                reason=f"第{step}次调整")
            except Exception:  # noqa: BLE001  # the same party already in that role: the history just goes on
                continue
            scope_ref = responsibility_id(w.campaign_id, "place", place)
            assignments.append((place, new_assignment_id(scope_ref, result.command_id)))
        w.catch_up()
        with conn_of(system) as conn:
            for day in range(1, 31):
                when = at(f"2021-12-{day:02d}", "23:00")
                projected = {(r["scope_id"], r["party_id"], r["role"], r["assignment_id"])
                             for r in mx.matrix(conn, w.campaign_id, when)}
                for basis in ("recorded", "stored"):  # no assignment here is backdated, so both must agree
                    replayed = {(r["scope_id"], r["party_id"], r["role"], r["assignment_id"])
                                for r in asof.matrix_at(system.app, w.campaign_id, when, basis=basis)}
                    assert projected == replayed, (when, basis)
    finally:
        system.close()
