"""The visits read model (督导记录): one row per supervision visit, with its findings, for the visit lists.

Each visit event folds the row's stored state with the domain's own evolver, so a row is exactly the
visit as of its last event. The list answers by supervisor (any participant, 督导人员), place (the visit's
place or one inside it), grid (网格: the nearest ancestor place of kind grid, as the ledger resolves it),
local days of occurrence, and `as_of` (visits recorded by then); each finding comes with the problem it
became as the metrics read model had it at that instant (state, responsible unit, deadline, closure).
A single visit is folded from the store by the HTTP route, never read from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain import visit as vi
from domain.kernel.base import events_of_kind, fold
from projections.base import Projection, RecordedEvent

Row = dict[str, Any]

DDL = (
    """CREATE TABLE IF NOT EXISTS visits (
        visit_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, place_id uuid NOT NULL, visit_type text NOT NULL,
        participants uuid[] NOT NULL, occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL,
        logged_by uuid NULL, status text NOT NULL, closed_at timestamptz NULL, finding_count int NOT NULL,
        version int NOT NULL, state_json jsonb NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS visits_campaign ON visits (campaign_id, occurred_at)",
    "CREATE INDEX IF NOT EXISTS visits_participants ON visits USING gin (participants)",
)


class VisitsProjection(Projection):
    """督导记录: one row per visit (logged whole, or opened, added to and closed)."""

    name = "visits"
    tables = ("visits",)
    ddl = DDL

    def register(self) -> None:
        self.on(*events_of_kind(vi.KIND))(visit_event)


def visit_event(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    row = curs.execute("SELECT state_json FROM visits WHERE visit_id = %s", (rec.originator_id,)).fetchone()
    before = None if row is None else vi.Visit.model_validate(row["state_json"] if isinstance(row, dict) else row[0])
    v = fold(vi.KIND, [e], vi.Visit, before)
    cols = {"visit_id": v.visit_id, "campaign_id": v.campaign_id, "place_id": v.place_id, "visit_type": v.visit_type,
            "participants": list(v.participants), "occurred_at": v.occurred_at, "recorded_at": v.recorded_at,
            "logged_by": v.logged_by, "status": v.status, "closed_at": v.closed_at, "finding_count": len(v.findings),
            "version": rec.originator_version, "state_json": Jsonb(v.model_dump(mode="json"))}
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "visit_id")
    curs.execute(f"INSERT INTO visits ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
                 f" ON CONFLICT (visit_id) DO UPDATE SET {updates}", tuple(cols.values()))


# --- queries ---------------------------------------------------------------------------------------------

# The grid of each visit's place (nearest ancestor of kind grid, or the place itself), and whether the place is
# the one asked for or inside it; both walk the place tree as it is now, depth-bounded.
_LIST = """
WITH RECURSIVE v AS (
    SELECT * FROM visits
     WHERE campaign_id = %(campaign_id)s
       AND (%(person_id)s::uuid IS NULL OR %(person_id)s::uuid = ANY(participants))
       AND (%(start)s::timestamptz IS NULL OR occurred_at >= %(start)s::timestamptz)
       AND (%(end)s::timestamptz IS NULL OR occurred_at < %(end)s::timestamptz)
       AND (%(as_of)s::timestamptz IS NULL OR recorded_at <= %(as_of)s::timestamptz)
), up (origin, cur, depth) AS (
    SELECT DISTINCT place_id, place_id, 0 FROM v
    UNION ALL
    SELECT up.origin, sp.parent_id, up.depth + 1 FROM up JOIN structure_places sp ON sp.place_id = up.cur
     WHERE sp.parent_id IS NOT NULL AND up.depth < 64
), grid_of AS (
    SELECT DISTINCT ON (up.origin) up.origin AS place_id, g.place_id AS grid_id, g.name AS grid_name
      FROM up JOIN structure_places g ON g.place_id = up.cur AND g.place_kind = 'grid'
     ORDER BY up.origin, up.depth
)
SELECT v.visit_id, v.campaign_id, v.place_id, sp.name AS place_name, g.grid_id, g.grid_name, v.visit_type,
       v.participants, v.occurred_at, v.recorded_at, v.logged_by, v.status, v.closed_at, v.finding_count,
       v.state_json, count(*) OVER () AS total
  FROM v
  LEFT JOIN grid_of g ON g.place_id = v.place_id
  LEFT JOIN structure_places sp ON sp.place_id = v.place_id
 WHERE (%(grid_id)s::uuid IS NULL OR g.grid_id = %(grid_id)s::uuid)
   AND (%(place_id)s::uuid IS NULL OR EXISTS (SELECT 1 FROM up WHERE up.origin = v.place_id
                                              AND up.cur = %(place_id)s::uuid))
 ORDER BY v.occurred_at DESC, v.visit_id
 LIMIT %(limit)s OFFSET %(offset)s
"""

# The problem each finding became, as the metrics read model had it at J (the current version when J is None).
_PROBLEMS = """
SELECT m.problem_id, m.state, m.unit_id, u.name AS unit_name, m.deadline, m.closed_at
  FROM metric_problem_versions m LEFT JOIN structure_units u ON u.unit_id = m.unit_id
 WHERE m.problem_id = ANY(%(ids)s)
   AND (CASE WHEN %(at)s::timestamptz IS NULL THEN m.valid_to IS NULL
             ELSE m.valid_from <= %(at)s::timestamptz AND (m.valid_to IS NULL OR m.valid_to > %(at)s::timestamptz) END)
"""


def _rows(conn: Any, sql: str, params: Any) -> list[Row]:
    curs = conn.execute(sql, params)
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]


def list_visits(conn: Any, campaign_id: UUID, *, person_id: UUID | None = None, place_id: UUID | None = None,
                grid_id: UUID | None = None, start: datetime | None = None, end: datetime | None = None,
                as_of: datetime | None = None, limit: int = 200, offset: int = 0) -> tuple[list[Row], int]:
    """The campaign's visits (newest occurrence first) matching the filters, each with its findings and the
    problems they became; and how many match in all."""
    params = {"campaign_id": campaign_id, "person_id": person_id, "place_id": place_id, "grid_id": grid_id,
              "start": start, "end": end, "as_of": as_of, "limit": limit, "offset": offset}
    rows = _rows(conn, _LIST, params)
    total = int(rows[0]["total"]) if rows else 0
    ids = [f["problem_id"] for r in rows for f in r["state_json"]["findings"]]
    problems = {str(p["problem_id"]): p for p in _rows(conn, _PROBLEMS, {"ids": ids, "at": as_of})} if ids else {}
    return [_visit_row(r, problems, as_of) for r in rows], total


def _visit_row(row: Row, problems: dict[str, Row], as_of: datetime | None) -> Row:
    state = row.pop("state_json")
    row.pop("total")
    findings = []
    for f in state["findings"]:
        problem = problems.get(f["problem_id"])
        if as_of is not None and problem is None:
            continue  # added after as_of: its problem (reported in the same write) did not exist yet
        findings.append({**f, "problem": {k: v for k, v in problem.items() if k != "problem_id"} if problem else None})
    if as_of is not None and row["closed_at"] is not None and row["closed_at"] > as_of:
        row = {**row, "status": "open", "closed_at": None}  # closed after as_of: still open then
    return {**row, "checklist": state["checklist"], "note": state["note"], "findings": findings,
            "finding_count": len(findings)}
