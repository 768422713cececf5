"""Reporting cadence (报送频次) of a task: when progress reports fall due, and when a missed one is overdue.

The campaigns' cadences are 一日一汇报 (daily), 每周五报送 (weekly on a weekday), 每月报送 (monthly on a
day) and none. Each names *nominal* report days; the rules below turn them into *due days* on the
campaign calendar:

- a nominal day that is not a working day moves to the next working day (遇节假日顺延): a Friday
  holiday's report is due on the first working day after it, a weekend's daily report on Monday —
  and a make-up working day (调休上班) is a working day like any other;
- two nominal days that land on the same due day are one report (a report period is keyed by its
  due day), so a daily cadence is one report per working day;
- a report counts as on time (按时报送) when it is filed before its due day ends (local midnight);
- a missed report is overdue from the first working instant after its due day (`overdue_from`),
  which is when the ladder's 催办 (offset 0) falls due: the next working day by the calendar.

A monthly day beyond the month's length means its last day (每月31日 is 2月28日 in February).
"""

from __future__ import annotations

import calendar as months
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import Field

from domain.kernel.base import Frozen
from domain.kernel.calendar import WorkCalendar
from domain.kernel.scalars import Count

CadenceKind = Literal["none", "daily", "weekly", "monthly"]
WEEKDAY_ZH = ("一", "二", "三", "四", "五", "六", "日")
_ONE_DAY = timedelta(days=1)
_MAX_SHIFT_DAYS = 60  # no holiday lasts longer; only guards a broken calendar


class Cadence(Frozen):
    """How often a task's lead unit reports progress (报送频次).

    weekday: 1 (Monday) to 7 (Sunday), read for a weekly cadence (default Friday, 每周五);
    day: 1 to 31, read for a monthly one (default 31: the month's last day). Each is ignored by
    the other kinds, so every combination is a valid cadence.
    """

    kind: CadenceKind = "none"
    weekday: Count = Field(default=5, ge=1, le=7)
    day: Count = Field(default=31, ge=1, le=31)

    @property
    def label_zh(self) -> str:
        if self.kind == "daily":
            return "一日一汇报"
        if self.kind == "weekly":
            return f"每周{WEEKDAY_ZH[self.weekday - 1]}报送"
        if self.kind == "monthly":
            return "每月月底报送" if self.day == 31 else f"每月{self.day}日报送"
        return "不定期"


NO_CADENCE = Cadence()
DAILY = Cadence(kind="daily")


def weekly(weekday: int) -> Cadence:
    return Cadence(kind="weekly", weekday=weekday)


def monthly(day: int) -> Cadence:
    return Cadence(kind="monthly", day=day)


# --- reading a cadence as people write it -------------------------------------------------------------

_WEEKDAYS = {c: i + 1 for i, c in enumerate(WEEKDAY_ZH)} | {"天": 7}
_NONE = re.compile(r"^(无|不报送|不定期|none|-|—)?$", re.IGNORECASE)
_DAILY = re.compile(r"^(一日一汇报|一日一报|每日(汇报|报送|一报)?|每天(汇报|报送)?|日报|daily)$", re.IGNORECASE)
_WEEKLY = re.compile(r"^(?:每周|每星期|周)([一二三四五六日天])(?:汇报|报送|前报送)?$")
_WEEKLY_EN = re.compile(r"^weekly[:\s]*([1-7])$", re.IGNORECASE)
_MONTHLY = re.compile(r"^每月(\d{1,2})(?:日|号)(?:前)?(?:汇报|报送)?$")
_MONTH_END = re.compile(r"^(每月(月底|底|末)?(汇报|报送)?|月报|monthly)$", re.IGNORECASE)
_MONTHLY_EN = re.compile(r"^monthly[:\s]*(\d{1,2})$", re.IGNORECASE)


def parse_cadence(text: str) -> Cadence | None:
    """The cadence a 任务分解表 cell names (一日一汇报, 每周五报送, 每月5日报送, 每月报送, weekly:5 …); None if unreadable.

    每周报送 without a weekday is read as Friday (每周五), the campaigns' usual day; 每月报送 without a
    day as the month's end.
    """
    value = re.sub(r"\s+", "", text or "")
    if _NONE.match(value):
        return NO_CADENCE
    if _DAILY.match(value):
        return DAILY
    if value in ("每周报送", "每周汇报", "周报", "weekly"):
        return weekly(5)
    if found := _WEEKLY.match(value):
        return weekly(_WEEKDAYS[found.group(1)])
    if found := _WEEKLY_EN.match(value):
        return weekly(int(found.group(1)))
    if _MONTH_END.match(value):
        return monthly(31)
    if found := (_MONTHLY.match(value) or _MONTHLY_EN.match(value)):
        day = int(found.group(1))
        return monthly(day) if 1 <= day <= 31 else None
    return None


# --- the rules ----------------------------------------------------------------------------------------


def nominal_days(cadence: Cadence, first: date, last: date) -> Iterator[date]:
    """The days the cadence names in [first, last], in order (none for no cadence)."""
    day = first
    while day <= last:
        if is_nominal_day(cadence, day):
            yield day
        day += _ONE_DAY


def is_nominal_day(cadence: Cadence, day: date) -> bool:
    """The cadence names this day (every day; the weekday; the month's day, or its last day if shorter)."""
    if cadence.kind == "daily":
        return True
    if cadence.kind == "weekly":
        return day.isoweekday() == cadence.weekday
    if cadence.kind == "monthly":
        return day.day == min(cadence.day, months.monthrange(day.year, day.month)[1])
    return False


def due_day(nominal: date, calendar: WorkCalendar) -> date:
    """The day a report named for `nominal` is due: that day if it is a working day, else the next one (顺延)."""
    day = nominal
    for _ in range(_MAX_SHIFT_DAYS):
        if calendar.is_workday(day):
            return day
        day += _ONE_DAY
    raise ValueError(f"no working day within {_MAX_SHIFT_DAYS} days of {nominal}")


def due_days(cadence: Cadence, calendar: WorkCalendar, first: date, last: date) -> list[date]:
    """The distinct due days of the nominal days in [first, last] that fall in [first, last], in order.

    A nominal day shortly before `first` can be due inside the range (a holiday shifted it): those
    count too, since the report period is the due day.
    """
    if cadence.kind == "none" or last < first:
        return []
    lead_in = first - timedelta(days=_MAX_SHIFT_DAYS)
    days = {due_day(d, calendar) for d in nominal_days(cadence, lead_in, last)}
    return sorted(d for d in days if first <= d <= last)


def day_start(day: date, calendar: WorkCalendar) -> datetime:
    """Local midnight at the start of `day` on the campaign calendar's wall clock."""
    return datetime.combine(day, time(0), calendar.tz)


def day_has_ended(day: date, calendar: WorkCalendar, now: datetime) -> bool:
    """`now` is past the end of `day` (local midnight after it)."""
    return now >= day_start(day + _ONE_DAY, calendar)


def is_on_time(filed_at: datetime, due: date, calendar: WorkCalendar) -> bool:
    """A report filed before its due day ended (按时报送)."""
    return filed_at < day_start(due + _ONE_DAY, calendar)


def overdue_from(day: date, calendar: WorkCalendar) -> datetime:
    """The first working instant after `day` ends: when work due that day turns overdue (超期).

    After a Friday that is the next Monday's start of work; after a holiday's eve, the first working
    day after the holiday; a make-up working day (调休上班) counts.
    """
    return calendar.add_working_hours(day_start(day + _ONE_DAY, calendar), 0)


def first_report_day(assigned_at: datetime, calendar: WorkCalendar) -> date:
    """Reports are due from the day after the task was handed over (交办) on: its first possible due day."""
    return assigned_at.astimezone(calendar.tz).date() + _ONE_DAY
