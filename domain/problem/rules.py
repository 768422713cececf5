"""Problem rules (问题规则): named predicates, the guards built on them, and the working-time clock.

Predicates read as sentences and can be tested alone; guards raise the typed error a user sees.
The clock functions are what projections and the escalator use: time used against the limit
(挂账 pauses excluded), the traffic light (三色督办) and whether a problem is overdue (超期).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Literal
from uuid import UUID

from domain.kernel.base import Actor, CommandContext, Conflict, DomainError, Forbidden, Meta, NotFound
from domain.kernel.calendar import Pause, WorkCalendar
from domain.kernel.instants import is_in_the_future
from domain.kernel.roles import HQ_ROLES, ensure_role
from domain.policy.campaign import LateEntryWindow, deadline_for
from domain.problem.events import EVIDENCE_MEDIA_TYPES, OWED, TERMINAL, EvidenceRef, LateEntry, ProblemState
from domain.problem.state import Problem

__all__ = [
    "acts_for_assigned_unit", "campaign_meta", "clock_stopped_at", "closed_on_time", "deadline_for",
    "ensure_assigned_unit", "ensure_evidence_uploaded", "ensure_exists", "ensure_not_ended", "ensure_not_parked", "ensure_reason",
    "ensure_role", "ensure_state", "guard_open", "has_passed_verification", "has_submitted_evidence",
    "is_allowed_evidence", "is_before_deadline", "is_independent_verifier", "is_late_entry",
    "is_within_late_entry_window", "late_entry", "is_uploaded_evidence", "is_overdue", "is_terminal", "meta_for", "problem_light",
    "time_used_fraction", "traffic_light", "working_hours_used",
]

TrafficLight = Literal["green", "yellow", "red"]
_CLOCK_STOPPED_BY_SUBMISSION = frozenset(
    {ProblemState.RECTIFICATION_SUBMITTED, ProblemState.VERIFIED, ProblemState.CLOSED}
)

# --- predicates ---------------------------------------------------------------------------------


def is_terminal(problem: Problem) -> bool:
    """Closed (销号), withdrawn (作废) or merged (合并): nothing but relapse linking may follow."""
    return problem.state in TERMINAL


def acts_for_assigned_unit(problem: Problem, actor_unit_ids: Collection[UUID]) -> bool:
    """The actor belongs to the unit the problem is handed to (a unit acts only on its own problems)."""
    return problem.unit_id is not None and problem.unit_id in actor_unit_ids


def is_independent_verifier(problem: Problem, actor: Actor, actor_unit_ids: Collection[UUID],
                            rectifying_unit_member_ids: Collection[UUID]) -> bool:
    """Separation of duties (查改分离): the verifier is a person outside the rectifying unit."""
    person = actor.person_id
    return (
        person is not None
        and problem.unit_id not in actor_unit_ids
        and person not in rectifying_unit_member_ids
        and person != problem.last_submitted_by
    )


def has_submitted_evidence(problem: Problem) -> bool:
    """A rectification with evidence was submitted and awaits re-inspection."""
    return problem.state == ProblemState.RECTIFICATION_SUBMITTED and bool(problem.submitted_evidence)


def is_allowed_evidence(evidence: EvidenceRef) -> bool:
    """A photo of a type the upload store accepts (JPEG, PNG, GIF, WebP)."""
    return evidence.media_type in EVIDENCE_MEDIA_TYPES


def is_uploaded_evidence(evidence: EvidenceRef, known: Mapping[str, EvidenceRef]) -> bool:
    """The cited photo was uploaded to the campaign, with the type and size the upload recorded."""
    return known.get(evidence.sha256) == evidence


def has_passed_verification(problem: Problem) -> bool:
    """The latest submitted rectification passed re-inspection."""
    return (
        problem.verification_passed is True
        and problem.verified_at is not None
        and problem.last_submitted_at is not None
        and problem.verified_at >= problem.last_submitted_at
    )


def is_before_deadline(problem: Problem, now: datetime) -> bool:
    """The problem has a deadline and `now` is before it (a unit may still apply for an extension)."""
    return problem.deadline is not None and now < problem.deadline


def campaign_meta(ctx: CommandContext, campaign_id: UUID) -> Meta:
    """The command's envelope stamped with the campaign of the problem or visit it touches."""
    if ctx.meta.campaign_id == campaign_id:
        return ctx.meta
    return ctx.meta.model_copy(update={"campaign_id": campaign_id})


def meta_for(ctx: CommandContext, problem: Problem) -> Meta:
    """The envelope for an event on `problem`, stamped with its campaign."""
    return campaign_meta(ctx, problem.campaign_id)


# --- guards -------------------------------------------------------------------------------------


def ensure_exists(problem: Problem | None, problem_id: UUID) -> Problem:
    if problem is None:
        raise NotFound("problem_not_found", "问题不存在", "problem not found", problem_id=str(problem_id))
    return problem


_ENDED = {
    ProblemState.CLOSED: ("problem_closed", "问题已销号，不能再变更", "the problem is closed and cannot change"),
    ProblemState.WITHDRAWN: ("problem_withdrawn", "问题已作废，不能再变更", "the problem was withdrawn"),
    ProblemState.MERGED: ("problem_merged", "问题已合并到其他问题", "the problem was merged into another"),
}


def ensure_not_ended(problem: Problem) -> None:
    if problem.state in _ENDED:
        code, zh, en = _ENDED[problem.state]
        raise Conflict(code, zh, en, problem_id=str(problem.problem_id), state=problem.state.value)


def ensure_not_parked(problem: Problem) -> None:
    if problem.parked:
        raise Conflict("problem_parked", "问题已挂账，恢复后才能办理", "the problem is parked; resume it first",
                       problem_id=str(problem.problem_id))


def ensure_state(problem: Problem, allowed: Iterable[ProblemState], action: str) -> None:
    allowed = frozenset(allowed)
    if problem.state not in allowed:
        raise Conflict("invalid_transition", "问题当前状态不允许此操作", f"cannot {action} a problem in this state",
                       problem_id=str(problem.problem_id), state=problem.state.value,
                       allowed=sorted(s.value for s in allowed))


def ensure_assigned_unit(problem: Problem, actor_unit_ids: Collection[UUID]) -> UUID:
    """The assigned unit's id, if the actor belongs to it; else 403."""
    if not acts_for_assigned_unit(problem, actor_unit_ids):
        raise Forbidden("not_assigned_unit", "只能办理交办给本单位的问题", "a unit may act only on problems handed to it",
                        problem_id=str(problem.problem_id))
    assert problem.unit_id is not None
    return problem.unit_id


def guard_open(state: Problem | None, problem_id: UUID, ctx: CommandContext, roles: frozenset[str], *,
               parked_ok: bool = False) -> Problem:
    """The guards every lifecycle decision starts with: exists, role, not ended, (not parked)."""
    problem = ensure_exists(state, problem_id)
    ensure_role(ctx.actor, roles)
    ensure_not_ended(problem)
    if not parked_ok:
        ensure_not_parked(problem)
    return problem


def ensure_evidence_uploaded(cited: Iterable[EvidenceRef], known: Mapping[str, EvidenceRef]) -> None:
    """Every cited photo (证据照片) is of an allowed type and was uploaded to the campaign as cited; else 422/404."""
    cited = tuple(cited)
    if refused := sorted({e.media_type for e in cited if not is_allowed_evidence(e)}):
        raise DomainError("evidence_type_not_allowed", "证据只能是 JPEG、PNG、GIF 或 WebP 图片",
                          "evidence must be a JPEG, PNG, GIF or WebP image", media_types=refused,
                          accepted=list(EVIDENCE_MEDIA_TYPES))
    if missing := sorted({e.sha256 for e in cited if e.sha256 not in known}):
        raise NotFound("evidence_not_found", "引用的证据照片未上传到本创建活动", "cited evidence was not uploaded to this campaign",
                       sha256=missing)
    if differing := sorted({e.sha256 for e in cited if not is_uploaded_evidence(e, known)}):
        raise DomainError("evidence_mismatch", "证据照片的类型或大小与上传时不符",
                          "the evidence's media type or size differs from the upload", sha256=differing)


# --- late entry (补录) ----------------------------------------------------------------------------


def is_late_entry(occurred_at: datetime | None) -> bool:
    """The command names when the step really happened (补录); otherwise it happens now, as recorded."""
    return occurred_at is not None


def is_within_late_entry_window(occurred_at: datetime, now: datetime, window: LateEntryWindow) -> bool:
    """补录时限: the real time lies no further back than the campaign's late-entry window."""
    return occurred_at >= now - window.length


def late_entry(ctx: CommandContext, occurred_at: datetime | None, reason: str | None, earliest: datetime | None,
               window: LateEntryWindow, before: str) -> tuple[datetime, LateEntry | None]:
    """When the step took place and, for a late entry (补录), its record; refused unless HQ enters it with a
    reason, within the window, not in the future and not before `earliest` (`before`: what came first)."""
    if not is_late_entry(occurred_at):
        return ctx.now, None
    assert occurred_at is not None
    if ctx.actor.role not in HQ_ROLES:
        raise DomainError("late_entry_not_allowed", "只有总指挥部可以补录办理时间（occurred_at）",
                          "only HQ may record a step with its real time (occurred_at)", role=ctx.actor.role)
    if reason is None or not reason.strip():
        raise DomainError("late_entry_reason_required", "补录须填写理由（late_entry_reason）",
                          "a late entry needs late_entry_reason")
    if is_in_the_future(occurred_at, ctx.now):
        raise DomainError("occurred_in_future", "发生时间不能晚于当前时间", "occurred_at is in the future",
                          occurred_at=occurred_at.isoformat())
    if not is_within_late_entry_window(occurred_at, ctx.now, window):
        raise DomainError("late_entry_outside_window", f"只能补录{window.days}天以内的办理",
                          f"a step may be entered late up to {window.days} days back", days=window.days,
                          occurred_at=occurred_at.isoformat())
    if earliest is not None and occurred_at < earliest:
        raise DomainError("late_entry_before_previous_step", "补录时间不能早于问题发现或上一环节",
                          f"a step cannot have happened before {before}", occurred_at=occurred_at.isoformat(),
                          earliest=earliest.isoformat(), before=before)
    return occurred_at, LateEntry(reason=reason)


def ensure_reason(reason: str | None, code: str = "reason_required") -> str:
    if reason is None or not reason.strip():
        raise DomainError(code, "请填写理由", "a reason is required")
    return reason


# --- the clock ----------------------------------------------------------------------------------


def clock_stopped_at(problem: Problem) -> datetime | None:
    """When the unit's clock stopped: its latest submission, or the end (作废/合并); None while running."""
    if problem.state in _CLOCK_STOPPED_BY_SUBMISSION:
        return problem.last_submitted_at
    if problem.state in (ProblemState.WITHDRAWN, ProblemState.MERGED):
        return problem.ended_at
    return None


def _pauses(problem: Problem) -> list[Pause]:
    pauses: list[Pause] = list(problem.pauses)
    if problem.parked_since is not None:
        pauses.append((problem.parked_since, None))
    return pauses


def working_hours_used(problem: Problem, calendar: WorkCalendar, now: datetime) -> float:
    """Working hours on the clock since assignment, parked intervals excluded."""
    if problem.assigned_at is None:
        return 0.0
    stopped = clock_stopped_at(problem)
    end = now if stopped is None else min(stopped, now)
    return calendar.working_hours_between(problem.assigned_at, end, _pauses(problem))


def time_used_fraction(problem: Problem, calendar: WorkCalendar, now: datetime) -> float:
    """Working time used ÷ the limit (extensions included); 0.0 before assignment."""
    if problem.assigned_at is None or problem.limit_hours <= 0:
        return 0.0
    return working_hours_used(problem, calendar, now) / problem.limit_hours


def traffic_light(fraction: float) -> TrafficLight:
    """三色督办: green under 80 % of the limit used, yellow from 80 % to 100 %, red past it."""
    if fraction < 0.8:
        return "green"
    return "yellow" if fraction <= 1.0 else "red"


def problem_light(problem: Problem, calendar: WorkCalendar, now: datetime) -> TrafficLight:
    """The light a ledger shows: red once overdue, else by the share of the limit used."""
    if is_overdue(problem, now):
        return "red"
    return traffic_light(time_used_fraction(problem, calendar, now))


def is_overdue(problem: Problem, now: datetime) -> bool:
    """超期: the unit still owes the rectification, the clock runs (not parked) and the deadline passed."""
    return (
        problem.state in OWED
        and not problem.parked
        and problem.deadline is not None
        and now > problem.deadline
    )


def closed_on_time(problem: Problem) -> bool | None:
    """按期结案: whether a closed problem's passing rectification came by its deadline; None if not closed."""
    if problem.state != ProblemState.CLOSED or problem.deadline is None or problem.last_submitted_at is None:
        return None
    return problem.last_submitted_at <= problem.deadline
