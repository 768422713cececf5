"""Unit (单位/机构): an organisation that bears responsibility — HQ, office, group, sub-command, department,
street office, community committee. Units form one tree per campaign under the HQ (总指挥部).
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from domain.kernel.base import Command, CommandContext, DomainError, DomainEvent, Frozen, UnhandledEvent, evolver
from domain.kernel.scalars import Flag
from domain.structure.tree import (
    Name, Note, Reason, TreeRefs, check_parent, meta_for, require_active, require_campaign, require_existing,
    require_kind, require_new,
)

UnitKind = Literal["hq", "office", "group", "sub_command", "department", "street_office", "community_committee"]


class UnitRegistered(DomainEvent):
    """A unit was added to the command structure (单位登记)."""

    kind = "unit"
    id_field = "unit_id"
    unit_id: UUID
    campaign_id: UUID
    name: str
    unit_kind: UnitKind
    parent_id: UUID | None
    invented: bool = False
    note: str | None = None


class UnitRenamed(DomainEvent):
    """A unit took a new name; the previous one stays on record."""

    kind = "unit"
    id_field = "unit_id"
    unit_id: UUID
    name: str
    previous_name: str


class UnitMoved(DomainEvent):
    """A unit was placed under another parent unit (隶属调整)."""

    kind = "unit"
    id_field = "unit_id"
    unit_id: UUID
    parent_id: UUID | None
    previous_parent_id: UUID | None


class UnitRetired(DomainEvent):
    """A unit was retired (撤销) — it stays in history but takes no new work."""

    kind = "unit"
    id_field = "unit_id"
    unit_id: UUID
    reason: str


class Unit(Frozen):
    unit_id: UUID
    campaign_id: UUID
    name: str
    unit_kind: UnitKind
    parent_id: UUID | None
    retired: bool = False
    invented: bool = False
    names: tuple[str, ...] = ()


@evolver("unit")
def evolve(state: Unit | None, event: DomainEvent) -> Unit:
    require_kind("unit", event)
    if isinstance(event, UnitRegistered):
        return Unit(**event.model_dump(include=set(Unit.model_fields)), names=(event.name,))
    assert state is not None
    if isinstance(event, UnitRenamed):
        return state.model_copy(update={"name": event.name, "names": (*state.names, event.name)})
    if isinstance(event, UnitMoved):
        return state.model_copy(update={"parent_id": event.parent_id})
    if isinstance(event, UnitRetired):
        return state.model_copy(update={"retired": True})
    raise UnhandledEvent("unit", event)


class RegisterUnit(Command):
    """Register a unit (登记单位); every kind but the HQ needs a parent unit."""

    unit_id: UUID
    campaign_id: UUID
    name: Name
    unit_kind: UnitKind
    parent_id: UUID | None = None
    invented: Flag = False
    note: Note | None = None


class RenameUnit(Command):
    unit_id: UUID
    name: Name


class MoveUnit(Command):
    unit_id: UUID
    parent_id: UUID | None


class RetireUnit(Command):
    unit_id: UUID
    reason: Reason


def has_valid_parent_shape(unit_kind: str, parent_id: UUID | None) -> bool:
    """The HQ heads the tree (no parent); every other unit hangs under a parent."""
    return (parent_id is None) == (unit_kind == "hq")


def check_shape(unit_id: UUID, unit_kind: str, parent_id: UUID | None) -> None:
    if has_valid_parent_shape(unit_kind, parent_id):
        return
    if unit_kind == "hq":
        raise DomainError("parent_not_allowed", "总指挥部不能有上级单位", "the HQ unit has no parent", unit_id=str(unit_id))
    raise DomainError("parent_required", "该单位必须有上级单位", "this unit needs a parent unit", unit_id=str(unit_id))


def _existing(state: Unit | None, unit_id: UUID) -> Unit:
    return require_existing(state, "unit_not_found", "单位", "unit", unit_id)


def register_unit(state: Unit | None, cmd: RegisterUnit, ctx: CommandContext, refs: TreeRefs) -> list[DomainEvent]:
    require_new(state, "单位", "unit", cmd.unit_id)
    require_campaign(refs.campaign, cmd.campaign_id)
    check_shape(cmd.unit_id, cmd.unit_kind, cmd.parent_id)
    check_parent(cmd.unit_id, cmd.parent_id, cmd.campaign_id, refs)
    return [UnitRegistered(meta=meta_for(ctx, cmd.campaign_id), **cmd.model_dump(exclude={"command_id", "occurred_at"}))]


def rename_unit(state: Unit | None, cmd: RenameUnit, ctx: CommandContext) -> list[DomainEvent]:
    unit = _existing(state, cmd.unit_id)
    require_active(unit, "单位", "unit", cmd.unit_id)
    if unit.name == cmd.name:
        return []
    return [UnitRenamed(meta=meta_for(ctx, unit.campaign_id), unit_id=cmd.unit_id, name=cmd.name, previous_name=unit.name)]


def move_unit(state: Unit | None, cmd: MoveUnit, ctx: CommandContext, refs: TreeRefs) -> list[DomainEvent]:
    unit = _existing(state, cmd.unit_id)
    require_active(unit, "单位", "unit", cmd.unit_id)
    if unit.parent_id == cmd.parent_id:
        return []
    check_shape(cmd.unit_id, unit.unit_kind, cmd.parent_id)
    check_parent(cmd.unit_id, cmd.parent_id, unit.campaign_id, refs)
    return [UnitMoved(meta=meta_for(ctx, unit.campaign_id), unit_id=cmd.unit_id, parent_id=cmd.parent_id,
                      previous_parent_id=unit.parent_id)]


def retire_unit(state: Unit | None, cmd: RetireUnit, ctx: CommandContext) -> list[DomainEvent]:
    unit = _existing(state, cmd.unit_id)
    if unit.retired:
        return []
    return [UnitRetired(meta=meta_for(ctx, unit.campaign_id), unit_id=cmd.unit_id, reason=cmd.reason)]
