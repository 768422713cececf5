"""The rectification ledger (整改台账): one row per problem, its full timeline, grid progress, and match lookups.

Each problem event folds the row's stored state with the domain's own evolver, so a row is
exactly the problem's state as of its last event; the columns beside the state are for filters.
The timeline stores each event's own one-line summary (`summary_zh`, declared beside the event), and
the ledger reads every problem event there is, so a new one can be neither skipped nor unworded.
Grid (网格: the nearest ancestor place of kind grid, or the place itself), place, unit and
sub-command (分指挥部: the nearest ancestor unit of kind sub_command) are resolved at query time
from the structure tables, so no handler depends on another table's current state. Time used
and the traffic light (三色) are computed at query time by the domain's clock rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain import problem as pr
from domain.kernel.base import events_of_kind, fold
from domain.kernel.calendar import WorkCalendar
from domain.problem.commands import ClosedMatch, ProblemMatches
from domain.problem.rules import closed_on_time, is_overdue, problem_light, time_used_fraction, working_hours_used
from domain.problem.state import Problem
from projections.base import Projection, RecordedEvent
from projections.trees import sub_command_of

Row = dict[str, Any]

DDL = (
    """CREATE TABLE IF NOT EXISTS ledger_problems (
        problem_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, place_id uuid NOT NULL, unit_id uuid NULL,
        category text NOT NULL, severity text NOT NULL, state text NOT NULL, source text NOT NULL,
        found_at timestamptz NOT NULL, reported_at timestamptz NOT NULL, assigned_at timestamptz NULL,
        deadline timestamptz NULL, limit_hours double precision NOT NULL DEFAULT 0,
        submitted_at timestamptz NULL, closed_at timestamptz NULL, rework_count int NOT NULL DEFAULT 0,
        relapse_count int NOT NULL DEFAULT 0, parked_since timestamptz NULL, pauses jsonb NOT NULL DEFAULT '[]',
        likely_duplicate_of uuid[] NOT NULL DEFAULT '{}', relapse_of uuid NULL, version int NOT NULL,
        state_json jsonb NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ledger_problems_campaign ON ledger_problems (campaign_id, state)",
    "CREATE INDEX IF NOT EXISTS ledger_problems_match ON ledger_problems (campaign_id, place_id, category)",
    "CREATE INDEX IF NOT EXISTS ledger_problems_unit ON ledger_problems (unit_id)",
    """CREATE TABLE IF NOT EXISTS ledger_timeline (
        problem_id uuid NOT NULL, version int NOT NULL, notification_id bigint NOT NULL, event_type text NOT NULL,
        occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, actor_person_id uuid NULL,
        actor_role text NOT NULL, summary_zh text NOT NULL, data jsonb NOT NULL, PRIMARY KEY (problem_id, version))""",
)

class LedgerProjection(Projection):
    """整改台账: the problem rows and every problem's timeline."""

    name = "ledger"
    tables = ("ledger_problems", "ledger_timeline")
    ddl = DDL

    def register(self) -> None:
        self.on(*events_of_kind(pr.KIND))(problem_event)


def _columns(p: Problem) -> Row:
    return {
        "campaign_id": p.campaign_id, "place_id": p.place_id, "unit_id": p.unit_id, "category": p.category,
        "severity": p.severity.value, "state": p.state.value, "source": p.source, "found_at": p.found_at,
        "reported_at": p.reported_at, "assigned_at": p.assigned_at, "deadline": p.deadline,
        "limit_hours": p.limit_hours, "submitted_at": p.last_submitted_at, "closed_at": p.closed_at,
        "rework_count": p.rework_count, "relapse_count": p.relapse_count, "parked_since": p.parked_since,
        "pauses": Jsonb([[a.isoformat(), b.isoformat()] for a, b in p.pauses]),
        "likely_duplicate_of": list(p.likely_duplicate_of), "relapse_of": p.relapse_of,
        "state_json": Jsonb(p.model_dump(mode="json")),
    }


def problem_event(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, pr.ProblemEvent)
    row = curs.execute("SELECT state_json FROM ledger_problems WHERE problem_id = %s", (e.problem_id,)).fetchone()
    before = None if row is None else Problem.model_validate(row["state_json"] if isinstance(row, dict) else row[0])
    cols = {"problem_id": e.problem_id, **_columns(fold("problem", [e], Problem, before)), "version": rec.originator_version}
    names = ", ".join(cols)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "problem_id")
    curs.execute(f"INSERT INTO ledger_problems ({names}) VALUES ({', '.join(['%s'] * len(cols))})"
                 f" ON CONFLICT (problem_id) DO UPDATE SET {updates}", tuple(cols.values()))
    curs.execute(
        "INSERT INTO ledger_timeline (problem_id, version, notification_id, event_type, occurred_at, recorded_at,"
        " actor_person_id, actor_role, summary_zh, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (e.problem_id, rec.originator_version, rec.notification_id, type(e).__name__, e.meta.occurred_at,
         e.meta.recorded_at, e.meta.actor.person_id, e.meta.actor.role, e.summary_zh(),
         Jsonb(e.model_dump(mode="json", exclude={"meta"}))),
    )


# Queries ------------------------------------------------------------------------------------------

# Grid of every place with problems and sub-command of every responsible unit, walking the trees as
# they are now; depth-bounded so a corrupted tree cannot loop.
_TREES = """
WITH RECURSIVE up (origin, cur, depth) AS (
    SELECT DISTINCT place_id, place_id, 0 FROM ledger_problems WHERE campaign_id = %(campaign_id)s
    UNION ALL
    SELECT up.origin, sp.parent_id, up.depth + 1 FROM up JOIN structure_places sp ON sp.place_id = up.cur
     WHERE sp.place_kind <> 'grid' AND sp.parent_id IS NOT NULL AND up.depth < 64
), grid_of AS (
    SELECT DISTINCT ON (up.origin) up.origin AS place_id, g.place_id AS grid_id, g.name AS grid_name,
           g.number AS grid_number
      FROM up JOIN structure_places g ON g.place_id = up.cur AND g.place_kind = 'grid'
     ORDER BY up.origin, up.depth
), """ + sub_command_of("SELECT DISTINCT unit_id, unit_id, 0 FROM ledger_problems"
                     " WHERE campaign_id = %(campaign_id)s AND unit_id IS NOT NULL")

_LEDGER = _TREES + """
SELECT l.*, g.grid_id, g.grid_name, g.grid_number, sp.name AS place_name, su.name AS unit_name,
       s.sub_command_id, s.sub_command_name
  FROM ledger_problems l
  LEFT JOIN grid_of g ON g.place_id = l.place_id
  LEFT JOIN structure_places sp ON sp.place_id = l.place_id
  LEFT JOIN structure_units su ON su.unit_id = l.unit_id
  LEFT JOIN sub_of s ON s.unit_id = l.unit_id
 WHERE l.campaign_id = %(campaign_id)s
   AND (%(unit_id)s::uuid IS NULL OR l.unit_id = %(unit_id)s::uuid)
   AND (%(grid_id)s::uuid IS NULL OR g.grid_id = %(grid_id)s::uuid)
   AND (%(sub_command_id)s::uuid IS NULL OR s.sub_command_id = %(sub_command_id)s::uuid)
   AND (%(state)s::text IS NULL OR l.state = %(state)s::text)
   AND (%(states)s::text[] IS NULL OR l.state = ANY(%(states)s::text[]))
 ORDER BY g.grid_number NULLS LAST, l.reported_at, l.problem_id
"""


def _rows(conn: Any, sql: str, params: Any) -> list[Row]:
    curs = conn.execute(sql, params)
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]


def _clock(row: Row, now: datetime, calendar: WorkCalendar) -> Row:
    """Time used and the traffic light of one row, by the domain's rules, at `now`."""
    problem = Problem.model_validate(row.pop("state_json"))
    assigned = problem.assigned_at is not None
    return {
        **row, "description": problem.description, "parked": problem.parked, "extension_count": problem.extension_count,
        "transfer_count": problem.transfer_count, "acknowledged_at": problem.acknowledged_at,
        "hours_used": round(working_hours_used(problem, calendar, now), 2),
        "time_used": round(time_used_fraction(problem, calendar, now), 4) if assigned else None,
        "light": problem_light(problem, calendar, now) if assigned else None,
        "overdue": is_overdue(problem, now),
        "closed_on_time": closed_on_time(problem),  # 按期结案: None until closed
    }


def ledger(conn: Any, campaign_id: UUID, *, now: datetime, calendar: WorkCalendar, unit_id: UUID | None = None,
           grid_id: UUID | None = None, state: str | None = None, sub_command_id: UUID | None = None,
           states: Iterable[str] | None = None) -> list[Row]:
    """The campaign's ledger rows (filtered; `states`: any of them), each with time used and its light at `now`."""
    params = {"campaign_id": campaign_id, "unit_id": unit_id, "grid_id": grid_id, "state": state,
              "sub_command_id": sub_command_id, "states": None if states is None else list(states)}
    return [_clock(r, now, calendar) for r in _rows(conn, _LEDGER, params)]


def timeline(conn: Any, problem_id: UUID) -> list[Row]:
    """Every event of one problem in order, with the acting person's name."""
    return _rows(conn, "SELECT t.version, t.notification_id, t.event_type, t.occurred_at, t.recorded_at,"
                       " t.actor_person_id, p.name AS actor_name, t.actor_role, t.summary_zh, t.data"
                       " FROM ledger_timeline t LEFT JOIN structure_persons p ON p.person_id = t.actor_person_id"
                       " WHERE t.problem_id = %s ORDER BY t.version", (problem_id,))


_GRIDS = _TREES + """
SELECT g.place_id AS grid_id, g.name AS grid_name, g.number AS grid_number,
       count(l.problem_id) AS total,
       count(l.problem_id) FILTER (WHERE l.state IN ('verified', 'closed')) AS rectified,
       count(l.problem_id) FILTER (WHERE l.state = 'closed') AS closed,
       count(l.problem_id) FILTER (WHERE l.state NOT IN ('verified', 'closed')) AS open
  FROM structure_places g
  LEFT JOIN grid_of go ON go.grid_id = g.place_id
  LEFT JOIN ledger_problems l ON l.place_id = go.place_id AND l.campaign_id = %(campaign_id)s
        AND l.state NOT IN ('withdrawn', 'merged')
 WHERE g.campaign_id = %(campaign_id)s AND g.place_kind = 'grid'
 GROUP BY g.place_id, g.name, g.number
 ORDER BY g.number NULLS LAST, g.name
"""


def grid_counts(conn: Any, campaign_id: UUID) -> list[Row]:
    """Per grid: problems (withdrawn and merged ones aside), rectified (verified or closed), closed, open."""
    return _rows(conn, _GRIDS, {"campaign_id": campaign_id})


def matches_for(conn: Any, campaign_id: UUID, keys: Iterable[tuple[UUID, str]]) -> dict[tuple[UUID, str], ProblemMatches]:
    """For each (place, category): the open problems there and the closed ones with their closing time."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    rows = _rows(conn, "SELECT problem_id, place_id, category, state, closed_at FROM ledger_problems"
                       " WHERE campaign_id = %s AND (place_id, category) IN (SELECT * FROM unnest(%s::uuid[], %s::text[]))"
                       " AND state NOT IN ('withdrawn', 'merged') ORDER BY reported_at, problem_id",
                 (campaign_id, [k[0] for k in keys], [k[1] for k in keys]))
    found: dict[tuple[UUID, str], ProblemMatches] = {k: ProblemMatches() for k in keys}
    for r in rows:
        key, m = (r["place_id"], r["category"]), found[(r["place_id"], r["category"])]
        if r["state"] == pr.ProblemState.CLOSED:
            closed = (*m.recently_closed_matches, ClosedMatch(problem_id=r["problem_id"], closed_at=r["closed_at"]))
            found[key] = m.model_copy(update={"recently_closed_matches": closed})
        else:
            found[key] = m.model_copy(update={"open_matches": (*m.open_matches, r["problem_id"])})
    return found


def problem_matches(conn: Any, campaign_id: UUID, place_id: UUID, category: str) -> ProblemMatches:
    """The open and closed problems at one place and category."""
    return matches_for(conn, campaign_id, [(place_id, category)])[(place_id, category)]


OPEN_STATES = ("reported", "assigned", "acknowledged", "rectification_submitted", "rework")  # grid_counts' open


def open_ledger(conn: Any, campaign_id: UUID, *, now: datetime, calendar: WorkCalendar) -> list[Row]:
    """The campaign's open problems (not verified, closed, withdrawn or merged), each with its light at `now`."""
    return ledger(conn, campaign_id, now=now, calendar=calendar, states=OPEN_STATES)


def latest_deadline(conn: Any, campaign_id: UUID, by: datetime) -> datetime | None:
    """The latest problem deadline that had passed by `by` (the last moment something fell due), or None."""
    row = conn.execute("SELECT max(deadline) AS d FROM ledger_problems WHERE campaign_id = %s AND deadline <= %s",
                       (campaign_id, by)).fetchone()
    value = row["d"] if isinstance(row, dict) else row[0] if row else None
    return value if isinstance(value, datetime) else None
