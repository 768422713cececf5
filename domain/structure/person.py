"""Person (人员): a leader, cadre, supervisor or liaison officer; belongs to units and holds roles there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from domain.kernel.base import (
    Command, CommandContext, DomainError, DomainEvent, Frozen, NotFound, UnhandledEvent, evolver,
)
from domain.structure.tree import (
    Name, Reason, Title, meta_for, require_active, require_campaign, require_existing, require_kind, require_new,
    require_same_campaign,
)
from domain.structure.unit import Unit

MemberRole = Literal["unit_head", "unit_officer", "supervisor", "leader", "hq_office", "auditor", "liaison"]


class PersonRegistered(DomainEvent):
    """A person was registered in the campaign (人员登记)."""

    kind = "person"
    id_field = "person_id"
    person_id: UUID
    campaign_id: UUID
    name: str
    title: str | None = None


class PersonRenamed(DomainEvent):
    """A person's recorded name was changed; the previous one stays on record."""

    kind = "person"
    id_field = "person_id"
    person_id: UUID
    name: str
    previous_name: str


class PersonJoinedUnit(DomainEvent):
    """A person joined a unit with these roles (or their roles there changed to these)."""

    kind = "person"
    id_field = "person_id"
    person_id: UUID
    unit_id: UUID
    roles: tuple[MemberRole, ...]


class PersonLeftUnit(DomainEvent):
    """A person left a unit (调离)."""

    kind = "person"
    id_field = "person_id"
    person_id: UUID
    unit_id: UUID
    reason: str


class PersonRetired(DomainEvent):
    """A person was retired from the campaign (撤销) — they stay in history but take no new duty."""

    kind = "person"
    id_field = "person_id"
    person_id: UUID
    reason: str


class Person(Frozen):
    person_id: UUID
    campaign_id: UUID
    name: str
    title: str | None = None
    retired: bool = False
    memberships: dict[UUID, tuple[str, ...]] = Field(default_factory=dict)
    names: tuple[str, ...] = ()


@evolver("person")
def evolve(state: Person | None, event: DomainEvent) -> Person:
    require_kind("person", event)
    if isinstance(event, PersonRegistered):
        return Person(**event.model_dump(include=set(Person.model_fields)), names=(event.name,))
    assert state is not None
    if isinstance(event, PersonRenamed):
        return state.model_copy(update={"name": event.name, "names": (*state.names, event.name)})
    if isinstance(event, PersonJoinedUnit):
        return state.model_copy(update={"memberships": {**state.memberships, event.unit_id: event.roles}})
    if isinstance(event, PersonLeftUnit):
        rest = {u: r for u, r in state.memberships.items() if u != event.unit_id}
        return state.model_copy(update={"memberships": rest})
    if isinstance(event, PersonRetired):
        return state.model_copy(update={"retired": True})
    raise UnhandledEvent("person", event)


class RegisterPerson(Command):
    """Register a person (登记人员)."""

    person_id: UUID
    campaign_id: UUID
    name: Name
    title: Title | None = None


class RenamePerson(Command):
    person_id: UUID
    name: Name


class JoinUnit(Command):
    """Put a person in a unit with roles; joining again replaces their roles there."""

    person_id: UUID
    unit_id: UUID
    roles: tuple[MemberRole, ...] = Field(default=(), max_length=7)


class LeaveUnit(Command):
    person_id: UUID
    unit_id: UUID
    reason: Reason


class RetirePerson(Command):
    """Retire a person; they leave every unit they belong to first."""

    person_id: UUID
    reason: Reason


@dataclass(frozen=True)
class PersonRefs:
    """What a person decision reads besides the person: the campaign, or the unit being joined."""

    campaign: Any = None
    unit: Unit | None = None


def _existing(state: Person | None, person_id: UUID) -> Person:
    return require_existing(state, "person_not_found", "人员", "person", person_id)


def register_person(state: Person | None, cmd: RegisterPerson, ctx: CommandContext, refs: PersonRefs) -> list[DomainEvent]:
    require_new(state, "人员", "person", cmd.person_id)
    require_campaign(refs.campaign, cmd.campaign_id)
    return [PersonRegistered(meta=meta_for(ctx, cmd.campaign_id), **cmd.model_dump(exclude={"command_id", "occurred_at"}))]


def rename_person(state: Person | None, cmd: RenamePerson, ctx: CommandContext) -> list[DomainEvent]:
    person = _existing(state, cmd.person_id)
    require_active(person, "人员", "person", cmd.person_id)
    if person.name == cmd.name:
        return []
    return [PersonRenamed(meta=meta_for(ctx, person.campaign_id), person_id=cmd.person_id, name=cmd.name,
                          previous_name=person.name)]


def check_joinable(unit: Unit | None, unit_id: UUID, campaign_id: UUID) -> Unit:
    """A person joins only an existing, active unit of their own campaign."""
    if unit is None:
        raise NotFound("unit_not_found", "单位不存在", "unit not found", unit_id=str(unit_id))
    require_same_campaign(unit, campaign_id, unit_id)
    if unit.retired:
        raise DomainError("unit_retired", "单位已撤销，不能加入", "the unit is retired", unit_id=str(unit_id))
    return unit


def join_unit(state: Person | None, cmd: JoinUnit, ctx: CommandContext, refs: PersonRefs) -> list[DomainEvent]:
    person = _existing(state, cmd.person_id)
    require_active(person, "人员", "person", cmd.person_id)
    check_joinable(refs.unit, cmd.unit_id, person.campaign_id)
    roles = tuple(dict.fromkeys(cmd.roles))
    current = person.memberships.get(cmd.unit_id)
    if current is not None and set(current) == set(roles):
        return []
    return [PersonJoinedUnit(meta=meta_for(ctx, person.campaign_id), person_id=cmd.person_id, unit_id=cmd.unit_id,
                             roles=roles)]


def leave_unit(state: Person | None, cmd: LeaveUnit, ctx: CommandContext) -> list[DomainEvent]:
    person = _existing(state, cmd.person_id)
    if cmd.unit_id not in person.memberships:
        raise DomainError("not_member", "该人员不在此单位", "the person is not a member of this unit",
                          person_id=str(cmd.person_id), unit_id=str(cmd.unit_id))
    return [PersonLeftUnit(meta=meta_for(ctx, person.campaign_id), person_id=cmd.person_id, unit_id=cmd.unit_id,
                           reason=cmd.reason)]


def retire_person(state: Person | None, cmd: RetirePerson, ctx: CommandContext) -> list[DomainEvent]:
    person = _existing(state, cmd.person_id)
    if person.retired:
        return []
    meta = meta_for(ctx, person.campaign_id)
    left: list[DomainEvent] = [
        PersonLeftUnit(meta=meta, person_id=cmd.person_id, unit_id=u, reason=cmd.reason) for u in person.memberships
    ]
    return [*left, PersonRetired(meta=meta, person_id=cmd.person_id, reason=cmd.reason)]
