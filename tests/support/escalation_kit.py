"""Test kit for escalation scenarios: the problem world plus unit heads, a 包保责任人 and the deciders,
Beijing-time instants, an hourly simulated-clock run of the escalator, and the steps it took.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, overload
from datetime import date, datetime, timedelta
from uuid import UUID, uuid4

import psycopg

from domain import problem as pr
from domain.consequences.bulletin import DraftBulletin, IssueBulletin, ListedStep, RankEntry
from domain.escalation.ladder import step_id_for
from domain.kernel.base import Actor, DomainEvent, Meta
from domain.kernel.calendar import CHINA_TZ
from domain.escalation.step import EscalationStepTaken
from domain.escalation.notice import NoticeIssued
from domain.policy.campaign import TimeLimit
from domain.kernel.taxonomy import Severity
from domain.structure.person import RegisterPerson
from domain.structure.place import RegisterPlace
from domain.structure.responsibility import AssignResponsibility
from domain.structure.unit import RegisterUnit
from infra.bootstrap import System
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from infra.store.event_store import StoredDomainEvent
from tests.support.problem_world import ADMIN, World, build_world, photo

def at(day: str, hhmm: str = "10:00") -> datetime:
    """A Beijing-time instant."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


def escalation_world(system: System) -> World:
    """The problem world plus: unit heads of unit_a and unit_b, 李副市长 as 包保责任人 of grid 1, and deciders."""
    w = build_world(system)
    w.person("head_a", "unit_head", "unit_a", ("unit_head",))
    w.person("head_b", "unit_head", "unit_b", ("unit_head",))
    w.person("li", "leader", "inspectors", ("leader",))
    w.send(ADMIN, AssignResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=w["grid1"],
           party_kind="person", party_id=w["li"], role="bao_bao")
    for name, role in (("discipline", "discipline"), ("commander", "hq_leader")):
        w.send(ADMIN, RegisterPerson, person_id=w[name], campaign_id=w.campaign_id, name=name)
        w.actors[name] = Actor(person_id=w[name], role=role, name=name)
    w.catch_up()
    return w


def report_and_assign(w: World, place: str, description: str = "路面有垃圾堆积") -> UUID:
    pid = uuid4()
    w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category="sanitation",
           place_id=w[place], description=description, source="hotline")
    w.send("hq", pr.AssignProblem, problem_id=pid)
    return pid


def run_hourly(escalator: Escalator, clock: SimulatedClock, until: datetime,
               actions: Mapping[datetime, Callable[[], object]] | None = None) -> None:
    """Move the clock an hour at a time to `until`; at each hour do that hour's actions, then tick."""
    actions = dict(actions or {})
    while True:
        for when in sorted(t for t in actions if t <= clock()):
            actions.pop(when)()
        escalator.tick()
        if clock() + timedelta(hours=1) > until:
            return
        clock.advance(timedelta(hours=1))


E = TypeVar("E", bound=DomainEvent)
F = TypeVar("F", bound=DomainEvent)


@overload
def events_of(system: System, kind: type[E], /) -> Iterator[E]: ...
@overload
def events_of(system: System, kind: type[E], other: type[F], /) -> Iterator[E | F]: ...
def events_of(system: System, *types: type[DomainEvent]) -> Iterator[Any]:
    """Every stored event of these types, in log order."""
    topics = [t.event_name for t in types]
    start = 1
    while batch := system.app.recorder.select_notifications(start, limit=1000, topics=topics):
        for n in batch:
            yield system.app.decode(n).event
        start = batch[-1].id + 1


def steps_taken(system: System, item_id: UUID | None = None) -> list[EscalationStepTaken]:
    return [e for e in events_of(system, EscalationStepTaken) if item_id is None or e.item_id == item_id]


def overdue_problems(w: World, n: int, deadline: datetime) -> list[UUID]:
    """`n` problems handed to unit A with `deadline`, their events saved directly (fast, and as the handlers would)."""
    now = w.system.clock()
    meta = Meta(actor=w.actors["hq"], occurred_at=now, recorded_at=now, correlation_id=uuid4(), command_id="bulk",
                campaign_id=w.campaign_id)
    ids = [uuid4() for _ in range(n)]
    for chunk in range(0, n, 250):
        events = []
        for pid in ids[chunk:chunk + 250]:
            events += [
                StoredDomainEvent(pid, 1, pr.ProblemReported(meta=meta, problem_id=pid, campaign_id=w.campaign_id,
                                                             category="sanitation", severity=Severity.NORMAL,
                                                             place_id=w["s1"], description="垃圾堆积", source="hotline")),
                StoredDomainEvent(pid, 2, pr.ProblemAssigned(meta=meta, problem_id=pid, unit_id=w["unit_a"],
                                                             routing="matrix", deadline=deadline,
                                                             limit=TimeLimit(amount=4, unit="working_hours"),
                                                             limit_hours=4.0, policy_effective_from=now)),
            ]
        w.system.app.save(*events)
    return ids


def taken_per_step(system: System, step_name: str | None = None) -> Counter[UUID]:
    """How many EscalationStepTaken events each step id has (optionally of one step name)."""
    table = system.app.store.events_table_name
    with psycopg.connect(system.database_url) as conn:
        rows = conn.execute(f"SELECT originator_id, state FROM {table} WHERE topic = %s",
                            (EscalationStepTaken.event_name,)).fetchall()
    return Counter(r[0] for r in rows if step_name is None or f'"step_name":"{step_name}"' in bytes(r[1]).decode())


def issued_per_notice(system: System) -> Counter[UUID]:
    table = system.app.store.events_table_name
    with psycopg.connect(system.database_url) as conn:
        rows = conn.execute(f"SELECT originator_id FROM {table} WHERE topic = %s", (NoticeIssued.event_name,)).fetchall()
    return Counter(r[0] for r in rows)


def close_problem(w: World, pid: UUID, officer: str = "officer_a") -> None:
    """签收, 整改 with a photo, 复查 by the supervisor, 销号 by HQ."""
    w.send(officer, pr.AcknowledgeProblem, problem_id=pid)
    w.send(officer, pr.SubmitRectification, problem_id=pid, evidence=(photo("after"),))
    w.send("supervisor", pr.VerifyRectification, problem_id=pid)
    w.send("hq", pr.CloseProblem, problem_id=pid)


# Closed on time out of 4 problems due in the week of 12-27, per unit: 按期整改率 100 %, 100 %, 75 % … 0 %.
ON_TIME = {"unit_a": 4, "unit_b": 4, "d3": 3, "d4": 3, "d5": 2, "d6": 2, "d7": 1, "d8": 1, "d9": 0}


def ranked_world(system: System, clock: SimulatedClock) -> tuple[World, dict[str, list[UUID]]]:
    """Nine lead units with four problems each, assigned 12-23 (due 12-28): some closed on time, one late, the rest open.

    `clock` is the simulated clock `system` runs on; it is moved to 12-29."""
    w = escalation_world(system)
    sites, officers = {"unit_a": "s1", "unit_b": "s3"}, {"unit_a": "officer_a", "unit_b": "officer_b"}
    for i in range(3, 10):
        unit, grid = f"d{i}", f"g{i}"
        w.send(ADMIN, RegisterUnit, unit_id=w[unit], campaign_id=w.campaign_id, name=unit, unit_kind="department",
               parent_id=w["hq_unit"])
        w.send(ADMIN, RegisterPlace, place_id=w[grid], campaign_id=w.campaign_id, name=grid, place_kind="grid", number=i)
        w.send(ADMIN, AssignResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=w[grid],
               party_kind="unit", party_id=w[unit], role="lead")
        w.person(f"officer_{unit}", "unit_officer", unit, ("unit_officer",))
        sites[unit], officers[unit] = grid, f"officer_{unit}"
    w.catch_up()
    clock.set(at("2021-12-23"))
    problems = {u: [report_and_assign(w, sites[u], f"{u}的问题{i}") for i in range(4)] for u in ON_TIME}
    clock.set(at("2021-12-24"))
    for unit, k in ON_TIME.items():
        for pid in problems[unit][:k]:
            close_problem(w, pid, officers[unit])
    clock.set(at("2021-12-29"))
    for unit, k in ON_TIME.items():
        for pid in problems[unit][k:k + 1] if k < 4 else []:
            close_problem(w, pid, officers[unit])  # late: the deadline was 12-28 10:00
    return w, problems


def issue_week_one_bulletin(w: World, bulletin_id: UUID, problem_id: UUID) -> None:
    """HQ drafts and issues the first week's 督办通报: it lists the problem's 列入通报 step and puts unit_a on the 黑榜."""
    listed = ListedStep(step_id=step_id_for("problem", problem_id, "bulletin_listing"), unit_id=w["unit_a"],
                        unit_name="unit_a", summary_zh="人行道垃圾堆积逾期未整改")
    w.send("hq", DraftBulletin, bulletin_id=bulletin_id, campaign_id=w.campaign_id, period_start=date(2022, 1, 3),
           period_end=date(2022, 1, 9), title="第一周督办通报", body_zh="逾期问题通报如下。", listed_escalations=(listed,),
           black_list=(RankEntry(rank=1, unit_id=w["unit_a"], name="unit_a", on_time_rate=0.0),))
    w.send("hq", IssueBulletin, bulletin_id=bulletin_id)
