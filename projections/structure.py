"""The command structure read model (指挥体系): current units, places, people and memberships.

Other read models join these tables by id to show names; the query functions below take any
psycopg connection or cursor and return plain dicts (or None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.structure import person as pe
from domain.structure import place as pl
from domain.structure import unit as un
from projections.base import Projection, RecordedEvent
from projections.batch import ARRAY_OF_TEXT, Keyed, insert_rows

DDL = (
    "CREATE TABLE IF NOT EXISTS structure_units (unit_id uuid PRIMARY KEY, campaign_id uuid NOT NULL,"
    " name text NOT NULL, unit_kind text NOT NULL, parent_id uuid, retired bool NOT NULL DEFAULT false,"
    " invented bool NOT NULL DEFAULT false, registered_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS structure_units_campaign ON structure_units (campaign_id, parent_id)",
    "CREATE TABLE IF NOT EXISTS structure_places (place_id uuid PRIMARY KEY, campaign_id uuid NOT NULL,"
    " name text NOT NULL, place_kind text NOT NULL, parent_id uuid, number int,"
    " retired bool NOT NULL DEFAULT false, invented bool NOT NULL DEFAULT false, registered_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS structure_places_campaign ON structure_places (campaign_id, parent_id)",
    "CREATE TABLE IF NOT EXISTS structure_persons (person_id uuid PRIMARY KEY, campaign_id uuid NOT NULL,"
    " name text NOT NULL, title text, retired bool NOT NULL DEFAULT false)",
    "CREATE TABLE IF NOT EXISTS structure_memberships (person_id uuid NOT NULL, unit_id uuid NOT NULL,"
    " roles text[] NOT NULL DEFAULT '{}', PRIMARY KEY (person_id, unit_id))",
    "CREATE INDEX IF NOT EXISTS structure_memberships_unit ON structure_memberships (unit_id)",
)


class StructureProjection(Projection):
    """Keeps one row per unit, place, person and current membership."""

    name = "structure"
    tables = ("structure_units", "structure_places", "structure_persons", "structure_memberships")
    ddl = DDL
    batched = True

    def register(self) -> None:
        self.on(un.UnitRegistered)(unit_registered)
        self.on(pl.PlaceRegistered)(place_registered)
        self.on(pe.PersonRegistered)(person_registered)
        self.on(un.UnitRenamed, un.UnitMoved, un.UnitRetired)(node_changed("structure_units", "unit_id"))
        self.on(pl.PlaceRenamed, pl.PlaceMoved, pl.PlaceRetired)(node_changed("structure_places", "place_id"))
        self.on(pe.PersonRenamed, pe.PersonRetired)(node_changed("structure_persons", "person_id"))
        self.on(pe.PersonJoinedUnit)(person_joined)
        self.on(pe.PersonLeftUnit)(person_left)


    def apply_batch(self, curs: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        """The rows `apply` leaves event by event, written with a few statements per batch (projections/batch.py)."""
        units = Keyed("structure_units", "unit_id", UNIT_TYPES, {"retired": False})
        places = Keyed("structure_places", "place_id", PLACE_TYPES, {"retired": False})
        persons = Keyed("structure_persons", "person_id", PERSON_TYPES, {"retired": False})
        nodes = {un.UnitRenamed: units, un.UnitMoved: units, un.UnitRetired: units, pl.PlaceRenamed: places,
                 pl.PlaceMoved: places, pl.PlaceRetired: places, pe.PersonRenamed: persons, pe.PersonRetired: persons}
        memberships: dict[tuple[UUID, UUID], list[str] | None] = {}  # the last join (its roles) or leave (None) wins
        for rec in events:
            e = rec.event
            if isinstance(e, un.UnitRegistered):
                units.insert(unit_id=e.unit_id, campaign_id=e.campaign_id, name=e.name, unit_kind=e.unit_kind,
                             parent_id=e.parent_id, invented=e.invented, registered_at=e.meta.occurred_at)
            elif isinstance(e, pl.PlaceRegistered):
                places.insert(place_id=e.place_id, campaign_id=e.campaign_id, name=e.name, place_kind=e.place_kind,
                              parent_id=e.parent_id, number=e.number, invented=e.invented,
                              registered_at=e.meta.occurred_at)
            elif isinstance(e, pe.PersonRegistered):
                persons.insert(person_id=e.person_id, campaign_id=e.campaign_id, name=e.name, title=e.title)
            elif type(e) in nodes:
                nodes[type(e)].update(e.aggregate_id, **changes(e))
            elif isinstance(e, pe.PersonJoinedUnit):
                memberships[(e.person_id, e.unit_id)] = list(e.roles)
            elif isinstance(e, pe.PersonLeftUnit):
                memberships[(e.person_id, e.unit_id)] = None
        for table in (units, places, persons):
            table.flush(curs)
        left = [key for key, roles in memberships.items() if roles is None]
        if left:
            curs.execute("DELETE FROM structure_memberships m USING unnest(%s::uuid[], %s::uuid[]) AS u(p, n)"
                         " WHERE m.person_id = u.p AND m.unit_id = u.n", ([p for p, _ in left], [n for _, n in left]))
        insert_rows(curs, "structure_memberships", MEMBERSHIP_TYPES,
                    ({"person_id": p, "unit_id": n, "roles": roles} for (p, n), roles in memberships.items()
                     if roles is not None),
                    conflict="ON CONFLICT (person_id, unit_id) DO UPDATE SET roles = EXCLUDED.roles")


UNIT_TYPES = {"unit_id": "uuid", "campaign_id": "uuid", "name": "text", "unit_kind": "text", "parent_id": "uuid",
              "retired": "bool", "invented": "bool", "registered_at": "timestamptz"}
PLACE_TYPES = {"place_id": "uuid", "campaign_id": "uuid", "name": "text", "place_kind": "text", "parent_id": "uuid",
               "number": "int", "retired": "bool", "invented": "bool", "registered_at": "timestamptz"}
PERSON_TYPES = {"person_id": "uuid", "campaign_id": "uuid", "name": "text", "title": "text", "retired": "bool"}
MEMBERSHIP_TYPES = {"person_id": "uuid", "unit_id": "uuid", "roles": ARRAY_OF_TEXT}


def unit_registered(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, un.UnitRegistered)
    curs.execute(
        "INSERT INTO structure_units (unit_id, campaign_id, name, unit_kind, parent_id, invented, registered_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (e.unit_id, e.campaign_id, e.name, e.unit_kind, e.parent_id, e.invented, e.meta.occurred_at),
    )


def place_registered(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, pl.PlaceRegistered)
    curs.execute(
        "INSERT INTO structure_places (place_id, campaign_id, name, place_kind, parent_id, number, invented,"
        " registered_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (e.place_id, e.campaign_id, e.name, e.place_kind, e.parent_id, e.number, e.invented, e.meta.occurred_at),
    )


def person_registered(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, pe.PersonRegistered)
    curs.execute(
        "INSERT INTO structure_persons (person_id, campaign_id, name, title) VALUES (%s, %s, %s, %s)",
        (e.person_id, e.campaign_id, e.name, e.title),
    )


def changes(event: Any) -> dict[str, Any]:
    """The columns a rename, move or retirement sets."""
    if hasattr(event, "previous_name"):
        return {"name": event.name}
    if hasattr(event, "previous_parent_id"):
        return {"parent_id": event.parent_id}
    return {"retired": True}


def node_changed(table: str, key: str) -> Any:
    def handle(curs: Cursor[Any], rec: RecordedEvent) -> None:
        # Table, key and column names come from this module, never from event data.
        cols = changes(rec.event)
        sets = ", ".join(f"{c} = %s" for c in cols)
        curs.execute(f"UPDATE {table} SET {sets} WHERE {key} = %s", (*cols.values(), rec.event.aggregate_id))

    return handle


def person_joined(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, pe.PersonJoinedUnit)
    curs.execute(
        "INSERT INTO structure_memberships (person_id, unit_id, roles) VALUES (%s, %s, %s)"
        " ON CONFLICT (person_id, unit_id) DO UPDATE SET roles = EXCLUDED.roles",
        (e.person_id, e.unit_id, list(e.roles)),
    )


def person_left(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, pe.PersonLeftUnit)
    curs.execute("DELETE FROM structure_memberships WHERE person_id = %s AND unit_id = %s", (e.person_id, e.unit_id))


# Queries ------------------------------------------------------------------------------------------

UNIT_COLUMNS = "unit_id, campaign_id, name, unit_kind, parent_id, retired, invented, registered_at"
PLACE_COLUMNS = "place_id, campaign_id, name, place_kind, parent_id, number, retired, invented, registered_at"


def _dicts(conn: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Rows as dicts whatever row factory the caller's connection or cursor uses."""
    curs = conn.execute(sql, params)
    names = [d.name for d in curs.description]
    return [row if isinstance(row, dict) else dict(zip(names, row, strict=True)) for row in curs.fetchall()]


def _one(conn: Any, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    rows = _dicts(conn, sql, params)
    return rows[0] if rows else None


def get_unit(conn: Any, unit_id: UUID) -> dict[str, Any] | None:
    return _one(conn, f"SELECT {UNIT_COLUMNS} FROM structure_units WHERE unit_id = %s", (unit_id,))


def get_place(conn: Any, place_id: UUID) -> dict[str, Any] | None:
    return _one(conn, f"SELECT {PLACE_COLUMNS} FROM structure_places WHERE place_id = %s", (place_id,))


def get_person(conn: Any, person_id: UUID) -> dict[str, Any] | None:
    """The person with `memberships`: their current units, each with its name and the person's roles."""
    person = _one(conn, "SELECT person_id, campaign_id, name, title, retired FROM structure_persons"
                        " WHERE person_id = %s", (person_id,))
    if person is not None:
        person["memberships"] = _dicts(
            conn,
            "SELECT m.unit_id, u.name AS unit_name, m.roles FROM structure_memberships m"
            " LEFT JOIN structure_units u USING (unit_id) WHERE m.person_id = %s ORDER BY u.name, m.unit_id",
            (person_id,),
        )
    return person


def list_units(conn: Any, campaign_id: UUID) -> list[dict[str, Any]]:
    return _dicts(conn, f"SELECT {UNIT_COLUMNS} FROM structure_units WHERE campaign_id = %s"
                        " ORDER BY registered_at, name, unit_id", (campaign_id,))


def list_places(conn: Any, campaign_id: UUID) -> list[dict[str, Any]]:
    return _dicts(conn, f"SELECT {PLACE_COLUMNS} FROM structure_places WHERE campaign_id = %s"
                        " ORDER BY registered_at, number NULLS LAST, name, place_id", (campaign_id,))


def list_persons(conn: Any, campaign_id: UUID) -> list[dict[str, Any]]:
    return _dicts(conn, "SELECT person_id, campaign_id, name, title, retired FROM structure_persons"
                        " WHERE campaign_id = %s ORDER BY name, person_id", (campaign_id,))
