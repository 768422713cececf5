"""The audit trail (履历/审计轨迹): every event touching an entity, directly or as a named party, with its envelope.

One row per stored event (`audit_events`: actor, both times, reason, command, correlation and
causation ids, the payload) and one row per (entity, event) it touches (`audit_parties`, with the
relation): the aggregate itself; every id the payload names, found by walking it, so a new event type
is indexed without a line here (a unit in a bulletin's 黑榜, a notice's recipients, a case's basis);
the work item of every escalation step it names (a bulletin listing a step names the problem behind it);
for a record about others (bulletin, notice, summons, case), whatever its earlier events touched;
the place of an aggregate that has one (a problem's or visit's place, and through the item they
name, a step's or notice's); and, when an escalation step is taken or its notice issued, the lead
unit (牵头单位) and the liaison leader (挂钩领导) of that place at that moment, up the place tree.
To know those, it keeps each aggregate's kind and place (`audit_entities`) and who held each place
when (`audit_holds`). `causation_id` resolves through `event_uuid` (`domain.kernel.base.event_uuid`).

`index_event` is the rule, one event at a time. `TrailBatch` leaves the same rows for a batch with a
few statements instead of five or six round trips per event (which held a rebuild to ~1,600 events/s):
what an event reads back (a step's item, an entity's place, a record's earlier parties, whether a
hold or entity exists) comes from rows fetched once per batch plus the batch's own changes, kept in
memory; only the holders of a place at an escalation are still asked of the database, after the
batch's entities and holds so far are written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from hashlib import sha1
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.escalation.notice import NoticeIssued
from domain.escalation.step import EscalationStepTaken
from domain.kernel.base import DUDAO_NAMESPACE, DomainEvent, event_registry, event_uuid
from domain.liaison.links import LiaisonLinked, LiaisonLinkEnded
from domain.structure.place import PlaceMoved
from domain.structure.responsibility import ResponsibilityAssigned, ResponsibilityEnded, ResponsibilityRevoked
from projections.base import Projection, RecordedEvent
from projections.batch import copy_rows, insert_rows, update_column

DDL = (
    """CREATE TABLE IF NOT EXISTS audit_events (
        notification_id bigint PRIMARY KEY, event_uuid uuid NOT NULL UNIQUE, aggregate_id uuid NOT NULL,
        version bigint NOT NULL, kind text NOT NULL, event_type text NOT NULL, campaign_id uuid NULL,
        actor jsonb NOT NULL, occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, reason text NULL,
        command_id text NOT NULL, correlation_id uuid NOT NULL, causation_id uuid NULL, payload jsonb NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS audit_events_campaign ON audit_events (campaign_id, recorded_at)",
    "CREATE INDEX IF NOT EXISTS audit_events_aggregate ON audit_events (aggregate_id)",
    """CREATE TABLE IF NOT EXISTS audit_parties (
        entity_id uuid NOT NULL, notification_id bigint NOT NULL, relation text NOT NULL,
        PRIMARY KEY (entity_id, notification_id, relation))""",
    """CREATE TABLE IF NOT EXISTS audit_entities (
        entity_id uuid PRIMARY KEY, kind text NOT NULL, campaign_id uuid NULL, place_id uuid NULL, parent_id uuid NULL)""",
    """CREATE TABLE IF NOT EXISTS audit_holds (
        hold_id uuid PRIMARY KEY, place_id uuid NOT NULL, holder_kind text NOT NULL, holder_id uuid NOT NULL,
        relation text NOT NULL, valid_from timestamptz NOT NULL, valid_to timestamptz NULL)""",
    "CREATE INDEX IF NOT EXISTS audit_holds_place ON audit_holds (place_id)",
)
MAX_TREE_DEPTH = 32
SELF = "self"
# Records about others (通报、通知、约谈、问责): what later happens to one (印发、签收、决定) touches what it named.
RECORD_KINDS = ("bulletin", "notice", "summons", "accountability_case")


class TrailProjection(Projection):
    """Indexes every stored event by every entity it touches."""

    name = "trail"
    tables = ("audit_events", "audit_parties", "audit_entities", "audit_holds")
    ddl = DDL
    batched = True

    def register(self) -> None:
        self.on(*event_registry().values())(index_event)

    def apply_batch(self, curs: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        TrailBatch(curs, events).apply()


def uuids_in(value: Any, path: str = "") -> list[tuple[str, UUID]]:
    """Every UUID in a dumped payload with the path of the field naming it (`recipients.party_id`)."""
    if isinstance(value, UUID):
        return [(path, value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in uuids_in(v, f"{path}.{k}" if path else k)]
    if isinstance(value, (list, tuple)):
        return [found for v in value for found in uuids_in(v, path)]
    return []


def index_event(curs: Cursor[Any], recorded: RecordedEvent) -> None:
    e, m = recorded.event, recorded.event.meta
    payload = e.model_dump(exclude={"meta"})
    curs.execute(
        "INSERT INTO audit_events (notification_id, event_uuid, aggregate_id, version, kind, event_type, campaign_id,"
        " actor, occurred_at, recorded_at, reason, command_id, correlation_id, causation_id, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (recorded.notification_id, event_uuid(recorded.originator_id, recorded.originator_version),
         recorded.originator_id, recorded.originator_version, e.kind, e.event_name,
         m.campaign_id or payload.get("campaign_id"), Jsonb(m.actor.model_dump(mode="json")), m.occurred_at,
         m.recorded_at, m.reason or reason_in(e), m.command_id, m.correlation_id, m.causation_id,
         Jsonb(e.model_dump(mode="json", exclude={"meta"}))))
    named = [(rel, i) for rel, i in uuids_in(payload) if i != recorded.originator_id and rel != "campaign_id"]
    named += items_of_steps(curs, named)
    remember_entity(curs, recorded, payload, named)
    parties = [(recorded.originator_id, SELF), *((i, rel) for rel, i in named)]
    parties += places_of(curs, [recorded.originator_id, *(i for _, i in named)])
    if e.kind in RECORD_KINDS and recorded.originator_version > 1:
        parties += named_before(curs, recorded.originator_id)
    keep_holds(curs, e)
    if isinstance(e, EscalationStepTaken) or (isinstance(e, NoticeIssued) and e.escalation_step_id is not None):
        parties += holders_when_escalated(curs, parties, m.recorded_at)
    seen: set[tuple[UUID, str]] = set()
    for entity_id, relation in parties:
        if (entity_id, relation) not in seen:
            seen.add((entity_id, relation))
            curs.execute("INSERT INTO audit_parties (entity_id, notification_id, relation) VALUES (%s, %s, %s)"
                         " ON CONFLICT DO NOTHING", (entity_id, recorded.notification_id, relation))


def items_of_steps(curs: Cursor[Any], named: list[tuple[str, UUID]]) -> list[tuple[str, UUID]]:
    """The work item of each escalation step an event names, as a party too: a bulletin listing a step (列入通报)
    names the problem or duty the step escalates (relation `<field>.item_id`, e.g. `listed_escalations.step_id.item_id`).

    A step's first event is found by its deterministic event id, through the unique index on `event_uuid`."""
    if not named:
        return []
    relation = {event_uuid(i, 1): rel for rel, i in named}
    rows = curs.execute("SELECT event_uuid, payload->>'item_id' AS item_id FROM audit_events"
                        " WHERE event_uuid = ANY(%s) AND kind = 'escalation'", (list(relation),)).fetchall()
    return [(f"{relation[r['event_uuid']]}.item_id", UUID(r["item_id"])) for r in rows if r["item_id"]]


def named_before(curs: Cursor[Any], aggregate_id: UUID) -> list[tuple[UUID, str]]:
    """Every entity the record's earlier events touched, with the same relation (a bulletin's 印发 touches the
    problem its draft listed; a notice's 签收 the problem it was about)."""
    rows = curs.execute("SELECT DISTINCT p.entity_id, p.relation FROM audit_events e JOIN audit_parties p"
                        " ON p.notification_id = e.notification_id WHERE e.aggregate_id = %s AND p.relation <> %s",
                        (aggregate_id, SELF)).fetchall()
    return [(r["entity_id"], r["relation"]) for r in rows]


def reason_in(e: DomainEvent) -> str | None:
    """The event's own reason (理由) field, for events stored before the envelope carried one."""
    for name in ("reason", "reason_zh"):
        value = getattr(e, name, None)
        if isinstance(value, str):
            return value
    return None


def remember_entity(curs: Cursor[Any], recorded: RecordedEvent, payload: dict[str, Any],
                    named: list[tuple[str, UUID]]) -> None:
    """An aggregate's kind, campaign and place, from its first event (a step's or notice's from the item it names)."""
    e = recorded.event
    if isinstance(e, PlaceMoved):
        curs.execute("UPDATE audit_entities SET parent_id = %s WHERE entity_id = %s", (e.parent_id, e.place_id))
    if recorded.originator_version != 1:
        return
    place = payload.get("place_id")
    if place is None:
        subject = payload.get("item_id") or payload.get("subject_id")
        if subject is not None:
            row = curs.execute("SELECT place_id FROM audit_entities WHERE entity_id = %s", (subject,)).fetchone()
            place = row["place_id"] if row else None
    parent = payload.get("parent_id") if e.kind == "place" else None
    curs.execute("INSERT INTO audit_entities (entity_id, kind, campaign_id, place_id, parent_id) VALUES (%s, %s, %s, %s, %s)"
                 " ON CONFLICT DO NOTHING", (recorded.originator_id, e.kind, e.meta.campaign_id or payload.get("campaign_id"),
                                             place, parent))


def places_of(curs: Cursor[Any], ids: list[UUID]) -> list[tuple[UUID, str]]:
    rows = curs.execute("SELECT entity_id, place_id FROM audit_entities WHERE entity_id = ANY(%s) AND place_id IS NOT NULL",
                        (ids,)).fetchall()
    return [(r["place_id"], "place") for r in rows]


def keep_holds(curs: Cursor[Any], e: DomainEvent) -> None:
    """Who holds a place when: lead units and 包保人 (责任分工), liaison leaders (挂钩联系)."""
    if isinstance(e, ResponsibilityAssigned) and e.scope_kind == "place":
        curs.execute("INSERT INTO audit_holds (hold_id, place_id, holder_kind, holder_id, relation, valid_from)"
                     " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (e.assignment_id, e.scope_id, e.party_kind, e.party_id, f"{e.role}_of_place", e.effective_from))
    elif isinstance(e, (ResponsibilityEnded, ResponsibilityRevoked)):
        curs.execute("UPDATE audit_holds SET valid_to = %s WHERE hold_id = %s", (e.effective_to, e.assignment_id))
    elif isinstance(e, LiaisonLinked) and e.target_kind == "place":
        curs.execute("INSERT INTO audit_holds (hold_id, place_id, holder_kind, holder_id, relation, valid_from, valid_to)"
                     " VALUES (%s, %s, 'person', %s, 'liaison_of_place', %s, %s) ON CONFLICT DO NOTHING",
                     (e.link_id, e.target_id, e.person_id, e.valid_from, e.valid_to))
    elif isinstance(e, LiaisonLinkEnded):
        curs.execute("UPDATE audit_holds SET valid_to = %s WHERE hold_id = %s", (e.valid_to, e.link_id))


_HOLDERS = """
    WITH RECURSIVE up (place_id, depth) AS (
        SELECT unnest(%(places)s::uuid[]), 0
        UNION
        SELECT a.parent_id, u.depth + 1 FROM up u JOIN audit_entities a ON a.entity_id = u.place_id
         WHERE a.parent_id IS NOT NULL AND u.depth < %(depth)s)
    SELECT DISTINCT h.holder_id, h.relation FROM up JOIN audit_holds h ON h.place_id = up.place_id
     WHERE h.relation IN ('lead_of_place', 'liaison_of_place', 'bao_bao_of_place')
       AND h.valid_from <= %(at)s AND %(at)s < COALESCE(h.valid_to, 'infinity'::timestamptz)
"""


def holders_when_escalated(curs: Cursor[Any], parties: list[tuple[UUID, str]], at: datetime) -> list[tuple[UUID, str]]:
    """The lead unit and liaison leader of the escalated item's place (and the places above it) at that moment."""
    places = [i for i, rel in parties if rel == "place"]
    if not places:
        return []
    rows = curs.execute(_HOLDERS, {"places": places, "depth": MAX_TREE_DEPTH, "at": at}).fetchall()
    return [(r["holder_id"], r["relation"]) for r in rows]


# --- a batch at once -----------------------------------------------------------------------------

EVENT_TYPES = {"notification_id": "bigint", "event_uuid": "uuid", "aggregate_id": "uuid", "version": "bigint",
               "kind": "text", "event_type": "text", "campaign_id": "uuid", "actor": "jsonb",
               "occurred_at": "timestamptz", "recorded_at": "timestamptz", "reason": "text", "command_id": "text",
               "correlation_id": "uuid", "causation_id": "uuid", "payload": "jsonb"}
PARTY_TYPES = {"entity_id": "uuid", "notification_id": "bigint", "relation": "text"}
ENTITY_TYPES = {"entity_id": "uuid", "kind": "text", "campaign_id": "uuid", "place_id": "uuid", "parent_id": "uuid"}
HOLD_TYPES = {"hold_id": "uuid", "place_id": "uuid", "holder_kind": "text", "holder_id": "uuid", "relation": "text",
              "valid_from": "timestamptz", "valid_to": "timestamptz"}


def as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


class Mirror:
    """Rows of one table keyed by id as the batch has left them so far (None: no such row), loaded on first need;
    inserts (ON CONFLICT DO NOTHING) and single-column updates are written at `flush`."""

    def __init__(self, curs: Cursor[Any], table: str, key: str, types: dict[str, str]) -> None:
        self.curs, self.table, self.key, self.types = curs, table, key, types
        self.rows: dict[UUID, dict[str, Any] | None] = {}
        self.new: set[UUID] = set()
        self.changed: dict[str, dict[UUID, Any]] = {}  # column → id → value, for rows from before the batch

    def load(self, ids: Iterable[UUID]) -> None:
        wanted = list({i for i in ids if i not in self.rows})
        if not wanted:
            return
        columns = ", ".join(self.types)
        found = self.curs.execute(f"SELECT {columns} FROM {self.table} WHERE {self.key} = ANY(%s)", (wanted,)).fetchall()
        self.rows.update(dict.fromkeys(wanted))
        self.rows.update({r[self.key]: dict(r) for r in found})

    def get(self, key: UUID) -> dict[str, Any] | None:
        if key not in self.rows:
            self.load([key])
        return self.rows[key]

    def insert(self, **row: Any) -> None:
        key = row[self.key]
        if self.get(key) is None:
            self.rows[key] = row
            self.new.add(key)

    def update(self, key: UUID, column: str, value: Any) -> None:
        row = self.get(key)
        if row is None:
            return
        row[column] = value
        if key not in self.new:
            self.changed.setdefault(column, {})[key] = value

    def flush(self) -> None:
        for column, values in self.changed.items():
            update_column(self.curs, self.table, self.key, self.types[self.key], column, self.types[column], values)
        inserted = [row for k in self.new if (row := self.rows[k]) is not None]
        insert_rows(self.curs, self.table, self.types, inserted, conflict="ON CONFLICT DO NOTHING")
        self.new, self.changed = set(), {}


class TrailBatch:
    """The rows `index_event` leaves for a batch of events, read and written a few statements per batch."""

    def __init__(self, curs: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        self.curs, self.events = curs, events
        self.entities = Mirror(curs, "audit_entities", "entity_id", ENTITY_TYPES)
        self.holds = Mirror(curs, "audit_holds", "hold_id", HOLD_TYPES)
        self.event_rows: list[dict[str, Any]] = []
        self.party_rows: list[dict[str, Any]] = []
        self.steps: dict[UUID, str | None] = {}  # a step's first event uuid → its item (payload->>'item_id')
        self.before: dict[UUID, dict[tuple[UUID, str], None]] = {}  # a record → the parties its events touched
        self.own: list[UUID] = []  # each event's uuid
        self.actors: dict[Any, Jsonb] = {}  # an actor → its JSON (a batch has few actors)
        self.first_events: dict[UUID, UUID] = {}  # a named id → the uuid of its first event

    def apply(self) -> None:
        payloads = [r.event.model_dump(exclude={"meta"}) for r in self.events]
        named = [[(rel, i) for rel, i in uuids_in(p) if i != r.originator_id and rel != "campaign_id"]
                 for r, p in zip(self.events, payloads, strict=True)]
        self.prefetch(payloads, named)
        for recorded, own, payload, its_named in zip(self.events, self.own, payloads, named, strict=True):
            self.index(recorded, own, payload, its_named)
        self.entities.flush()
        self.holds.flush()
        # Copied, not inserted ON CONFLICT DO NOTHING: the batch's events and their parties are new to the trail unless
        # it was written some other way, and then the COPY fails and the batch goes event by event, as it always did.
        copy_rows(self.curs, "audit_events", EVENT_TYPES, self.event_rows)
        copy_rows(self.curs, "audit_parties", PARTY_TYPES, self.party_rows)

    def prefetch(self, payloads: list[dict[str, Any]], named: list[list[tuple[str, UUID]]]) -> None:
        """Everything the batch's events read that was written before the batch, in one query per table."""
        self.own = [event_uuid_of(r.originator_id, r.originator_version) for r in self.events]
        self.first_events = {i: event_uuid_of(i, 1) for its in named for _, i in its}
        candidates = list(set(self.first_events.values()))
        rows = self.curs.execute("SELECT event_uuid, payload->>'item_id' AS item_id FROM audit_events"
                                 " WHERE event_uuid = ANY(%s) AND kind = 'escalation'", (candidates,)).fetchall()
        self.steps = dict.fromkeys(candidates)
        self.steps.update({r["event_uuid"]: r["item_id"] for r in rows})
        ids = {r.originator_id for r in self.events} | {i for its in named for _, i in its}
        ids |= {UUID(item) for item in self.steps.values() if item}
        ids |= {as_uuid(s) for p in payloads if (s := p.get("item_id") or p.get("subject_id")) is not None}
        self.entities.load(ids)
        self.holds.load(hold_id for r in self.events if (hold_id := hold_of(r.event)) is not None)
        records = list({r.originator_id for r in self.events if r.event.kind in RECORD_KINDS and r.originator_version > 1})
        self.before = {a: {} for a in records}
        if records:
            for r in self.curs.execute("SELECT DISTINCT e.aggregate_id, p.entity_id, p.relation FROM audit_events e"
                                       " JOIN audit_parties p ON p.notification_id = e.notification_id"
                                       " WHERE e.aggregate_id = ANY(%s) AND p.relation <> %s", (records, SELF)).fetchall():
                self.before[r["aggregate_id"]][(r["entity_id"], r["relation"])] = None

    def index(self, recorded: RecordedEvent, own: UUID, payload: dict[str, Any], named: list[tuple[str, UUID]]) -> None:
        """`index_event` for one event, against the batch's mirror."""
        e, m = recorded.event, recorded.event.meta
        actor = self.actors.get(m.actor)
        if actor is None:
            actor = self.actors[m.actor] = json_of(m.actor.model_dump(mode="json"))
        self.event_rows.append({
            "notification_id": recorded.notification_id, "event_uuid": own, "aggregate_id": recorded.originator_id,
            "version": recorded.originator_version, "kind": e.kind, "event_type": e.event_name,
            "campaign_id": m.campaign_id or payload.get("campaign_id"), "actor": actor,
            "occurred_at": m.occurred_at, "recorded_at": m.recorded_at, "reason": m.reason or reason_of(e),
            "command_id": m.command_id, "correlation_id": m.correlation_id, "causation_id": m.causation_id,
            "payload": payload_json(e)})
        if e.kind == "escalation":
            item = payload.get("item_id")
            if item is not None and not isinstance(item, (str, UUID)):
                item = e.model_dump(mode="json", include={"item_id"})["item_id"]
            self.steps[own] = None if item is None else str(item) if isinstance(item, (str, UUID)) else json_text(item)
        named = named + self.items_of_steps(named)
        self.remember_entity(recorded, payload)
        parties = [(recorded.originator_id, SELF), *((i, rel) for rel, i in named)]
        parties += self.places_of([recorded.originator_id, *(i for _, i in named)])
        if e.kind in RECORD_KINDS and recorded.originator_version > 1:
            parties += list(self.before[recorded.originator_id])
        self.keep_holds(e)
        if isinstance(e, EscalationStepTaken) or (isinstance(e, NoticeIssued) and e.escalation_step_id is not None):
            self.entities.flush()
            self.holds.flush()
            parties += holders_when_escalated(self.curs, parties, m.recorded_at)
        touched = self.before.get(recorded.originator_id)
        seen: set[tuple[UUID, str]] = set()
        for entity_id, relation in parties:
            if (entity_id, relation) not in seen:
                seen.add((entity_id, relation))
                self.party_rows.append({"entity_id": entity_id, "notification_id": recorded.notification_id,
                                        "relation": relation})
                if touched is not None and relation != SELF:
                    touched[(entity_id, relation)] = None

    def items_of_steps(self, named: list[tuple[str, UUID]]) -> list[tuple[str, UUID]]:
        relation = {self.first_events[i]: rel for rel, i in named}
        return [(f"{rel}.item_id", UUID(item)) for u, rel in relation.items() if (item := self.step_item(u))]

    def step_item(self, first_event: UUID) -> str | None:
        if first_event not in self.steps:
            row = self.curs.execute("SELECT payload->>'item_id' AS item_id FROM audit_events"
                                    " WHERE event_uuid = %s AND kind = 'escalation'", (first_event,)).fetchone()
            self.steps[first_event] = row["item_id"] if row else None
        return self.steps[first_event]

    def remember_entity(self, recorded: RecordedEvent, payload: dict[str, Any]) -> None:
        e = recorded.event
        if isinstance(e, PlaceMoved):
            self.entities.update(e.place_id, "parent_id", e.parent_id)
        if recorded.originator_version != 1:
            return
        place = payload.get("place_id")
        if place is None:
            subject = payload.get("item_id") or payload.get("subject_id")
            if subject is not None:
                row = self.entities.get(as_uuid(subject))
                place = row["place_id"] if row else None
        parent = payload.get("parent_id") if e.kind == "place" else None
        campaign = e.meta.campaign_id or payload.get("campaign_id")
        self.entities.insert(entity_id=recorded.originator_id, kind=e.kind,
                             campaign_id=None if campaign is None else as_uuid(campaign),
                             place_id=None if place is None else as_uuid(place),
                             parent_id=None if parent is None else as_uuid(parent))

    def places_of(self, ids: list[UUID]) -> list[tuple[UUID, str]]:
        return [(row["place_id"], "place") for i in dict.fromkeys(ids)
                if (row := self.entities.get(i)) is not None and row["place_id"] is not None]

    def keep_holds(self, e: DomainEvent) -> None:
        if isinstance(e, ResponsibilityAssigned) and e.scope_kind == "place":
            self.holds.insert(hold_id=e.assignment_id, place_id=e.scope_id, holder_kind=e.party_kind,
                              holder_id=e.party_id, relation=f"{e.role}_of_place", valid_from=e.effective_from,
                              valid_to=None)
        elif isinstance(e, (ResponsibilityEnded, ResponsibilityRevoked)):
            self.holds.update(e.assignment_id, "valid_to", e.effective_to)
        elif isinstance(e, LiaisonLinked) and e.target_kind == "place":
            self.holds.insert(hold_id=e.link_id, place_id=e.target_id, holder_kind="person", holder_id=e.person_id,
                              relation="liaison_of_place", valid_from=e.valid_from, valid_to=e.valid_to)
        elif isinstance(e, LiaisonLinkEnded):
            self.holds.update(e.link_id, "valid_to", e.valid_to)


_REASON_FIELDS: dict[type, tuple[str, ...]] = {}


def reason_of(e: DomainEvent) -> str | None:
    """`reason_in(e)`, asking only for the attributes the event's class has (a miss costs pydantic an exception)."""
    cls = type(e)
    names = _REASON_FIELDS.get(cls)
    if names is None:
        names = _REASON_FIELDS[cls] = tuple(n for n in ("reason", "reason_zh") if n in cls.model_fields or hasattr(cls, n))
    for name in names:
        value = getattr(e, name, None)
        if isinstance(value, str):
            return value
    return None


_EVENT_UUID_PREFIX = DUDAO_NAMESPACE.bytes + b"event/"


def event_uuid_of(originator_id: UUID, version: int) -> UUID:
    """`event_uuid(originator_id, version)` with uuid5 written out (the same SHA-1 of the same name), for the two per
    event a batch computes: a tenth of a batch's time went to building the name part by part."""
    return UUID(bytes=sha1(_EVENT_UUID_PREFIX + f"{originator_id}/{version}".encode()).digest()[:16], version=5)


def hold_of(e: DomainEvent) -> UUID | None:
    """The hold an event inserts or ends, if any (what `keep_holds` keys on)."""
    if isinstance(e, (ResponsibilityAssigned, ResponsibilityEnded, ResponsibilityRevoked)):
        return e.assignment_id
    if isinstance(e, (LiaisonLinked, LiaisonLinkEnded)):
        return e.link_id
    return None


def json_of(value: Any) -> Jsonb:
    """`Jsonb(value)` dumped now, once (psycopg would dump it again for every row that holds it)."""
    return Jsonb(json.dumps(value), dumps=_as_is)


def _as_is(text: Any) -> str:
    return str(text)


def payload_json(e: DomainEvent) -> Jsonb:
    """The payload as `index_event` stores it, `Jsonb(e.model_dump(mode="json", exclude={"meta"}))`, serialized by
    pydantic itself (several times faster) unless the event has a float field: a NaN or infinity dumps to null
    there, where json.dumps writes NaN, which PostgreSQL refuses (a dead letter either way, not a quiet null)."""
    if has_float(type(e)):
        return Jsonb(e.model_dump(mode="json", exclude={"meta"}))
    return Jsonb(e.model_dump_json(exclude={"meta"}), dumps=_as_is)


_HAS_FLOAT: dict[type, bool] = {}


def has_float(cls: type[DomainEvent]) -> bool:
    """Whether the event's JSON schema has a number that is not an integer anywhere (nested models included)."""
    if cls not in _HAS_FLOAT:
        try:
            _HAS_FLOAT[cls] = '"type": "number"' in json.dumps(cls.model_json_schema())
        except Exception:  # noqa: BLE001  # a schema pydantic cannot write: take the slower, certain way
            _HAS_FLOAT[cls] = True
    return _HAS_FLOAT[cls]


def json_text(value: Any) -> str:
    """What `->>` gives for a JSON value that is not a string."""
    return json.dumps(value, separators=(", ", ": "))


# --- queries ---------------------------------------------------------------------------------------

_COLUMNS = ("e.notification_id, e.event_uuid, e.aggregate_id, e.version, e.kind, e.event_type, e.campaign_id, e.actor,"
            " e.occurred_at, e.recorded_at, e.reason, e.command_id, e.correlation_id, e.causation_id, e.payload")


def trail(conn: Any, entity_id: UUID, *, since: datetime | None = None, until: datetime | None = None,
          by: str = "recorded", limit: int = 500, offset: int = 0) -> list[dict[str, Any]]:
    """The events touching an entity in log order, with the relations by which they touch it (paginated, by period)."""
    column = "e.occurred_at" if by == "occurred" else "e.recorded_at"
    sql = (f"SELECT {_COLUMNS}, array_agg(DISTINCT p.relation ORDER BY p.relation) AS relations"
           " FROM audit_parties p JOIN audit_events e ON e.notification_id = p.notification_id"
           f" WHERE p.entity_id = %(id)s AND (%(since)s::timestamptz IS NULL OR {column} >= %(since)s)"
           f" AND (%(until)s::timestamptz IS NULL OR {column} <= %(until)s)"
           " GROUP BY e.notification_id ORDER BY e.notification_id LIMIT %(limit)s OFFSET %(offset)s")
    rows: list[dict[str, Any]] = conn.execute(sql, {"id": entity_id, "since": since, "until": until, "limit": limit,
                                                     "offset": offset}).fetchall()
    return rows


def trail_size(conn: Any, entity_id: UUID) -> int:
    row = conn.execute("SELECT count(DISTINCT notification_id) AS n FROM audit_parties WHERE entity_id = %s",
                       (entity_id,)).fetchone()
    return int(row["n"]) if row else 0


def events_by_uuid(conn: Any, uuids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_events e WHERE e.event_uuid = ANY(%s)", (uuids,)).fetchall()
    return {r["event_uuid"]: r for r in rows}


def entity(conn: Any, entity_id: UUID) -> dict[str, Any] | None:
    row: dict[str, Any] | None = conn.execute("SELECT * FROM audit_entities WHERE entity_id = %s", (entity_id,)).fetchone()
    return row


def causation_chains(conn: Any, rows: list[dict[str, Any]], depth: int = 20) -> dict[UUID, list[dict[str, Any]]]:
    """For each row, the events that led to it (its cause, the cause's cause ...) up to the root command's event."""
    known: dict[UUID, dict[str, Any]] = {r["event_uuid"]: r for r in rows}
    wanted = {r["causation_id"] for r in rows if r["causation_id"]} - set(known)
    for _ in range(depth):
        if not wanted:
            break
        found = events_by_uuid(conn, list(wanted))
        known.update(found)
        wanted = {r["causation_id"] for r in found.values() if r["causation_id"]} - set(known)
    chains: dict[UUID, list[dict[str, Any]]] = {}
    for r in rows:
        chain: list[dict[str, Any]] = []
        cause = r["causation_id"]
        while cause is not None and cause in known and len(chain) < depth:
            chain.append(known[cause])
            cause = known[cause]["causation_id"]
        chains[r["event_uuid"]] = chain
    return chains
