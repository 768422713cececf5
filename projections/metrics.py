"""Evaluation metrics (考评指标) and rankings (排名): the figures every 讲评 and 通报 is built on.

Read model. Every problem event appends a *version* of the problem's metric facts (unit, state,
deadline, last rectification, rework/extension counts, parked, closure) valid from the event's
recording time until the next change, so "the state of every problem as of T" is one indexed
range read; assignment notices (交办单, of problems and tasks) keep when they were issued, due to be
signed and signed. Task report timeliness reads the tasks read model (its history answers as-of).

A query names a campaign, a period [start, end) of local days (week, month, 双月, a custom range, or
the campaign to date) and an instant `as_of` (default now). Figures are judged at
J = min(end, as_of): the facts recorded by J, the clock stopped at J. So a past period's figures
are what they were at its end, and a figure asked as of an earlier instant is what it was then.

Formulas (DESIGN §6; 数字城管 evaluation practice). A problem is *due* (应办结) in the period when
its deadline in force at J (extensions included) lies in [start, J) and it was not withdrawn or
merged. Of the due problems:

- closed (已结案): closed by J;
- submitted in time (按时反馈): its last rectification was submitted by the deadline and it awaits
  re-inspection, passed it, or was closed;
- overdue open (超期未处置): not closed, not submitted in time, not parked (挂账) at J;
- due-to-close (应结案) = closed + overdue open (a rectification submitted in time and awaiting
  re-inspection, or a parked problem, is neither: the unit owes nothing on it at J);

    整改率 (rectification rate)         = due that passed re-inspection (verified or closed) by J ÷ due
    结案率 (closure rate)               = closed ÷ due-to-close
    按期结案率 (on-time closure rate)    = closed with the last rectification by the deadline ÷ due-to-close
    返工率 (rework rate)                = due-to-close that failed re-inspection at least once ÷ due-to-close
    延期率 (extension rate)             = due with at least one approved extension ÷ due
    超期未处置率 (overdue-open rate)     = overdue open ÷ due
    反弹率 (relapse rate)               = relapses reported in [start, J) ÷ problems closed in [start, J)
                                          (a relapse counts for its original problem's unit and grid)
    签收及时率 (acknowledgement timeliness) = 交办单 issued in [start, J) signed by their due time
                                          ÷ 交办单 issued in [start, J) whose due time passed by J or
                                            that were signed by J (problems' and tasks')
    平均结案用时 (mean working time to close) = Σ working hours from 交办 to 销号 (parked time excluded)
                                          ÷ problems closed in [start, J), on the campaign calendar
    任务报送及时率 (task report timeliness) = reports filed by the end of their due day
                                          ÷ reports due (due days in [start, J) that ended by J, after
                                            the task's 交办, while it was in progress)

Each figure is returned with its numerator and denominator so it can be checked by hand; a
denominator of 0 gives the value None ("—"), never 0 %.

Rankings (排名) order the groups of the period by one figure (default 按期结案率, the weekly
整改率 ranking of DESIGN §5): best first (the higher rate, or for 返工率, 延期率, 超期未处置率, 反弹率 and
mean time to close the lower); groups whose denominator is 0 are not ranked. Ties are broken by
the one rule `domain.consequences.ranking.tie_break`: the group's name in code-point order, then
its id — stable across queries and rebuilds, and the rule the bulletin draft's 红黑榜 uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Literal
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain import tasks as tk
from domain.consequences.ranking import tie_break
from domain.escalation.notice import NoticeAcknowledged, NoticeIssued
from domain.kernel.base import events_of_kind, fold
from domain.kernel.calendar import WorkCalendar
from domain.liaison.periods import natural_period
from domain import problem as pr
from domain.problem.state import Problem
from projections.base import Projection, RecordedEvent
from projections.tasks import indicators_at, tasks_at
from projections.trees import sub_command_of

Row = dict[str, Any]
By = Literal["unit", "grid", "sub_command", "indicator", "campaign"]
PeriodKind = Literal["week", "month", "two_month", "custom", "all"]
_EPOCH = date(2000, 1, 1)

DDL = (
    """CREATE TABLE IF NOT EXISTS metric_problem_versions (
        problem_id uuid NOT NULL, seq int NOT NULL, campaign_id uuid NOT NULL, valid_from timestamptz NOT NULL,
        valid_to timestamptz NULL, place_id uuid NOT NULL, unit_id uuid NULL, state text NOT NULL,
        reported_at timestamptz NOT NULL, assigned_at timestamptz NULL, deadline timestamptz NULL,
        last_submitted_at timestamptz NULL, closed_at timestamptz NULL, rework_count int NOT NULL,
        extension_count int NOT NULL, parked bool NOT NULL, relapse_of uuid NULL, pauses jsonb NOT NULL,
        state_json jsonb NULL, PRIMARY KEY (problem_id, seq))""",
    "CREATE INDEX IF NOT EXISTS metric_versions_deadline ON metric_problem_versions (campaign_id, deadline)",
    "CREATE INDEX IF NOT EXISTS metric_versions_closed ON metric_problem_versions (campaign_id, closed_at)"
    " WHERE closed_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS metric_versions_relapse ON metric_problem_versions (campaign_id, reported_at)"
    " WHERE relapse_of IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS metric_versions_current ON metric_problem_versions (problem_id) WHERE valid_to IS NULL",
    """CREATE TABLE IF NOT EXISTS metric_acks (
        notice_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, subject_kind text NOT NULL, subject_id uuid NOT NULL,
        unit_id uuid NULL, issued_at timestamptz NOT NULL, ack_due_at timestamptz NOT NULL,
        acknowledged_at timestamptz NULL)""",
    "CREATE INDEX IF NOT EXISTS metric_acks_campaign ON metric_acks (campaign_id, issued_at)",
)

# The facts of a problem a metric reads; a new version is written only when one of them changes.
_FACTS = ("unit_id", "state", "deadline", "last_submitted_at", "closed_at", "rework_count", "extension_count",
          "parked", "assigned_at")


class MetricsProjection(Projection):
    """考评指标: problem metric facts as validity intervals, and 交办单 signing times."""

    name = "metrics"
    tables = ("metric_problem_versions", "metric_acks")
    ddl = DDL

    def register(self) -> None:
        # Every problem event: the version folds the problem's whole state, so none may be skipped.
        self.on(*events_of_kind(pr.KIND))(problem_changed)
        self.on(NoticeIssued)(notice_issued)
        self.on(NoticeAcknowledged)(notice_acknowledged)


def _facts(p: Problem) -> Row:
    return {"unit_id": p.unit_id, "state": p.state.value, "deadline": p.deadline,
            "last_submitted_at": p.last_submitted_at, "closed_at": p.closed_at, "rework_count": p.rework_count,
            "extension_count": p.extension_count, "parked": p.parked, "assigned_at": p.assigned_at}


def problem_changed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, pr.ProblemEvent)
    row = curs.execute("SELECT seq, valid_from, state_json FROM metric_problem_versions WHERE problem_id = %s"
                       " AND valid_to IS NULL", (e.problem_id,)).fetchone()
    before = Problem.model_validate(row["state_json"]) if row is not None else None
    after = fold(pr.KIND, [e], Problem, before)
    state = Jsonb(after.model_dump(mode="json"))
    at = e.meta.recorded_at
    if before is not None and row is not None and _facts(before) == _facts(after):
        curs.execute("UPDATE metric_problem_versions SET state_json = %s WHERE problem_id = %s AND seq = %s",
                     (state, e.problem_id, row["seq"]))
        return
    if row is not None and row["valid_from"] >= at:  # the same instant (one command): the version is amended
        curs.execute("DELETE FROM metric_problem_versions WHERE problem_id = %s AND seq = %s", (e.problem_id, row["seq"]))
    elif row is not None:
        curs.execute("UPDATE metric_problem_versions SET valid_to = %s, state_json = NULL WHERE problem_id = %s"
                     " AND seq = %s", (at, e.problem_id, row["seq"]))
    cols = {"problem_id": after.problem_id, "seq": rec.originator_version, "campaign_id": after.campaign_id,
            "valid_from": at, "place_id": after.place_id, "reported_at": after.reported_at,
            "relapse_of": after.relapse_of, "pauses": Jsonb([[a.isoformat(), b.isoformat()] for a, b in after.pauses]),
            "state_json": state, **_facts(after)}
    curs.execute(f"INSERT INTO metric_problem_versions ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                 tuple(cols.values()))


def notice_issued(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, NoticeIssued)
    if e.notice_kind != "assignment":  # only a 交办单's signing is judged (签收及时率)
        return
    unit = next((r.party_id for r in e.recipients if r.party_kind == "unit"), None)
    curs.execute("INSERT INTO metric_acks (notice_id, campaign_id, subject_kind, subject_id, unit_id, issued_at,"
                 " ack_due_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (notice_id) DO NOTHING",
                 (e.notice_id, e.campaign_id, e.subject_kind, e.subject_id, unit, e.meta.recorded_at, e.ack_due_at))


def notice_acknowledged(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, NoticeAcknowledged)
    curs.execute("UPDATE metric_acks SET acknowledged_at = %s WHERE notice_id = %s AND acknowledged_at IS NULL",
                 (e.meta.recorded_at, e.notice_id))


# --- periods ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationPeriod:
    """The local days [start, end) a figure is about (考评周期), in the campaign's time zone."""

    kind: PeriodKind
    start: date
    end: date

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        return datetime.combine(self.start, time(0), tz), datetime.combine(self.end, time(0), tz)

    @property
    def label_zh(self) -> str:
        last = self.end - timedelta(days=1)
        if self.kind == "all":
            return f"创建以来（截至{last.month}月{last.day}日）"
        if self.kind == "month":
            return f"{self.start.year}年{self.start.month}月"
        if self.kind == "two_month":
            return f"{self.start.year}年{self.start.month}—{last.month}月"
        return f"{self.start.year}年{self.start.month}月{self.start.day}日至{last.month}月{last.day}日"


def evaluation_period(kind: PeriodKind, day: date, start: date | None = None, end: date | None = None,
                      launched_on: date | None = None) -> EvaluationPeriod:
    """The week (Mon–Sun), month or 双月 containing `day`; a custom [start, end] (end inclusive); or the
    campaign to `day` (all: from its launch)."""
    if kind == "custom":
        if start is None or end is None or end < start:
            raise ValueError("a custom period needs start <= end")
        return EvaluationPeriod(kind, start, end + timedelta(days=1))
    if kind == "all":
        return EvaluationPeriod(kind, launched_on or _EPOCH, day + timedelta(days=1))
    p = natural_period(kind, day)
    return EvaluationPeriod(kind, p.start, p.end)


# --- the figures -----------------------------------------------------------------------------------

FORMULAS: dict[str, tuple[str, str, str]] = {
    # key: (Chinese name, formula zh, formula en)
    "rectification_rate": ("整改率", "已整改（复查通过或已销号）的应办结问题 ÷ 应办结",
                           "due that passed re-inspection (verified or closed) ÷ due"),
    "closure_rate": ("结案率", "已结案 ÷ 应结案（已结案 + 超期未处置）", "closed ÷ due-to-close"),
    "on_time_closure_rate": ("按期结案率", "按期结案 ÷ 应结案", "closed with the last rectification by the deadline ÷ due-to-close"),
    "rework_rate": ("返工率", "复查不通过过至少一次的应结案问题 ÷ 应结案", "due-to-close that failed re-inspection ÷ due-to-close"),
    "extension_rate": ("延期率", "获批延期的应办结问题 ÷ 应办结", "due with an approved extension ÷ due"),
    "overdue_open_rate": ("超期未处置率", "超期未处置 ÷ 应办结", "overdue open ÷ due"),
    "relapse_rate": ("反弹率", "期内发现的反弹问题 ÷ 期内结案问题", "relapses reported in the period ÷ problems closed in it"),
    "ack_timeliness": ("签收及时率", "按时签收的交办单 ÷ 应签收的交办单", "assignment notices signed in time ÷ due to be signed"),
    "mean_hours_to_close": ("平均结案用时（工作时）", "交办至销号工作时之和 ÷ 期内结案问题数",
                            "Σ working hours from assignment to closure ÷ problems closed in the period"),
    "report_timeliness": ("任务报送及时率", "按时报送 ÷ 应报送", "reports filed by the end of their due day ÷ reports due"),
}
# Figures where less is better (rankings list the lowest first).
LOWER_IS_BETTER = frozenset({"rework_rate", "extension_rate", "overdue_open_rate", "relapse_rate", "mean_hours_to_close"})


@dataclass
class Tally:
    """The counts behind one group's figures."""

    due: int = 0
    closed: int = 0
    closed_on_time: int = 0
    overdue_open: int = 0
    reworked: int = 0
    extended: int = 0
    closed_in_period: int = 0
    rectified: int = 0  # due and past re-inspection (verified or closed) by J
    relapses: int = 0
    acks_due: int = 0
    acked_in_time: int = 0
    hours_to_close: float = 0.0
    closes_timed: int = 0
    reports_due: int = 0
    reports_on_time: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def due_to_close(self) -> int:
        return self.closed + self.overdue_open

    def figures(self) -> dict[str, Row]:
        dtc = self.due_to_close
        return {
            "rectification_rate": figure(self.rectified, self.due),
            "closure_rate": figure(self.closed, dtc), "on_time_closure_rate": figure(self.closed_on_time, dtc),
            "rework_rate": figure(self.reworked, dtc), "extension_rate": figure(self.extended, self.due),
            "overdue_open_rate": figure(self.overdue_open, self.due),
            "relapse_rate": figure(self.relapses, self.closed_in_period),
            "ack_timeliness": figure(self.acked_in_time, self.acks_due),
            "mean_hours_to_close": figure(round(self.hours_to_close, 2), self.closes_timed, digits=2),
            "report_timeliness": figure(self.reports_on_time, self.reports_due),
        }

    def counts(self) -> Row:
        return {"due": self.due, "due_to_close": self.due_to_close, "rectified": self.rectified, "closed": self.closed,
                "closed_on_time": self.closed_on_time, "overdue_open": self.overdue_open, "reworked": self.reworked,
                "extended": self.extended, "closed_in_period": self.closed_in_period, "relapses": self.relapses,
                "acks_due": self.acks_due, "acked_in_time": self.acked_in_time, "reports_due": self.reports_due,
                "reports_on_time": self.reports_on_time}


def figure(numerator: float, denominator: int, digits: int = 4) -> Row:
    """A figure with what it is made of; None when nothing was due (shown as —, never as 0 %)."""
    value = round(numerator / denominator, digits) if denominator else None
    return {"value": value, "numerator": numerator, "denominator": denominator}


# --- the queries -------------------------------------------------------------------------------------

# Each problem as of J: the version valid then. Grid (网格: the nearest ancestor place of kind grid) and
# sub-command (分指挥部) are resolved on the structure as it is now, like the ledger's.
_AS_OF = """
WITH RECURSIVE v AS (
    SELECT * FROM metric_problem_versions
     WHERE campaign_id = %(campaign_id)s AND valid_from <= %(j)s AND (valid_to IS NULL OR valid_to > %(j)s)
), up (origin, cur, depth) AS (
    SELECT DISTINCT place_id, place_id, 0 FROM v
    UNION ALL
    SELECT up.origin, sp.parent_id, up.depth + 1 FROM up JOIN structure_places sp ON sp.place_id = up.cur
     WHERE sp.place_kind <> 'grid' AND sp.parent_id IS NOT NULL AND up.depth < 64
), grid_of AS (
    SELECT DISTINCT ON (up.origin) up.origin AS place_id, g.place_id AS grid_id
      FROM up JOIN structure_places g ON g.place_id = up.cur AND g.place_kind = 'grid'
     ORDER BY up.origin, up.depth
), """ + sub_command_of("SELECT DISTINCT unit_id, unit_id, 0 FROM v WHERE unit_id IS NOT NULL") + """
, keyed AS (
    SELECT v.*, v.unit_id AS unit_key, g.grid_id AS grid_key, s.sub_command_id AS sub_command_key,
           %(campaign_id)s::uuid AS campaign_key
      FROM v LEFT JOIN grid_of g ON g.place_id = v.place_id LEFT JOIN sub_of s ON s.unit_id = v.unit_id
), f AS (
    SELECT k.*,
           (k.deadline >= %(start)s AND k.deadline < %(j)s AND k.state NOT IN ('withdrawn', 'merged')) AS due,
           k.state = 'closed' AS closed,
           (k.last_submitted_at IS NOT NULL AND k.last_submitted_at <= k.deadline
            AND k.state IN ('rectification_submitted', 'verified', 'closed')) AS in_time
      FROM keyed k
)
"""

# One pass over the problems as of J: the tallies per group, the relapses per original's group, and the working
# hours from 交办 to 销号 of those closed in [start, J) — summed in SQL through a day table `cal` (working hours
# from the table's first day to each day's start, and whether it is a working day) that the caller computes on
# the campaign calendar; a problem that was parked is returned as a row, its parked working hours taken off.
_LOCAL_HOURS = """(%(cal)s.base + CASE WHEN %(cal)s.work THEN LEAST(GREATEST(EXTRACT(EPOCH FROM
    ((%(col)s AT TIME ZONE %%(zone)s)::time - %%(window_start)s::time)) / 3600.0, 0), %%(day_hours)s) ELSE 0 END)"""
_HOURS = (_LOCAL_HOURS % {"cal": "cc", "col": "x.closed_at"}) + " - " + (_LOCAL_HOURS % {"cal": "ca", "col": "x.assigned_at"})

_EVALUATE = _AS_OF + """
, cal (d, base, work) AS (SELECT * FROM unnest(%(days)s::date[], %(bases)s::float8[], %(works)s::bool[]))
, closed_here AS (
    SELECT x.*, """ + _HOURS + """ AS hours
      FROM f x
      LEFT JOIN cal ca ON ca.d = (x.assigned_at AT TIME ZONE %(zone)s)::date
      LEFT JOIN cal cc ON cc.d = (x.closed_at AT TIME ZONE %(zone)s)::date
     WHERE x.closed AND x.closed_at >= %(start)s AND x.assigned_at IS NOT NULL
)
SELECT 'tally' AS part, {key} AS key,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE due AND closed) AS closed,
       count(*) FILTER (WHERE due AND closed AND in_time) AS closed_on_time,
       count(*) FILTER (WHERE due AND NOT closed AND NOT in_time AND NOT parked) AS overdue_open,
       count(*) FILTER (WHERE due AND rework_count > 0 AND (closed OR (NOT in_time AND NOT parked))) AS reworked,
       count(*) FILTER (WHERE due AND extension_count > 0) AS extended,
       count(*) FILTER (WHERE closed AND closed_at >= %(start)s) AS closed_in_period,
       count(*) FILTER (WHERE due AND state IN ('verified', 'closed')) AS rectified,
       0 AS relapses, NULL::float8 AS hours, 0 AS timed, NULL::timestamptz AS assigned_at,
       NULL::timestamptz AS closed_at, NULL::jsonb AS pauses
  FROM f WHERE due OR (closed AND closed_at >= %(start)s) GROUP BY {key}
UNION ALL
SELECT 'relapse', o.{key}, 0, 0, 0, 0, 0, 0, 0, 0, count(*), NULL, 0, NULL, NULL, NULL
  FROM f r JOIN f o ON o.problem_id = r.relapse_of
 WHERE r.relapse_of IS NOT NULL AND r.reported_at >= %(start)s AND r.state NOT IN ('withdrawn', 'merged')
 GROUP BY o.{key}
UNION ALL
SELECT 'hours', {key}, 0, 0, 0, 0, 0, 0, 0, 0, 0, sum(hours), count(*), NULL, NULL, NULL
  FROM closed_here GROUP BY {key}
UNION ALL
SELECT 'paused', {key}, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, assigned_at, closed_at, pauses
  FROM closed_here WHERE pauses <> '[]'::jsonb
"""

# 交办单 (of problems and tasks) issued in [start, J) whose signing was due by J or that were signed by J; the grid
# of a problem's 交办单 is its place's (read only when grouping by grid).
_ACKS = """
WITH RECURSIVE a AS (
    SELECT m.*, {place} AS place_id
      FROM metric_acks m {join}
     WHERE m.campaign_id = %(campaign_id)s AND m.issued_at >= %(start)s AND m.issued_at < %(j)s
       AND (m.ack_due_at <= %(j)s OR m.acknowledged_at <= %(j)s)
), up (origin, cur, depth) AS (
    SELECT DISTINCT place_id, place_id, 0 FROM a WHERE place_id IS NOT NULL
    UNION ALL
    SELECT up.origin, sp.parent_id, up.depth + 1 FROM up JOIN structure_places sp ON sp.place_id = up.cur
     WHERE sp.place_kind <> 'grid' AND sp.parent_id IS NOT NULL AND up.depth < 64
), grid_of AS (
    SELECT DISTINCT ON (up.origin) up.origin AS place_id, g.place_id AS grid_id
      FROM up JOIN structure_places g ON g.place_id = up.cur AND g.place_kind = 'grid'
     ORDER BY up.origin, up.depth
), """ + sub_command_of("SELECT DISTINCT unit_id, unit_id, 0 FROM a WHERE unit_id IS NOT NULL") + """
SELECT {key} AS key, count(*) AS acks_due,
       count(*) FILTER (WHERE a.acknowledged_at IS NOT NULL AND a.acknowledged_at <= a.ack_due_at
                          AND a.acknowledged_at <= %(j)s) AS acked_in_time
  FROM (SELECT a.*, a.unit_id AS unit_key, g.grid_id AS grid_key, s.sub_command_id AS sub_command_key,
               %(campaign_id)s::uuid AS campaign_key
          FROM a LEFT JOIN grid_of g ON g.place_id = a.place_id LEFT JOIN sub_of s ON s.unit_id = a.unit_id) a
 GROUP BY {key}
"""
_ACK_PLACE = ("p.place_id", "LEFT JOIN metric_problem_versions p ON p.problem_id = m.subject_id AND p.valid_to IS NULL")

_SUB_OF_UNITS = "WITH RECURSIVE " + sub_command_of(
    "SELECT unit_id, unit_id, 0 FROM structure_units WHERE campaign_id = %(campaign_id)s") + """
SELECT unit_id, sub_command_id FROM sub_of"""

_KEYS: dict[str, str] = {"unit": "unit_key", "grid": "grid_key", "sub_command": "sub_command_key",
                         "campaign": "campaign_key"}


def _rows(conn: Any, sql: str, params: Any) -> list[Row]:
    curs = conn.execute(sql, params)
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]


@dataclass(frozen=True)
class Window:
    """What a query judges: the campaign, the period's instants, and J = min(end, as_of)."""

    campaign_id: UUID
    period: EvaluationPeriod
    start: datetime
    end: datetime
    as_of: datetime

    @property
    def judged_at(self) -> datetime:
        return min(self.end, self.as_of)

    @property
    def params(self) -> Row:
        return {"campaign_id": self.campaign_id, "start": self.start, "j": self.judged_at}


def window(campaign_id: UUID, period: EvaluationPeriod, as_of: datetime, tz: tzinfo) -> Window:
    start, end = period.bounds(tz)
    return Window(campaign_id, period, start, end, as_of)


def tallies(conn: Any, w: Window, by: By, calendar: WorkCalendar) -> dict[UUID | None, Tally]:
    """Every group's counts for the window (problems, 交办单 and task reports), by unit, grid, sub-command,
    indicator or the campaign as a whole."""
    out: dict[UUID | None, Tally] = {}

    def tally(key: UUID | None) -> Tally:
        return out.setdefault(key, Tally())

    if by != "indicator":
        _problem_tallies(conn, w, _KEYS[by], calendar, tally)
        place, join = _ACK_PLACE if by == "grid" else ("NULL::uuid", "")
        for r in _rows(conn, _ACKS.format(key=f"a.{_KEYS[by]}", place=place, join=join), w.params):
            t = tally(r["key"])
            t.acks_due, t.acked_in_time = int(r["acks_due"]), int(r["acked_in_time"])
    _report_tallies(conn, w, by, calendar, tally)
    return out


_COUNTS = ("due", "closed", "closed_on_time", "overdue_open", "reworked", "extended", "closed_in_period", "rectified")


def _problem_tallies(conn: Any, w: Window, key: str, calendar: WorkCalendar, tally: Any) -> None:
    params = {**w.params, **day_table(conn, w, calendar)}
    for r in _rows(conn, _EVALUATE.format(key=key), params):
        t = tally(r["key"])
        if r["part"] == "tally":
            for name in _COUNTS:
                setattr(t, name, int(r[name]))
        elif r["part"] == "relapse":
            t.relapses = int(r["relapses"])
        elif r["part"] == "hours":
            t.hours_to_close += float(r["hours"] or 0.0)
            t.closes_timed += int(r["timed"])
        else:  # a closed problem that was parked: its parked working hours did not count
            pauses = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in r["pauses"]]
            t.hours_to_close -= (calendar.working_hours_between(r["assigned_at"], r["closed_at"])
                                 - calendar.working_hours_between(r["assigned_at"], r["closed_at"], pauses))


def day_table(conn: Any, w: Window, calendar: WorkCalendar) -> Row:
    """The `cal` table of the evaluation query: each day from the earliest 交办 of a problem closed in the window to J,
    with the working hours before it and whether it is a working day; and the zone and window to read times in."""
    row = conn.execute("SELECT min(assigned_at) AS first FROM metric_problem_versions WHERE campaign_id = %s"
                       " AND closed_at >= %s AND closed_at <= %s", (w.campaign_id, w.start, w.judged_at)).fetchone()
    first = (row["first"] if isinstance(row, dict) else row[0]) if row else None
    day = (first or w.start).astimezone(calendar.tz).date()
    last = w.judged_at.astimezone(calendar.tz).date()
    length = (datetime.combine(day, calendar.workday_end) - datetime.combine(day, calendar.workday_start)) / timedelta(hours=1)
    days, bases, works, base = [], [], [], 0.0
    while day <= last:
        work = calendar.is_workday(day)
        days.append(day)
        bases.append(base)
        works.append(work)
        base += length if work else 0.0
        day += timedelta(days=1)
    return {"days": days, "bases": bases, "works": works, "zone": sql_zone(calendar.tz),
            "window_start": calendar.workday_start, "day_hours": length}


def sql_zone(tz: tzinfo) -> str:
    """The calendar's time zone as PostgreSQL names it: an IANA key, or Etc/GMT∓N for a whole-hour fixed offset."""
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return key
    offset = tz.utcoffset(None)
    hours = int(offset.total_seconds() // 3600) if offset is not None else 0
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # POSIX names count the other way round


def hours_to_close(row: Row, calendar: WorkCalendar) -> float:
    """Working hours from 交办 to 销号 on the campaign calendar, parked time (挂账) excluded (one problem)."""
    pauses = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in row["pauses"]]
    return calendar.working_hours_between(row["assigned_at"], row["closed_at"], pauses)


def _report_tallies(conn: Any, w: Window, by: By, calendar: WorkCalendar, tally: Any) -> None:
    """Task report timeliness: each task's due reports in the window, for its lead unit, its sub-command, its
    indicator and every ancestor indicator (a node counts its subtree), or the campaign."""
    tasks = tasks_at(conn, w.campaign_id, w.judged_at)
    if not tasks or by == "grid":
        return
    sub_of = {r["unit_id"]: r["sub_command_id"] for r in _rows(conn, _SUB_OF_UNITS, w.params)} if by == "sub_command" else {}
    parents = {r["indicator_id"]: r["parent_id"] for r in indicators_at(conn, w.campaign_id, w.judged_at)}
    first_day = w.start.astimezone(calendar.tz).date()
    for task in tasks:
        due = tk.report_due_days(task, calendar, first_day, w.judged_at)
        if not due:
            continue
        on_time = sum(1 for d in due if (r := task.report_for(d)) is not None and r.on_time)
        for key in _task_keys(task, by, sub_of, parents, w.campaign_id):
            t = tally(key)
            t.reports_due += len(due)
            t.reports_on_time += on_time


def _task_keys(task: tk.Task, by: By, sub_of: dict[UUID, UUID], parents: dict[UUID, UUID | None],
               campaign_id: UUID) -> list[UUID | None]:
    if by == "unit":
        return [task.lead_unit_id]
    if by == "sub_command":
        return [sub_of.get(task.lead_unit_id)] if task.lead_unit_id else [None]
    if by == "campaign":
        return [campaign_id]
    chain: list[UUID | None] = []
    node = task.indicator_id if task.indicator_id in parents else None
    while node is not None and node not in chain and len(chain) < 64:
        chain.append(node)
        node = parents.get(node)
    return chain or [None]


def group_names(conn: Any, campaign_id: UUID, by: By) -> dict[UUID, Row]:
    """The display name (and code, for indicators) of every group of this dimension."""
    if by in ("unit", "sub_command"):
        rows = _rows(conn, "SELECT unit_id AS id, name, NULL AS code FROM structure_units WHERE campaign_id = %s",
                     (campaign_id,))
    elif by == "grid":
        rows = _rows(conn, "SELECT place_id AS id, name, number::text AS code FROM structure_places"
                           " WHERE campaign_id = %s AND place_kind = 'grid'", (campaign_id,))
    elif by == "indicator":
        rows = _rows(conn, "SELECT indicator_id AS id, name, code FROM task_indicators WHERE campaign_id = %s",
                     (campaign_id,))
    else:
        rows = _rows(conn, "SELECT %s::uuid AS id, '全市' AS name, NULL AS code", (campaign_id,))
    return {r["id"]: r for r in rows}


def evaluate(conn: Any, w: Window, by: By, calendar: WorkCalendar) -> Row:
    """The figures of every group of the window (考评结果), each with numerator and denominator, plus totals."""
    found = tallies(conn, w, by, calendar)
    names = group_names(conn, w.campaign_id, by)
    rows = [group_row(key, names, t) for key, t in found.items()]
    rows.sort(key=lambda r: (r["key"] is None, r.get("code") or "", r["name"] or "", str(r["key"])))
    # Units, sub-commands and grids partition the problems and 交办单 (the unattributed in the None group): the totals
    # are their sum — plus, for grids, the task reports they do not hold. An indicator counts its subtree, so the
    # totals of that view are counted for the campaign.
    if by == "indicator":
        totals = tallies(conn, w, "campaign", calendar).get(w.campaign_id, Tally())
    else:
        totals = total_of(found.values())
    if by == "grid":
        reports: dict[UUID | None, Tally] = {}
        _report_tallies(conn, w, "campaign", calendar, lambda key: reports.setdefault(key, Tally()))
        totals = total_of([totals, *reports.values()])
    return {"rows": rows, "totals": {"counts": totals.counts(), "figures": totals.figures()}}


def total_of(tallies: Any) -> Tally:
    """The sum of tallies that partition the campaign."""
    total = Tally()
    for t in tallies:
        for name in (*_COUNTS, "relapses", "acks_due", "acked_in_time", "hours_to_close", "closes_timed",
                     "reports_due", "reports_on_time"):
            setattr(total, name, getattr(total, name) + getattr(t, name))
    return total


def group_row(key: UUID | None, names: dict[UUID, Row], t: Tally) -> Row:
    named = names.get(key) if key is not None else None
    return {"key": key, "name": named["name"] if named else ("未归属" if key is None else str(key)),
            "code": named.get("code") if named else None, "counts": t.counts(), "figures": t.figures()}


# --- rankings ----------------------------------------------------------------------------------------------


def rank(rows: Sequence[Row], metric: str = "on_time_closure_rate") -> list[Row]:
    """The ranking (排名) of groups by one figure: best first, ties by `tie_break` (name, then id); groups without a
    key or with nothing to judge (denominator 0) are left out. Rank = position (1, 2, 3 …), stable under ties."""
    if metric not in FORMULAS:
        raise ValueError(f"unknown metric {metric!r}")
    sign = 1 if metric in LOWER_IS_BETTER else -1
    judged = [r for r in rows if r["key"] is not None and r["figures"][metric]["denominator"]]
    ordered = sorted(judged, key=lambda r: (sign * r["figures"][metric]["value"], *tie_break(r["name"], r["key"])))
    return [{"rank": i, "key": r["key"], "name": r["name"], "code": r.get("code"), "metric": metric,
             **r["figures"][metric]} for i, r in enumerate(ordered, 1)]


def unit_on_time_rates(conn: Any, w: Window, calendar: WorkCalendar) -> list[Row]:
    """Per unit with problems due to close: 按期结案 and 应结案 (what the bulletin draft's 红黑榜 ranks)."""
    names = group_names(conn, w.campaign_id, "unit")
    out = []
    for key, t in tallies(conn, w, "unit", calendar).items():
        if key is None or not t.due_to_close:
            continue
        out.append({"unit_id": key, "name": names[key]["name"] if key in names else str(key),
                    "due": t.due_to_close, "closed_on_time": t.closed_on_time})
    return sorted(out, key=lambda r: tie_break(r["name"], r["unit_id"]))
