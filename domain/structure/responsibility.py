"""Responsibility (责任分工/包保): who answers for a place, task or indicator, in which role, from when to when.

One aggregate per scope (a place, task or indicator of one campaign); its id is derived from
(campaign, scope kind, scope id). Each assignment names a party (a unit or a person), a role —
lead (牵头), co (配合/联创联建) or bao_bao (包保责任人) — and its validity interval. A scope has at
most one lead at any instant: a new lead supersedes the previous one at its own start, in the
same decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel

from domain.kernel.base import (
    Command, CommandContext, Conflict, DomainError, DomainEvent, Frozen, NotFound, UnhandledEvent, derived_id, evolver,
)
from domain.kernel.instants import Instant
from domain.kernel.text import free_text
from domain.structure.tree import require_kind

ScopeKind = Literal["place", "task", "indicator"]
PartyKind = Literal["unit", "person"]
Role = Literal["lead", "co", "bao_bao"]


def responsibility_id(campaign_id: UUID, scope_kind: str, scope_id: UUID) -> UUID:
    """The aggregate id of a scope's responsibilities (deterministic: one per scope)."""
    return derived_id("responsibility", campaign_id, scope_kind, scope_id)


def new_assignment_id(scope_ref_id: UUID, command_id: str) -> UUID:
    """The id of the assignment an AssignResponsibility command creates (same for a retried command)."""
    return derived_id("responsibility-assignment", scope_ref_id, command_id)


class ResponsibilityAssigned(DomainEvent):
    """A party was made responsible for a scope in a role, from `effective_from` (责任分工)."""

    kind = "responsibility"
    id_field = "scope_ref_id"
    scope_ref_id: UUID
    campaign_id: UUID
    assignment_id: UUID
    scope_kind: ScopeKind
    scope_id: UUID
    party_kind: PartyKind
    party_id: UUID
    role: Role
    effective_from: datetime
    note: str | None = None


class ResponsibilityEnded(DomainEvent):
    """An assignment ended at `effective_to` because a new lead took over (superseded)."""

    kind = "responsibility"
    id_field = "scope_ref_id"
    scope_ref_id: UUID
    assignment_id: UUID
    effective_to: datetime
    reason: Literal["superseded"] = "superseded"


class ResponsibilityRevoked(DomainEvent):
    """HQ revoked an assignment at `effective_to`, giving a reason (撤销责任分工)."""

    kind = "responsibility"
    id_field = "scope_ref_id"
    scope_ref_id: UUID
    assignment_id: UUID
    effective_to: datetime
    reason: str


class Assignment(Frozen):
    assignment_id: UUID
    party_kind: PartyKind
    party_id: UUID
    role: Role
    effective_from: datetime
    effective_to: datetime | None = None
    note: str | None = None

    @property
    def in_force(self) -> bool:
        """Not yet ended or revoked."""
        return self.effective_to is None


class Responsibility(Frozen):
    scope_ref_id: UUID
    campaign_id: UUID
    scope_kind: ScopeKind
    scope_id: UUID
    assignments: tuple[Assignment, ...] = ()

    def find(self, assignment_id: UUID) -> Assignment | None:
        return next((a for a in self.assignments if a.assignment_id == assignment_id), None)

    @property
    def current_lead(self) -> Assignment | None:
        return next((a for a in self.assignments if a.role == "lead" and a.in_force), None)


def _ended(state: Responsibility, assignment_id: UUID, effective_to: datetime) -> Responsibility:
    updated = tuple(
        a.model_copy(update={"effective_to": effective_to}) if a.assignment_id == assignment_id else a
        for a in state.assignments
    )
    return state.model_copy(update={"assignments": updated})


@evolver("responsibility")
def evolve(state: Responsibility | None, event: DomainEvent) -> Responsibility:
    require_kind("responsibility", event)
    if isinstance(event, ResponsibilityAssigned):
        if state is None:
            state = Responsibility(scope_ref_id=event.scope_ref_id, campaign_id=event.campaign_id,
                                   scope_kind=event.scope_kind, scope_id=event.scope_id)
        new = Assignment(**event.model_dump(include=set(Assignment.model_fields) - {"effective_to"}))
        return state.model_copy(update={"assignments": (*state.assignments, new)})
    assert state is not None
    if isinstance(event, (ResponsibilityEnded, ResponsibilityRevoked)):
        return _ended(state, event.assignment_id, event.effective_to)
    raise UnhandledEvent("responsibility", event)


class AssignResponsibility(Command):
    """Make a unit or person responsible for a place, task or indicator (分配责任/包保)."""

    campaign_id: UUID
    scope_kind: ScopeKind
    scope_id: UUID
    party_kind: PartyKind
    party_id: UUID
    role: Role
    effective_from: Instant | None = None
    note: Annotated[str, free_text(500)] | None = None


class RevokeResponsibility(Command):
    """Revoke an assignment in force, with a reason (撤销责任分工)."""

    campaign_id: UUID
    scope_kind: ScopeKind
    scope_id: UUID
    assignment_id: UUID
    reason: Annotated[str, free_text(500)]
    effective_to: Instant | None = None


class Subject(BaseModel):
    """What a rule needs to know of a scope or party: its campaign and whether it is retired."""

    campaign_id: UUID
    retired: bool = False


class AssignRefs(BaseModel):
    """The scope and the party an assignment names (None: not found)."""

    scope: Subject | None
    party: Subject | None


def check_subject(subject: Subject | None, what: str, subject_id: UUID, campaign_id: UUID) -> None:
    """The scope or party exists, belongs to the campaign and is not retired (else 404/422)."""
    zh = {"scope": "责任对象", "party": "责任主体"}[what]
    if subject is None:
        raise NotFound(f"{what}_not_found", f"{zh}不存在", f"{what} not found", id=str(subject_id))
    if subject.campaign_id != campaign_id:
        raise DomainError("wrong_campaign", f"{zh}不属于该创建活动", f"{what} belongs to another campaign",
                          id=str(subject_id))
    if subject.retired:
        raise DomainError(f"{what}_retired", f"{zh}已撤销", f"{what} is retired", id=str(subject_id))


def is_already_assigned(state: Responsibility | None, cmd: AssignResponsibility, start: datetime) -> bool:
    """The same party holds the same role on this scope at some time from `start` on (intervals would overlap)."""
    return state is not None and any(
        a.party_kind == cmd.party_kind and a.party_id == cmd.party_id and a.role == cmd.role
        and (a.effective_to is None or a.effective_to > start)
        for a in state.assignments
    )


def earliest_lead_start(state: Responsibility | None) -> datetime | None:
    """A new lead may not start before this: the current lead's start, or the last former lead's end.

    Keeping lead intervals disjoint means "as of T" never shows two leads of one scope.
    """
    if state is None:
        return None
    bounds = [a.effective_to or a.effective_from for a in state.assignments if a.role == "lead"]
    return max(bounds, default=None)


def _assigned(cmd: AssignResponsibility, ctx: CommandContext, scope_ref_id: UUID, start: datetime) -> ResponsibilityAssigned:
    return ResponsibilityAssigned(
        meta=ctx.meta, scope_ref_id=scope_ref_id, campaign_id=cmd.campaign_id,
        assignment_id=new_assignment_id(scope_ref_id, cmd.command_id), scope_kind=cmd.scope_kind,
        scope_id=cmd.scope_id, party_kind=cmd.party_kind, party_id=cmd.party_id, role=cmd.role,
        effective_from=start, note=cmd.note,
    )


def assign_responsibility(
    state: Responsibility | None, cmd: AssignResponsibility, ctx: CommandContext, refs: AssignRefs
) -> list[DomainEvent]:
    check_subject(refs.scope, "scope", cmd.scope_id, cmd.campaign_id)
    check_subject(refs.party, "party", cmd.party_id, cmd.campaign_id)
    start = cmd.effective_from or ctx.now
    if is_already_assigned(state, cmd, start):
        raise Conflict("already_assigned", "该主体已以相同角色承担此责任", "party already holds this role on this scope",
                       party_id=str(cmd.party_id), role=cmd.role)
    scope_ref_id = responsibility_id(cmd.campaign_id, cmd.scope_kind, cmd.scope_id)
    events: list[DomainEvent] = [_assigned(cmd, ctx, scope_ref_id, start)]
    if cmd.role != "lead":
        return events
    floor = earliest_lead_start(state)
    if floor is not None and start < floor:
        raise DomainError("lead_backdated", "新牵头单位的生效时间不得早于现任（或前任）牵头的任期",
                          "a new lead may not start before the current (or a former) lead's term",
                          effective_from=start.isoformat(), earliest=floor.isoformat())
    current = state.current_lead if state is not None else None
    if current is not None:
        events.insert(0, ResponsibilityEnded(meta=ctx.meta, scope_ref_id=scope_ref_id,
                                             assignment_id=current.assignment_id, effective_to=start))
    return events


def revoke_responsibility(
    state: Responsibility | None, cmd: RevokeResponsibility, ctx: CommandContext
) -> list[DomainEvent]:
    found = state.find(cmd.assignment_id) if state is not None else None
    if state is None or found is None:
        raise NotFound("assignment_not_found", "责任分工不存在", "assignment not found", assignment_id=str(cmd.assignment_id))
    if not found.in_force:
        raise DomainError("assignment_not_in_force", "该责任分工已终止", "assignment is no longer in force",
                          assignment_id=str(cmd.assignment_id))
    end = cmd.effective_to or ctx.now
    if end < found.effective_from:
        raise DomainError("end_before_start", "终止时间不得早于生效时间", "effective_to is before effective_from",
                          effective_from=found.effective_from.isoformat(), effective_to=end.isoformat())
    return [ResponsibilityRevoked(meta=ctx.meta, scope_ref_id=state.scope_ref_id, assignment_id=cmd.assignment_id,
                                  effective_to=end, reason=cmd.reason)]
