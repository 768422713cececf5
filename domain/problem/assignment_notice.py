"""The 交办单 (assignment notice) that goes with every handing-over of a problem, and its 签收.

Whenever a decision hands a problem to a unit (交办 or 转办), a 交办单 addressed to that unit is
issued in the same write, with its acknowledgement due in working hours; when the unit
acknowledges the problem (签收), the open 交办单 is acknowledged with it. An unacknowledged
交办单 is a work item the escalator climbs like any other notice.
"""

from __future__ import annotations

from uuid import UUID

from domain.kernel.base import CommandContext, DomainEvent, Frozen, derived_id, fold
from domain.kernel.calendar import WorkCalendar
from domain.escalation.notice import Notice, NoticeAcknowledged, Recipient, build_notice
from domain.problem.decisions import ProblemAcknowledged, ProblemAssigned
from domain.problem.detours import ProblemTransferred
from domain.problem.state import Problem

SUBJECT_CHARS = 60


def assignment_notice_id(problem_id: UUID, unit_id: UUID, transfer_count: int) -> UUID:
    """One 交办单 per (problem, unit, handing-over): deterministic, so a retried command issues it once."""
    return derived_id("assignment-notice", problem_id, unit_id, transfer_count)


class AssignmentNames(Frozen):
    """Display names the notice text needs (gathered by infra)."""

    unit_names: dict[UUID, str] = {}
    place_name: str | None = None


def handed_over(events: list[DomainEvent]) -> bool:
    return any(isinstance(e, (ProblemAssigned, ProblemTransferred)) for e in events)


def late_entered(events: list[DomainEvent]) -> bool:
    """The handing-over was entered late (补录) with its real time."""
    return any(isinstance(e, ProblemAssigned) and e.late_entry is not None for e in events)


def with_assignment_notice(before: Problem | None, events: list[DomainEvent], ctx: CommandContext,
                           calendar: WorkCalendar, names: AssignmentNames) -> list[DomainEvent]:
    """`events` plus a 交办单 to the unit the problem was handed to, if the decision handed it over."""
    if not handed_over(events):
        return events
    after = fold("problem", [e for e in events if e.kind == "problem"], Problem, before)
    if after.unit_id is None or after.deadline is None:
        return events
    notice = build_notice(
        ctx.meta, calendar, notice_id=assignment_notice_id(after.problem_id, after.unit_id, after.transfer_count),
        campaign_id=after.campaign_id, notice_kind="assignment", subject_kind="problem", subject_id=after.problem_id,
        recipients=(Recipient(party_kind="unit", party_id=after.unit_id, name=names.unit_names.get(after.unit_id)),),
        fields={"place": names.place_name or "相关点位", "subject": after.description[:SUBJECT_CHARS],
                "deadline": after.deadline},  # rendered like every time in a notice (2021年12月17日 10:00)
        issued_at=after.assigned_at if late_entered(events) else None,  # 补录: signing is due from the real handover
    )
    return [*events, notice]


def with_notice_acknowledged(before: Problem | None, events: list[DomainEvent], ctx: CommandContext,
                             open_notice: Notice | None) -> list[DomainEvent]:
    """`events` plus the 签收 of the open 交办单 when the decision acknowledged the problem."""
    ack = next((e for e in events if isinstance(e, ProblemAcknowledged)), None)
    if ack is None or open_notice is None or any(a.by_unit_id == ack.unit_id for a in open_notice.acks):
        return events
    return [*events, NoticeAcknowledged(meta=ctx.meta, notice_id=open_notice.notice_id,
                                        by_person_id=ctx.actor.person_id, by_unit_id=ack.unit_id)]
