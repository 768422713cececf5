"""The escalator against real PostgreSQL on a simulated clock: the ladder across 元旦 2022, parking, policy
changes, notices, doubled and failing-over escalators, rankings and who decides accountability."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

import psycopg
import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient

from domain.consequences import accountability as ac
from domain import problem as pr
from domain.kernel.base import Actor, Forbidden
from domain.consequences.bulletin import DraftBulletin, IssueBulletin
from domain.escalation.ladder import DEFAULT_LADDER, SetEscalationLadder, step_id_for
from domain.escalation.step import TakeEscalationStep
from domain.escalation.notice import AcknowledgeNotice, NoticeIssued, Party, notice_id_for_step
from domain.consequences.ranking import DEFAULT_RANKING_POLICY, RankEntry, UnitRate, draft_contents
from domain.consequences.summons import SummonsProposed
from infra.http import create_app
from infra.http.auth import create_token
from infra.bootstrap import System, bootstrap
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from tests.support.escalation_kit import (
    ON_TIME, at, close_problem, escalation_world, events_of, issued_per_notice, overdue_problems,
    ranked_world, report_and_assign, run_hourly, steps_taken, taken_per_step,
)
from tests.support.databases import Databases
from tests.support.problem_world import World
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# The untouched problem: assigned Thu 2021-12-23 10:00 with 3 working days, so due Tue 12-28 10:00; 元旦 makes
# Jan 1–3 days off, so +56 working hours lands on Jan 7 and +120 on Jan 19.
UNTOUCHED = {"reminder": at("2021-12-27"), "urge": at("2021-12-28"), "supervise": at("2021-12-31"),
             "bulletin_listing": at("2022-01-07"), "summons_proposed": at("2022-01-07"),
             "accountability_proposed": at("2022-01-19")}
# Parked 12-24 10:00 to 12-29 10:00 (24 working hours): every step moves by 24 working hours.
PARKED = {"reminder": at("2021-12-30"), "urge": at("2021-12-31"), "supervise": at("2022-01-06"),
          "bulletin_listing": at("2022-01-12"), "summons_proposed": at("2022-01-12")}


@dataclass
class Scenario:
    world: World
    untouched: UUID
    rectified: UUID
    parked: UUID


@pytest.fixture(scope="module")
def scenario(databases: Databases) -> Iterator[Scenario]:
    """30 days from 2021-12-23 on an hourly simulated clock, across 元旦 2022."""
    clock = SimulatedClock(at("2021-12-23", "09:00"))
    system = bootstrap(databases.clone("esc"), clock=clock, pool_size=10)
    w = escalation_world(system)
    clock.set(at("2021-12-23"))
    a, b, c = (report_and_assign(w, place, text) for place, text in
               (("s1", "人行道垃圾堆积"), ("s2", "绿化带杂物"), ("s3", "背街小巷污水外溢")))
    urge_notice = notice_id_for_step(step_id_for("problem", a, "urge"))

    def close_b_and_park_c() -> None:
        close_problem(w, b)
        w.send("hq", pr.ParkProblem, problem_id=c, reason="等待管网改造")

    actions = {
        at("2021-12-24"): close_b_and_park_c,
        at("2021-12-28", "11:00"): lambda: w.send("head_a", AcknowledgeNotice, notice_id=urge_notice),
        at("2021-12-29"): lambda: w.send("hq", pr.ResumeProblem, problem_id=c),
    }
    run_hourly(Escalator.for_system(system), clock, at("2022-01-22"), actions)
    yield Scenario(w, a, b, c)
    system.close()


def taken_at(system: System, item_id: UUID) -> dict[str, object]:
    return {s.step_name: s.meta.recorded_at for s in steps_taken(system, item_id)}


def test_an_untouched_problem_climbs_every_rung_at_exactly_its_working_time(scenario: Scenario) -> None:
    """提醒 → 催办 → 督办 → 列入通报 → 约谈 proposed → 问责 proposed, each taken on the hour it fell due."""
    system = scenario.world.system
    steps = steps_taken(system, scenario.untouched)
    assert taken_at(system, scenario.untouched) == UNTOUCHED
    assert all(s.due_at == s.meta.recorded_at for s in steps)
    assert [s.level for s in sorted(steps, key=lambda s: (s.due_at, s.level))] == [0, 1, 2, 3, 3, 4]


def test_the_steps_tell_the_unit_its_head_the_grid_lead_and_the_bao_bao_and_propose_to_hq(scenario: Scenario) -> None:
    """催办 goes to unit A and its head; 督办 also to the grid lead and 包保责任人; level 3/4 propose 约谈 and 问责."""
    w = scenario.world
    notices = {n.escalation_step_id: n for n in events_of(w.system, NoticeIssued)}
    urge = notices[step_id_for("problem", scenario.untouched, "urge")]
    assert {r.party_id for r in urge.recipients} == {w["unit_a"], w["head_a"]}
    assert "已超过整改期限" in urge.text_zh and "人行道垃圾堆积" in urge.text_zh
    supervise = notices[step_id_for("problem", scenario.untouched, "supervise")]
    assert {r.party_id for r in supervise.recipients} == {w["unit_a"], w["head_a"], w["li"]}
    summons = [e for e in events_of(w.system, SummonsProposed) if e.basis[0].id == scenario.untouched]
    cases = [e for e in events_of(w.system, ac.AccountabilityProposed) if e.basis[0].id == scenario.untouched]
    assert [(s.subject.party_id, s.meta.recorded_at) for s in summons] == [(w["unit_a"], at("2022-01-07"))]
    assert [(c.subject.party_id, c.meta.recorded_at) for c in cases] == [(w["unit_a"], at("2022-01-19"))]


def test_a_problem_rectified_in_time_never_escalates(scenario: Scenario) -> None:
    """Closed the day after assignment, before its reminder was due: no step at all."""
    assert steps_taken(scenario.world.system, scenario.rectified) == []


def test_a_parked_problem_pauses_and_resumes_its_climb(scenario: Scenario) -> None:
    """Parked 12-24 to 12-29: nothing while parked, then every step 24 working hours later than unparked."""
    assert taken_at(scenario.world.system, scenario.parked) == PARKED


def test_an_unacknowledged_notice_escalates_and_an_acknowledged_one_does_not(scenario: Scenario) -> None:
    """The 提醒 to unit A was never signed for (ack due 12-30 10:00): reminded 12-29, urged 12-30; the signed 催办单 rests."""
    system = scenario.world.system
    reminder_notice = notice_id_for_step(step_id_for("problem", scenario.untouched, "reminder"))
    urge_notice = notice_id_for_step(step_id_for("problem", scenario.untouched, "urge"))
    climbed = taken_at(system, reminder_notice)
    assert climbed["reminder"] == at("2021-12-29") and climbed["urge"] == at("2021-12-30")
    assert steps_taken(system, urge_notice) == []
    about_notices = [n for n in events_of(system, NoticeIssued) if n.subject_kind == "notice"]
    assert about_notices and all(steps_taken(system, n.notice_id) == [] for n in about_notices)


@pytest.fixture
def system(database_url: str, clock: SimulatedClock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock, pool_size=10)
    yield s
    s.close()


def test_a_ladder_change_mid_flight_applies_from_its_effective_time(system: System, clock: SimulatedClock) -> None:
    """提醒 and 催办 follow the default ladder; from 12-30 12:00 the shorter ladder times 督办 and what follows."""
    w = escalation_world(system)
    clock.set(at("2021-12-23"))
    pid = report_and_assign(w, "s1")
    shorter = tuple(s.model_copy(update={"offset_working_hours": {"supervise": 16, "bulletin_listing": 40,
                                                                  "summons_proposed": 40,
                                                                  "accountability_proposed": 80}.get(s.name, s.offset_working_hours)})
                    for s in DEFAULT_LADDER.steps)
    change = lambda: w.send("hq", SetEscalationLadder, campaign_id=w.campaign_id, steps=shorter,  # noqa: E731
                            effective_from=at("2021-12-30", "12:00"))
    run_hourly(Escalator.for_system(system), clock, at("2022-01-13"), {at("2021-12-29"): change})
    steps = {s.step_name: s for s in steps_taken(system, pid)}
    assert {n: s.due_at for n, s in steps.items()} == {
        "reminder": at("2021-12-27"), "urge": at("2021-12-28"), "supervise": at("2021-12-30", "12:00"),
        "bulletin_listing": at("2022-01-05"), "summons_proposed": at("2022-01-05"),
        "accountability_proposed": at("2022-01-12")}
    old = {n for n, s in steps.items() if s.ladder_effective_from == DEFAULT_LADDER.effective_from}
    assert old == {"reminder", "urge"}
    assert all(s.meta.recorded_at == s.due_at for s in steps.values())


def test_only_discipline_and_the_hq_leader_decide_measures_through_the_service(system: System) -> None:
    """HQ opens a proposed case; hq_office, a supervisor, admin and the system get 403 deciding; discipline decides."""
    w = escalation_world(system)
    case_id, basis = w["case"], report_and_assign(w, "s1")  # the basis is a problem of the campaign
    w.send("hq", ac.ProposeAccountability, case_id=case_id, campaign_id=w.campaign_id,
           subject=Party(party_kind="unit", party_id=w["unit_a"]), reason_zh="长期逾期未整改",
           basis=(ac.BasisRef(kind="problem", id=basis),))
    w.send("hq", ac.OpenAccountabilityCase, case_id=case_id, campaign_id=w.campaign_id)
    decide = {"case_id": case_id, "measures": ("public_criticism",), "reason_zh": "予以通报批评"}
    for who in ("hq", "supervisor", Actor(role="admin", person_id=w["admin"]), Actor(role="system")):
        with pytest.raises(Forbidden) as err:
            w.send(who, ac.DecideMeasures, **decide)
        assert err.value.status == 403
    w.send("discipline", ac.DecideMeasures, **decide)
    w.send("head_a", ac.FileAppeal, case_id=case_id, reason="已整改到位")
    with pytest.raises(Forbidden):
        w.send("hq", ac.DecideAppeal, case_id=case_id, outcome="upheld", reason_zh="维持")
    w.send("commander", ac.DecideAppeal, case_id=case_id, outcome="modified", measures=("written_self_criticism",),
           reason_zh="改为责令书面检查")
    assert [e.measures for e in events_of(system, ac.MeasureDecided, ac.AppealDecided)] == [
        ("public_criticism",), ("written_self_criticism",)]


def test_two_escalators_ticking_at_once_take_each_of_1000_steps_exactly_once(system: System,
                                                                            clock: SimulatedClock) -> None:
    """A doubled escalator (both ticking the same instant, no lock) writes each step and each notice once."""
    w = escalation_world(system)
    clock.set(at("2021-12-23", "15:00"))
    overdue_problems(w, 1000, at("2021-12-23", "14:00"))  # reminder and 催办 both due
    second = bootstrap(system.database_url, clock=clock, create_tables=False, pool_size=10)
    escalators = [Escalator.for_system(system, workers=4), Escalator.for_system(second, workers=4)]
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda e: e.tick(), escalators))
    escalators[0].tick()  # whatever a lagging one skipped
    per_step = taken_per_step(system)
    assert len(per_step) == 2000 and set(per_step.values()) == {1}
    assert sum(r.taken for r in reports) <= 2000 and set(issued_per_notice(system).values()) == {1}
    second.close()


def test_the_standby_takes_over_within_seconds_when_the_active_escalator_dies_and_nothing_is_taken_twice(
        system: System, clock: SimulatedClock) -> None:
    """1000 overdue items: the active one dies mid-催办; the standby takes the lock and finishes, each step once."""
    w = escalation_world(system)
    clock.set(at("2021-12-23", "10:00"))
    overdue_problems(w, 1000, at("2021-12-23", "14:00"))  # only the reminder is due at 10:00
    second = bootstrap(system.database_url, clock=clock, create_tables=False, pool_size=10)
    escalators = [Escalator.for_system(s, interval=0.05, poll=0.1, workers=4) for s in (system, second)]
    threads = [threading.Thread(target=e.run, daemon=True) for e in escalators]
    for t in threads:
        t.start()
    wait_until(lambda: len(taken_per_step(system, "reminder")) == 1000, "1000 reminders", 120)
    active = next(e for e in escalators if e.leading)
    standby = next(e for e in escalators if e is not active)
    clock.set(at("2021-12-23", "14:00"))  # every 催办 falls due
    wait_until(lambda: len(taken_per_step(system, "urge")) >= 100, "the first 催办", 60)
    with psycopg.connect(system.database_url, autocommit=True) as conn:  # the active process dies
        active.stop()
        conn.execute("SELECT pg_terminate_backend(%s)", (active.lock_backend_pid,))
    died = time.monotonic()
    wait_until(lambda: standby.leading, "the standby to take the lock", 10)
    took_over = time.monotonic() - died
    wait_until(lambda: len(taken_per_step(system, "urge")) == 1000, "1000 催办", 120)
    for e in escalators:
        e.stop()
    for t in threads:
        t.join(30)
    per_step = taken_per_step(system)
    assert len(per_step) == 2000 and set(per_step.values()) == {1}
    assert set(issued_per_notice(system).values()) == {1}
    assert took_over < 5 and standby.ticks >= 1
    second.close()


def test_the_bulletin_draft_lists_the_top_five_and_bottom_three_by_on_time_rate_and_the_level_three_listings(
        system: System, clock: SimulatedClock) -> None:
    """GET …/bulletins/draft: the rankings are closed-on-time ÷ due-to-close per unit and the lists follow them."""
    w, problems = ranked_world(system, clock)
    clock.set(at("2021-12-31"))
    listed = w.send("hq", TakeEscalationStep, campaign_id=w.campaign_id, item_kind="problem",
                    item_id=problems["d9"][3], step_name="bulletin_listing")
    w.catch_up()
    with TestClient(create_app(system)) as client, psycopg.connect(system.database_url) as conn:
        token = create_token(conn, "hq_office", person_id=w["hq"], campaign_id=w.campaign_id)
        response = client.get(f"/campaigns/{w.campaign_id}/bulletins/draft",
                              params={"period_start": "2021-12-27", "period_end": "2021-12-31"},
                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    rates = [UnitRate(unit_id=w[u], name=u, on_time_rate=k / 4, due=4, closed_on_time=k) for u, k in ON_TIME.items()]
    expected = draft_contents(rates, (), DEFAULT_RANKING_POLICY, period_start=date(2021, 12, 27),
                              period_end=date(2021, 12, 31))
    assert {(r["name"], r["on_time_rate"], r["due"]) for r in body["rankings"]} == {(u, k / 4, 4) for u, k in ON_TIME.items()}
    draft = body["draft"]
    for part in ("red_list", "black_list", "flags"):
        assert draft[part] == jsonable_encoder(getattr(expected, part))
    assert [e["name"] for e in draft["red_list"]] == ["unit_a", "unit_b", "d3", "d4", "d5"]
    assert [e["name"] for e in draft["black_list"]] == ["d9", "d7", "d8"]
    assert [s["step_id"] for s in draft["listed_escalations"]] == [listed.aggregate_id]
    assert "d9" in draft["body_zh"] and draft["title"].endswith("（12月27日至12月31日）")


def black_list_bulletin(w: World, key: str, units: list[str], start: date) -> UUID:
    entries = tuple(RankEntry(rank=i + 1, unit_id=w[u], name=u, on_time_rate=0.1 * i) for i, u in enumerate(units))
    bid = w[f"bulletin:{key}"]
    w.send("hq", DraftBulletin, bulletin_id=bid, campaign_id=w.campaign_id, period_start=start,
           period_end=start + timedelta(days=6), title=f"第{key}期通报", body_zh="正文", black_list=entries)
    w.send("hq", IssueBulletin, bulletin_id=bid)
    return bid


def test_the_black_list_climbs_the_consequence_ladder_once_per_bulletin(system: System) -> None:
    """黑榜 once → 约谈 by the city leader, twice in a row → by the organisation department, three times → 问责."""
    w = escalation_world(system)
    escalator = Escalator.for_system(system)
    for key, units, start in (("1", ["unit_a", "unit_b"], date(2021, 12, 27)), ("2", ["unit_a"], date(2022, 1, 3)),
                              ("3", ["unit_a", "unit_b"], date(2022, 1, 10))):
        black_list_bulletin(w, key, units, start)
        escalator.tick()
        escalator.tick()  # a second tick proposes nothing new
    summons = [(e.subject.name, e.convener, len(e.basis)) for e in events_of(system, SummonsProposed)]
    cases = [(e.subject.name, [b.id for b in e.basis]) for e in events_of(system, ac.AccountabilityProposed)]
    assert summons == [("unit_a", "city_leader", 1), ("unit_b", "city_leader", 1),
                       ("unit_a", "organisation_department", 2), ("unit_b", "city_leader", 2)]
    assert cases == [("unit_a", [w["bulletin:1"], w["bulletin:2"], w["bulletin:3"]])]
