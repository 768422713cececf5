"""Working-time calendar (工作日历): time limits counted in working days and working hours.

Time limits are counted in working days (工作日) and working hours (工作时), not wall-clock
days: public holidays (节假日) are days off, and make-up working days (调休上班) are weekend
days that are working days. All arithmetic is done on exact datetimes in the calendar's time
zone; amounts given in hours are rounded to whole minutes, so results never drift.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from itertools import accumulate
from typing import Any

CHINA_TZ = timezone(timedelta(hours=8))

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)

Pause = tuple[datetime, datetime | None]


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """A campaign's working-time calendar (工作日历).

    A date is a working day (工作日) if it is a make-up working day (调休上班), else not if it is
    a day off (holidays, 节假日, and the weekends shifted into them), else Monday to Friday.
    Each working day has one working window [workday_start, workday_end) in `tz`.
    """

    days_off: frozenset[date] = frozenset()
    make_up_workdays: frozenset[date] = frozenset()
    workday_start: time = time(9, 0)
    workday_end: time = time(17, 0)
    tz: tzinfo = CHINA_TZ
    # Dates whose status differs from the Mon-Fri default, sorted, with running sums of their
    # +1/-1 adjustments: counting working days in a range then costs two bisections.
    _exceptions: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _adjust_sums: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.workday_start >= self.workday_end:
            raise ValueError("workday_start must be before workday_end")
        set_ = object.__setattr__  # the documented way to initialise a frozen dataclass
        set_(self, "days_off", frozenset(self.days_off))
        set_(self, "make_up_workdays", frozenset(self.make_up_workdays))
        extra = {d: 1 for d in self.make_up_workdays if d.weekday() >= 5}
        lost = {d: -1 for d in self.days_off - self.make_up_workdays if d.weekday() < 5}
        exceptions = sorted({**extra, **lost}.items())
        set_(self, "_exceptions", tuple(d for d, _ in exceptions))
        set_(self, "_adjust_sums", tuple(accumulate((a for _, a in exceptions), initial=0)))

    def is_workday(self, d: date) -> bool:
        """Whether `d` is a working day (工作日) on this calendar."""
        if d in self.make_up_workdays:
            return True
        return d not in self.days_off and d.weekday() < 5

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The instant `days` working days after `start`: same clock time, N-th working day on.

        A `start` outside working hours first moves to the next working instant.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        t = self._next_working_instant(self._local(start))
        return datetime.combine(self._shift(t.date(), days), t.timetz())

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant after `hours` of working time (rounded to the minute) from `start`."""
        need = timedelta(minutes=round(hours * 60))
        if need < _ZERO:
            raise ValueError("hours must not be negative")
        t = self._next_working_instant(self._local(start))
        left_today = self._window(t.date())[1] - t
        if need <= left_today:
            return t + need
        full_days, rest = divmod(need - left_today, self._day_length)
        if not rest:  # land at the end of a window rather than the start of the next one
            full_days, rest = full_days - 1, self._day_length
        d = self._shift(self._next_workday(t.date()), full_days)
        return self._window(d)[0] + rest

    def working_hours_between(
        self, a: datetime, b: datetime, paused: Sequence[Pause] = ()
    ) -> float:
        """Working hours in [a, b) outside the `paused` intervals; 0.0 when b <= a.

        A pause whose end is None lasts until `b`; overlapping pauses count once.
        """
        a, b = self._local(a), self._local(b)
        if b <= a:
            return 0.0
        worked = self._worked(a, b)
        for lo, hi in self._merged_pauses(paused, a, b):
            worked -= self._worked(lo, hi)
        return worked / timedelta(hours=1)

    def with_local_days(
        self, days_off: Iterable[date] = (), make_up_workdays: Iterable[date] = ()
    ) -> WorkCalendar:
        """This calendar with a campaign's local days off and make-up working days added.

        Local days override the national arrangement, so a local day off can cancel an
        official make-up working day (调休上班).
        """
        off, make_up = frozenset(days_off), frozenset(make_up_workdays)
        if off & make_up:
            raise ValueError(f"dates both off and working: {sorted(off & make_up)}")
        return replace(
            self,
            days_off=self.days_off | off,
            make_up_workdays=(self.make_up_workdays - off) | make_up,
        )

    @property
    def _day_length(self) -> timedelta:
        start, end = self._window(date(2000, 1, 1))  # any date: every window is equally long
        return end - start

    def _local(self, t: datetime) -> datetime:
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"naive datetime not allowed: {t!r}")
        return t.astimezone(self.tz)

    def _window(self, d: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(d, self.workday_start, self.tz),
            datetime.combine(d, self.workday_end, self.tz),
        )

    def _next_workday(self, d: date) -> date:
        d += _ONE_DAY
        while not self.is_workday(d):
            d += _ONE_DAY
        return d

    def _next_working_instant(self, t: datetime) -> datetime:
        if self.is_workday(t.date()):
            start, end = self._window(t.date())
            if t < end:
                return max(t, start)
        return self._window(self._next_workday(t.date()))[0]

    def _shift(self, d: date, n: int) -> date:
        """The n-th working day after `d`, jumping whole weeks while n is large."""
        while n > 7:
            # k weeks hold at most 7k working days, so at least one step is left afterwards.
            jump = d + timedelta(weeks=(n - 1) // 7)
            n -= self._count_workdays(d + _ONE_DAY, jump + _ONE_DAY)
            d = jump
        for _ in range(n):
            d = self._next_workday(d)
        return d

    def _count_workdays(self, first: date, stop: date) -> int:
        """Working days in [first, stop)."""
        span = (stop - first).days
        if span <= 0:
            return 0
        weeks, rest = divmod(span, 7)
        weekday = first.weekday()
        plain = 5 * weeks + sum(1 for i in range(rest) if (weekday + i) % 7 < 5)
        lo, hi = bisect_left(self._exceptions, first), bisect_left(self._exceptions, stop)
        return plain + self._adjust_sums[hi] - self._adjust_sums[lo]

    def _overlap(self, a: datetime, b: datetime, d: date) -> timedelta:
        if not self.is_workday(d):
            return _ZERO
        start, end = self._window(d)
        return max(min(b, end) - max(a, start), _ZERO)

    def _worked(self, a: datetime, b: datetime) -> timedelta:
        """Working time in [a, b) for local a < b."""
        first, last = a.date(), b.date()
        if first == last:
            return self._overlap(a, b, first)
        middle = self._count_workdays(first + _ONE_DAY, last) * self._day_length
        return self._overlap(a, b, first) + middle + self._overlap(a, b, last)

    def _merged_pauses(
        self, paused: Sequence[Pause], a: datetime, b: datetime
    ) -> list[tuple[datetime, datetime]]:
        """The pauses clipped to [a, b), sorted and merged so none overlap."""
        clipped = sorted(
            (max(self._local(lo), a), min(b if hi is None else self._local(hi), b))
            for lo, hi in paused
        )
        merged: list[tuple[datetime, datetime]] = []
        for lo, hi in clipped:
            if lo >= hi:
                continue
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged


def calendar_from_official(data: Mapping[str, Any]) -> WorkCalendar:
    """The national calendar from the parsed official holiday arrangements (节假日安排).

    `data` has the shape {"years": {"2025": [{"name", "days_off", "make_up_workdays"}, ...]}}.
    """
    holidays = [h for year in data["years"].values() for h in year]
    return WorkCalendar(
        days_off=frozenset(_dates(h["days_off"] for h in holidays)),
        make_up_workdays=frozenset(_dates(h["make_up_workdays"] for h in holidays)),
    )


def _dates(lists: Iterable[Iterable[str]]) -> Iterable[date]:
    return (date.fromisoformat(s) for days in lists for s in days)
