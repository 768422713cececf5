"""The escalator's schedule cache: which open work items a tick must judge, and each one's next check time.

`escalator_schedule` holds, per item, the instant before which nothing can fall due; the escalator
owns it (not a projection, safe to truncate with `reset`). `escalator_state` holds the projection's
`row_version` watermark up to which every changed item was judged, and the policy key of each
campaign (its ladder history and calendar). A tick judges only the open items changed since the
watermark, the items of campaigns whose policy changed, and the items whose check time has come;
all read in one REPEATABLE READ snapshot, so no change slips between the watermark and the rows.

Judging an item whose earliest possible step is far off is cheap: `threshold_at` of the smallest
pending ladder offset is a lower bound of every pending step's due instant (a step falls due at
its threshold, or later when its ladder takes effect later), so only items near that bound pay
for the full `pending_steps`. Relapse steps are not bounded by the deadline: such items are
always judged in full.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from domain.kernel.calendar import WorkCalendar
from domain.escalation.ladder import DEFAULT_LADDER, DueStep, Ladder, pending_steps
from domain.escalation.work_item import WorkItem, threshold_at
from projections.work_items import work_item

DDL = (
    "CREATE TABLE IF NOT EXISTS escalator_schedule (item_kind text NOT NULL, item_id uuid NOT NULL,"
    " check_at timestamptz NOT NULL, PRIMARY KEY (item_kind, item_id))",
    "CREATE INDEX IF NOT EXISTS escalator_schedule_check ON escalator_schedule (check_at)",
    "CREATE TABLE IF NOT EXISTS escalator_state (id int PRIMARY KEY, watermark bigint NOT NULL,"
    " policy_keys jsonb NOT NULL)",
)

_COLUMNS = ("w.item_kind, w.item_id, w.campaign_id, w.responsible_unit_id, w.place_id, w.deadline, w.opened_at,"
            " w.limit_working_hours, w.parked_since, w.relapse_count, w.relapse_at, w.closed, w.steps_done")
# Changed since the watermark or of a campaign whose policy changed (open only), or due for a check (any:
# a closed one is dropped from the schedule).
_CANDIDATES = f"""
SELECT {_COLUMNS} FROM work_items w
 WHERE NOT w.closed AND (w.row_version > %(watermark)s OR w.campaign_id = ANY(%(changed)s::uuid[]))
UNION
SELECT {_COLUMNS} FROM escalator_schedule s
  JOIN work_items w ON w.item_kind = s.item_kind AND w.item_id = s.item_id
 WHERE s.check_at <= %(now)s
"""


@dataclass(frozen=True)
class Rules:
    """What a campaign's items are judged by: its ladder history and calendar, and a key naming both."""

    ladders: tuple[Ladder, ...]
    calendar: WorkCalendar
    key: str


def rules_for(ladders: tuple[Ladder, ...], calendar: WorkCalendar) -> Rules:
    local = (sorted(d.isoformat() for d in calendar.days_off), sorted(d.isoformat() for d in calendar.make_up_workdays))
    body = json.dumps([[ladder.model_dump(mode="json") for ladder in ladders], local], sort_keys=True)
    return Rules(ladders, calendar, hashlib.sha256(body.encode()).hexdigest()[:32])


# The campaigns with open work, by skipping through the partial index (fast however many items are open).
OPEN_CAMPAIGNS = """
WITH RECURSIVE c (id) AS (
    (SELECT campaign_id FROM work_items WHERE NOT closed ORDER BY campaign_id LIMIT 1)
    UNION ALL
    SELECT (SELECT campaign_id FROM work_items WHERE NOT closed AND campaign_id > c.id ORDER BY campaign_id LIMIT 1)
      FROM c WHERE c.id IS NOT NULL
)
SELECT id AS campaign_id FROM c WHERE id IS NOT NULL
"""


def create(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_escalator_ddl'))")
        for statement in DDL:
            conn.execute(statement)


def reset(conn: psycopg.Connection[Any]) -> None:
    """Forget every judgement: the next tick judges every open item again."""
    with conn.transaction():
        conn.execute("TRUNCATE escalator_schedule, escalator_state")


@dataclass
class Candidates:
    rows: list[dict[str, Any]]
    read_watermark: int  # the watermark the rows were chosen by
    watermark: int  # the watermark once they are judged
    changed: bool  # the watermark or a policy key moved: the state must be saved


def read_candidates(conn: psycopg.Connection[Any], keys: dict[UUID, str], now: datetime) -> Candidates:
    """The rows a tick must judge and the watermark they bring the state to (one snapshot)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        state = conn.execute("SELECT watermark, policy_keys FROM escalator_state WHERE id = 1").fetchone()
        watermark, known = (state["watermark"], state["policy_keys"]) if state else (0, {})
        changed = [c for c, key in keys.items() if known.get(str(c)) != key]
        # Every row reflects the events up to the projection's position, and later changes get higher versions.
        head = conn.execute("SELECT position FROM dudao_projection_positions WHERE name = 'work_items'").fetchone()
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(_CANDIDATES, {"watermark": watermark, "changed": changed, "now": now}).fetchall()
    new_watermark = max(watermark, head["position"] if head else 0)
    return Candidates(rows, watermark, new_watermark, bool(changed) or new_watermark != watermark)


def judge(rows: Sequence[dict[str, Any]], rules: dict[UUID, Rules],
          now: datetime) -> tuple[list[list[DueStep]], list[tuple[str, UUID, datetime | None]]]:
    """Each open row's due steps (in ladder order) and its next check time (None: not until it changes)."""
    plans: list[list[DueStep]] = []
    checks: list[tuple[str, UUID, datetime | None]] = []
    for row in rows:
        r = rules.get(row["campaign_id"])
        if row["closed"] or r is None:
            checks.append((row["item_kind"], row["item_id"], None))
            continue
        hours = row["limit_working_hours"]
        deadline = r.calendar.add_working_hours(row["opened_at"], hours) if row["deadline"] is None and hours else None
        item = work_item(row, deadline)
        bound = earliest_possible(item, r)
        if bound is not _Bound.JUDGE and (bound is None or bound > now):
            checks.append((item.item_kind, item.item_id, bound))
            continue
        pending = pending_steps(item, r.ladders, r.calendar, now)
        if due := [s for s in pending if s.due_at <= now]:
            plans.append(due)
        checks.append((item.item_kind, item.item_id, pending[0].due_at if pending else None))
    return plans, checks


class _Bound(Enum):
    JUDGE = "judge"  # the bound cannot be known without judging in full


def earliest_possible(item: WorkItem, r: Rules) -> datetime | None | Literal[_Bound.JUDGE]:
    """A lower bound of the item's next due instant; None if nothing can fall due until it changes."""
    if item.relapse_count > 0:
        return _Bound.JUDGE
    offsets = [s.offset_working_hours for ladder in (DEFAULT_LADDER, *r.ladders) for s in ladder.steps
               if s.name not in item.steps_done]
    return threshold_at(item, r.calendar, min(offsets)) if offsets else None


def save(conn: psycopg.Connection[Any], checks: list[tuple[str, UUID, datetime | None]], found: Candidates,
         keys: dict[UUID, str]) -> bool:
    """Store the next check times (dropping items with none) and the new watermark and policy keys.

    Doubled escalators (a lock failure, a manual --once) save one after the other; one that judged
    an older snapshot than what was saved meanwhile saves nothing (False): its judgements may be stale.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_escalator_cache'))")
        state = conn.execute("SELECT watermark FROM escalator_state WHERE id = 1").fetchone()
        if (state["watermark"] if state else 0) != found.read_watermark:
            return False
        if checks:
            conn.execute("CREATE TEMP TABLE checks_in (item_kind text, item_id uuid, check_at timestamptz)"
                         " ON COMMIT DROP")
            with conn.cursor().copy("COPY checks_in FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "uuid", "timestamptz"])
                for row in checks:
                    copy.write_row(row)
            conn.execute("DELETE FROM escalator_schedule s USING checks_in c"
                         " WHERE c.check_at IS NULL AND s.item_kind = c.item_kind AND s.item_id = c.item_id")
            conn.execute("INSERT INTO escalator_schedule SELECT * FROM checks_in WHERE check_at IS NOT NULL"
                         " ON CONFLICT (item_kind, item_id) DO UPDATE SET check_at = EXCLUDED.check_at")
        conn.execute("INSERT INTO escalator_state (id, watermark, policy_keys) VALUES (1, %s, %s)"
                     " ON CONFLICT (id) DO UPDATE SET watermark = EXCLUDED.watermark,"
                     " policy_keys = escalator_state.policy_keys || EXCLUDED.policy_keys",
                     (found.watermark, Jsonb({str(c): k for c, k in keys.items()})))
    return True
