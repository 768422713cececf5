"""The working-time calendar (工作日历): working days, working hours, pauses, official data."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from importlib.resources import files

import pytest
from hypothesis import given, strategies as st

from domain.kernel.calendar import CHINA_TZ, WorkCalendar, calendar_from_official
from infra.calendars import official_calendar

pytestmark = pytest.mark.unit

CAL = official_calendar()


def at(day: str, hhmm: str = "09:00") -> datetime:
    """A Beijing-time instant from ISO date and HH:MM."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


raw_instants = st.datetimes(
    min_value=datetime(2021, 1, 1), max_value=datetime(2026, 6, 30)
).map(lambda t: t.replace(tzinfo=CHINA_TZ))
# Any instant moved to the next working instant: adding zero working hours normalises.
working_instants = raw_instants.map(lambda t: CAL.add_working_hours(t, 0))
minutes = st.integers(min_value=0, max_value=60 * 8 * 40)


def test_national_day_holiday_and_its_make_up_days_are_classified() -> None:
    """2025 国庆/中秋 Oct 1–8 are days off, the 调休 Sunday Sep 28 and Saturday Oct 11 work."""
    assert not any(CAL.is_workday(date(2025, 10, d)) for d in range(1, 9))
    assert CAL.is_workday(date(2025, 9, 28)) and CAL.is_workday(date(2025, 10, 11))
    assert not CAL.is_workday(date(2025, 9, 27)) and not CAL.is_workday(date(2025, 10, 12))


def test_add_working_days_skips_a_public_holiday() -> None:
    """One working day after Tue 2025-09-30 lands after the holiday, on Thu Oct 9, same time."""
    assert CAL.add_working_days(at("2025-09-30", "10:30"), 1) == at("2025-10-09", "10:30")


def test_add_working_days_lands_on_a_make_up_saturday() -> None:
    """One working day after Fri 2025-10-10 is the 调休 Saturday Oct 11; two is Mon Oct 13."""
    assert CAL.add_working_days(at("2025-10-10", "14:00"), 1) == at("2025-10-11", "14:00")
    assert CAL.add_working_days(at("2025-10-10", "14:00"), 2) == at("2025-10-13", "14:00")


def test_add_working_days_crosses_new_year_into_the_next_year_data() -> None:
    """From 2025-12-31 one working day is the 调休 Sunday 2026-01-04 after 元旦."""
    assert CAL.add_working_days(at("2025-12-31", "11:00"), 1) == at("2026-01-04", "11:00")


def test_add_working_days_from_outside_working_hours_starts_next_working_instant() -> None:
    """A Saturday-evening start counts from Monday 09:00."""
    assert CAL.add_working_days(at("2025-09-20", "20:00"), 2) == at("2025-09-24", "09:00")


def test_add_working_hours_spans_nights_and_weekends() -> None:
    """Fri 16:00 plus 2 working hours is Mon 10:00; Tue 16:00 plus 3 is Wed 11:00."""
    assert CAL.add_working_hours(at("2025-09-19", "16:00"), 2) == at("2025-09-22", "10:00")
    assert CAL.add_working_hours(at("2025-09-16", "16:00"), 3) == at("2025-09-17", "11:00")


def test_add_working_hours_ends_at_close_of_day_rather_than_next_opening() -> None:
    """A full 8-hour day from 09:00 ends at 17:00 the same day, 16 hours at 17:00 the next."""
    assert CAL.add_working_hours(at("2025-09-22"), 8) == at("2025-09-22", "17:00")
    assert CAL.add_working_hours(at("2025-09-22"), 16) == at("2025-09-23", "17:00")


def test_add_working_hours_converts_other_time_zones_and_returns_aware_beijing_time() -> None:
    """A UTC start is read in Beijing time and the result is aware in Beijing time."""
    start = datetime(2025, 9, 22, 1, 0, tzinfo=timezone.utc)  # 09:00 in Beijing
    result = CAL.add_working_hours(start, 0.5)
    assert result == at("2025-09-22", "09:30") and result.utcoffset() == timedelta(hours=8)


def test_naive_datetimes_are_rejected() -> None:
    """Naive datetimes raise ValueError instead of guessing a time zone."""
    with pytest.raises(ValueError):
        CAL.add_working_hours(datetime(2025, 9, 22, 9), 1)
    with pytest.raises(ValueError):
        CAL.working_hours_between(at("2025-09-22"), datetime(2025, 9, 23))


def test_working_hours_between_counts_only_working_windows() -> None:
    """Fri 16:00 to Mon 10:00 holds two working hours; the 国庆 week holds none."""
    assert CAL.working_hours_between(at("2025-09-19", "16:00"), at("2025-09-22", "10:00")) == 2
    assert CAL.working_hours_between(at("2025-10-01", "00:00"), at("2025-10-09", "00:00")) == 0


def test_working_hours_between_is_zero_when_the_end_is_not_after_the_start() -> None:
    """An empty or reversed interval holds 0.0 working hours."""
    assert CAL.working_hours_between(at("2025-09-23"), at("2025-09-22")) == 0.0


def test_working_hours_between_subtracts_a_pause() -> None:
    """A 4-hour 挂账 pause on Tuesday leaves 20 of Mon–Wed's 24 working hours."""
    a, b = at("2025-09-22"), at("2025-09-24", "17:00")
    pause = (at("2025-09-23"), at("2025-09-23", "13:00"))
    assert CAL.working_hours_between(a, b, [pause]) == 20


def test_open_pause_lasts_until_the_end_and_overlapping_pauses_count_once() -> None:
    """A pause with no end runs to b; two overlapping pauses subtract their union."""
    a, b = at("2025-09-22"), at("2025-09-24", "17:00")
    open_pause = (at("2025-09-24", "12:00"), None)
    overlapping = [(at("2025-09-23"), at("2025-09-23", "12:00")),
                   (at("2025-09-23", "11:00"), at("2025-09-23", "13:00"))]
    assert CAL.working_hours_between(a, b, [open_pause]) == 19
    assert CAL.working_hours_between(a, b, overlapping) == 20


def test_local_days_are_added_and_override_the_national_make_up_day() -> None:
    """A campaign's local day off cancels a 调休 Saturday; its local make-up Saturday works."""
    local = CAL.with_local_days(
        days_off=[date(2025, 10, 11)], make_up_workdays=[date(2025, 9, 20)]
    )
    assert not local.is_workday(date(2025, 10, 11)) and local.is_workday(date(2025, 9, 20))
    assert CAL.is_workday(date(2025, 10, 11)) and not CAL.is_workday(date(2025, 9, 20))


def test_a_date_cannot_be_both_a_local_day_off_and_a_local_make_up_day() -> None:
    """Contradictory local days raise ValueError."""
    with pytest.raises(ValueError):
        CAL.with_local_days(days_off=[date(2025, 9, 20)], make_up_workdays=[date(2025, 9, 20)])


def test_calendars_are_immutable_and_hashable() -> None:
    """Equal calendars hash equally and fields cannot be reassigned."""
    assert hash(CAL.with_local_days()) == hash(CAL) and CAL.with_local_days() == CAL
    with pytest.raises(AttributeError):
        CAL.days_off = frozenset()  # type: ignore[misc]  # proving the dataclass is frozen


def test_official_calendar_covers_every_year_2021_to_2026() -> None:
    """The shipped file has 2021–2026 and the calendar honours every listed day off and 调休 day."""
    shipped = files("infra").joinpath("data/cn-public-holidays.json").read_text(encoding="utf-8")
    years = json.loads(shipped)["years"]
    assert sorted(years) == [str(y) for y in range(2021, 2027)]
    for holidays in years.values():
        for h in holidays:
            assert not any(CAL.is_workday(date.fromisoformat(d)) for d in h["days_off"]), h
            assert all(CAL.is_workday(date.fromisoformat(d)) for d in h["make_up_workdays"]), h


def test_official_calendar_has_the_2026_holidays() -> None:
    """2026 春节 Feb 15–23 is off, its 调休 Saturdays Feb 14 and 28 work, Oct 10 works."""
    assert not any(CAL.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert all(CAL.is_workday(date(2026, m, d)) for m, d in [(2, 14), (2, 28), (10, 10)])


def test_calendar_from_official_collects_days_off_and_make_up_days_of_all_years() -> None:
    """The parsed official structure becomes one calendar with every year's days."""
    data = {"years": {
        "2030": [{"name": "元旦", "days_off": ["2030-01-01"], "make_up_workdays": []}],
        "2031": [{"name": "春节", "days_off": ["2031-01-23"], "make_up_workdays": ["2031-01-26"]}],
    }}
    assert calendar_from_official(data) == WorkCalendar(
        days_off=frozenset({date(2030, 1, 1), date(2031, 1, 23)}),
        make_up_workdays=frozenset({date(2031, 1, 26)}),
    )


def test_official_calendar_is_loaded_once() -> None:
    """The shipped calendar is cached: every call returns the same object."""
    assert official_calendar() is official_calendar()


@given(working_instants, minutes)
def test_working_hours_between_inverts_add_working_hours(a: datetime, m: int) -> None:
    """From a working instant, h added working hours measure back as exactly h."""
    assert CAL.working_hours_between(a, CAL.add_working_hours(a, m / 60)) == m / 60


@given(raw_instants, st.integers(min_value=0, max_value=300))
def test_add_working_days_always_lands_on_a_working_day(start: datetime, n: int) -> None:
    """Whatever the start, the deadline N working days on is a working day."""
    assert CAL.is_workday(CAL.add_working_days(start, n).date())


@given(working_instants, st.integers(min_value=0, max_value=300))
def test_n_working_days_hold_8n_working_hours(a: datetime, n: int) -> None:
    """Between a working instant and N working days later lie exactly 8N working hours."""
    assert CAL.working_hours_between(a, CAL.add_working_days(a, n)) == 8 * n


@given(raw_instants, st.integers(0, 60), st.integers(0, 60))
def test_adding_working_days_composes(start: datetime, m: int, n: int) -> None:
    """Adding m then n working days equals adding m + n (week jumps agree with day steps)."""
    stepwise = CAL.add_working_days(CAL.add_working_days(start, m), n)
    assert stepwise == CAL.add_working_days(start, m + n)


@given(raw_instants, minutes, minutes)
def test_add_working_hours_is_monotonic(start: datetime, m1: int, m2: int) -> None:
    """More working hours never give an earlier deadline."""
    lo, hi = sorted((m1, m2))
    assert CAL.add_working_hours(start, lo / 60) <= CAL.add_working_hours(start, hi / 60)


@given(st.lists(raw_instants, min_size=3, max_size=3).map(sorted))
def test_working_hours_between_is_additive_and_pause_to_end_cuts_the_tail(
    points: list[datetime],
) -> None:
    """Hours over [a, c) split at any b, and an open pause from b leaves only [a, b)."""
    a, b, c = points
    ab, bc = CAL.working_hours_between(a, b), CAL.working_hours_between(b, c)
    assert CAL.working_hours_between(a, c) == pytest.approx(ab + bc, abs=1e-9)
    assert CAL.working_hours_between(a, c, [(b, None)]) == pytest.approx(ab, abs=1e-9)
