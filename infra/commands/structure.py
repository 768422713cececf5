"""Handlers for the command structure (指挥体系): units, places and people.

The gather functions read what the tree rules need — the campaign, the new parent and the chain of
its ancestors — so the decisions in domain/ stay pure.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.structure import person as pe
from domain.structure.campaign import Campaign
from domain.structure import place as pl
from domain.structure import unit as un
from domain.structure.tree import TreeRefs
from domain.kernel.roles import HQ_ROLES
from infra.commands import Handler, Reader, register
from infra.commands.references import TARGET, Of, Spec

# Far deeper than any real command structure; only guards the walk against corrupt history.
MAX_DEPTH = 256

# The two trees: a unit's parent is a unit, a place's parent a place.
TreeNode = un.Unit | pl.Place


def lineage(reader: Reader, kind: str, node_type: type[TreeNode], parent_id: UUID | None) -> tuple[UUID, ...]:
    """The parent's id and its ancestors' ids, nearest first (stops at the root, a loop or MAX_DEPTH)."""
    chain: list[UUID] = []
    node_id = parent_id
    while node_id is not None and node_id not in chain and len(chain) < MAX_DEPTH:
        chain.append(node_id)
        node = reader.get(kind, node_id, node_type)
        node_id = node.parent_id if node is not None else None
    return tuple(chain)


def tree_refs(
    reader: Reader, kind: str, node_type: type[TreeNode], parent_id: UUID | None, campaign_id: UUID | None = None
) -> TreeRefs:
    return TreeRefs(
        campaign=reader.get("campaign", campaign_id, Campaign) if campaign_id is not None else None,
        parent=reader.get(kind, parent_id, node_type) if parent_id is not None else None,
        lineage=lineage(reader, kind, node_type, parent_id),
    )


def gather_register_unit(cmd: un.RegisterUnit, reader: Reader) -> TreeRefs:
    return tree_refs(reader, "unit", un.Unit, cmd.parent_id, cmd.campaign_id)


def gather_move_unit(cmd: un.MoveUnit, reader: Reader) -> TreeRefs:
    return tree_refs(reader, "unit", un.Unit, cmd.parent_id)


def gather_register_place(cmd: pl.RegisterPlace, reader: Reader) -> TreeRefs:
    return tree_refs(reader, "place", pl.Place, cmd.parent_id, cmd.campaign_id)


def gather_move_place(cmd: pl.MovePlace, reader: Reader) -> TreeRefs:
    return tree_refs(reader, "place", pl.Place, cmd.parent_id)


def gather_register_person(cmd: pe.RegisterPerson, reader: Reader) -> pe.PersonRefs:
    return pe.PersonRefs(campaign=reader.get("campaign", cmd.campaign_id, Campaign))


def gather_join_unit(cmd: pe.JoinUnit, reader: Reader) -> pe.PersonRefs:
    return pe.PersonRefs(unit=reader.get("unit", cmd.unit_id, un.Unit))


def _by(field: str) -> Any:
    return lambda cmd: getattr(cmd, field)


UNIT: dict[str, Spec] = {"unit_id": TARGET}
PLACE: dict[str, Spec] = {"place_id": TARGET}
PERSON: dict[str, Spec] = {"person_id": TARGET}
UNIT_PARENT: dict[str, Spec] = {**UNIT, "parent_id": Of("unit", missing="parent_not_found")}
PLACE_PARENT: dict[str, Spec] = {**PLACE, "parent_id": Of("place", missing="parent_not_found")}
MEMBERSHIP: dict[str, Spec] = {**PERSON, "unit_id": Of("unit")}

register(
    Handler(un.RegisterUnit, "unit", _by("unit_id"), un.register_unit, gather_register_unit, roles=HQ_ROLES,
            refs=UNIT_PARENT),
    Handler(un.RenameUnit, "unit", _by("unit_id"), un.rename_unit, roles=HQ_ROLES, refs=UNIT),
    Handler(un.MoveUnit, "unit", _by("unit_id"), un.move_unit, gather_move_unit, roles=HQ_ROLES,
            serialize="tree:unit", refs=UNIT_PARENT),
    Handler(un.RetireUnit, "unit", _by("unit_id"), un.retire_unit, roles=HQ_ROLES, refs=UNIT),
    Handler(pl.RegisterPlace, "place", _by("place_id"), pl.register_place, gather_register_place, roles=HQ_ROLES,
            refs=PLACE_PARENT),
    Handler(pl.RenamePlace, "place", _by("place_id"), pl.rename_place, roles=HQ_ROLES, refs=PLACE),
    Handler(pl.MovePlace, "place", _by("place_id"), pl.move_place, gather_move_place, roles=HQ_ROLES,
            serialize="tree:place", refs=PLACE_PARENT),
    Handler(pl.RetirePlace, "place", _by("place_id"), pl.retire_place, roles=HQ_ROLES, refs=PLACE),
    Handler(pe.RegisterPerson, "person", _by("person_id"), pe.register_person, gather_register_person, roles=HQ_ROLES,
            refs=PERSON),
    Handler(pe.RenamePerson, "person", _by("person_id"), pe.rename_person, roles=HQ_ROLES, refs=PERSON),
    Handler(pe.JoinUnit, "person", _by("person_id"), pe.join_unit, gather_join_unit, roles=HQ_ROLES, refs=MEMBERSHIP),
    Handler(pe.LeaveUnit, "person", _by("person_id"), pe.leave_unit, roles=HQ_ROLES, refs=MEMBERSHIP),
    Handler(pe.RetirePerson, "person", _by("person_id"), pe.retire_person, roles=HQ_ROLES, refs=PERSON),
)
