"""Queries over the open-work tables: escalation lists, who is told at a step, 按期整改率 per unit, notices.

Rows come back raw (plus names, grid, sub-command, 包保责任人 and 挂钩领导 resolved from the structure,
matrix and liaison tables at query time); working-time ages and the next step are computed by the caller,
which knows the calendar and the ladder.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from projections.trees import sub_command_of

Row = dict[str, Any]


def _rows(conn: Any, sql: str, params: Any) -> list[Row]:
    curs = conn.execute(sql, params)
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]


# In force at %(at)s (the database's now() when None).
_IN_FORCE = ("a.valid_from <= COALESCE(%(at)s::timestamptz, now())"
             " AND COALESCE(%(at)s::timestamptz, now()) < COALESCE(a.valid_to, 'infinity'::timestamptz)")

# For every place in `origins`: the nearest grid (网格) up the tree and the nearest 包保责任人 (bao_bao).
_PLACE_CONTEXT = """
up (origin, cur, depth) AS (
    SELECT DISTINCT place_id, place_id, 0 FROM origins WHERE place_id IS NOT NULL
    UNION ALL
    SELECT up.origin, sp.parent_id, up.depth + 1 FROM up JOIN structure_places sp ON sp.place_id = up.cur
     WHERE sp.parent_id IS NOT NULL AND up.depth < 64
), grid_of AS (
    SELECT DISTINCT ON (up.origin) up.origin AS place_id, g.place_id AS grid_id, g.name AS grid_name,
           g.number AS grid_number
      FROM up JOIN structure_places g ON g.place_id = up.cur AND g.place_kind = 'grid'
     ORDER BY up.origin, up.depth
), bao AS (
    SELECT up.origin, up.depth, a.party_kind, a.party_id, COALESCE(pe.name, su.name) AS name
      FROM up JOIN matrix_assignments a ON a.scope_kind = 'place' AND a.scope_id = up.cur AND a.role = 'bao_bao'
      LEFT JOIN structure_persons pe ON a.party_kind = 'person' AND pe.person_id = a.party_id
      LEFT JOIN structure_units su ON a.party_kind = 'unit' AND su.unit_id = a.party_id
     WHERE """ + _IN_FORCE + """
), bao_of AS (
    SELECT b.origin AS place_id, array_agg(b.party_id ORDER BY b.name) AS bao_bao_ids,
           jsonb_agg(jsonb_build_object('party_kind', b.party_kind, 'party_id', b.party_id, 'name', b.name)
                     ORDER BY b.name) AS bao_bao
      FROM bao b WHERE b.depth = (SELECT min(depth) FROM bao b2 WHERE b2.origin = b.origin)
     GROUP BY b.origin
), liaison AS (
    SELECT up.origin, up.depth, k.person_id, pe.name
      FROM up JOIN liaison_links k ON k.target_kind = 'place' AND k.target_id = up.cur
      LEFT JOIN structure_persons pe ON pe.person_id = k.person_id
     WHERE k.valid_from <= COALESCE(%(at)s::timestamptz, now())
       AND COALESCE(%(at)s::timestamptz, now()) < COALESCE(k.valid_to, 'infinity'::timestamptz)
), liaison_of AS (
    SELECT l.origin AS place_id, array_agg(l.person_id ORDER BY l.name) AS leader_ids,
           jsonb_agg(jsonb_build_object('party_kind', 'person', 'party_id', l.person_id, 'name', l.name)
                     ORDER BY l.name) AS leaders
      FROM liaison l WHERE l.depth = (SELECT min(depth) FROM liaison l2 WHERE l2.origin = l.origin)
     GROUP BY l.origin
), """ + sub_command_of("SELECT DISTINCT unit_id, unit_id, 0 FROM origins WHERE unit_id IS NOT NULL")

# HQ's own unit (the office when there is one): extension requests are HQ's work.
_HQ = ("(SELECT unit_id FROM structure_units WHERE campaign_id = %(campaign_id)s AND unit_kind IN ('office', 'hq')"
       " ORDER BY unit_kind = 'office' DESC, registered_at LIMIT 1)")

_ESCALATIONS = """
WITH RECURSIVE origins AS (
    SELECT w.*, COALESCE(w.responsible_unit_id, """ + _HQ + """) AS unit_id
      FROM work_items w
     WHERE w.campaign_id = %(campaign_id)s AND NOT w.closed AND w.level >= 0
       AND (%(level)s::int IS NULL OR w.level = %(level)s::int)
), """ + _PLACE_CONTEXT + """
SELECT o.item_kind, o.item_id, o.campaign_id, o.summary, o.state, o.unit_id, u.name AS unit_name,
       o.place_id, sp.name AS place_name, g.grid_id, g.grid_name, g.grid_number, s.sub_command_id,
       s.sub_command_name, COALESCE(b.bao_bao, '[]'::jsonb) AS bao_bao,
       COALESCE(lo.leaders, '[]'::jsonb) AS liaison_leaders, o.level, o.steps_done, o.last_step_at,
       o.deadline, o.opened_at, o.limit_working_hours, o.parked_since, o.relapse_count, o.relapse_at, o.closed,
       o.responsible_unit_id, o.parent_id, o.subject_kind
  FROM origins o
  LEFT JOIN structure_units u ON u.unit_id = o.unit_id
  LEFT JOIN structure_places sp ON sp.place_id = o.place_id
  LEFT JOIN grid_of g ON g.place_id = o.place_id
  LEFT JOIN sub_of s ON s.unit_id = o.unit_id
  LEFT JOIN bao_of b ON b.place_id = o.place_id
  LEFT JOIN liaison_of lo ON lo.place_id = o.place_id
 WHERE (%(unit_id)s::uuid IS NULL OR o.unit_id = %(unit_id)s::uuid)
   AND (%(grid_id)s::uuid IS NULL OR g.grid_id = %(grid_id)s::uuid)
   AND (%(sub_command_id)s::uuid IS NULL OR s.sub_command_id = %(sub_command_id)s::uuid)
   AND (%(bao_bao_id)s::uuid IS NULL OR %(bao_bao_id)s::uuid = ANY(b.bao_bao_ids))
   AND (%(leader_id)s::uuid IS NULL OR %(leader_id)s::uuid = ANY(lo.leader_ids)
        OR (lo.leader_ids IS NULL AND %(leader_id)s::uuid = ANY(b.bao_bao_ids))
        OR (o.item_kind = 'liaison_duty' AND o.parent_id = %(leader_id)s::uuid))
 ORDER BY o.level DESC, o.deadline NULLS LAST, o.item_kind, o.item_id
"""


def open_escalations(conn: Any, campaign_id: UUID, *, level: int | None = None, unit_id: UUID | None = None,
                     grid_id: UUID | None = None, sub_command_id: UUID | None = None, bao_bao_id: UUID | None = None,
                     leader_id: UUID | None = None, at: datetime | None = None) -> list[Row]:
    """Open work items that took at least one ladder step, with unit, place, grid, sub-command, 包保人 and 挂钩领导.

    `leader_id` keeps a leader's rows: at places they are the liaison leader of (the 包保人 standing in
    where no liaison link is defined), and their own unmet liaison duties.
    """
    return _rows(conn, _ESCALATIONS, {"campaign_id": campaign_id, "level": level, "unit_id": unit_id,
                                      "grid_id": grid_id, "sub_command_id": sub_command_id,
                                      "bao_bao_id": bao_bao_id, "leader_id": leader_id, "at": at})


def hq_unit(conn: Any, campaign_id: UUID) -> Row | None:
    rows = _rows(conn, "SELECT unit_id, name FROM structure_units WHERE unit_id = " + _HQ,
                 {"campaign_id": campaign_id})
    return rows[0] if rows else None


_PARTIES = """
WITH RECURSIVE origins AS (SELECT %(place_id)s::uuid AS place_id, %(unit_id)s::uuid AS unit_id), """ + _PLACE_CONTEXT + """
SELECT 'unit_head' AS role, 'person' AS party_kind, p.person_id AS party_id, p.name
  FROM structure_memberships m JOIN structure_persons p USING (person_id)
 WHERE m.unit_id = %(unit_id)s::uuid AND 'unit_head' = ANY(m.roles) AND NOT p.retired
UNION ALL
SELECT 'sub_command_or_grid_lead', 'unit', a.party_id, su.name
  FROM grid_of g JOIN matrix_assignments a ON a.scope_kind = 'place' AND a.scope_id = g.grid_id
  LEFT JOIN structure_units su ON su.unit_id = a.party_id
 WHERE a.role = 'lead' AND a.party_kind = 'unit' AND """ + _IN_FORCE + """
UNION ALL
SELECT 'sub_command_or_grid_lead', 'unit', s.sub_command_id, s.sub_command_name FROM sub_of s
UNION ALL
SELECT 'liaison_leader', 'person', l.person_id, l.name
  FROM liaison l WHERE l.depth = (SELECT min(depth) FROM liaison)
UNION ALL
SELECT 'liaison_leader', b.party_kind, b.party_id, b.name
  FROM bao b WHERE b.depth = (SELECT min(depth) FROM bao) AND NOT EXISTS (SELECT 1 FROM liaison)
UNION ALL
SELECT 'hq', 'unit', unit_id, name FROM structure_units WHERE unit_id = """ + _HQ + """
UNION ALL
SELECT 'unit', 'unit', unit_id, name FROM structure_units WHERE unit_id = %(unit_id)s::uuid
"""


def step_parties(conn: Any, campaign_id: UUID, unit_id: UUID | None, place_id: UUID | None,
                 at: datetime | None = None) -> dict[str, list[Row]]:
    """Who can be told at a step: the unit, its head, the grid lead and sub-command, the liaison leader (挂钩领导,
    nearest up the place tree; the 包保责任人 where no liaison link is defined), HQ."""
    out: dict[str, list[Row]] = {}
    params = {"campaign_id": campaign_id, "unit_id": unit_id, "place_id": place_id, "at": at}
    for row in _rows(conn, _PARTIES, params):
        out.setdefault(row.pop("role"), []).append(row)
    return out


def place_name(conn: Any, place_id: UUID | None) -> str | None:
    if place_id is None:
        return None
    rows = _rows(conn, "SELECT name FROM structure_places WHERE place_id = %s", (place_id,))
    return rows[0]["name"] if rows else None


def listing_steps(conn: Any, campaign_id: UUID, until: datetime) -> list[Row]:
    """Level-3 listings for 通报 (列入通报) taken before `until`, with their item, unit and place."""
    return _rows(conn, """
        SELECT s.step_id, s.item_kind, s.item_id, s.taken_at, s.due_at, w.summary, w.deadline, w.state, w.parent_id,
               COALESCE(s.responsible_unit_id, w.responsible_unit_id) AS unit_id, u.name AS unit_name,
               sp.name AS place_name
          FROM escalation_steps s
          LEFT JOIN work_items w ON w.item_kind = s.item_kind AND w.item_id = s.item_id
          LEFT JOIN structure_units u ON u.unit_id = COALESCE(s.responsible_unit_id, w.responsible_unit_id)
          LEFT JOIN structure_places sp ON sp.place_id = w.place_id
         WHERE s.campaign_id = %s AND s.step_name = 'bulletin_listing' AND s.taken_at < %s
         ORDER BY s.taken_at, s.step_id""", (campaign_id, until))


def notices_for(conn: Any, campaign_id: UUID, unit_id: UUID | None = None, pending: bool | None = None,
                limit: int = 200) -> list[Row]:
    """Notices of the campaign, newest first; for one addressee (unit or person) and/or only unacknowledged."""
    return _rows(conn, """
        SELECT notice_id, notice_kind, subject_kind, subject_id, recipients, channels, text_zh, issued_at,
               ack_due_at, acknowledged_at, acks, escalation_step_id
          FROM notices
         WHERE campaign_id = %(campaign_id)s AND (%(unit_id)s::uuid IS NULL OR %(unit_id)s::uuid = ANY(recipient_ids))
           AND (%(pending)s::bool IS NULL OR (acknowledged_at IS NULL) = %(pending)s::bool)
         ORDER BY issued_at DESC, notice_id LIMIT %(limit)s""",
                 {"campaign_id": campaign_id, "unit_id": unit_id, "pending": pending, "limit": limit})


def steps_of(conn: Any, item_kind: str, item_id: UUID) -> list[Row]:
    return _rows(conn, "SELECT * FROM escalation_steps WHERE item_kind = %s AND item_id = %s ORDER BY taken_at, level",
                 (item_kind, item_id))
