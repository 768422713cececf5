"""Task rules (任务规则): named predicates over a task, its cadence and the campaign calendar.

Predicates read as sentences and can be tested alone; the guards at the end raise the typed error
a user sees. Which reports are due, missed and on time is decided here once: the decisions, the
escalator's round and the metrics all call these functions.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from uuid import UUID

from domain.kernel.base import CommandContext, Conflict, DomainError, Forbidden, Meta, NotFound
from domain.kernel.calendar import WorkCalendar
from domain.tasks.cadence import day_has_ended, day_start, due_days, first_report_day, overdue_from
from domain.tasks.events import TaskState
from domain.tasks.state import Task

_ONE_DAY = timedelta(days=1)


def task_deadline(due_on: date | None, calendar: WorkCalendar) -> datetime | None:
    """The instant a task due on `due_on` turns overdue: the first working instant after that day (None: no limit)."""
    return overdue_from(due_on, calendar) if due_on is not None else None


def acts_for_lead_unit(task: Task, actor_unit_ids: Collection[UUID]) -> bool:
    """The actor belongs to the task's lead unit (谁的指标谁负责: the lead acts and reports for the task)."""
    return task.lead_unit_id is not None and task.lead_unit_id in actor_unit_ids


def is_reporting_at(task: Task, at: datetime) -> bool:
    """At `at` the task was handed over and its reporting not paused (a completion claim pauses it)."""
    if task.assigned_at is None or at < task.assigned_at:
        return False
    return not any(start <= at and (end is None or at < end) for start, end in task.reporting_paused)


def is_within_term(task: Task, day: date) -> bool:
    """`day` falls on or before the task's due day (期限内): past it, progress reports are no longer owed — the task
    itself is overdue then and climbs the ladder as one work item, instead of one missed report per day for ever."""
    return task.due_on is None or day <= task.due_on


def is_report_due(task: Task, day: date, calendar: WorkCalendar) -> bool:
    """A report for `day` is owed: the cadence's due day after the handing-over and within the task's term, with
    reporting on as the day ended."""
    if task.assigned_at is None or day < first_report_day(task.assigned_at, calendar) or not is_within_term(task, day):
        return False
    return day in due_days(task.cadence, calendar, day, day) and is_reporting_at(task, day_start(day + _ONE_DAY, calendar))


def report_due_days(task: Task, calendar: WorkCalendar, start: date, until: datetime) -> list[date]:
    """The due days from `start` on whose day ended by `until`, within the task's term, on which a report was owed
    (报送应报期数)."""
    if task.assigned_at is None:
        return []
    first = max(start, first_report_day(task.assigned_at, calendar))
    last = until.astimezone(calendar.tz).date() - _ONE_DAY
    if task.due_on is not None:
        last = min(last, task.due_on)
    return [d for d in due_days(task.cadence, calendar, first, last)
            if day_has_ended(d, calendar, until) and is_reporting_at(task, day_start(d + _ONE_DAY, calendar))]


def is_missed(task: Task, day: date, calendar: WorkCalendar, now: datetime) -> bool:
    """The report due on `day` was owed, the day has ended, and none was filed for it (未按时报送)."""
    return (day_has_ended(day, calendar, now) and is_report_due(task, day, calendar)
            and day not in task.reported_days())


def missed_report_days(task: Task, calendar: WorkCalendar, now: datetime) -> list[date]:
    """Every missed due day not yet recorded as missed, oldest first (what the escalator's round records)."""
    if task.assigned_at is None:
        return []
    start = first_report_day(task.assigned_at, calendar)
    reported, recorded = task.reported_days(), set(task.missed)
    return [d for d in report_due_days(task, calendar, start, now) if d not in reported and d not in recorded]


def report_period(task: Task, calendar: WorkCalendar, now: datetime) -> date | None:
    """The period a report filed now answers when none is named: the oldest missed one (补报), else the next due day.

    None for a task without a cadence (its reports are ad hoc).
    """
    if task.cadence.kind == "none" or task.assigned_at is None:
        return None
    start = first_report_day(task.assigned_at, calendar)
    reported = task.reported_days()
    owed = [d for d in report_due_days(task, calendar, start, now) if d not in reported]
    if owed:
        return owed[0]
    today = now.astimezone(calendar.tz).date()
    upcoming = due_days(task.cadence, calendar, max(today, start), max(today, start) + timedelta(days=62))
    return next((d for d in upcoming if d not in reported), None)


def may_report_for(task: Task, day: date, calendar: WorkCalendar, now: datetime) -> bool:
    """A report may name `day` when it is a due day after the handing-over, up to the next due day from today."""
    if task.cadence.kind == "none" or task.assigned_at is None:
        return False
    start = first_report_day(task.assigned_at, calendar)
    today = now.astimezone(calendar.tz).date()
    horizon = max(today, start) + timedelta(days=62)
    upcoming = due_days(task.cadence, calendar, start, horizon)
    next_due = next((d for d in upcoming if d >= today), None)
    return day in upcoming and (next_due is None or day <= next_due)


def is_before_deadline(task: Task, now: datetime) -> bool:
    """The task's deadline has not passed (an extension may only be asked for before it)."""
    return task.deadline is None or now < task.deadline


# --- guards ---------------------------------------------------------------------------------------


def ensure_exists(task: Task | None, task_id: UUID) -> Task:
    if task is None:
        raise NotFound("task_not_found", "任务不存在", "task not found", task_id=str(task_id))
    return task


def ensure_state(task: Task, *allowed: TaskState) -> None:
    if task.state not in allowed:
        raise Conflict("task_state", "任务当前状态不允许此操作", "the task's state does not allow this",
                       state=task.state.value, allowed=[s.value for s in allowed])


def ensure_lead_unit(task: Task, actor_unit_ids: Collection[UUID]) -> UUID:
    """The actor acts for the lead unit (a unit acts only on what it was handed); its id."""
    if not acts_for_lead_unit(task, actor_unit_ids) or task.lead_unit_id is None:
        raise Forbidden("not_lead_unit", "只有任务的牵头单位可以办理", "only the task's lead unit may do this",
                        task_id=str(task.task_id))
    return task.lead_unit_id


def ensure_day(ok: bool, code: str, zh: str, en: str, day: date) -> None:
    if not ok:
        raise DomainError(code, zh, en, due_on=day.isoformat())


def meta_for(ctx: CommandContext, task: Task) -> Meta:
    """The envelope for an event on `task`, stamped with its campaign."""
    if ctx.meta.campaign_id == task.campaign_id:
        return ctx.meta
    return ctx.meta.model_copy(update={"campaign_id": task.campaign_id})


def overdue_at(day: date, calendar: WorkCalendar) -> datetime:
    """When a missed report for `day` turns overdue (the ladder's 催办 falls due then)."""
    return overdue_from(day, calendar)
