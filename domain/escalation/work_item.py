"""Work item (待办事项): what the escalator (督办引擎) climbs the ladder on, whatever the item is.

A problem, a notice awaiting 签收, an undecided extension request — and later tasks and liaison
duties — each become a `WorkItem`: a deadline, the pauses of its clock (挂账/缓办), its relapse
count and whether it is closed. The escalator needs nothing else, so a new kind of work plugs in
with one adapter function and no change to the escalator.

The item's clock (计时) runs in working time on the campaign calendar and stops while the item is
parked. `deadline` is the deadline as if the item had never been parked; every pause moves each
threshold by the working time parked before it. `threshold_at(item, calendar, h)` is the instant
the clock stands `h` working hours past (or, negative, before) the deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.kernel.base import Frozen, derived_id
from domain.kernel.calendar import Pause, WorkCalendar
from domain.kernel.text import single_line
from domain.problem.events import OWED, ProblemState
from domain.problem.state import Problem

ItemKind = str  # "problem", "notice", "extension_request", later "task", "liaison_duty"
ITEM_KIND_PATTERN = r"^[a-z][a-z_]{0,39}$"
ItemKindCode = Annotated[str, single_line(min_length=None, pattern=ITEM_KIND_PATTERN)]  # as a command names it
_ONE_DAY = timedelta(days=1)
_MAX_DAYS_BACK = 20000


class WorkItem(Frozen):
    """One piece of owed work as the escalator sees it (待办事项).

    deadline: the deadline as if never parked (None: no deadline yet, only relapse steps apply).
    paused: every pause (挂账), an end of None meaning still parked.
    relapse_count / relapse_at: how often the place and category came back (反弹), and when last.
    steps_done: the names of the ladder steps already taken for this item.
    """

    item_kind: ItemKind = Field(pattern=ITEM_KIND_PATTERN)
    item_id: UUID
    campaign_id: UUID
    responsible_unit_id: UUID | None = None
    place_id: UUID | None = None
    deadline: AwareDatetime | None = None
    paused: tuple[tuple[AwareDatetime, AwareDatetime | None], ...] = ()
    relapse_count: int = Field(default=0, ge=0)
    relapse_at: AwareDatetime | None = None
    closed: bool = False
    steps_done: frozenset[str] = frozenset()


# --- the item's clock ---------------------------------------------------------------------------


def threshold_at(item: WorkItem, calendar: WorkCalendar, hours: float) -> datetime | None:
    """When the item's clock stands `hours` working hours from its deadline; None if never (yet).

    Zero is the (pause-shifted) deadline itself. None when there is no deadline, or the clock
    stopped in an open pause before reaching the threshold.
    """
    if item.deadline is None:
        return None
    pauses = _merged(item.paused)
    deadline, stopped_at = _shifted_deadline(calendar, item.deadline, pauses)
    if hours < 0:
        due = _retreat(calendar, deadline, -hours, [p for p in pauses if p[1] is not None])
        return due if stopped_at is None or due <= stopped_at else None
    if stopped_at is not None:
        return None
    return deadline if hours == 0 else _advance(calendar, deadline, hours, pauses)


def _merged(paused: Sequence[Pause]) -> list[Pause]:
    """The pauses sorted and merged so none overlap; an open pause swallows every later one."""
    out: list[Pause] = []
    for start, end in sorted(paused, key=lambda p: p[0]):
        if end is not None and end <= start:
            continue
        last_end = out[-1][1] if out else start
        if out and (last_end is None or start <= last_end):
            merged_end = None if last_end is None or end is None else max(last_end, end)
            out[-1] = (out[-1][0], merged_end)
        else:
            out.append((start, end))
    return out


def _shifted_deadline(calendar: WorkCalendar, deadline: datetime,
                      pauses: list[Pause]) -> tuple[datetime, datetime | None]:
    """The deadline moved by every pause begun before it, and when an open pause stopped the clock.

    When an open pause began before the deadline, the returned deadline ignores it (what it
    would be had the pause lasted no time) and the pause's start is returned with it.
    """
    d = deadline
    for start, end in pauses:
        if start >= d:
            break
        if end is None:
            return d, start
        if end <= d:  # wholly before: the clock lost the parked working time
            lost = calendar.working_hours_between(start, end)
            d = calendar.add_working_hours(d, lost) if lost else d
        else:  # straddling: what was left when parking runs on after the resumption
            left = calendar.working_hours_between(start, d)
            d = calendar.add_working_hours(end, left) if left else end
    return d, None


def _advance(calendar: WorkCalendar, t: datetime, hours: float, pauses: list[Pause]) -> datetime | None:
    """`hours` of running clock after `t`, skipping pauses; None if an open pause comes first."""
    left = hours
    for start, end in pauses:
        if end is not None and end <= t:
            continue
        candidate = calendar.add_working_hours(t, left)
        if start >= candidate:
            return candidate
        if start > t:
            left -= calendar.working_hours_between(t, start)
        if end is None:
            return None
        t = max(t, end)
    return calendar.add_working_hours(t, left)


def _retreat(calendar: WorkCalendar, t: datetime, hours: float, pauses: list[Pause]) -> datetime:
    """`hours` of running clock before `t`, skipping the (closed) pauses before it."""
    left = hours
    for start, end in reversed(pauses):
        assert end is not None
        if start >= t:
            continue
        candidate = subtract_working_hours(calendar, t, left)
        if candidate >= end:
            return candidate
        left -= calendar.working_hours_between(end, t)
        t = start
    return subtract_working_hours(calendar, t, left)


def subtract_working_hours(calendar: WorkCalendar, t: datetime, hours: float) -> datetime:
    """The latest instant `hours` working hours (rounded to the minute) before `t`."""
    need = timedelta(minutes=round(hours * 60))
    if need <= timedelta(0):
        return t
    local = t.astimezone(calendar.tz)
    day = local.date()
    for _ in range(_MAX_DAYS_BACK):
        if calendar.is_workday(day):
            start = datetime.combine(day, calendar.workday_start, calendar.tz)
            top = min(local, datetime.combine(day, calendar.workday_end, calendar.tz))
            available = top - start
            if available > timedelta(0):
                if need <= available:
                    return top - need
                need -= available
        day -= _ONE_DAY
    raise ValueError("no working time before this instant")


# --- adapters: each kind of work as a WorkItem --------------------------------------------------


def problem_work_item(problem: Problem, steps_done: frozenset[str] = frozenset(),
                      original: Problem | None = None) -> WorkItem:
    """A problem (问题) as a work item; `original` is the problem this one is a relapse of.

    The unit's clock runs while the problem is owed (交办/签收/返工); a submitted rectification
    stops it, ending states close it. A reported relapse is open even before assignment, so the
    relapse step can fire. ProblemResumed already moves the problem's deadline by the parked
    time, so only the open pause is passed (the earlier ones are in the deadline).
    """
    relapsed = original is not None and original.relapse_count > 0
    still_reported = problem.state == ProblemState.REPORTED and relapsed
    open_pause: tuple[tuple[datetime, datetime | None], ...] = (
        ((problem.parked_since, None),) if problem.parked_since is not None else ())
    return WorkItem(
        item_kind="problem", item_id=problem.problem_id, campaign_id=problem.campaign_id,
        responsible_unit_id=problem.unit_id or (original.unit_id if original else None),
        place_id=problem.place_id, deadline=problem.deadline, paused=open_pause,
        relapse_count=original.relapse_count if original is not None else problem.relapse_count,
        relapse_at=problem.reported_at if relapsed else None,
        closed=not (problem.state in OWED or still_reported), steps_done=steps_done,
    )


def extension_request_id(problem_id: UUID, requested_at: datetime) -> UUID:
    """The id of the extension request (延期申请) a problem's unit made at `requested_at`."""
    return derived_id("extension_request", problem_id, requested_at.isoformat())


def extension_request_work_item(problem: Problem, calendar: WorkCalendar, hq_unit_id: UUID | None,
                                 decide_within_working_hours: float = 8.0,
                                 steps_done: frozenset[str] = frozenset()) -> WorkItem | None:
    """An extension request awaiting HQ's decision, as HQ's work item (None when none is pending)."""
    pending = problem.pending_extension
    if pending is None:
        return None
    return WorkItem(
        item_kind="extension_request",
        item_id=extension_request_id(problem.problem_id, pending.requested_at),
        campaign_id=problem.campaign_id, responsible_unit_id=hq_unit_id, place_id=problem.place_id,
        deadline=calendar.add_working_hours(pending.requested_at, decide_within_working_hours),
        closed=problem.state not in OWED, steps_done=steps_done,
    )
