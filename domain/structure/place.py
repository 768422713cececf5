"""Place (区域/点位): a grid (网格), street, township, community, road, back alley, compound, market or site.
Places nest (a road within a grid within a street); a place may also stand at the top level.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from domain.kernel.base import Command, CommandContext, DomainEvent, Frozen, UnhandledEvent, evolver
from domain.kernel.scalars import Count, Flag
from domain.structure.tree import (
    Name, Note, Reason, TreeRefs, check_parent, meta_for, require_active, require_campaign, require_existing,
    require_kind, require_new,
)

PlaceKind = Literal["grid", "street", "township", "community", "road", "alley", "compound", "market", "site"]


class PlaceRegistered(DomainEvent):
    """A place was added to the campaign's map of responsibility (区域/点位登记)."""

    kind = "place"
    id_field = "place_id"
    place_id: UUID
    campaign_id: UUID
    name: str
    place_kind: PlaceKind
    parent_id: UUID | None
    number: int | None = None
    invented: bool = False
    note: str | None = None


class PlaceRenamed(DomainEvent):
    """A place took a new name; the previous one stays on record."""

    kind = "place"
    id_field = "place_id"
    place_id: UUID
    name: str
    previous_name: str


class PlaceMoved(DomainEvent):
    """A place was placed within another parent place (区划调整)."""

    kind = "place"
    id_field = "place_id"
    place_id: UUID
    parent_id: UUID | None
    previous_parent_id: UUID | None


class PlaceRetired(DomainEvent):
    """A place was retired (撤销) — it stays in history but takes no new work."""

    kind = "place"
    id_field = "place_id"
    place_id: UUID
    reason: str


class Place(Frozen):
    place_id: UUID
    campaign_id: UUID
    name: str
    place_kind: PlaceKind
    parent_id: UUID | None
    number: int | None = None
    retired: bool = False
    invented: bool = False
    names: tuple[str, ...] = ()


@evolver("place")
def evolve(state: Place | None, event: DomainEvent) -> Place:
    require_kind("place", event)
    if isinstance(event, PlaceRegistered):
        return Place(**event.model_dump(include=set(Place.model_fields)), names=(event.name,))
    assert state is not None
    if isinstance(event, PlaceRenamed):
        return state.model_copy(update={"name": event.name, "names": (*state.names, event.name)})
    if isinstance(event, PlaceMoved):
        return state.model_copy(update={"parent_id": event.parent_id})
    if isinstance(event, PlaceRetired):
        return state.model_copy(update={"retired": True})
    raise UnhandledEvent("place", event)


class RegisterPlace(Command):
    """Register a place (登记区域/点位), at the top level or within a parent place."""

    place_id: UUID
    campaign_id: UUID
    name: Name
    place_kind: PlaceKind
    parent_id: UUID | None = None
    number: Count | None = Field(default=None, ge=1, le=1_000_000)
    invented: Flag = False
    note: Note | None = None


class RenamePlace(Command):
    place_id: UUID
    name: Name


class MovePlace(Command):
    place_id: UUID
    parent_id: UUID | None


class RetirePlace(Command):
    place_id: UUID
    reason: Reason


def _existing(state: Place | None, place_id: UUID) -> Place:
    return require_existing(state, "place_not_found", "区域/点位", "place", place_id)


def register_place(state: Place | None, cmd: RegisterPlace, ctx: CommandContext, refs: TreeRefs) -> list[DomainEvent]:
    require_new(state, "区域/点位", "place", cmd.place_id)
    require_campaign(refs.campaign, cmd.campaign_id)
    check_parent(cmd.place_id, cmd.parent_id, cmd.campaign_id, refs)
    return [PlaceRegistered(meta=meta_for(ctx, cmd.campaign_id), **cmd.model_dump(exclude={"command_id", "occurred_at"}))]


def rename_place(state: Place | None, cmd: RenamePlace, ctx: CommandContext) -> list[DomainEvent]:
    place = _existing(state, cmd.place_id)
    require_active(place, "区域/点位", "place", cmd.place_id)
    if place.name == cmd.name:
        return []
    return [PlaceRenamed(meta=meta_for(ctx, place.campaign_id), place_id=cmd.place_id, name=cmd.name,
                         previous_name=place.name)]


def move_place(state: Place | None, cmd: MovePlace, ctx: CommandContext, refs: TreeRefs) -> list[DomainEvent]:
    place = _existing(state, cmd.place_id)
    require_active(place, "区域/点位", "place", cmd.place_id)
    if place.parent_id == cmd.parent_id:
        return []
    check_parent(cmd.place_id, cmd.parent_id, place.campaign_id, refs)
    return [PlaceMoved(meta=meta_for(ctx, place.campaign_id), place_id=cmd.place_id, parent_id=cmd.parent_id,
                       previous_parent_id=place.parent_id)]


def retire_place(state: Place | None, cmd: RetirePlace, ctx: CommandContext) -> list[DomainEvent]:
    place = _existing(state, cmd.place_id)
    if place.retired:
        return []
    return [PlaceRetired(meta=meta_for(ctx, place.campaign_id), place_id=cmd.place_id, reason=cmd.reason)]
