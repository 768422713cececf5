"""Command handlers: for each command, which aggregate it targets, what else it reads, which rule decides.

A new use case is one decision function in domain/ plus one `Handler(...)` line in a module here,
naming the roles that may issue it and the entities it references (`infra.commands.references`):
the service checks both, and the campaign and scope of the grant, before any rule runs
(`infra.commands.authorization`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar
from uuid import UUID

from domain.kernel.base import Actor, Command
from domain.structure.person import Person
from infra.commands.grants import Grant
from infra.commands.references import Spec

C = TypeVar("C", bound=Command)
S = TypeVar("S")


class Reader:
    """Read-only access for gathering what a decision needs (the service supplies it).

    `get(kind, id, state_type)`: an aggregate's folded state (None if unknown or of another kind);
    `query(fn, *args)`: a read-model query `fn(conn, *args)`; `actor`: who issues the command;
    `grant`: what their token grants (its unit scope narrows `actor_unit_ids`).
    """

    actor: Actor | None = None
    grant: Grant | None = None

    def get(self, kind: str, aggregate_id: UUID, state_type: type[S]) -> S | None:  # pragma: no cover - interface
        raise NotImplementedError

    def query(self, fn: Callable[..., Any], *args: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Handler(Generic[C]):
    """How the service runs one command type.

    `decide(state, cmd, ctx)` or, with `gather`, `decide(state, cmd, ctx, refs)` where
    `refs = gather(cmd, reader)` holds the other aggregates' states the rule needs.
    `roles` lists the actor roles allowed to issue it (a `domain.kernel.roles` group; None: any role that may write).
    `refs` declares, per field, the entities the command references (`infra.commands.references`).
    `campaign` reads the campaign the body names, if any (the target's own campaign comes first).
    `serialize` names an advisory lock held for the whole load-decide-append.
    """

    command: type[C]
    kind: str
    target: Callable[[C], UUID]
    decide: Callable[..., list[Any]]
    gather: Callable[[C, Reader], Any] | None = None
    roles: frozenset[str] | None = None
    campaign: Callable[[C], UUID | None] = field(default=lambda c: getattr(c, "campaign_id", None))
    # Commands whose rule reads aggregates they do not write (e.g. a move's ancestor chain) name a
    # lock here: the service holds it from load to append, so two such commands cannot interleave.
    serialize: str | None = None
    refs: Mapping[str, Spec] = field(default_factory=dict)


HANDLERS: dict[type[Command], Handler[Any]] = {}


def register(*handlers: Handler[Any]) -> None:
    for h in handlers:
        HANDLERS[h.command] = h


def snake_case(name: str) -> str:
    """`StartCampaign` → `start_campaign`: a command's name on every edge (HTTP route, `dudao command`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def commands_by_name() -> dict[str, type[Command]]:
    """Every registered command by its snake_case name."""
    return {snake_case(command.__name__): command for command in HANDLERS}


def actor_unit_ids(reader: Reader) -> frozenset[UUID]:
    """The units the acting person belongs to now, narrowed to the token's units if it names any (none for a
    process or an unknown person). Every rule that asks "does the actor act for this unit" reads this."""
    actor = reader.actor
    person = reader.get("person", actor.person_id, Person) if actor is not None and actor.person_id else None
    units = frozenset(person.memberships) if person is not None else frozenset()
    scope = reader.grant.unit_ids if reader.grant is not None else None
    return units if scope is None else units & scope
