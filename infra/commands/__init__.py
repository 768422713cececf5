"""Command handlers: for each command, which aggregate it targets, what else it reads, which rule decides.

A new use case is one decision function in domain/ plus one `Handler(...)` line in a module here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar
from uuid import UUID

from domain.kernel.base import Actor, Command

C = TypeVar("C", bound=Command)
S = TypeVar("S")


class Reader:
    """Read-only access for gathering what a decision needs (the service supplies it).

    `get(kind, id, state_type)`: an aggregate's folded state (None if unknown or of another kind);
    `query(fn, *args)`: a read-model query `fn(conn, *args)`; `actor`: who issues the command.
    """

    actor: Actor | None = None

    def get(self, kind: str, aggregate_id: UUID, state_type: type[S]) -> S | None:  # pragma: no cover - interface
        raise NotImplementedError

    def query(self, fn: Callable[..., Any], *args: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Handler(Generic[C]):
    """How the service runs one command type.

    `decide(state, cmd, ctx)` or, with `gather`, `decide(state, cmd, ctx, refs)` where
    `refs = gather(cmd, reader)` holds the other aggregates' states the rule needs.
    `roles` lists the actor roles allowed to issue it (None: any authenticated actor).
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


HANDLERS: dict[type[Command], Handler[Any]] = {}


def register(*handlers: Handler[Any]) -> None:
    for h in handlers:
        HANDLERS[h.command] = h
