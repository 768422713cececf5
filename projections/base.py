"""What every read model is: tables, handlers that turn events into rows, and its tracked position.

A projection never commits by itself: the runner (infra/projector.py) hands it a cursor inside
one transaction per batch and records the batch's last notification id in the same transaction,
so each event changes the tables exactly once, and a rebuild truncates `tables` and replays.

A read model that sets `batched` also writes a whole batch at once (`apply_batch`: its row changes
gathered in Python and written with one statement per table, projections/batch.py), because a round
trip per event bounded a rebuild at a few thousand events a second. `apply`, one event at a time,
stays the reference: the projector falls back to it to find the one event a failing batch cannot
apply (its dead letter), and a batch must leave exactly the rows `apply` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Callable, ClassVar
from uuid import UUID

from psycopg import Cursor

from domain.kernel.base import DomainEvent


@dataclass(frozen=True)
class RecordedEvent:
    """An event as read from the notification log: its position, aggregate, version and payload."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    event: DomainEvent

    @property
    def event_id(self) -> str:
        return f"{self.originator_id}:{self.originator_version}"


Handler = Callable[[Cursor[Any], RecordedEvent], None]


class Projection:
    """Base of a read model. Subclasses set `name`, `tables`, `ddl`, and register handlers.

    `handlers` maps an event class to a function `(cursor, recorded) -> None`; events of other
    types are skipped (the position still advances past them). A read model that handles some
    events of an aggregate kind handles all of them (the checklist test holds it to that, so a new
    event cannot slip past it), unless it names the kind in `partial_kinds`.
    """

    name: ClassVar[str] = ""
    tables: ClassVar[tuple[str, ...]] = ()
    ddl: ClassVar[tuple[str, ...]] = ()
    partial_kinds: ClassVar[frozenset[str]] = frozenset()  # kinds it reads only some events of, on purpose
    batched: ClassVar[bool] = False  # whether `apply_batch` writes a batch in a few statements (else: event by event)

    def __init__(self) -> None:
        self.handlers: dict[type[DomainEvent], Handler] = {}
        self.register()

    def register(self) -> None:
        """Fill `self.handlers` (override)."""

    def on(self, *event_types: type[DomainEvent]) -> Callable[[Handler], Handler]:
        def add(fn: Handler) -> Handler:
            for t in event_types:
                self.handlers[t] = fn
            return fn

        return add

    @property
    def topics(self) -> tuple[str, ...]:
        """The stable names of the events this projection reads (filters the log in the database)."""
        return tuple(sorted(t.event_name for t in self.handlers))

    def create(self, curs: Cursor[Any]) -> None:
        for statement in self.ddl:
            curs.execute(statement)

    def apply(self, curs: Cursor[Any], recorded: RecordedEvent) -> None:
        handler = self.handlers.get(type(recorded.event))
        if handler is not None:
            handler(curs, recorded)

    def apply_batch(self, curs: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        """Apply events in log order, leaving the rows `apply` would leave one by one (override with `batched`)."""
        for recorded in events:
            self.apply(curs, recorded)
