"""A liaison duty as a piece of work (挂钩联系履职事项): reminded before its period ends, recorded unmet after.

One `liaison_duty` aggregate per link and period (id `duty_id_for(link_id, period_start)`), created
only when something happens to it: the reminder (提醒) to the leader and their liaison officer when
nothing is recorded N working days before the end; the record that it went unmet (未履职) when the
grace ran out, which makes it a work item addressed to the HQ office (总指挥部办公室, not a unit) that
the escalator climbs the ladder on; and its resolution (办结) — a late upload that met it, an
exemption granted afterwards, the link ended so nothing was due, or HQ closing it with a reason.
A resolved duty is never deleted: its record and every step taken stay.

The escalator (as the system) issues these commands; the decisions re-judge the duty from fresh
facts at the command's instant (`judge_period`), so a reminder never goes out for a duty met
meanwhile and an unmet record never for one met by a visit that just arrived. HQ may do each by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from domain.escalation.notice import NoticeIssued, Party, build_notice
from domain.kernel.timefmt import format_zh
from domain.escalation.work_item import WorkItem
from domain.kernel.base import (
    Command, CommandContext, Conflict, DomainError, DomainEvent, Frozen, Meta, NotFound, UnhandledEvent, derived_id,
    evolver,
)
from domain.kernel.calendar import WorkCalendar
from domain.kernel.roles import HQ_ROLES, STEP_ROLES, ensure_role
from domain.liaison.judgement import LinkPlaces, Verdict, VisitFact, duty_id_for, judge_period
from domain.liaison.links import Exemption, Link, TargetKind
from domain.liaison.periods import Period, period_at
from domain.liaison.policy import PolicyTimeline
from domain.kernel.instants import Day
from domain.kernel.text import Text

KIND = "liaison_duty"
ITEM_KIND = KIND
Resolution = Literal["met_late", "exempted", "no_longer_due", "closed_by_hq"]
RESOLUTION_NAMES_ZH: dict[str, str] = {
    "met_late": "补录督查记录后已履职", "exempted": "经批准免除", "no_longer_due": "挂钩联系调整后无应履职",
    "closed_by_hq": "总指挥部办公室办结",
}


class _DutyEvent(DomainEvent):
    abstract: ClassVar[bool] = True  # a base, not a stored event type
    kind: ClassVar[str] = KIND
    id_field: ClassVar[str] = "duty_id"
    duty_id: UUID
    campaign_id: UUID
    person_id: UUID
    link_id: UUID


class LiaisonDutyReminded(_DutyEvent):
    """The leader (and their liaison officer) were reminded that the period's visit is not yet recorded (提醒)."""

    target_kind: TargetKind
    target_id: UUID
    period: Period
    due: int
    done: int
    remind_at: datetime
    notice_id: UUID


class LiaisonDutyFoundUnmet(_DutyEvent):
    """When the grace ran out the duty was unmet (未履职): a work item for the HQ office, judged by this policy."""

    target_kind: TargetKind
    target_id: UUID
    period: Period
    due: int
    done: int
    judged_at: datetime
    policy_version: int
    policy_effective_from: datetime
    addressed_to_unit_id: UUID | None = None
    summary_zh: str


class LiaisonDutyResolved(_DutyEvent):
    """An unmet duty was resolved (办结) — met by a late upload, exempted, no longer due, or closed by HQ."""

    resolution: Resolution
    done: int
    due: int
    visit_ids: tuple[UUID, ...] = ()
    reason: str


class Duty(Frozen):
    duty_id: UUID
    campaign_id: UUID
    person_id: UUID
    link_id: UUID
    target_kind: TargetKind | None = None
    target_id: UUID | None = None
    period: Period | None = None
    reminded_at: datetime | None = None
    notice_id: UUID | None = None
    found_unmet_at: datetime | None = None
    judged_at: datetime | None = None
    due: int = 0
    done: int = 0
    policy_version: int | None = None
    addressed_to_unit_id: UUID | None = None
    summary_zh: str | None = None
    resolved_at: datetime | None = None
    resolution: Resolution | None = None
    resolution_reason: str | None = None

    @property
    def open(self) -> bool:
        """Found unmet and not yet resolved: the escalator's work."""
        return self.found_unmet_at is not None and self.resolved_at is None


@evolver(KIND)
def evolve(state: Duty | None, event: DomainEvent) -> Duty:
    if not isinstance(event, _DutyEvent):
        raise UnhandledEvent(KIND, event)
    if state is None:
        state = Duty(duty_id=event.duty_id, campaign_id=event.campaign_id, person_id=event.person_id,
                     link_id=event.link_id)
    if isinstance(event, LiaisonDutyReminded):
        return state.model_copy(update={"target_kind": event.target_kind, "target_id": event.target_id,
                                        "period": event.period, "reminded_at": event.meta.recorded_at,
                                        "notice_id": event.notice_id, "due": event.due, "done": event.done})
    if isinstance(event, LiaisonDutyFoundUnmet):
        return state.model_copy(update={
            "target_kind": event.target_kind, "target_id": event.target_id, "period": event.period,
            "found_unmet_at": event.meta.recorded_at, "judged_at": event.judged_at, "due": event.due,
            "done": event.done, "policy_version": event.policy_version,
            "addressed_to_unit_id": event.addressed_to_unit_id, "summary_zh": event.summary_zh})
    if isinstance(event, LiaisonDutyResolved):
        return state.model_copy(update={"resolved_at": event.meta.recorded_at, "resolution": event.resolution,
                                        "resolution_reason": event.reason, "done": event.done})
    raise UnhandledEvent(KIND, event)


def duty_work_item(duty: Duty, steps_done: frozenset[str] = frozenset()) -> WorkItem:
    """An unmet duty as the escalator's work item: due at its judgement instant, addressed to the HQ office.

    Before it is found unmet (only reminded) it is closed: nothing to escalate, and the reminder
    notice about it needs no 签收 chase.
    """
    return WorkItem(item_kind=ITEM_KIND, item_id=duty.duty_id, campaign_id=duty.campaign_id,
                    responsible_unit_id=duty.addressed_to_unit_id,
                    place_id=duty.target_id if duty.target_kind == "place" else None, deadline=duty.judged_at,
                    closed=not duty.open, steps_done=steps_done)


# --- commands -----------------------------------------------------------------------------------


class _DutyCommand(Command):
    abstract: ClassVar[bool] = True
    campaign_id: UUID
    person_id: UUID
    link_id: UUID
    period_start: Day

    @property
    def duty_id(self) -> UUID:
        return duty_id_for(self.link_id, self.period_start)


class RemindLiaisonDuty(_DutyCommand):
    """Remind a leader that a linked place's visit is not yet recorded this period (履职提醒)."""


class RecordUnmetLiaisonDuty(_DutyCommand):
    """Record that a duty went unmet when its grace ran out (记录未履职); it becomes escalation work."""


class ResolveLiaisonDuty(_DutyCommand):
    """Resolve an unmet duty that is met (late), exempted or no longer due, as the facts now say (办结)."""


class CloseLiaisonDuty(_DutyCommand):
    """HQ closes an unmet duty with a reason (总指挥部办公室办结), e.g. after a make-up visit and an explanation."""

    reason: Text


@dataclass(frozen=True)
class DutyFacts:
    """Everything a duty decision re-judges from: the link, the policy timeline, exemptions, visits, places."""

    link: Link | None
    timeline: PolicyTimeline
    places: LinkPlaces
    exemptions: tuple[Exemption, ...] = ()
    visits: tuple[VisitFact, ...] = ()
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    leader: Party | None = None
    officer: Party | None = None
    target_name: str | None = None
    rank: str | None = None
    hq_unit_id: UUID | None = None


def verdict_now(cmd: _DutyCommand, facts: DutyFacts, now: datetime) -> Verdict:
    """The duty's verdict at `now` (404 when the link or period is unknown)."""
    link = facts.link
    period = _period(facts, cmd.period_start)
    if link is None or period is None:
        raise NotFound("duty_not_found", "挂钩联系履职事项不存在", "liaison duty not found", link_id=str(cmd.link_id),
                       period_start=cmd.period_start.isoformat())
    return judge_period(person_id=cmd.person_id, link=link, period=period,
                        policy=facts.timeline.judging(period.start), places=facts.places, exemptions=facts.exemptions,
                        visits=facts.visits, calendar=facts.calendar, now=now)


def _period(facts: DutyFacts, start: date) -> Period | None:
    period = period_at(facts.timeline.stretches, start)
    return period if period.start == start else None


def _meta(ctx: CommandContext, campaign_id: UUID) -> Meta:
    return ctx.meta if ctx.meta.campaign_id == campaign_id else ctx.meta.model_copy(update={"campaign_id": campaign_id})


def reminder_text(facts: DutyFacts, v: Verdict) -> str:
    who = facts.leader.name if facts.leader and facts.leader.name else "挂钩领导"
    where = facts.target_name or "挂钩联系点"
    ends = format_zh(v.period.ends_at(facts.calendar.tz))
    return (f"【提醒】{who}同志：按挂钩联系工作要求，{v.period.label_zh}应到{where}督查指导{v.due}次，"
            f"目前已记录{v.done}次。本周期于{ends}结束，请合理安排；线下督查请及时补录。")


def unmet_summary(facts: DutyFacts, v: Verdict) -> str:
    who = facts.leader.name if facts.leader and facts.leader.name else "挂钩领导"
    rank = f"（{facts.rank}）" if facts.rank else ""
    where = facts.target_name or "挂钩联系点"
    return f"{who}{rank}{v.period.label_zh}挂钩联系{where}未履职：应督查{v.due}次，实到{v.done}次"


def remind_liaison_duty(state: Duty | None, cmd: RemindLiaisonDuty, ctx: CommandContext,
                        facts: DutyFacts) -> list[DomainEvent]:
    """Remind once, only while the period runs, from its reminder time, and only if the duty is still undone."""
    ensure_role(ctx.actor, STEP_ROLES)
    if state is not None and state.reminded_at is not None:
        raise Conflict("duty_already_reminded", "已发送过履职提醒", "the reminder was already sent",
                       duty_id=str(cmd.duty_id), reminded_at=state.reminded_at.isoformat())
    v = verdict_now(cmd, facts, ctx.now)
    tz = facts.calendar.tz
    if v.status != "pending" or v.done >= v.due:
        raise DomainError("reminder_not_needed", "该周期无需提醒（已履职、免除或已结束）",
                          "no reminder is needed (met, exempt or over)", status=v.status)
    if v.remind_at is None or ctx.now < v.remind_at or ctx.now >= v.period.ends_at(tz):
        raise DomainError("reminder_not_due", "尚未到提醒时间", "the reminder is not due",
                          remind_at=v.remind_at.isoformat() if v.remind_at else None)
    recipients = tuple(p for p in (facts.leader, facts.officer) if p is not None)
    if not recipients:
        raise DomainError("no_recipient", "没有可提醒的人员", "no one to remind")
    meta = _meta(ctx, cmd.campaign_id)
    notice_id = derived_id("notice", cmd.duty_id, "reminder")
    notice: NoticeIssued = build_notice(meta, facts.calendar, notice_id=notice_id, campaign_id=cmd.campaign_id,
                                        notice_kind="reminder", subject_kind=KIND, subject_id=cmd.duty_id,
                                        recipients=recipients, fields={}, text_zh=reminder_text(facts, v))
    reminded = LiaisonDutyReminded(meta=meta, duty_id=cmd.duty_id, campaign_id=cmd.campaign_id,
                                   person_id=cmd.person_id, link_id=cmd.link_id, target_kind=v.target_kind,
                                   target_id=v.target_id, period=v.period, due=v.due, done=v.done,
                                   remind_at=v.remind_at, notice_id=notice_id)
    return [reminded, notice]


def record_unmet_liaison_duty(state: Duty | None, cmd: RecordUnmetLiaisonDuty, ctx: CommandContext,
                              facts: DutyFacts) -> list[DomainEvent]:
    """Record an unmet duty once, only when its grace ran out and the visits known now still fall short."""
    ensure_role(ctx.actor, STEP_ROLES)
    if state is not None and state.found_unmet_at is not None:
        raise Conflict("duty_already_judged", "该履职事项已记录为未履职", "the duty was already recorded unmet",
                       duty_id=str(cmd.duty_id))
    v = verdict_now(cmd, facts, ctx.now)
    if v.status != "unmet":
        raise DomainError("duty_not_unmet", "该履职事项不是未履职状态", "the duty is not unmet", status=v.status,
                          judged_at=v.judged_at.isoformat())
    return [LiaisonDutyFoundUnmet(
        meta=_meta(ctx, cmd.campaign_id), duty_id=cmd.duty_id, campaign_id=cmd.campaign_id, person_id=cmd.person_id,
        link_id=cmd.link_id, target_kind=v.target_kind, target_id=v.target_id, period=v.period, due=v.due,
        done=v.done, judged_at=v.judged_at, policy_version=v.policy_version,
        policy_effective_from=v.policy_effective_from, addressed_to_unit_id=facts.hq_unit_id,
        summary_zh=unmet_summary(facts, v))]


_RESOLVED_BY: dict[str, Resolution] = {"met": "met_late", "met_late": "met_late", "exempt": "exempted",
                                       "not_due": "no_longer_due"}


def _unresolved(state: Duty | None, cmd: _DutyCommand) -> Duty:
    if state is None or state.found_unmet_at is None:
        raise NotFound("unmet_duty_not_found", "没有该未履职记录", "no unmet duty on record", duty_id=str(cmd.duty_id))
    if state.resolved_at is not None:
        raise Conflict("duty_already_resolved", "该未履职事项已办结", "the unmet duty is already resolved",
                       duty_id=str(cmd.duty_id), resolution=state.resolution)
    return state


def resolve_liaison_duty(state: Duty | None, cmd: ResolveLiaisonDuty, ctx: CommandContext,
                         facts: DutyFacts) -> list[DomainEvent]:
    """Resolve an unmet duty when the facts now meet, exempt or no longer owe it, naming why."""
    ensure_role(ctx.actor, STEP_ROLES)
    duty = _unresolved(state, cmd)
    v = verdict_now(cmd, facts, ctx.now)
    resolution = _RESOLVED_BY.get(v.status)
    if resolution is None:
        raise DomainError("duty_still_unmet", "该履职事项仍未履职", "the duty is still unmet", status=v.status)
    late = tuple(x.visit_id for x in v.visits if x.late)
    reason = {"met_late": f"周期内督查记录于宽限期后补录（{len(late)}次），按发生时间计入该周期",
              "exempted": "经批准免除该周期履职", "no_longer_due": "挂钩联系调整后该周期无应履职次数"}[resolution]
    return [LiaisonDutyResolved(meta=_meta(ctx, duty.campaign_id), duty_id=duty.duty_id, campaign_id=duty.campaign_id,
                                person_id=duty.person_id, link_id=duty.link_id, resolution=resolution, done=v.done,
                                due=v.due, visit_ids=late, reason=reason)]


def close_liaison_duty(state: Duty | None, cmd: CloseLiaisonDuty, ctx: CommandContext) -> list[DomainEvent]:
    ensure_role(ctx.actor, HQ_ROLES)
    duty = _unresolved(state, cmd)
    return [LiaisonDutyResolved(meta=_meta(ctx, duty.campaign_id), duty_id=duty.duty_id, campaign_id=duty.campaign_id,
                                person_id=duty.person_id, link_id=duty.link_id, resolution="closed_by_hq",
                                done=duty.done, due=duty.due, reason=cmd.reason)]
