"""As of T (截至某时), replayed from the event store: an entity's state, the names in force, who answered for it,
and the knowledge view — what HQ could see at T next to what had happened by T.

"Known at T" folds the events recorded by T; "happened by T" folds those that had occurred by T,
including ones entered later (offline visits): 问责 turns on the difference. Names (单位、地点、人员)
are those in force at T. The responsibility matrix is folded from the responsibility and liaison
aggregates themselves, never read from the matrix projection, so it can check that projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic_core import to_jsonable_python
from psycopg.sql import SQL, Composed

from domain.kernel.base import DomainEvent, NotFound, event_class
from domain.liaison.links import LiaisonLinked
from domain.structure.responsibility import responsibility_id
from infra.audit.history import AsOfReader, Cutoff, History, Positioned, events_table
from infra.store.event_store import HOLDER_TOPICS, Dudao, holder_topics_sql
from projections import trail as tr

NAMED_KINDS = ("unit", "place", "person", "campaign", "indicator", "task")
ROLE_ORDER = {"lead": 0, "co": 1, "bao_bao": 2, "liaison": 3}
MAX_TREE_DEPTH = 64  # bounds the walk up the place tree even if it were ever corrupted into a cycle


def fold_at(reader: AsOfReader, aggregate_id: UUID) -> tuple[str | None, Any, int]:
    """An aggregate's kind, state (None when it did not exist yet) and the number of events counted."""
    events = reader.events(aggregate_id)
    if not events:
        return reader.history.kind_of(aggregate_id), None, 0
    kind = events[0].kind
    try:
        return kind, reader.get(kind, aggregate_id, object), len(events)
    except (AssertionError, TypeError, ValueError) as exc:  # a subset by occurrence may not fold: say so
        return kind, {"unfoldable": str(exc)}, len(events)


def names_at(reader: AsOfReader, ids: set[UUID]) -> dict[str, str]:
    """The names of the units, places, persons, campaigns, indicators and tasks among `ids`, as in force then."""
    reader.history.load([i for i in ids if i not in reader.history._cache])
    out: dict[str, str] = {}
    for i in ids:
        kind = reader.history.kind_of(i)
        if kind in NAMED_KINDS:
            state = reader.get(kind, i, object)
            name = getattr(state, "name", None)
            if isinstance(name, str):
                out[str(i)] = name
    return out


def entity_as_of(app: Dudao, kind: tuple[str, ...], entity_id: UUID, at: datetime, basis: str = "recorded") -> dict[str, Any]:
    """The entity as it stood at `at` (events recorded by then, or occurred by then), with names then in force."""
    history = History(app)
    found = history.kind_of(entity_id)
    if found is None or found not in kind:
        raise NotFound(f"{kind[0]}_not_found", "对象不存在", f"{kind[0]} not found", id=str(entity_id))
    cutoff = Cutoff(occurred_by=at) if basis == "occurred" else Cutoff(recorded_by=at)
    reader = AsOfReader(history, cutoff)
    _, state, counted = fold_at(reader, entity_id)
    body = to_jsonable_python(state) if state is not None else None
    ids = uuids_named(body)
    out: dict[str, Any] = {"kind": found, "id": str(entity_id), "as_of": at.isoformat(), "basis": basis,
                           "existed": state is not None, "events_counted": counted,
                           "events_total": len(history.of(entity_id)), "state": body,
                           "names": names_at(reader.at(Cutoff(recorded_by=at)), ids)}
    scope = _scope_of(found, entity_id, body)
    if scope is not None and state is not None:
        campaign = body.get("campaign_id") if isinstance(body, dict) else None
        out["responsible"] = responsible_at(app, UUID(str(campaign)), at, scope, history) if campaign else []
    return out


def uuids_named(value: Any) -> set[UUID]:
    """Every UUID written as text anywhere in a JSON-ready body (the ids whose names an as-of view gives)."""
    found: set[UUID] = set()
    if isinstance(value, str) and len(value) == 36:
        try:
            found.add(UUID(value))
        except ValueError:
            pass
    elif isinstance(value, dict):
        for v in value.values():
            found |= uuids_named(v)
    elif isinstance(value, list):
        for v in value:
            found |= uuids_named(v)
    return found


def _scope_of(kind: str, entity_id: UUID, body: Any) -> tuple[str, UUID] | None:
    """Whose responsibility the as-of view shows: the scope itself, or the place a problem or visit is at."""
    if kind in ("place", "task", "indicator"):
        return kind, entity_id
    place = body.get("place_id") if isinstance(body, dict) else None
    return ("place", UUID(str(place))) if place else None


# --- the responsibility matrix, folded from the store -----------------------------------------------


def holder_aggregates(app: Dudao, topics: Sequence[str] = HOLDER_TOPICS) -> list[UUID]:
    """The aggregates that hold an event of `topics` (by default every responsibility and liaison aggregate), found
    through the store's holders index instead of a scan of the log."""
    with app.store.datastore.get_connection() as conn, conn.cursor() as curs:
        return [r["originator_id"] for r in curs.execute(holders_query(app), (list(topics),)).fetchall()]


def holders_query(app: Dudao) -> Composed:
    """The aggregates holding an event of the topics given as its one parameter, among the holders index's."""
    return SQL("SELECT DISTINCT originator_id FROM {} WHERE {} AND topic = ANY(%s)").format(
        events_table(app), holder_topics_sql())


def holders_of(app: Dudao, campaign_id: UUID, scopes: set[tuple[str, UUID]] | None) -> list[UUID]:
    """The responsibility and liaison aggregates that may hold a row of `scopes` (all of them when None): a scope's
    责任分工 lives in its own aggregate (`responsibility_id`), its 挂钩领导 in each leader's."""
    if scopes is None:
        return holder_aggregates(app)
    own = [responsibility_id(campaign_id, kind, scope_id) for kind, scope_id in sorted(scopes, key=str)]
    return own + holder_aggregates(app, (LiaisonLinked.event_name,))


def matrix_at(app: Dudao, campaign_id: UUID, at: datetime, *, scope: tuple[str, UUID] | None = None,
              history: History | None = None, scopes: set[tuple[str, UUID]] | None = None,
              basis: str = "recorded") -> list[dict[str, Any]]:
    """Every (scope, party, role) in force at `at`, with the names then in force, 挂钩领导 included (only those of
    `scope`, or of `scopes`, when given).

    `basis` "recorded": as recorded by `at` (what HQ could know then: an assignment entered later, even backdated,
    is left out); "stored": as the store holds it now (a backdated one counts from its start — the projection's
    question, answered from the events). Names are those recorded by `at`; a party or scope not yet named then
    keeps its first name.
    """
    history = history or History(app)
    known = AsOfReader(history, Cutoff(recorded_by=at))
    reader = known if basis == "recorded" else AsOfReader(history, Cutoff())
    wanted = scopes if scopes is not None else ({scope} if scope is not None else None)
    holders = holders_of(app, campaign_id, wanted)
    history.load([h for h in holders if h not in history._cache])
    rows = []
    for aggregate_id in holders:
        events = reader.events(aggregate_id)
        if not events or events[0].kind not in ("responsibility", "liaison"):
            continue
        state = reader.get(events[0].kind, aggregate_id, object)
        if getattr(state, "campaign_id", None) != campaign_id:
            continue
        rows += _rows_of(state, at)
    if wanted is not None:
        rows = [r for r in rows if (r["scope_kind"], r["scope_id"]) in wanted]
    ids = {r["scope_id"] for r in rows} | {r["party_id"] for r in rows}
    names = names_at(known, ids)
    unnamed = {i for i in ids if str(i) not in names}
    if unnamed:
        names |= first_names(history, unnamed)
    for r in rows:
        r["scope_name"], r["party_name"] = names.get(str(r["scope_id"])), names.get(str(r["party_id"]))
    return sorted(rows, key=lambda r: (r["scope_name"] is None, r["scope_name"] or "", r["scope_kind"], str(r["scope_id"]),
                                       ROLE_ORDER.get(r["role"], 4), r["party_name"] is None, r["party_name"] or "",
                                       str(r["assignment_id"])))


def first_names(history: History, ids: set[UUID]) -> dict[str, str]:
    """The name each of `ids` was first recorded with (for what had no name yet at the instant asked)."""
    out: dict[str, str] = {}
    for i in ids:
        first = history.of(i)[:1]
        if first:
            out |= names_at(AsOfReader(history, Cutoff(position=first[0].position + 1)), {i})
    return out


def places_up(reader: AsOfReader, place_id: UUID) -> list[UUID]:
    """The place and the places above it, nearest first, as the place tree stood at the reader's cut-off."""
    found: list[UUID] = []
    current: UUID | None = place_id
    while current is not None and current not in found and len(found) < MAX_TREE_DEPTH:
        found.append(current)
        parent = getattr(reader.get("place", current, object), "parent_id", None)
        current = parent if isinstance(parent, UUID) else None
    return found


def responsible_at(app: Dudao, campaign_id: UUID, at: datetime, scope: tuple[str, UUID],
                   history: History | None = None) -> list[dict[str, Any]]:
    """Who answered for a scope at `at`, as recorded by then: for a place, its own holders and those of the places
    above it (a 点位's grid lead answers for it, 包片 up the tree), nearest first, each row with its `depth`."""
    history = history or History(app)
    kind, scope_id = scope
    levels = places_up(AsOfReader(history, Cutoff(recorded_by=at)), scope_id) if kind == "place" else [scope_id]
    depth = {level: i for i, level in enumerate(levels)}
    rows = matrix_at(app, campaign_id, at, scopes={(kind, level) for level in levels}, history=history)
    for r in rows:
        r["depth"] = depth[r["scope_id"]]
    return sorted(rows, key=lambda r: r["depth"])  # stable: the matrix's order within a level


def _rows_of(state: Any, at: datetime) -> list[dict[str, Any]]:
    def in_force(start: datetime, end: datetime | None) -> bool:
        return start <= at and (end is None or at < end)

    if hasattr(state, "assignments"):
        return [{"scope_kind": state.scope_kind, "scope_id": state.scope_id, "party_kind": a.party_kind,
                 "party_id": a.party_id, "role": a.role, "valid_from": a.effective_from, "valid_to": a.effective_to,
                 "assignment_id": a.assignment_id} for a in state.assignments if in_force(a.effective_from, a.effective_to)]
    return [{"scope_kind": k.target_kind, "scope_id": k.target_id, "party_kind": "person", "party_id": state.person_id,
             "role": "liaison", "valid_from": k.valid_from, "valid_to": k.valid_to, "assignment_id": k.link_id}
            for k in getattr(state, "links", ()) if in_force(k.valid_from, k.valid_to)]


# --- the knowledge view -------------------------------------------------------------------------------


def knowledge(app: Dudao, conn: Any, kinds: tuple[str, ...], entity_id: UUID, at: datetime) -> dict[str, Any]:
    """What HQ could see at `at` (recorded by then) next to what had happened by then (occurred by then)."""
    touching = tr.trail(conn, entity_id, limit=100_000)
    history = History(app)
    by_position = history.at_positions([r["notification_id"] for r in touching])
    known = [p for p in by_position.values() if p.event.meta.recorded_at <= at]
    happened = [p for p in by_position.values() if p.event.meta.occurred_at <= at]
    later = [p for p in happened if p.event.meta.recorded_at > at]
    out: dict[str, Any] = {"as_of": at.isoformat(), "known": _listing(known), "happened": _listing(happened),
                           "recorded_later": _listing(later)}
    out["state_known"] = entity_as_of(app, kinds, entity_id, at, "recorded")
    out["state_happened"] = entity_as_of(app, kinds, entity_id, at, "occurred")
    return out


def _listing(events: list[Positioned]) -> list[dict[str, Any]]:
    return [describe(p) for p in sorted(events, key=lambda p: p.position)]


def describe(p: Positioned) -> dict[str, Any]:
    m = p.event.meta
    return {"position": p.position, "event_id": p.event_id, "type": p.event.event_name,
            "aggregate_id": str(p.originator_id), "kind": p.kind, "occurred_at": m.occurred_at.isoformat(),
            "recorded_at": m.recorded_at.isoformat(), "actor": m.actor.model_dump(mode="json"), "reason": m.reason}


def event_type_name(name: str) -> str:
    cls: type[DomainEvent] = event_class(name)
    return cls.__name__
