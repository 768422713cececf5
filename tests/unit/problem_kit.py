"""Test kit for problem and visit scenarios: a calendar, a cast of actors, and a problem's life built step by step.

`Life` runs the real decision functions and folds what they emit, the way the command service
would; `refs_for` gathers `ProblemRefs` from a fixed membership table the way infra would.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Callable
from uuid import UUID, uuid4

from domain import problem as pr
from domain.kernel.base import Actor, CommandContext, DomainEvent, Meta, fold
from domain.kernel.calendar import CHINA_TZ, WorkCalendar
from domain.policy.campaign import CampaignPolicy
from domain.problem.state import Problem

# 2025 国庆/中秋: Oct 1–8 off; Sunday Sep 28 and Saturday Oct 11 are 调休 working days.
CAL = WorkCalendar(
    days_off=frozenset(date(2025, 10, d) for d in range(1, 9)),
    make_up_workdays=frozenset({date(2025, 9, 28), date(2025, 10, 11)}),
)


def at(day: str, hhmm: str = "10:00") -> datetime:
    """A Beijing-time instant."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


T0 = at("2025-09-22")  # a Monday
CAMPAIGN, OTHER_CAMPAIGN, PLACE = uuid4(), uuid4(), uuid4()
UNIT_A, UNIT_B, UNIT_C = uuid4(), uuid4(), uuid4()


def person(role: str) -> Actor:
    return Actor(person_id=uuid4(), role=role)


def id_of(actor: Actor) -> UUID:
    """The person id of a cast member who is a person (all but SYSTEM)."""
    assert actor.person_id is not None
    return actor.person_id


HQ, ADMIN, SYSTEM = person("hq_office"), person("admin"), Actor(role="system")
SUPERVISOR, LEADER, AUDITOR = person("supervisor"), person("leader"), person("auditor")
OFFICER_A, HEAD_A = person("unit_officer"), person("unit_head")
OFFICER_B, OFFICER_C = person("unit_officer"), person("unit_officer")
SUPERVISOR_IN_A = person("supervisor")  # a supervisor who also belongs to unit A
MEMBERS: dict[UUID, frozenset[UUID]] = {
    UNIT_A: frozenset({id_of(OFFICER_A), id_of(HEAD_A), id_of(SUPERVISOR_IN_A)}),
    UNIT_B: frozenset({id_of(OFFICER_B)}),
    UNIT_C: frozenset({id_of(OFFICER_C)}),
}
PHOTO = pr.EvidenceRef(sha256="ab" * 32, media_type="image/jpeg", size=245_000)
AFTER = pr.EvidenceRef(sha256="cd" * 32, media_type="image/png", size=310_000)
UPLOADED = {e.sha256: e for e in (PHOTO, AFTER)}  # the photos uploaded to the campaign, as the store recorded them


def ctx(actor: Actor, now: datetime = T0, occurred_at: datetime | None = None) -> CommandContext:
    return CommandContext(meta=Meta(actor=actor, occurred_at=occurred_at or now, recorded_at=now,
                                    correlation_id=uuid4(), command_id=str(uuid4())))


def units_of(actor: Actor) -> frozenset[UUID]:
    return frozenset(u for u, people in MEMBERS.items() if actor.person_id in people)


def refs_for(actor: Actor, state: Problem | None, **overrides: Any) -> pr.ProblemRefs:
    """What infra would gather: the actor's units, the rectifying unit's members, the calendar."""
    members = MEMBERS.get(state.unit_id, frozenset()) if state and state.unit_id else frozenset()
    fields: dict[str, Any] = {"calendar": CAL, "actor_unit_ids": units_of(actor),
                              "rectifying_unit_member_ids": members, "matrix_unit_id": UNIT_A,
                              "known_evidence": UPLOADED}
    return pr.ProblemRefs(**{**fields, **overrides})


def cid() -> str:
    return str(uuid4())


class Life:
    """One problem's history, advanced by running decisions and folding their events."""

    def __init__(self, problem_id: UUID | None = None, now: datetime = T0,
                 policy: CampaignPolicy | None = None) -> None:
        self.problem_id = problem_id or uuid4()
        self.now = now
        self.policy = policy
        self.events: list[DomainEvent] = []

    @property
    def state(self) -> Problem:
        return fold("problem", self.events, Problem)

    def run(self, decide: Callable[..., list[DomainEvent]], cmd: Any, actor: Actor,
            after: timedelta = timedelta(0), **overrides: Any) -> list[DomainEvent]:
        """Run one decision `after` the previous step; keep this problem's events."""
        self.now += after
        state = fold("problem", self.events, Problem) if self.events else None
        refs = refs_for(actor, state, policy=self.policy, **overrides)
        emitted = decide(state, cmd, ctx(actor, self.now), refs)
        self.events += [e for e in emitted if e.aggregate_id == self.problem_id]
        return emitted

    def report(self, category: str = "garbage_dumping", place_id: UUID = PLACE, **kw: Any) -> Life:
        cmd = pr.ReportProblem(command_id=cid(), problem_id=self.problem_id, campaign_id=kw.pop("campaign_id", CAMPAIGN),
                               category=category, place_id=place_id, description="背街小巷垃圾堆积",
                               evidence=(PHOTO,), source="hotline", **kw)
        emitted = pr.report_problem(None, cmd, ctx(SUPERVISOR, self.now), pr.ReportRefs(place_exists=True,
                                                                                       policy=self.policy,
                                                                                       known_evidence=UPLOADED))
        self.events += [e for e in emitted if e.aggregate_id == self.problem_id]
        return self

    def assign(self, **kw: Any) -> Life:
        self.run(pr.assign_problem, pr.AssignProblem(command_id=cid(), problem_id=self.problem_id, **kw), HQ)
        return self

    def acknowledge(self, actor: Actor = OFFICER_A) -> Life:
        self.run(pr.acknowledge_problem, pr.AcknowledgeProblem(command_id=cid(), problem_id=self.problem_id), actor,
                 after=timedelta(hours=1))
        return self

    def submit(self, actor: Actor = OFFICER_A) -> Life:
        cmd = pr.SubmitRectification(command_id=cid(), problem_id=self.problem_id, evidence=(AFTER,))
        self.run(pr.submit_rectification, cmd, actor, after=timedelta(hours=2))
        return self

    def verify(self, actor: Actor = SUPERVISOR) -> Life:
        cmd = pr.VerifyRectification(command_id=cid(), problem_id=self.problem_id)
        self.run(pr.verify_rectification, cmd, actor, after=timedelta(hours=1))
        return self

    def reject(self, actor: Actor = SUPERVISOR) -> Life:
        cmd = pr.RejectRectification(command_id=cid(), problem_id=self.problem_id, reason="垃圾未清运干净")
        self.run(pr.reject_rectification, cmd, actor, after=timedelta(hours=1))
        return self

    def close(self) -> Life:
        self.run(pr.close_problem, pr.CloseProblem(command_id=cid(), problem_id=self.problem_id), HQ,
                 after=timedelta(minutes=30))
        return self

    def park(self) -> Life:
        self.run(pr.park_problem, pr.ParkProblem(command_id=cid(), problem_id=self.problem_id, reason="待资金到位"), HQ)
        return self

    def withdraw(self) -> Life:
        cmd = pr.WithdrawProblem(command_id=cid(), problem_id=self.problem_id, reason="重复上报，无效")
        self.run(pr.withdraw_problem, cmd, HQ)
        return self


STAGES: dict[str, Callable[[], Life]] = {
    "reported": lambda: Life().report(),
    "assigned": lambda: Life().report().assign(),
    "acknowledged": lambda: Life().report().assign().acknowledge(),
    "rectification_submitted": lambda: Life().report().assign().acknowledge().submit(),
    "rework": lambda: Life().report().assign().acknowledge().submit().reject(),
    "verified": lambda: Life().report().assign().acknowledge().submit().verify(),
    "closed": lambda: Life().report().assign().acknowledge().submit().verify().close(),
    "withdrawn": lambda: Life().report().assign().withdraw(),
    "parked": lambda: Life().report().assign().acknowledge().park(),
}
