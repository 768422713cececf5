"""The stored history with its positions, and a reader that sees it as it stood at a cut-off (截至某时).

Every audit question is asked of the event store itself, never of a projection that could be wrong:
an aggregate's events are read with their notification ids (the log position), so a cut-off can be
"what was stored before position p" (what a decision at p could read), "what was recorded by T"
(what HQ could know) or "what had occurred by T" (what had happened in the field, offline entries
included). `AsOfReader` is the command service's `Reader` over such a cut-off: the escalation
adapters and gather functions fold exactly as they did then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

from domain.kernel.base import DomainEvent, event_class, event_uuid, fold
from infra.commands import Reader
from infra.store.event_store import Dudao

S = TypeVar("S")


@dataclass(frozen=True)
class Positioned:
    """One stored event with its place in the log."""

    position: int
    originator_id: UUID
    version: int
    event: DomainEvent

    @property
    def event_id(self) -> str:
        return f"{self.originator_id}:{self.version}"

    @property
    def uuid(self) -> UUID:
        return event_uuid(self.originator_id, self.version)

    @property
    def kind(self) -> str:
        return self.event.kind


@dataclass(frozen=True)
class Cutoff:
    """Which events count: stored before `position`, recorded by `recorded_by`, occurred by `occurred_by` (all that are set)."""

    position: int | None = None
    recorded_by: datetime | None = None
    occurred_by: datetime | None = None

    def admits(self, e: Positioned) -> bool:
        return ((self.position is None or e.position < self.position)
                and (self.recorded_by is None or e.event.meta.recorded_at <= self.recorded_by)
                and (self.occurred_by is None or e.event.meta.occurred_at <= self.occurred_by))


NOW = Cutoff()


def events_table(app: Dudao) -> Any:
    return SQL("{}.{}").format(Identifier(app.store.datastore.schema), Identifier(app.store.events_table_name))


class History:
    """Reads aggregates' events with their positions from the store, once each (a cache per audit request)."""

    def __init__(self, app: Dudao) -> None:
        self.app = app
        self._cache: dict[UUID, list[Positioned]] = {}
        self._folds: dict[tuple[str, UUID, Cutoff], Any] = {}  # states are frozen: one fold per cut-off serves all

    def of(self, aggregate_id: UUID) -> list[Positioned]:
        if aggregate_id not in self._cache:
            self._cache[aggregate_id] = self.load([aggregate_id]).get(aggregate_id, [])
        return self._cache[aggregate_id]

    def load(self, ids: list[UUID]) -> dict[UUID, list[Positioned]]:
        """The events of several aggregates in one query, oldest first per aggregate."""
        query = SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
                    " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version").format(events_table(self.app))
        out: dict[UUID, list[Positioned]] = {i: [] for i in ids}
        with self.app.store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (ids,))
            for row in curs.fetchall():
                out[row["originator_id"]].append(self.decode(row))
        for i, events in out.items():
            self._cache.setdefault(i, events)
        return out

    def decode(self, row: dict[str, Any]) -> Positioned:
        stored = self.app.decode(StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                                             topic=row["topic"], state=bytes(row["state"])))
        return Positioned(row["notification_id"], stored.originator_id, stored.originator_version, stored.event)

    def at_positions(self, positions: list[int]) -> dict[int, Positioned]:
        """The events at these log positions (missing ones are absent)."""
        query = SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
                    " WHERE notification_id = ANY(%s)").format(events_table(self.app))
        with self.app.store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (positions,))
            return {row["notification_id"]: self.decode(row) for row in curs.fetchall()}

    def kind_of(self, aggregate_id: UUID) -> str | None:
        events = self.of(aggregate_id)
        return events[0].kind if events else None


def kind_of_topic(topic: str) -> str:
    return event_class(topic).kind


@dataclass
class AsOfReader(Reader):
    """The command service's reader over the store as it stood at a cut-off; remembers what it read."""

    history: History
    cutoff: Cutoff = NOW
    touched: set[UUID] = field(default_factory=set)

    def events(self, aggregate_id: UUID) -> list[Positioned]:
        self.touched.add(aggregate_id)
        return [e for e in self.history.of(aggregate_id) if self.cutoff.admits(e)]

    def get(self, kind: str, aggregate_id: UUID, state_type: type[S]) -> S | None:
        events = self.events(aggregate_id)
        if not events or events[0].kind != kind:
            return None
        key = (kind, aggregate_id, self.cutoff)
        if key not in self.history._folds:
            self.history._folds[key] = fold(kind, [e.event for e in events], object)
        state = self.history._folds[key]
        if isinstance(state, state_type):
            return state
        raise TypeError(f"{kind} {aggregate_id} is a {type(state).__name__}, not a {state_type.__name__}")

    def query(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Read-model queries answer as of now (only mappings that never change are read this way: a request's parent)."""
        with self.history.app.store.datastore.get_connection() as conn:
            return fn(conn, *args)

    def at(self, cutoff: Cutoff) -> AsOfReader:
        """Another reader over the same history (and cache) at another cut-off."""
        return AsOfReader(self.history, cutoff)
