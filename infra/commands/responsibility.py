"""Handlers for responsibility (责任分工/包保) commands: the scope and party are read to check they may be assigned."""

from __future__ import annotations

from uuid import UUID

from domain.structure import responsibility as r
from domain.structure.indicator import Indicator, Task
from domain.structure.person import Person
from domain.structure.place import Place
from domain.structure.unit import Unit
from domain.kernel.roles import HQ_ROLES
from infra.commands import Handler, Reader, register
from infra.commands.references import OWN, KindIn
from infra.commands.indicator import get_of_kind

# What a scope (place, task, indicator) or a party (unit, person) of each kind folds into.
SUBJECT_TYPES: dict[str, type[Place | Task | Indicator | Unit | Person]] = {
    "place": Place, "task": Task, "indicator": Indicator, "unit": Unit, "person": Person,
}


def subject(reader: Reader, kind: str, aggregate_id: UUID) -> r.Subject | None:
    """A scope's or party's campaign and retired flag (None when no aggregate of that kind has the id)."""
    state = get_of_kind(reader, kind, aggregate_id, SUBJECT_TYPES[kind])
    # The reader caches by id alone, so make sure the state really is a `kind` with this id.
    if state is None or getattr(state, f"{kind}_id", None) != aggregate_id:
        return None
    return r.Subject(campaign_id=state.campaign_id, retired=getattr(state, "retired", False))


def gather_assign(cmd: r.AssignResponsibility, reader: Reader) -> r.AssignRefs:
    return r.AssignRefs(scope=subject(reader, cmd.scope_kind, cmd.scope_id),
                        party=subject(reader, cmd.party_kind, cmd.party_id))


def target(cmd: r.AssignResponsibility | r.RevokeResponsibility) -> UUID:
    return r.responsibility_id(cmd.campaign_id, cmd.scope_kind, cmd.scope_id)


SCOPE = KindIn("scope_kind", missing="scope_not_found")

register(
    Handler(r.AssignResponsibility, "responsibility", target, r.assign_responsibility, gather_assign, HQ_ROLES,
            refs={"scope_id": SCOPE, "party_id": KindIn("party_kind", missing="party_not_found")}),
    Handler(r.RevokeResponsibility, "responsibility", target, r.revoke_responsibility, roles=HQ_ROLES,
            refs={"scope_id": SCOPE, "assignment_id": OWN}),
)
