"""Problem (问题) decisions, the main line: report (and 反弹), 交办, 签收, 整改, 复查 (or 返工), 销号.

Each event sits beside the decision that emits it and each command just above the decision that
handles it (marked `@decides`), declaring who may issue it and what its decision reads; each decision
guards with the named rules of `rules` and returns events (or raises), so a new step is one edit here.
What every event shares (and `ProblemReported`, which starts the fold) lives in `events`, state in
`state`, what commands share and the references in `commands`; the side paths in `detours`; callers
import all of it from `domain.problem`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime

from domain.kernel.base import Actor, Command, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, NotFound, fold
from domain.kernel.recorded import AlreadyRecorded, differing_fields
from domain.kernel.roles import HQ_ROLES, INSPECTOR_ROLES, SYSTEM_ROLES, UNIT_ROLES, ensure_role
from domain.kernel.calendar import WorkCalendar
from domain.kernel.instants import Instant
from domain.kernel.timefmt import format_local  # timeline times: China time to the minute, — when unset
from domain.kernel.text import Note, Text
from domain.policy.campaign import (
    CampaignPolicy, TimeLimit, auto_assignment_at, campaign_calendar, categories_at, deadline_policy_at, late_entry_window_at,
    relapse_window_at, routing_at,
)
from domain.problem.commands import (
    ACTOR_UNITS, CLOCK, AutoDispatch, ClosedMatch, NewProblem, ProblemCommand, ProblemMatches, ProblemRefs, ReportRefs,
    StepCommand, decides,
)
from domain.problem.events import (
    Evidence, LateEntry, ProblemEvent, ProblemReported, ProblemState, RoutingSource, Update, late_note, step_time,
)
from domain.problem.rules import (
    campaign_meta, ensure_assigned_unit, ensure_evidence_uploaded, ensure_reason, ensure_state, guard_open,
    has_passed_verification, has_submitted_evidence, is_independent_verifier, late_entry, meta_for,
)
from domain.problem.state import Problem
from domain.kernel.taxonomy import CategoryCode, Severity, category_codes

Events = list[DomainEvent]
HQ_OR_SYSTEM = HQ_ROLES | SYSTEM_ROLES

# --- reporting, duplicates and relapse ------------------------------------------------------------


class RelapseRecorded(ProblemEvent):
    """This closed problem came back (反弹): a new problem was found at its place and category."""

    relapse_problem_id: UUID

    def apply(self, s: Problem) -> Update:
        return {"relapses": (*s.relapses, self.relapse_problem_id)}

    def summary_zh(self) -> str:
        return "发现反弹"


def new_problem_events(new: NewProblem, ctx: CommandContext, policy: CampaignPolicy | None,
                       matches: ProblemMatches, dispatch: AutoDispatch | None = None) -> Events:
    """ProblemReported, flagged as a likely duplicate of open matches, else linked as a relapse (反弹); handed to its
    unit at once with its 交办单 when the campaign's automatic assignment (自动交办) is on and routing is unambiguous."""
    if new.category not in category_codes(categories_at(policy, ctx.now)):
        raise DomainError("unknown_category", "问题类别不存在", "unknown problem category", category=new.category)
    found_at, meta = ctx.meta.occurred_at, campaign_meta(ctx, new.campaign_id)
    duplicates = tuple(i for i in matches.open_matches if i != new.problem_id)
    original = None if duplicates else relapse_original(matches.recently_closed_matches, policy, found_at)
    reported = ProblemReported(meta=meta, **dict(new), likely_duplicate_of=duplicates, relapse_of=original)
    events: Events = [reported]
    if original is not None:
        events.append(RelapseRecorded(meta=meta, problem_id=original, relapse_problem_id=new.problem_id))
    if dispatch is not None and not duplicates and is_auto_assigned(policy, ctx.now):
        events += auto_assigned(reported, ctx, policy, dispatch)
    return events


# --- 自动交办: automatic assignment by campaign policy ----------------------------------------------------

AUTO_ASSIGNER = Actor(role="system", name="自动交办")


def is_auto_assigned(policy: CampaignPolicy | None, now: datetime) -> bool:
    """The campaign's policy in force hands unambiguously routed new problems to their unit at once."""
    return auto_assignment_at(policy, now).enabled


def unambiguous_route(category: str, place_id: UUID, policy: CampaignPolicy | None, now: datetime,
                      dispatch: AutoDispatch) -> tuple[UUID, RoutingSource] | None:
    """The one unit routing names — the category's department (分类派遣), else the place's single lead unit in the
    matrix — or None when it names none or more than one (then HQ decides, as before)."""
    routed = routing_at(policy, now).unit_for(category)
    if routed is not None:
        return routed, "category_routing"
    leads = dispatch.matrix_leads.get(place_id, ())
    return (leads[0], "matrix") if len(leads) == 1 else None


def auto_assigned(reported: ProblemReported, ctx: CommandContext, policy: CampaignPolicy | None,
                  dispatch: AutoDispatch) -> Events:
    """The 交办 of a just-reported problem by policy, in the same write, with its 交办单; none when ambiguous."""
    # Imported here: the 交办单 module reads the escalation package, which reads this package's events first.
    from domain.problem.assignment_notice import AssignmentNames, with_assignment_notice

    route = unambiguous_route(reported.category, reported.place_id, policy, ctx.now, dispatch)
    if route is None:
        return []
    p = fold("problem", [reported], Problem)
    auto = CommandContext(meta=meta_for(ctx, p).model_copy(update={"actor": AUTO_ASSIGNER}))
    assigned = assigned_events(p, route[0], route[1], None, auto, policy, dispatch.calendar, ctx.now)
    names = AssignmentNames(unit_names=dict(dispatch.unit_names), place_name=dispatch.place_names.get(p.place_id))
    calendar = campaign_calendar(dispatch.calendar, policy, ctx.now)
    return with_assignment_notice(p, assigned, auto, calendar, names)


def relapse_original(closed: tuple[ClosedMatch, ...], policy: CampaignPolicy | None,
                     found_at: datetime) -> UUID | None:
    """The latest problem closed no more than the relapse window before `found_at`, if any."""
    window = relapse_window_at(policy, found_at).length
    within = [c for c in closed if c.closed_at <= found_at <= c.closed_at + window]
    return max(within, key=lambda c: c.closed_at).problem_id if within else None


def same_report(state: Problem, new: NewProblem) -> bool:
    """Whether an existing problem was reported with exactly this content (a retried upload)."""
    return all(getattr(state, name) == value for name, value in new)


class ReportProblem(Command):
    """Report a problem found outside a visit (热线/测评/领导交办 上报); visits report their findings."""

    occurred_at: Instant | None = None  # when it was found; defaults to now
    problem_id: UUID
    campaign_id: UUID
    category: CategoryCode
    severity: Severity = Severity.NORMAL
    place_id: UUID
    description: Text
    evidence: Evidence = ()
    source: Literal["hotline", "assessment", "leader"]


def report_problem(state: Problem | None, cmd: ReportProblem, ctx: CommandContext, refs: ReportRefs) -> Events:
    ensure_role(ctx.actor, INSPECTOR_ROLES)
    new = NewProblem(**cmd.model_dump(exclude={"command_id", "occurred_at"}))
    if state is not None:
        if not (differing := differing_fields(state, new, type(new).model_fields)):
            return AlreadyRecorded(cmd.problem_id)
        raise Conflict("problem_exists", "问题编号已存在", "problem id already used", problem_id=str(cmd.problem_id),
                       differing_fields=differing)
    if not refs.place_exists:
        raise NotFound("place_not_found", "点位不存在", "place not found", place_id=str(cmd.place_id))
    ensure_evidence_uploaded(cmd.evidence, refs.known_evidence)
    return new_problem_events(new, ctx, refs.policy, refs.matches, refs.dispatch)


# --- 交办, 签收, 整改, 复查, 销号 ------------------------------------------------------------------------


def _route(p: Problem, cmd: AssignProblem, ctx: CommandContext,
           refs: ProblemRefs) -> tuple[UUID, RoutingSource, str | None]:
    routed = routing_at(refs.policy, ctx.now).unit_for(p.category)
    source: RoutingSource = "category_routing" if routed else "matrix"
    automatic = routed or refs.matrix_unit_id
    if cmd.unit_id is None or cmd.unit_id == automatic:
        if automatic is None:
            raise DomainError("no_responsible_unit", "该点位和类别没有责任单位，请指定", "no responsible unit; name one",
                              place_id=str(p.place_id), category=p.category)
        return automatic, source, cmd.reason
    ensure_role(ctx.actor, HQ_ROLES)
    if not refs.named_unit_exists:
        raise NotFound("unit_not_found", "单位不存在", "unit not found", unit_id=str(cmd.unit_id))
    return cmd.unit_id, "hq_override", ensure_reason(cmd.reason, "override_reason_required")


def with_late_entry(roles: frozenset[str], occurred_at: datetime | None) -> frozenset[str]:
    """Who may issue a step: its own roles, and HQ too when it is entered late (补录) on someone's behalf."""
    return roles | HQ_ROLES if occurred_at is not None else roles


class ProblemAssigned(ProblemEvent):
    """The problem was handed to a unit (交办) with a deadline from the policy in force."""

    unit_id: UUID
    routing: RoutingSource
    reason: str | None = None
    deadline: AwareDatetime
    limit: TimeLimit
    limit_hours: float
    policy_effective_from: AwareDatetime
    late_entry: LateEntry | None = None  # 补录: the deadline counts from meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.ASSIGNED, "unit_id": self.unit_id, "routing": self.routing,
                "assigned_at": step_time(self, self.late_entry), "deadline": self.deadline,
                "limit_hours": self.limit_hours}

    def summary_zh(self) -> str:
        override = f"（总指挥部指定：{self.reason}）" if self.routing == "hq_override" else ""
        return f"交办，整改期限 {format_local(self.deadline)}{override}{late_note(self.late_entry)}"


def assigned_events(p: Problem, unit_id: UUID, routing: RoutingSource, reason: str | None, ctx: CommandContext,
                    policy: CampaignPolicy | None, national: WorkCalendar, start: datetime,
                    late: LateEntry | None = None) -> Events:
    """交办 at `start`: the deadline from the policy in force then, counted from then on the campaign calendar."""
    deadlines = deadline_policy_at(policy, start)
    calendar = campaign_calendar(national, policy, start)
    limit = deadlines.limit_for(p.category, p.severity)
    deadline = limit.due(calendar, start)
    return [ProblemAssigned(
        meta=meta_for(ctx, p), problem_id=p.problem_id, unit_id=unit_id, routing=routing, reason=reason,
        deadline=deadline, limit=limit, limit_hours=calendar.working_hours_between(start, deadline),
        policy_effective_from=deadlines.effective_from, late_entry=late,
    )]


class AssignProblem(StepCommand):
    """Hand the problem to a unit (交办). No unit: routed by category or the responsibility matrix."""

    roles = HQ_ROLES | SYSTEM_ROLES
    reads = CLOCK | {"matrix_unit_id", "named_unit_exists"}
    references = {"unit_id": "unit"}

    unit_id: UUID | None = None
    reason: Note | None = None  # required when overriding the routing


@decides(AssignProblem)
def assign_problem(state: Problem | None, cmd: AssignProblem, ctx: CommandContext, refs: ProblemRefs) -> Events:
    """交办: route to a unit and set the deadline from the policy in force, counted from now — or, entered late by HQ
    (补录), from when it was really handed over."""
    p = guard_open(state, cmd.problem_id, ctx, HQ_OR_SYSTEM)
    ensure_state(p, {ProblemState.REPORTED}, "assign")
    start, late = late_entry(ctx, cmd.occurred_at, cmd.late_entry_reason, p.found_at,
                             late_entry_window_at(refs.policy, ctx.now), "the problem was found")
    unit_id, routing, reason = _route(p, cmd, ctx, refs)
    return assigned_events(p, unit_id, routing, reason, ctx, refs.policy, refs.calendar, start, late)


class ProblemAcknowledged(ProblemEvent):
    """The responsible unit acknowledged receipt (签收)."""

    unit_id: UUID
    note: str | None = None
    late_entry: LateEntry | None = None  # 补录 by HQ: signed at meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.ACKNOWLEDGED, "acknowledged_at": step_time(self, self.late_entry)}

    def summary_zh(self) -> str:
        return f"签收{late_note(self.late_entry)}"


class AcknowledgeProblem(StepCommand):
    """Acknowledge receipt (签收)."""

    roles = UNIT_ROLES | HQ_ROLES  # HQ: late entry (补录) only
    reads = ACTOR_UNITS | {"policy"}

    note: Note | None = None


@decides(AcknowledgeProblem)
def acknowledge_problem(state: Problem | None, cmd: AcknowledgeProblem, ctx: CommandContext,
                        refs: ProblemRefs) -> Events:
    """签收 by the unit it was handed to; or, entered late by HQ on the unit's behalf (补录), at its real time."""
    p = guard_open(state, cmd.problem_id, ctx, with_late_entry(UNIT_ROLES, cmd.occurred_at))
    ensure_state(p, {ProblemState.ASSIGNED}, "acknowledge")
    _, late = late_entry(ctx, cmd.occurred_at, cmd.late_entry_reason, p.assigned_at,
                         late_entry_window_at(refs.policy, ctx.now), "the problem was handed over")
    unit_id = p.unit_id if late is not None and p.unit_id is not None else ensure_assigned_unit(p, refs.actor_unit_ids)
    return [ProblemAcknowledged(meta=meta_for(ctx, p), problem_id=p.problem_id, unit_id=unit_id, note=cmd.note,
                                late_entry=late)]


class RectificationSubmitted(ProblemEvent):
    """The unit reported its rectification with evidence (整改反馈)."""

    unit_id: UUID
    evidence: Evidence
    note: str | None = None

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.RECTIFICATION_SUBMITTED, "submission_count": s.submission_count + 1,
                "last_submitted_at": self.meta.recorded_at, "last_submitted_by": self.meta.actor.person_id,
                "submitted_evidence": self.evidence, "verification_passed": None}

    def summary_zh(self) -> str:
        return f"整改反馈（{len(self.evidence)} 张照片）"


class SubmitRectification(ProblemCommand):
    """Report the rectification with evidence (整改反馈)."""

    roles = UNIT_ROLES
    reads = ACTOR_UNITS | {"known_evidence"}

    evidence: Evidence = ()
    note: Note | None = None


@decides(SubmitRectification)
def submit_rectification(state: Problem | None, cmd: SubmitRectification, ctx: CommandContext,
                         refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, UNIT_ROLES)
    ensure_state(p, {ProblemState.ACKNOWLEDGED, ProblemState.REWORK}, "submit a rectification for")
    unit_id = ensure_assigned_unit(p, refs.actor_unit_ids)
    if not cmd.evidence:
        raise DomainError("evidence_required", "整改反馈须附整改后照片", "a rectification needs evidence")
    ensure_evidence_uploaded(cmd.evidence, refs.known_evidence)
    return [RectificationSubmitted(meta=meta_for(ctx, p), problem_id=p.problem_id, unit_id=unit_id,
                                   evidence=cmd.evidence, note=cmd.note)]


def _ensure_verifiable(p: Problem, ctx: CommandContext, refs: ProblemRefs) -> None:
    ensure_state(p, {ProblemState.RECTIFICATION_SUBMITTED}, "verify")
    if not has_submitted_evidence(p):
        raise DomainError("evidence_required", "没有整改证据，不能复查", "nothing to verify without evidence")
    if not is_independent_verifier(p, ctx.actor, refs.actor_unit_ids, refs.rectifying_unit_member_ids):
        raise Forbidden("verifier_not_independent", "复查须由整改单位以外的人员进行",
                        "verification must be done by someone outside the rectifying unit",
                        problem_id=str(p.problem_id))


def _verification_time(p: Problem, cmd: VerifyRectification | RejectRectification, ctx: CommandContext,
                       refs: ProblemRefs) -> LateEntry | None:
    """A 复查 happens now, or — entered late by HQ (补录) — at its real time, not before the rectification it checks."""
    _, late = late_entry(ctx, cmd.occurred_at, cmd.late_entry_reason, p.last_submitted_at,
                         late_entry_window_at(refs.policy, ctx.now), "the rectification was submitted")
    return late


class RectificationVerified(ProblemEvent):
    """Re-inspection passed (复查通过)."""

    evidence: Evidence = ()
    note: str | None = None
    late_entry: LateEntry | None = None  # 补录 by HQ: re-inspected at meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.VERIFIED, "verification_passed": True,
                "verified_at": step_time(self, self.late_entry)}

    def summary_zh(self) -> str:
        return f"复查通过{late_note(self.late_entry)}"


class VerifyRectification(StepCommand):
    """Pass the re-inspection (复查通过)."""

    roles = INSPECTOR_ROLES | HQ_ROLES  # admin: late entry (补录) only
    reads = ACTOR_UNITS | {"policy", "rectifying_unit_member_ids", "known_evidence"}

    evidence: Evidence = ()
    note: Note | None = None


@decides(VerifyRectification)
def verify_rectification(state: Problem | None, cmd: VerifyRectification, ctx: CommandContext,
                         refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, with_late_entry(INSPECTOR_ROLES, cmd.occurred_at))
    _ensure_verifiable(p, ctx, refs)
    late = _verification_time(p, cmd, ctx, refs)
    ensure_evidence_uploaded(cmd.evidence, refs.known_evidence)
    return [RectificationVerified(meta=meta_for(ctx, p), problem_id=p.problem_id, evidence=cmd.evidence, note=cmd.note,
                                  late_entry=late)]


class RectificationRejected(ProblemEvent):
    """Re-inspection failed: the unit must rework (复查不通过, 返工)."""

    reason: Text
    evidence: Evidence = ()
    late_entry: LateEntry | None = None  # 补录 by HQ: re-inspected at meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.REWORK, "verification_passed": False,
                "verified_at": step_time(self, self.late_entry), "rework_count": s.rework_count + 1}

    def summary_zh(self) -> str:
        return f"复查不通过，返工：{self.reason}{late_note(self.late_entry)}"


class RejectRectification(StepCommand):
    """Fail the re-inspection: the unit reworks (复查不通过, 返工)."""

    roles = INSPECTOR_ROLES | HQ_ROLES
    reads = ACTOR_UNITS | {"policy", "rectifying_unit_member_ids", "known_evidence"}

    reason: Text
    evidence: Evidence = ()


@decides(RejectRectification)
def reject_rectification(state: Problem | None, cmd: RejectRectification, ctx: CommandContext,
                         refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, with_late_entry(INSPECTOR_ROLES, cmd.occurred_at))
    _ensure_verifiable(p, ctx, refs)
    late = _verification_time(p, cmd, ctx, refs)
    ensure_evidence_uploaded(cmd.evidence, refs.known_evidence)
    return [RectificationRejected(meta=meta_for(ctx, p), problem_id=p.problem_id, reason=cmd.reason,
                                  evidence=cmd.evidence, late_entry=late)]


class ProblemClosed(ProblemEvent):
    """The problem was closed (销号)."""

    note: str | None = None

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.CLOSED, "closed_at": self.meta.recorded_at, "pending_extension": None,
                "pending_transfer": None, "coordination_pending": False}

    def summary_zh(self) -> str:
        return "销号"


class CloseProblem(ProblemCommand):
    """Close the problem after a passed re-inspection (销号)."""

    roles = HQ_ROLES
    reads = frozenset()

    note: Note | None = None


@decides(CloseProblem)
def close_problem(state: Problem | None, cmd: CloseProblem, ctx: CommandContext, refs: ProblemRefs) -> Events:
    """销号: only after the latest rectification passed re-inspection."""
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES)
    if not has_passed_verification(p):
        raise Conflict("verification_not_passed", "复查未通过，不能销号", "cannot close without a passed verification",
                       problem_id=str(p.problem_id), state=p.state.value)
    ensure_state(p, {ProblemState.VERIFIED}, "close")
    return [ProblemClosed(meta=meta_for(ctx, p), problem_id=p.problem_id, note=cmd.note)]
