"""Summons (约谈): a formal talk with a unit's head or a person, proposed with its basis.

Proposed by the system (escalation level 3, rankings), HQ or discipline; scheduled
(rescheduling allowed), held (minutes, commitments) or cancelled — by people only (`admin`,
`hq_office`, `discipline`); the system may only propose.

proposed → scheduled → held | cancelled; proposed → cancelled (the proposal declined).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.consequences.accountability import Basis, BasisRef, Source, Text
from domain.kernel.base import (
    Actor, Command, CommandContext, Conflict, DomainEvent, Frozen, NotFound, UnhandledEvent, derived_id, evolver,
)
from domain.escalation.notice import Party
from domain.kernel.instants import Instant
from domain.kernel.roles import PROPOSER_ROLES, SUMMONS_ROLES, ensure_role
from domain.kernel.text import Name
from domain.kernel.text import Text as Commitment

SUMMONS = "summons"
Convener = Literal["city_leader", "organisation_department", "hq", "discipline"]


def summons_id_for(*key: object) -> UUID:
    return derived_id(SUMMONS, *key)


class _SummonsEvent(DomainEvent):
    abstract: ClassVar[bool] = True  # a base, not a stored event type
    kind = SUMMONS
    id_field = "summons_id"
    summons_id: UUID


class SummonsProposed(_SummonsEvent):
    """A summons (约谈) of a unit or person was proposed, with its basis."""

    campaign_id: UUID
    subject: Party
    convener: Convener
    reason_zh: Text
    basis: Basis
    source: Source


class SummonsScheduled(_SummonsEvent):
    """The summons was scheduled (or rescheduled) by a convener."""

    at: AwareDatetime
    convened_by: Party
    location: str | None = None


class SummonsHeld(_SummonsEvent):
    """The summons was held (约谈已开展): minutes and the commitments made."""

    minutes_zh: Text
    commitments: tuple[str, ...] = ()


class SummonsCancelled(_SummonsEvent):
    """The summons was cancelled (or the proposal declined), with the reason."""

    reason: Text


class Summons(Frozen):
    summons_id: UUID
    campaign_id: UUID
    subject: Party
    convener: Convener
    reason_zh: str
    basis: tuple[BasisRef, ...]
    source: Source
    status: Literal["proposed", "scheduled", "held", "cancelled"] = "proposed"
    at: datetime | None = None
    convened_by: Party | None = None
    minutes_zh: str | None = None
    commitments: tuple[str, ...] = ()
    cancel_reason: str | None = None


@evolver(SUMMONS)
def evolve_summons(state: Summons | None, event: DomainEvent) -> Summons:
    if isinstance(event, SummonsProposed):
        return Summons(**event.model_dump(exclude={"meta"}))
    assert state is not None
    if isinstance(event, SummonsScheduled):
        return state.model_copy(update={"status": "scheduled", "at": event.at, "convened_by": event.convened_by})
    if isinstance(event, SummonsHeld):
        return state.model_copy(update={"status": "held", "minutes_zh": event.minutes_zh,
                                        "commitments": event.commitments})
    if isinstance(event, SummonsCancelled):
        return state.model_copy(update={"status": "cancelled", "cancel_reason": event.reason})
    raise UnhandledEvent(SUMMONS, event)


class ProposeSummons(Command):
    """Propose a summons (提议约谈) of a unit or person, with its basis."""

    summons_id: UUID
    campaign_id: UUID
    subject: Party
    convener: Convener = "hq"
    reason_zh: Text
    basis: Basis
    source: Source = "manual"


class ScheduleSummons(Command):
    summons_id: UUID
    at: Instant
    convened_by: Party
    location: Name | None = None


class HoldSummons(Command):
    summons_id: UUID
    minutes_zh: Text
    commitments: tuple[Commitment, ...] = Field(default=(), max_length=50)


class CancelSummons(Command):
    summons_id: UUID
    reason: Text


def propose_summons(state: Summons | None, cmd: ProposeSummons, ctx: CommandContext) -> list[DomainEvent]:
    ensure_role(ctx.actor, PROPOSER_ROLES)
    if state is not None:
        raise Conflict("summons_exists", "约谈已提议", "summons already proposed", summons_id=str(cmd.summons_id))
    return [SummonsProposed(meta=ctx.meta, **cmd.model_dump(exclude={"command_id", "occurred_at"}))]


def schedule_summons(state: Summons | None, cmd: ScheduleSummons, ctx: CommandContext) -> list[DomainEvent]:
    s = _summons_in(state, cmd.summons_id, ctx.actor, {"proposed", "scheduled"})
    if s.status == "scheduled" and (s.at, s.convened_by) == (cmd.at, cmd.convened_by):
        return []
    return [SummonsScheduled(meta=ctx.meta, summons_id=s.summons_id, at=cmd.at, convened_by=cmd.convened_by,
                             location=cmd.location)]


def hold_summons(state: Summons | None, cmd: HoldSummons, ctx: CommandContext) -> list[DomainEvent]:
    s = _summons_in(state, cmd.summons_id, ctx.actor, {"scheduled"})
    return [SummonsHeld(meta=ctx.meta, summons_id=s.summons_id, minutes_zh=cmd.minutes_zh,
                        commitments=cmd.commitments)]


def cancel_summons(state: Summons | None, cmd: CancelSummons, ctx: CommandContext) -> list[DomainEvent]:
    s = _summons_in(state, cmd.summons_id, ctx.actor, {"proposed", "scheduled"})
    return [SummonsCancelled(meta=ctx.meta, summons_id=s.summons_id, reason=cmd.reason)]


def _summons_in(state: Summons | None, summons_id: UUID, actor: Actor, allowed: set[str]) -> Summons:
    ensure_role(actor, SUMMONS_ROLES)
    if state is None:
        raise NotFound("summons_not_found", "约谈不存在", "summons not found", summons_id=str(summons_id))
    if state.status not in allowed:
        raise Conflict("invalid_summons_state", "约谈当前状态不允许此操作", "the summons is not in a state allowing this",
                       status=state.status, allowed=sorted(allowed))
    return state
