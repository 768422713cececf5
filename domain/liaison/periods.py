"""Duty periods (履职周期): calendar weeks, months or two-month blocks (双月) in the campaign's time zone.

A period is a span of whole local days `[start, end)`: a week runs Monday to Sunday, a month is a
calendar month, a two-month block (双月) is January–February, March–April, … November–December.
Its instants are local midnights, so a visit at 23:59 on the last day belongs to it and one at
00:01 on the next day to the next period.

When a new policy version changes the period kind, the period then running keeps its kind to its
end (or ends at once when the version takes effect exactly at a boundary); the new kind starts
there, its first period clipped at that start (`nominal_start` keeps where it would have begun, so
the duty of a clipped period is pro-rated like any partial period). Which version judges a period
is the version whose stretch the period starts in (`Stretch`).

A period is judged (判定) at the end of its grace (宽限期): midnight after the N-th working day
after its last day on the campaign calendar. A reminder (提醒) falls at the start of the working
day N working days before the end, counting the last working day of the period as the first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from domain.kernel.base import Frozen
from domain.kernel.calendar import WorkCalendar

PeriodKind = Literal["week", "month", "two_month"]
PERIOD_NAMES_ZH: dict[str, str] = {"week": "周", "month": "月", "two_month": "双月"}
_DAY = timedelta(days=1)


class Period(Frozen):
    """One duty period: local days [start, end); `nominal_start` is where an unclipped period begins."""

    kind: PeriodKind
    start: date
    end: date
    nominal_start: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def nominal_days(self) -> int:
        return (self.end - self.nominal_start).days

    @property
    def last_day(self) -> date:
        return self.end - _DAY

    @property
    def label(self) -> str:
        """A stable human key: 2021-12, 2021-W50, 2021-11/12 (clipped periods say from which day)."""
        if self.kind == "week":
            year, week, _ = self.nominal_start.isocalendar()
            base = f"{year}-W{week:02d}"
        elif self.kind == "month":
            base = f"{self.nominal_start:%Y-%m}"
        else:
            base = f"{self.nominal_start:%Y-%m}/{self.last_day:%m}"
        return base if self.start == self.nominal_start else f"{base} (from {self.start.isoformat()})"

    @property
    def label_zh(self) -> str:
        s, e = self.start, self.last_day
        if self.kind == "month" and s == self.nominal_start:
            return f"{s.year}年{s.month}月"
        if self.kind == "two_month" and s == self.nominal_start:
            return f"{s.year}年{s.month}—{e.month}月"
        return f"{s.year}年{s.month}月{s.day}日至{e.month}月{e.day}日"

    def starts_at(self, tz: tzinfo) -> datetime:
        return datetime.combine(self.start, time(0), tz)

    def ends_at(self, tz: tzinfo) -> datetime:
        return datetime.combine(self.end, time(0), tz)

    def nominal_starts_at(self, tz: tzinfo) -> datetime:
        return datetime.combine(self.nominal_start, time(0), tz)


def natural_period(kind: PeriodKind, day: date) -> Period:
    """The calendar week, month or two-month block containing `day`."""
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif kind == "month":
        start = day.replace(day=1)
        end = _add_months(start, 1)
    else:
        start = date(day.year, day.month - (day.month - 1) % 2, 1)
        end = _add_months(start, 2)
    return Period(kind=kind, start=start, end=end, nominal_start=start)


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Stretch:
    """From `starts_on` on, periods are of `kind` and judged by the policy version numbered `version`."""

    starts_on: date
    kind: PeriodKind
    version: int


def stretches(versions: Sequence[tuple[datetime, PeriodKind]], tz: tzinfo) -> list[Stretch]:
    """Where each policy version's periods begin: `versions` are (effective_from, kind), oldest first.

    Version 0 (the product default) reigns from the beginning of time. A later version starts at the
    end of the period running when it takes effect, or at its effective instant when that is a boundary.
    """
    out = [Stretch(date.min, versions[0][1], 0)] if versions else []
    for number, (effective_from, kind) in enumerate(versions[1:], start=1):
        local = effective_from.astimezone(tz)
        running = period_at(out, local.date())
        at_boundary = is_midnight(local) and local.date() == running.start
        starts_on = running.start if at_boundary else running.end
        out = [s for s in out if s.starts_on < starts_on] + [Stretch(starts_on, kind, number)]
    return out


def is_midnight(local: datetime) -> bool:
    """The instant is a day boundary (00:00:00) on its own wall clock."""
    return (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


def stretch_at(stretches_: Sequence[Stretch], day: date) -> Stretch:
    """The stretch that `day` falls in (the last one starting on or before it)."""
    found = stretches_[0]
    for s in stretches_:
        if s.starts_on <= day:
            found = s
    return found


def period_at(stretches_: Sequence[Stretch], day: date) -> Period:
    """The duty period containing `day` (clipped at the start of its stretch)."""
    s = stretch_at(stretches_, day)
    natural = natural_period(s.kind, day)
    if natural.start < s.starts_on:
        return natural.model_copy(update={"start": s.starts_on})
    return natural


def periods_between(stretches_: Sequence[Stretch], first: date, last: date) -> Iterator[Period]:
    """Every duty period overlapping the local days [first, last], in order."""
    day = first
    while day <= last:
        p = period_at(stretches_, day)
        yield p
        day = p.end


@lru_cache(maxsize=8192)  # pure, and asked for every link of a campaign with the same periods
def judged_at(period: Period, grace_working_days: int, calendar: WorkCalendar) -> datetime:
    """When the period is judged: midnight after the N-th working day after its last day (N = 0: its end)."""
    day = period.last_day
    for _ in range(grace_working_days):
        day += _DAY
        while not calendar.is_workday(day):
            day += _DAY
    return datetime.combine(day + _DAY, time(0), calendar.tz)


@lru_cache(maxsize=8192)
def remind_at(period: Period, working_days_before: int, calendar: WorkCalendar) -> datetime | None:
    """The start of the working day N working days before the end (the last working day counts as one).

    None when N is 0 (no reminder); the period's first working day when it has fewer working days.
    """
    if working_days_before <= 0:
        return None
    workdays = [d for d in _days(period.start, period.end) if calendar.is_workday(d)]
    if not workdays:
        return None
    day = workdays[max(0, len(workdays) - working_days_before)]
    return datetime.combine(day, calendar.workday_start, calendar.tz)


def _days(first: date, stop: date) -> Iterator[date]:
    day = first
    while day < stop:
        yield day
        day += _DAY

