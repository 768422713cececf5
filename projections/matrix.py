"""The responsibility matrix (责任矩阵): who is lead, co-unit, 包保人 or liaison leader (挂钩领导) of each place, task,
indicator and unit, now or as of T.

Rows are intervals [valid_from, valid_to): an assignment that ended is kept with its end, so any
past instant can be answered. Names of places, units and persons come from the structure
projection's tables by LEFT JOIN at query time (a missing name never drops a row); indicator and
task names are kept here in `matrix_scopes`. Liaison leaders come from the liaison read model's
links (`projections.liaison_duties`), also as validity intervals, with role "liaison".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

from domain.structure.indicator import IndicatorDefined
from domain.tasks import TaskDefined
from domain.structure.responsibility import ResponsibilityAssigned, ResponsibilityEnded, ResponsibilityRevoked
from projections.base import Projection, RecordedEvent

DDL = (
    """CREATE TABLE IF NOT EXISTS matrix_assignments (
        assignment_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, scope_kind text NOT NULL,
        scope_id uuid NOT NULL, party_kind text NOT NULL, party_id uuid NOT NULL, role text NOT NULL,
        valid_from timestamptz NOT NULL, valid_to timestamptz NULL, end_reason text NULL,
        end_kind text NULL, note text NULL, assigned_at timestamptz NOT NULL, ended_at timestamptz NULL)""",
    "CREATE INDEX IF NOT EXISTS matrix_assignments_campaign ON matrix_assignments (campaign_id)",
    "CREATE INDEX IF NOT EXISTS matrix_assignments_scope ON matrix_assignments (scope_kind, scope_id)",
    "CREATE INDEX IF NOT EXISTS matrix_assignments_party ON matrix_assignments (party_kind, party_id)",
    """CREATE TABLE IF NOT EXISTS matrix_scopes (
        scope_kind text NOT NULL, scope_id uuid NOT NULL, campaign_id uuid NOT NULL, name text NOT NULL,
        PRIMARY KEY (scope_kind, scope_id))""",
)


class MatrixProjection(Projection):
    """Assignments of responsibility as validity intervals, plus the names of indicators and tasks."""

    name = "matrix"
    tables = ("matrix_assignments", "matrix_scopes")
    ddl = DDL
    partial_kinds = frozenset({"task"})  # a task's name only; its lead and co-units come as responsibility events

    def register(self) -> None:
        self.on(ResponsibilityAssigned)(assigned)
        self.on(ResponsibilityEnded)(ended)
        self.on(ResponsibilityRevoked)(revoked)
        self.on(IndicatorDefined, TaskDefined)(scope_defined)


def assigned(curs: Cursor[Any], recorded: RecordedEvent) -> None:
    e = recorded.event
    assert isinstance(e, ResponsibilityAssigned)
    curs.execute(
        "INSERT INTO matrix_assignments (assignment_id, campaign_id, scope_kind, scope_id, party_kind, party_id,"
        " role, valid_from, note, assigned_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (e.assignment_id, e.campaign_id, e.scope_kind, e.scope_id, e.party_kind, e.party_id, e.role,
         e.effective_from, e.note, e.meta.recorded_at),
    )


def _close(curs: Cursor[Any], assignment_id: UUID, valid_to: datetime, kind: str, reason: str, at: datetime) -> None:
    curs.execute(
        "UPDATE matrix_assignments SET valid_to = %s, end_kind = %s, end_reason = %s, ended_at = %s"
        " WHERE assignment_id = %s",
        (valid_to, kind, reason, at, assignment_id),
    )


def ended(curs: Cursor[Any], recorded: RecordedEvent) -> None:
    e = recorded.event
    assert isinstance(e, ResponsibilityEnded)
    _close(curs, e.assignment_id, e.effective_to, "superseded", e.reason, e.meta.recorded_at)


def revoked(curs: Cursor[Any], recorded: RecordedEvent) -> None:
    e = recorded.event
    assert isinstance(e, ResponsibilityRevoked)
    _close(curs, e.assignment_id, e.effective_to, "revoked", e.reason, e.meta.recorded_at)


def scope_defined(curs: Cursor[Any], recorded: RecordedEvent) -> None:
    e = recorded.event
    assert isinstance(e, (IndicatorDefined, TaskDefined))
    scope_kind, scope_id = ("indicator", e.indicator_id) if isinstance(e, IndicatorDefined) else ("task", e.task_id)
    curs.execute(
        "INSERT INTO matrix_scopes (scope_kind, scope_id, campaign_id, name) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (scope_kind, scope_id) DO UPDATE SET name = EXCLUDED.name",
        (scope_kind, scope_id, e.campaign_id, e.name),
    )


# Names of every kind of scope and party, and the instant T (now() when the caller gives none).
_SELECT = """
    SELECT a.scope_kind, a.scope_id, COALESCE(sp.name, ms.name) AS scope_name,
           a.party_kind, a.party_id, COALESCE(su.name, pe.name) AS party_name,
           a.role, a.valid_from, a.valid_to, a.assignment_id
      FROM matrix_assignments a
      LEFT JOIN structure_places sp ON a.scope_kind = 'place' AND sp.place_id = a.scope_id
      LEFT JOIN matrix_scopes ms ON ms.scope_kind = a.scope_kind AND ms.scope_id = a.scope_id
      LEFT JOIN structure_units su ON a.party_kind = 'unit' AND su.unit_id = a.party_id
      LEFT JOIN structure_persons pe ON a.party_kind = 'person' AND pe.person_id = a.party_id
     WHERE a.valid_from <= COALESCE(%(as_of)s::timestamptz, now())
       AND COALESCE(%(as_of)s::timestamptz, now()) < COALESCE(a.valid_to, 'infinity'::timestamptz)
"""
# The liaison leaders (挂钩领导, role "liaison") of places and units, from the liaison read model's links.
_LIAISON = """
    SELECT k.target_kind AS scope_kind, k.target_id AS scope_id, COALESCE(lp.name, lu.name) AS scope_name,
           'person' AS party_kind, k.person_id AS party_id, lpe.name AS party_name,
           'liaison' AS role, k.valid_from, k.valid_to, k.link_id AS assignment_id
      FROM liaison_links k
      LEFT JOIN structure_places lp ON k.target_kind = 'place' AND lp.place_id = k.target_id
      LEFT JOIN structure_units lu ON k.target_kind = 'unit' AND lu.unit_id = k.target_id
      LEFT JOIN structure_persons lpe ON lpe.person_id = k.person_id
     WHERE k.valid_from <= COALESCE(%(as_of)s::timestamptz, now())
       AND COALESCE(%(as_of)s::timestamptz, now()) < COALESCE(k.valid_to, 'infinity'::timestamptz)
"""
_ORDER = """
     ORDER BY scope_name NULLS LAST, scope_kind, scope_id,
              CASE role WHEN 'lead' THEN 0 WHEN 'co' THEN 1 WHEN 'bao_bao' THEN 2 ELSE 3 END,
              party_name NULLS LAST, assignment_id
"""

Row = dict[str, Any]


def matrix(conn: Connection[Row], campaign_id: UUID, as_of: datetime | None = None) -> list[Row]:
    """Every (scope, party, role) of the campaign in force at `as_of` (now by default), 挂钩领导 included."""
    sql = ("SELECT * FROM (" + _SELECT + " AND a.campaign_id = %(campaign_id)s UNION ALL" + _LIAISON
           + " AND k.campaign_id = %(campaign_id)s) m" + _ORDER)
    return conn.execute(sql, {"as_of": as_of, "campaign_id": campaign_id}).fetchall()


def responsible_for(conn: Connection[Row], scope_kind: str, scope_id: UUID, as_of: datetime | None = None) -> list[Row]:
    """Who answers for one place, task or indicator at `as_of` (now by default), lead first, 挂钩领导 last."""
    sql = ("SELECT * FROM (" + _SELECT + " AND a.scope_kind = %(scope_kind)s AND a.scope_id = %(scope_id)s UNION ALL"
           + _LIAISON + " AND k.target_kind = %(scope_kind)s AND k.target_id = %(scope_id)s) m" + _ORDER)
    return conn.execute(sql, {"as_of": as_of, "scope_kind": scope_kind, "scope_id": scope_id}).fetchall()


_LEAD_UP_THE_TREE = """
    WITH RECURSIVE chain (place_id, depth) AS (
        SELECT %(place_id)s::uuid, 0
        UNION ALL
        SELECT sp.parent_id, c.depth + 1
          FROM chain c JOIN structure_places sp ON sp.place_id = c.place_id
         WHERE sp.parent_id IS NOT NULL AND c.depth < %(max_depth)s
    )
    SELECT a.party_id
      FROM chain c
      JOIN matrix_assignments a ON a.scope_kind = 'place' AND a.scope_id = c.place_id
     WHERE a.role = 'lead' AND a.party_kind = 'unit'
       AND a.valid_from <= COALESCE(%(as_of)s::timestamptz, now())
       AND COALESCE(%(as_of)s::timestamptz, now()) < COALESCE(a.valid_to, 'infinity'::timestamptz)
     ORDER BY c.depth
     LIMIT 1
"""


_LEADS_UP_THE_TREE = _LEAD_UP_THE_TREE.replace("SELECT a.party_id", "SELECT a.party_id, c.depth").replace(
    "LIMIT 1", "")


def lead_units_for_place(conn: Connection[Row], place_id: UUID, as_of: datetime | None = None,
                         max_depth: int = 64) -> tuple[UUID, ...]:
    """Every lead unit (牵头单位) of the nearest place up the tree that has one (the place itself first), at `as_of`:
    exactly one when routing a problem there by the matrix is unambiguous (自动交办 needs that)."""
    rows = conn.execute(_LEADS_UP_THE_TREE, {"place_id": place_id, "as_of": as_of, "max_depth": max_depth}).fetchall()
    if not rows:
        return ()
    nearest = rows[0]["depth"]
    return tuple(sorted({r["party_id"] for r in rows if r["depth"] == nearest}, key=str))


def lead_unit_for_place(conn: Connection[Row], place_id: UUID, as_of: datetime | None = None,
                        max_depth: int = 64) -> UUID | None:
    """The lead unit (牵头单位) of a place at `as_of`, else of its nearest ancestor place that has one.

    The walk follows the place tree as it is now (structure_places.parent_id); `max_depth` bounds
    it even if the tree were ever corrupted into a cycle.
    """
    row = conn.execute(_LEAD_UP_THE_TREE, {"place_id": place_id, "as_of": as_of, "max_depth": max_depth}).fetchone()
    return row["party_id"] if row else None
