"""The liaison duty policy (挂钩联系履职规则): versioned per campaign like every policy.

One `liaison_policy` aggregate per campaign (id `duty_policy_id(campaign_id)`) records versions,
each in force from its `effective_from` and set by HQ with a reason. Before any version the
product default applies: at least one supervision visit (督查指导) to each linked place per
calendar month, counted from visits where the leader is the lead or a named participant, at the
place or a place inside it; three working days of grace for offline uploads; a reminder three
working days before the end; exemptions (公出/病假) and partial periods pro-rated.

Version numbers count from 1 in recording order (0 is the default); a verdict names the number
of the version that judged its period (see `domain.liaison.periods` for which one that is).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timezone, tzinfo
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.kernel.base import (
    Command, CommandContext, DomainError, DomainEvent, Frozen, NotFound, UnhandledEvent, derived_id, evolver,
)
from domain.kernel.roles import HQ_ROLES, ensure_role
from domain.liaison.periods import PeriodKind, Stretch, stretch_at, stretches
from domain.kernel.instants import Instant
from domain.kernel.scalars import Count, Flag
from domain.kernel.text import Text

KIND = "liaison_policy"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Counting = Literal["lead_or_participant", "lead_only"]
Proration = Literal["pro_rate", "waive"]
PartialPeriod = Literal["pro_rate", "full"]


class DutyRules(Frozen):
    """What one version says.

    visits_per_place: visits owed to each linked place per period (a whole period held).
    grace_working_days: uploads recorded this many working days after the period still count on time.
    remind_working_days: remind this many working days before the end (0: never).
    count_places_inside: a visit to a place inside the linked one (a grid in a street) counts.
    counting: whose visits count — the leader as lead (first participant) or any named participant.
    exemption_effect: an exemption (公出/病假) removes its days from the period (pro_rate) or waives it.
    partial_period: a link held for part of a period owes a pro-rated duty, or the full one.
    """

    period: PeriodKind = "month"
    visits_per_place: Count = Field(default=1, ge=1, le=100)
    grace_working_days: Count = Field(default=3, ge=0, le=30)
    remind_working_days: Count = Field(default=3, ge=0, le=30)
    count_places_inside: Flag = True
    counting: Counting = "lead_or_participant"
    exemption_effect: Proration = "pro_rate"
    partial_period: PartialPeriod = "pro_rate"


class DutyPolicy(DutyRules):
    """One version of the duty policy, in force from `effective_from` (0: the product default)."""

    effective_from: AwareDatetime
    version: int = Field(default=0, ge=0)
    reason: str | None = None
    recorded_at: AwareDatetime | None = None


DEFAULT_DUTY_POLICY = DutyPolicy(effective_from=_EPOCH)


def duty_policy_id(campaign_id: UUID) -> UUID:
    return derived_id(KIND, campaign_id)


class LiaisonDutyPolicySet(DutyRules, DomainEvent):
    """HQ set the liaison duty policy (设定挂钩联系履职规则) from `effective_from`, giving a reason."""

    kind: ClassVar[str] = KIND
    id_field: ClassVar[str] = "policy_id"
    policy_id: UUID
    campaign_id: UUID
    effective_from: AwareDatetime
    reason: str


class DutyPolicyHistory(Frozen):
    """Every version of one campaign's duty policy, in recording order."""

    policy_id: UUID
    campaign_id: UUID
    versions: tuple[DutyPolicy, ...] = ()


@evolver(KIND)
def evolve(state: DutyPolicyHistory | None, event: DomainEvent) -> DutyPolicyHistory:
    if isinstance(event, LiaisonDutyPolicySet):
        if state is None:
            state = DutyPolicyHistory(policy_id=event.policy_id, campaign_id=event.campaign_id)
        version = DutyPolicy(**event.model_dump(include=set(DutyPolicy.model_fields) - {"version", "recorded_at"}),
                             version=len(state.versions) + 1, recorded_at=event.meta.recorded_at)
        return state.model_copy(update={"versions": (*state.versions, version)})
    raise UnhandledEvent(KIND, event)


class SetLiaisonDutyPolicy(DutyRules, Command):
    """Set the liaison duty policy (设定挂钩联系履职规则) from `effective_from` (None: now), with a reason."""

    campaign_id: UUID
    effective_from: Instant | None = None
    reason: Text


class PolicyRefs(Frozen):
    campaign_exists: bool = True


def set_duty_policy(state: DutyPolicyHistory | None, cmd: SetLiaisonDutyPolicy, ctx: CommandContext,
                    refs: PolicyRefs) -> list[DomainEvent]:
    """Record a new version; not before the previous one; one equal to the latest is a no-op."""
    ensure_role(ctx.actor, HQ_ROLES)
    if not refs.campaign_exists:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(cmd.campaign_id))
    effective_from = cmd.effective_from or ctx.now
    rules = DutyRules(**cmd.model_dump(include=set(DutyRules.model_fields)))
    if state is not None and state.versions:
        latest = state.versions[-1]
        if effective_from < latest.effective_from:
            raise DomainError("policy_effective_from_regressed", "新版本的生效时间不得早于上一版本",
                              "a policy version may not take effect before the previous one",
                              previous=latest.effective_from.isoformat())
        if DutyRules(**latest.model_dump(include=set(DutyRules.model_fields))) == rules:
            return []
    return [LiaisonDutyPolicySet(meta=ctx.meta, policy_id=duty_policy_id(cmd.campaign_id), campaign_id=cmd.campaign_id,
                                 effective_from=effective_from, reason=cmd.reason, **rules.model_dump())]


# --- which version judges which period ----------------------------------------------------------


class PolicyTimeline:
    """A campaign's duty policy versions laid out in time: which version judges the period of a day."""

    def __init__(self, versions: Sequence[DutyPolicy], tz: tzinfo) -> None:
        self.versions: tuple[DutyPolicy, ...] = (DEFAULT_DUTY_POLICY, *versions)
        self.tz = tz
        self.stretches: list[Stretch] = stretches([(v.effective_from, v.period) for v in self.versions], tz)

    def judging(self, day: date) -> DutyPolicy:
        """The version that judges the period containing `day`."""
        return self.versions[stretch_at(self.stretches, day).version]
