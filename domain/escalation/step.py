"""Taking an escalation step (执行督办步骤): one `escalation` aggregate per step, created once.

The step's aggregate id is `step_id_for(item_kind, item_id, step_name)`, so a restarted, lagging
or doubled escalator cannot take a step twice: the second attempt finds the state and is refused
(409 `step_already_taken`), and the service's command-id idempotency answers an exact retry.
Taking a step records it and, per the ladder, issues its notice (提醒/催办单/督办单) to the parties
told, proposes a summons (约谈) or proposes accountability (问责) — proposals only: people decide.

The decision re-judges the step from fresh state (the work item, the ladder history, the
calendar), so an item closed since the escalator looked is not escalated. The system may take
only due steps; HQ (`hq_office`) may take a ladder step early, by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from domain.consequences.accountability import AccountabilityProposed, BasisRef, case_id_for
from domain.kernel.base import (
    Command, CommandContext, Conflict, DomainError, DomainEvent, Frozen, NotFound, UnhandledEvent, evolver,
)
from domain.kernel.calendar import WorkCalendar
from domain.escalation.ladder import (
    STEP_KIND, DueStep, Ladder, StepName, Told, ladder_in_force, pending_steps, step_id_for,
)
from domain.escalation.notice import Party, build_notice, notice_id_for_step
from domain.kernel.roles import STEP_ROLES, SYSTEM_ROLES, ensure_role
from domain.consequences.summons import SummonsProposed, summons_id_for
from domain.escalation.work_item import ItemKindCode, WorkItem


class EscalationStepTaken(DomainEvent):
    """A work item climbed a rung of the ladder (逐级督办): the step, when it fell due, what it issued."""

    kind = STEP_KIND
    id_field = "step_id"
    step_id: UUID
    campaign_id: UUID
    item_kind: str
    item_id: UUID
    step_name: StepName
    level: int
    due_at: datetime
    responsible_unit_id: UUID | None = None
    notice_id: UUID | None = None
    summons_id: UUID | None = None
    case_id: UUID | None = None
    trigger: Literal["time", "relapse", "manual"] = "time"
    told: tuple[Told, ...] = ()
    ladder_effective_from: datetime | None = None


class EscalationStep(Frozen):
    step_id: UUID
    campaign_id: UUID
    item_kind: str
    item_id: UUID
    step_name: StepName
    level: int
    due_at: datetime
    taken_at: datetime
    responsible_unit_id: UUID | None
    notice_id: UUID | None
    summons_id: UUID | None
    case_id: UUID | None
    trigger: str


@evolver(STEP_KIND)
def evolve(state: EscalationStep | None, event: DomainEvent) -> EscalationStep:
    if not isinstance(event, EscalationStepTaken):
        raise UnhandledEvent(STEP_KIND, event)
    fields = event.model_dump(exclude={"meta", "told", "ladder_effective_from"})
    return EscalationStep(taken_at=event.meta.recorded_at, **fields)


class TakeEscalationStep(Command):
    """Take one ladder step for one work item (执行督办步骤); its aggregate id is derived."""

    campaign_id: UUID
    item_kind: ItemKindCode
    item_id: UUID
    step_name: StepName

    @property
    def step_id(self) -> UUID:
        return step_id_for(self.item_kind, self.item_id, self.step_name)


def take_command(step: DueStep) -> TakeEscalationStep:
    """The escalator's command for a due step, with a command id derived from the step id."""
    return TakeEscalationStep(command_id=f"escalation-step:{step.step_id}", campaign_id=step.campaign_id,
                              item_kind=step.item_kind, item_id=step.item_id, step_name=step.step_name)


class StepParties(Frozen):
    """Who can be told at a step (gathered from the responsibility matrix, structure and liaison links).

    liaison_leader: the leader linked to the place (挂钩领导); where no link is defined, the 包保责任人.
    subject: whom a proposed 约谈/问责 names when it is not the unit (a leader's unmet liaison duty).
    """

    unit: tuple[Party, ...] = ()
    unit_head: tuple[Party, ...] = ()
    sub_command_or_grid_lead: tuple[Party, ...] = ()
    liaison_leader: tuple[Party, ...] = ()
    hq: tuple[Party, ...] = ()
    subject: tuple[Party, ...] = ()

    @property
    def accountable(self) -> tuple[Party, ...]:
        """Who a proposal names: the subject when one is given, else the unit."""
        return self.subject or self.unit

    def recipients(self, told: tuple[Told, ...]) -> tuple[Party, ...]:
        """The parties for the roles told, in order, each once."""
        found = {(p.party_kind, p.party_id): p for role in told for p in getattr(self, role)}
        return tuple(found.values())


@dataclass(frozen=True)
class StepRefs:
    """What taking a step reads: the item as it is now, the ladder history, the calendar, the parties.

    fields: the notice template fields (subject, place, deadline) describing the item.
    """

    item: WorkItem | None
    calendar: WorkCalendar
    ladders: tuple[Ladder, ...] = ()
    parties: StepParties = StepParties()
    fields: Mapping[str, object] = field(default_factory=dict)


def take_escalation_step(state: EscalationStep | None, cmd: TakeEscalationStep, ctx: CommandContext,
                         refs: StepRefs) -> list[DomainEvent]:
    ensure_role(ctx.actor, STEP_ROLES)
    if state is not None:
        raise Conflict("step_already_taken", "该督办步骤已执行", "this escalation step was already taken",
                       step_id=str(state.step_id), taken_at=state.taken_at.isoformat())
    item = _item(cmd, refs.item)
    step = _judge(item, cmd, ctx, refs)
    events: list[DomainEvent] = [_taken(step, ctx, refs)]
    recipients = refs.parties.recipients(step.told)
    if step.notice_kind is not None and recipients:
        events.append(build_notice(
            ctx.meta, refs.calendar, notice_id=notice_id_for_step(step.step_id), campaign_id=item.campaign_id,
            notice_kind=step.notice_kind, subject_kind=item.item_kind, subject_id=item.item_id,
            recipients=recipients, fields=_fields(item, refs.fields), escalation_step_id=step.step_id,
            ack_working_hours=ladder_in_force(refs.ladders, step.due_at).notice_ack_working_hours))
    events += _proposals(step, item, ctx, refs)
    return events


def _item(cmd: TakeEscalationStep, item: WorkItem | None) -> WorkItem:
    if item is None or (item.item_kind, item.item_id) != (cmd.item_kind, cmd.item_id):
        raise NotFound("work_item_not_found", "督办对象不存在", "work item not found", item_id=str(cmd.item_id))
    if item.closed:
        raise Conflict("work_item_closed", "督办对象已办结，无需督办", "the work item is closed", item_id=str(cmd.item_id))
    return item


def _judge(item: WorkItem, cmd: TakeEscalationStep, ctx: CommandContext, refs: StepRefs) -> DueStep:
    """The step as the ladder judges it now; the system may take only a due step, HQ any ladder step."""
    fresh = item.model_copy(update={"steps_done": frozenset()})
    step = next((s for s in pending_steps(fresh, refs.ladders, refs.calendar, ctx.now)
                 if s.step_name == cmd.step_name), None)
    manual = ctx.actor.role not in SYSTEM_ROLES
    if step is not None and step.due_at <= ctx.now:
        return step
    if step is not None and manual:
        return step.model_copy(update={"trigger": "manual"})
    ladder_step = ladder_in_force(refs.ladders, ctx.now).step(cmd.step_name)
    if ladder_step is None:
        raise DomainError("step_not_in_ladder", "现行督办阶梯中没有此步骤", "the ladder in force has no such step",
                          step_name=cmd.step_name)
    if not manual:
        raise DomainError("step_not_due", "该督办步骤尚未到期", "this escalation step is not due yet",
                          step_name=cmd.step_name, due_at=step.due_at.isoformat() if step else None)
    return DueStep(item_kind=item.item_kind, item_id=item.item_id, campaign_id=item.campaign_id,
                   responsible_unit_id=item.responsible_unit_id, step_name=ladder_step.name,
                   level=ladder_step.level, due_at=ctx.now, step_id=cmd.step_id, notice_kind=ladder_step.notice_kind,
                   told=ladder_step.told, trigger="manual",
                   ladder_effective_from=ladder_in_force(refs.ladders, ctx.now).effective_from)


def _taken(step: DueStep, ctx: CommandContext, refs: StepRefs) -> EscalationStepTaken:
    has_notice = step.notice_kind is not None and bool(refs.parties.recipients(step.told))
    subject = bool(refs.parties.accountable)
    return EscalationStepTaken(
        meta=ctx.meta, step_id=step.step_id, campaign_id=step.campaign_id, item_kind=step.item_kind,
        item_id=step.item_id, step_name=step.step_name, level=step.level, due_at=step.due_at,
        responsible_unit_id=step.responsible_unit_id, told=step.told, ladder_effective_from=step.ladder_effective_from,
        notice_id=notice_id_for_step(step.step_id) if has_notice else None,
        summons_id=summons_id_for(step.step_id) if subject and step.step_name == "summons_proposed" else None,
        case_id=case_id_for(step.step_id) if subject and step.step_name == "accountability_proposed" else None,
        trigger=step.trigger)


def _fields(item: WorkItem, given: Mapping[str, object]) -> dict[str, object]:
    """Template fields with defaults, so a missing description never blocks an escalation."""
    return {"subject": "待办事项", "place": "相关点位", "deadline": item.deadline or "（未设期限）", **given}


def _proposals(step: DueStep, item: WorkItem, ctx: CommandContext, refs: StepRefs) -> list[DomainEvent]:
    """Level 3 proposes a summons of the responsible unit, level 4 accountability (proposals only)."""
    if not refs.parties.accountable or step.step_name not in ("summons_proposed", "accountability_proposed"):
        return []
    subject, what = refs.parties.accountable[0], str(_fields(item, refs.fields)["subject"])
    basis = (BasisRef(kind=item.item_kind, id=item.item_id), BasisRef(kind=STEP_KIND, id=step.step_id))
    if step.step_name == "summons_proposed":
        return [SummonsProposed(meta=ctx.meta, summons_id=summons_id_for(step.step_id), campaign_id=item.campaign_id,
                                subject=subject, convener="hq", basis=basis, source="escalation",
                                reason_zh=f"“{what}”经催办、督办仍逾期未办结，按督办规则提议约谈。")]
    reason = (f"“{what}”所在点位同类问题已第{item.relapse_count}次反弹，按督办规则提议问责。"
              if step.trigger == "relapse" else f"“{what}”长期逾期未办结，按督办规则提议问责。")
    return [AccountabilityProposed(meta=ctx.meta, case_id=case_id_for(step.step_id), campaign_id=item.campaign_id,
                                   subject=subject, reason_zh=reason, basis=basis, source="escalation")]
