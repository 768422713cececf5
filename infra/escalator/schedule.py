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

Most changed items are far from any step, and a cold tick (an empty schedule: first start, `reset`,
a policy change) would otherwise read and judge every open item in Python (3.6–6 s over 100k). So
the database sorts them first. Per campaign, the floor of a UTC day (`floor_at`) is the threshold
of the smallest offset of any step of any ladder version, taken at the day's first instant: no step
of an item whose deadline falls on that day or later can fall due before it (a threshold only moves
later when the deadline does, when steps are done or when the item is parked). Floors grow with the
day, so the days whose floor has come end at a cutoff day (`cutoff_day`), and a changed item whose
deadline falls after it is not read at all. `escalator_horizons` keeps, per campaign, the cutoff
every such item was left behind; when the cutoff moves on, the tick reads and judges in full the open
items whose deadline falls between the old and the new one, then keeps the new one. Every open,
unchanged item thus has its own check time or a deadline after its campaign's horizon.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from domain.kernel.calendar import WorkCalendar
from domain.escalation.ladder import DEFAULT_LADDER, DueStep, Ladder, pending_steps
from domain.escalation.work_item import WorkItem, threshold_at
from projections.work_items import work_item

_PROBE_ID = UUID(int=0)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

DDL = (
    "CREATE TABLE IF NOT EXISTS escalator_schedule (item_kind text NOT NULL, item_id uuid NOT NULL,"
    " check_at timestamptz NOT NULL, PRIMARY KEY (item_kind, item_id))",
    "CREATE INDEX IF NOT EXISTS escalator_schedule_check ON escalator_schedule (check_at)",
    "CREATE TABLE IF NOT EXISTS escalator_state (id int PRIMARY KEY, watermark bigint NOT NULL,"
    " policy_keys jsonb NOT NULL)",
    "CREATE TABLE IF NOT EXISTS escalator_horizons (campaign_id uuid PRIMARY KEY, day bigint NOT NULL)",
)

_COLUMNS = ("w.item_kind, w.item_id, w.campaign_id, w.responsible_unit_id, w.place_id, w.deadline, w.opened_at,"
            " w.limit_working_hours, w.parked_since, w.relapse_count, w.relapse_at, w.closed, w.steps_done")
# Changed since the watermark or of a campaign whose policy changed (open only).
_CHANGED = "NOT w.closed AND (w.row_version > %(watermark)s OR w.campaign_id = ANY(%(changed)s::uuid[]))"
# A lower bound of the deadline: a deadline counted from opening (`limit_working_hours`) is at least that
# many wall-clock hours after it (working time is a part of wall time; less 30 s for the rounding to the minute).
_DEADLINE_FLOOR = ("CASE WHEN w.deadline IS NOT NULL THEN w.deadline WHEN w.limit_working_hours > 0"
                   " THEN w.opened_at + make_interval(secs => w.limit_working_hours * 3600 - 30) END")
_DAY = f"floor(extract(epoch FROM {_DEADLINE_FLOOR}) / 86400)::bigint"  # the UTC day, counted from 1970-01-01
_NO_DEADLINE = "w.deadline IS NULL AND coalesce(w.limit_working_hours, 0) = 0"
_CUTOFF = "(%(cutoffs)s ->> w.campaign_id::text)::bigint"  # jsonb {campaign: day}: one lookup per row, any plan
# Nothing can fall due before the day's floor (no cutoff known: not far, judged) or, with no deadline, until it changes.
_FAR = (f"w.relapse_count = 0 AND %(cutoffs)s ? w.campaign_id::text"
        f" AND (({_NO_DEADLINE}) OR coalesce({_DAY} > {_CUTOFF}, false))")
# What the tick judges: changed rows not far, rows due for a check (any: a closed one is dropped from the
# schedule), and the open rows whose deadline the cutoff passed since the horizon was kept.
_CANDIDATES = f"""
SELECT {_COLUMNS} FROM work_items w WHERE {_CHANGED} AND NOT ({_FAR})
UNION
SELECT {_COLUMNS} FROM escalator_schedule s
  JOIN work_items w ON w.item_kind = s.item_kind AND w.item_id = s.item_id
 WHERE s.check_at <= %(now)s
UNION
SELECT {_COLUMNS} FROM work_items w
 WHERE NOT w.closed AND w.campaign_id = ANY(%(passed)s::uuid[])
   AND {_DAY} > (%(horizons)s ->> w.campaign_id::text)::bigint AND {_DAY} <= {_CUTOFF}
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
        conn.execute("TRUNCATE escalator_schedule, escalator_state, escalator_horizons")


@dataclass
class Candidates:
    rows: list[dict[str, Any]]
    read_watermark: int  # the watermark the rows were chosen by
    watermark: int  # the watermark once they are judged
    changed: bool  # the watermark, a policy key or a horizon moved: the state must be saved
    horizons: dict[UUID, int] = field(default_factory=dict)  # each campaign's cutoff once the rows are judged


def floor_at(r: Rules, day: int) -> datetime:
    """The earliest instant any step can fall due of an item whose deadline is on UTC `day` (from 1970) or later."""
    lowest = min(s.offset_working_hours for ladder in (DEFAULT_LADDER, *r.ladders) for s in ladder.steps)
    probe = WorkItem(item_kind="floor", item_id=_PROBE_ID, campaign_id=_PROBE_ID, deadline=_EPOCH + timedelta(days=day))
    at = threshold_at(probe, r.calendar, lowest)
    assert at is not None  # an item never parked always has its thresholds
    return at


def cutoff_day(r: Rules, now: datetime) -> int:
    """The last UTC day whose floor has come: no item with a deadline on a later day can be due at `now`."""
    def come(day: int) -> bool:
        return floor_at(r, day) <= now

    lo = math.floor(now.timestamp() / 86400)  # the default ladder's reminder comes before the deadline
    while not come(lo):
        lo -= 1
    hi = lo + 1
    while come(hi):  # gallop, then halve
        lo, hi = hi, hi + 2 * (hi - lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if come(mid) else (lo, mid)
    return lo


def read_candidates(conn: psycopg.Connection[Any], rules: dict[UUID, Rules], now: datetime) -> Candidates:
    """The rows a tick must judge and the watermark they bring the state to (one snapshot)."""
    keys = {c: r.key for c, r in rules.items()}
    cutoffs = {c: cutoff_day(r, now) for c, r in rules.items()}
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        state = conn.execute("SELECT watermark, policy_keys FROM escalator_state WHERE id = 1").fetchone()
        watermark, known = (state["watermark"], state["policy_keys"]) if state else (0, {})
        changed = [c for c, key in keys.items() if known.get(str(c)) != key]
        kept = {h["campaign_id"]: h["day"] for h in conn.execute("SELECT campaign_id, day FROM escalator_horizons")}
        # Campaigns whose items all count as changed are read whole; without a horizon no item was left behind.
        passed = [c for c, day in cutoffs.items() if c not in changed and c in kept and day > kept[c]]
        # Every row reflects the events up to the projection's position, and later changes get higher versions.
        head = conn.execute("SELECT position FROM dudao_projection_positions WHERE name = 'work_items'").fetchone()
        params = {"watermark": watermark, "changed": changed, "now": now, "passed": passed,
                  "cutoffs": Jsonb({str(c): day for c, day in cutoffs.items()}),
                  "horizons": Jsonb({str(c): kept[c] for c in passed})}
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(_CANDIDATES, params).fetchall()
    new_watermark = max(watermark, head["position"] if head else 0)
    moved = any(kept.get(c) != day for c, day in cutoffs.items())
    return Candidates(rows, watermark, new_watermark, bool(changed) or moved or new_watermark != watermark, cutoffs)


def judge(rows: Sequence[dict[str, Any]], rules: dict[UUID, Rules],
          now: datetime) -> tuple[list[list[DueStep]], list[tuple[str, UUID, datetime | None]]]:
    """Each open row's due steps (in ladder order) and its next check time (None: not until it changes)."""
    plans: list[list[DueStep]] = []
    checks: list[tuple[str, UUID, datetime | None]] = []
    for row in rows:
        r = rules.get(row["campaign_id"])
        if row["closed"] or r is None:  # no rules yet: its campaign's first item came after they were read
            checks.append((row["item_kind"], row["item_id"], None if row["closed"] else now))
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
        if found.horizons:
            conn.execute("INSERT INTO escalator_horizons SELECT * FROM unnest(%s::uuid[], %s::bigint[])"
                         " ON CONFLICT (campaign_id) DO UPDATE SET day = EXCLUDED.day",
                         (list(found.horizons), list(found.horizons.values())))
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
