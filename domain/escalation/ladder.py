"""Escalation (逐级督办): the ladder as versioned policy data, and the pure scheduler logic.

The ladder (督办阶梯) says, per step, how many working hours from the deadline it falls due
(negative = before), its level (0–4), which notice it issues and who is told. A campaign sets
its ladder with an event on its `escalation_policy` aggregate; a new version applies from its
`effective_from`. Before any version the product default applies (DESIGN §5):

    deadline − 1 working day   提醒 reminder                        level 0
    deadline passed            催办 urge (unit head)                  level 1
    + 3 working days           督办 supervise (grid lead, liaison)   level 2
    + 7 working days           listed for 通报 + 约谈 proposed        level 3
    + 15 working days, or the third relapse: 问责 proposed           level 4

`due_steps` judges each step by the ladder in force at the instant it falls due: a step is due
at the earliest instant at which the ladder then in force puts its threshold behind the item's
clock (so a policy change mid-flight moves only the steps not yet due). Parked time does not
count (see `domain.escalation.work_item`). Each step has a deterministic id (work item + step name), so a
doubled or restarted escalator cannot take it twice. The same aggregate holds the versioned
ranking policy (排名规则) that bulletins use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from domain.kernel.base import (
    Command, CommandContext, DomainError, DomainEvent, Frozen, NotFound, UnhandledEvent, derived_id, evolver,
)
from domain.consequences.ranking import DEFAULT_RANKING_POLICY, RankingPolicy
from domain.kernel.calendar import WorkCalendar
from domain.kernel.instants import Instant
from domain.kernel.scalars import Count, Number
from domain.escalation.notice import NoticeKind
from domain.kernel.roles import HQ_ROLES, ensure_role
from domain.policy.campaign import PolicyRefs, in_force
from domain.escalation.work_item import WorkItem, threshold_at

POLICY_KIND = "escalation_policy"
STEP_KIND = "escalation"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

StepName = Literal["reminder", "urge", "supervise", "bulletin_listing", "summons_proposed", "accountability_proposed"]
Told = Literal["unit", "unit_head", "sub_command_or_grid_lead", "liaison_leader", "hq"]
STEP_NAMES_ZH: dict[str, str] = {
    "reminder": "提醒", "urge": "催办", "supervise": "督办", "bulletin_listing": "列入通报",
    "summons_proposed": "提议约谈", "accountability_proposed": "提议问责",
}


class Step(Frozen):
    """One rung of the ladder: when (working hours from the deadline), how high, what notice, who is told."""

    level: Count = Field(ge=0, le=4)
    name: StepName
    offset_working_hours: Number = Field(ge=-2000, le=10000)
    notice_kind: NoticeKind | None = None
    told: tuple[Told, ...] = ()


def _check_ladder(steps: Sequence[Step], relapse_threshold: int | None, relapse_step: str) -> None:
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError("step names must be unique")
    if relapse_threshold is not None and relapse_step not in names:
        raise ValueError("relapse_step must be one of the steps")


class _LadderFields(Frozen):
    steps: tuple[Step, ...] = Field(min_length=1, max_length=12)
    relapse_threshold: Count | None = Field(default=3, ge=1, le=100)
    relapse_step: StepName = "accountability_proposed"
    notice_ack_working_hours: Number = Field(default=24.0, gt=0, le=2000)

    @model_validator(mode="after")
    def _valid(self) -> _LadderFields:
        _check_ladder(self.steps, self.relapse_threshold, self.relapse_step)
        return self


class Ladder(_LadderFields):
    """One version of a campaign's escalation ladder (督办阶梯), in force from `effective_from`."""

    effective_from: AwareDatetime

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)


_HEAD: tuple[Told, ...] = ("unit", "unit_head")
_LEADS: tuple[Told, ...] = ("unit", "unit_head", "sub_command_or_grid_lead", "liaison_leader")
DEFAULT_LADDER = Ladder(effective_from=_EPOCH, steps=(
    Step(level=0, name="reminder", offset_working_hours=-8, notice_kind="reminder", told=("unit",)),
    Step(level=1, name="urge", offset_working_hours=0, notice_kind="urge", told=_HEAD),
    Step(level=2, name="supervise", offset_working_hours=24, notice_kind="supervision_order", told=_LEADS),
    Step(level=3, name="bulletin_listing", offset_working_hours=56, told=("hq",)),
    Step(level=3, name="summons_proposed", offset_working_hours=56, told=("hq",)),
    Step(level=4, name="accountability_proposed", offset_working_hours=120, told=("hq",)),
))


def ladder_in_force(history: Sequence[Ladder], at: datetime) -> Ladder:
    """The ladder in force at `at`: the last recorded version with effective_from <= at, else the default."""
    return in_force(history, at, DEFAULT_LADDER)


def ranking_policy_in_force(history: Sequence[RankingPolicy], at: datetime) -> RankingPolicy:
    return in_force(history, at, DEFAULT_RANKING_POLICY)


def escalation_policy_id(campaign_id: UUID) -> UUID:
    return derived_id(POLICY_KIND, campaign_id)


# --- policy events, state, commands --------------------------------------------------------------


class EscalationLadderSet(_LadderFields, DomainEvent):
    """HQ set the campaign's escalation ladder (设定督办阶梯) from `effective_from`."""

    kind = POLICY_KIND
    id_field = "policy_id"
    policy_id: UUID
    campaign_id: UUID
    effective_from: AwareDatetime


class RankingPolicySet(RankingPolicy, DomainEvent):
    """HQ set how rankings are listed and what they lead to (设定排名规则) from `effective_from`."""

    kind = POLICY_KIND
    id_field = "policy_id"
    policy_id: UUID
    campaign_id: UUID


class EscalationPolicy(Frozen):
    """Every ladder and ranking-policy version of one campaign, in recording order."""

    policy_id: UUID
    campaign_id: UUID
    ladders: tuple[Ladder, ...] = ()
    ranking_policies: tuple[RankingPolicy, ...] = ()


_IDS = {"meta", "policy_id", "campaign_id"}


@evolver(POLICY_KIND)
def evolve(state: EscalationPolicy | None, event: DomainEvent) -> EscalationPolicy:
    if not isinstance(event, (EscalationLadderSet, RankingPolicySet)):
        raise UnhandledEvent(POLICY_KIND, event)
    if state is None:
        state = EscalationPolicy(policy_id=event.policy_id, campaign_id=event.campaign_id)
    if isinstance(event, EscalationLadderSet):
        return state.model_copy(update={"ladders": (*state.ladders, Ladder(**event.model_dump(exclude=_IDS)))})
    version = RankingPolicy(**event.model_dump(exclude=_IDS))
    return state.model_copy(update={"ranking_policies": (*state.ranking_policies, version)})


class SetEscalationLadder(_LadderFields, Command):
    """Set the campaign's escalation ladder (设定督办阶梯); effective_from None means from now."""

    campaign_id: UUID
    effective_from: Instant | None = None


class SetRankingPolicy(RankingPolicy, Command):
    """Set the campaign's ranking policy (设定排名规则); effective_from defaults to now."""

    campaign_id: UUID
    effective_from: Instant | None = None  # type: ignore[assignment]  # None: from now


def set_escalation_ladder(state: EscalationPolicy | None, cmd: SetEscalationLadder, ctx: CommandContext,
                          refs: PolicyRefs) -> list[DomainEvent]:
    """Record a new ladder version; not before the previous one; equal to the latest is a no-op."""
    effective_from = _new_version_time(state.ladders if state else (), cmd.effective_from, ctx, refs)
    fields = cmd.model_dump(exclude={"command_id", "occurred_at", "campaign_id", "effective_from"})
    if state and state.ladders and state.ladders[-1].model_dump(exclude={"effective_from"}) == fields:
        return []
    return [EscalationLadderSet(meta=ctx.meta, policy_id=escalation_policy_id(cmd.campaign_id),
                                campaign_id=cmd.campaign_id, effective_from=effective_from, **fields)]


def set_ranking_policy(state: EscalationPolicy | None, cmd: SetRankingPolicy, ctx: CommandContext,
                       refs: PolicyRefs) -> list[DomainEvent]:
    effective_from = _new_version_time(state.ranking_policies if state else (), cmd.effective_from, ctx, refs)
    fields = cmd.model_dump(exclude={"command_id", "occurred_at", "campaign_id", "effective_from"})
    if state and state.ranking_policies and state.ranking_policies[-1].model_dump(exclude={"effective_from"}) == fields:
        return []
    return [RankingPolicySet(meta=ctx.meta, policy_id=escalation_policy_id(cmd.campaign_id),
                             campaign_id=cmd.campaign_id, effective_from=effective_from, **fields)]


def _new_version_time(history: Sequence[Ladder | RankingPolicy], wanted: datetime | None, ctx: CommandContext,
                      refs: PolicyRefs) -> datetime:
    ensure_role(ctx.actor, HQ_ROLES)
    if not refs.campaign_exists:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found")
    effective_from = wanted or ctx.now
    if history and effective_from < history[-1].effective_from:
        raise DomainError("policy_effective_from_regressed", "新版本的生效时间不得早于上一版本",
                          "a policy version may not take effect before the previous one",
                          previous=history[-1].effective_from.isoformat())
    return effective_from


# --- the scheduler logic -------------------------------------------------------------------------


class DueStep(Frozen):
    """A ladder step of one work item with the instant it falls (or fell) due."""

    item_kind: str
    item_id: UUID
    campaign_id: UUID
    responsible_unit_id: UUID | None
    step_name: StepName
    level: int
    due_at: datetime
    step_id: UUID
    notice_kind: NoticeKind | None
    told: tuple[Told, ...]
    trigger: Literal["time", "relapse", "manual"]
    ladder_effective_from: datetime


def step_id_for(item_kind: str, item_id: UUID, step_name: str) -> UUID:
    """The deterministic id of one step of one work item (the id of its `escalation` aggregate)."""
    return derived_id(STEP_KIND, item_kind, item_id, step_name)


def pending_steps(item: WorkItem, history: Sequence[Ladder], calendar: WorkCalendar, now: datetime) -> list[DueStep]:
    """Every step not yet taken whose due instant is known, earliest first; none for a closed item."""
    if item.closed:
        return []
    periods = _periods(history)
    relapse = _relapse_due(item, history, now)
    out = []
    for name in _step_names(periods):
        if name in item.steps_done:
            continue
        candidates = [c for c in (_time_due(item, name, periods, calendar),) if c is not None]
        if relapse is not None and relapse[1].relapse_step == name:
            candidates.append(relapse)
        if candidates:
            out.append(_due_step(item, name, *min(candidates, key=lambda c: c[0])))
    return sorted(out, key=lambda s: (s.due_at, s.level, s.step_name))


def due_steps(item: WorkItem, history: Sequence[Ladder], calendar: WorkCalendar, now: datetime) -> list[DueStep]:
    """The steps due by `now` and not yet taken, earliest first (the escalator takes them all, in order)."""
    return [s for s in pending_steps(item, history, calendar, now) if s.due_at <= now]


def next_step(item: WorkItem, history: Sequence[Ladder], calendar: WorkCalendar, now: datetime) -> DueStep | None:
    """The step that comes next and when (possibly already due): for the escalation list."""
    pending = pending_steps(item, history, calendar, now)
    return pending[0] if pending else None


Period = tuple[Ladder, datetime, datetime | None]
Candidate = tuple[datetime, Ladder, Literal["time", "relapse"]]


def _periods(history: Sequence[Ladder]) -> list[Period]:
    """Each ladder with the span it was in force: [effective_from, next effective_from)."""
    versions = [DEFAULT_LADDER, *history]
    out: list[Period] = []
    for i, ladder in enumerate(versions):
        end = versions[i + 1].effective_from if i + 1 < len(versions) else None
        if end is None or end > ladder.effective_from:
            out.append((ladder, ladder.effective_from, end))
    return out


def _step_names(periods: list[Period]) -> list[str]:
    return list(dict.fromkeys(s.name for ladder, _, _ in periods for s in ladder.steps))


def _time_due(item: WorkItem, name: str, periods: list[Period], calendar: WorkCalendar) -> Candidate | None:
    """The earliest instant at which the ladder then in force puts this step's threshold behind the clock."""
    for ladder, start, end in periods:
        step = ladder.step(name)
        if step is None:
            continue
        threshold = threshold_at(item, calendar, step.offset_working_hours)
        if threshold is None:
            continue
        due = max(threshold, start)
        if end is None or due < end:
            return due, ladder, "time"
    return None


def _relapse_due(item: WorkItem, history: Sequence[Ladder], now: datetime) -> Candidate | None:
    """The relapse step (反弹) falls due when the relapse count reaches the threshold in force then."""
    if item.relapse_count == 0:
        return None
    at = item.relapse_at or now
    ladder = ladder_in_force(history, at)
    if ladder.relapse_threshold is None or item.relapse_count < ladder.relapse_threshold:
        return None
    return at, ladder, "relapse"


def _due_step(item: WorkItem, name: str, due_at: datetime, ladder: Ladder,
              trigger: Literal["time", "relapse"]) -> DueStep:
    step = ladder.step(name)
    assert step is not None
    return DueStep(item_kind=item.item_kind, item_id=item.item_id, campaign_id=item.campaign_id,
                   responsible_unit_id=item.responsible_unit_id, step_name=step.name, level=step.level,
                   due_at=due_at, step_id=step_id_for(item.item_kind, item.item_id, name),
                   notice_kind=step.notice_kind, told=step.told, trigger=trigger,
                   ladder_effective_from=ladder.effective_from)
