"""Reporting cadence (报送频次): due days on the national calendar across holidays and 调休, on-time and overdue rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from domain.kernel.calendar import CHINA_TZ
from domain.tasks import (
    DAILY, NO_CADENCE, Cadence, due_day, due_days, is_nominal_day, is_on_time, monthly, nominal_days, overdue_from,
    parse_cadence, weekly,
)
from infra.calendars import official_calendar

pytestmark = pytest.mark.unit

CAL = official_calendar()
days = st.dates(min_value=date(2021, 1, 1), max_value=date(2026, 11, 30))
cadences = st.one_of(st.just(DAILY), st.integers(1, 7).map(weekly), st.integers(1, 31).map(monthly))


def at(day: str, hhmm: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


def test_people_write_cadences_the_way_the_source_documents_do() -> None:
    """一日一汇报, 每周五报送, 每月5日报送 and 每月报送 read as daily, weekly on Friday, monthly on the 5th, at month end."""
    assert parse_cadence("一日一汇报") == DAILY
    assert parse_cadence("每周五报送") == weekly(5) and parse_cadence("每周一") == weekly(1)
    assert parse_cadence("每月5日报送") == monthly(5) and parse_cadence("每月报送") == monthly(31)
    assert parse_cadence("") == NO_CADENCE and parse_cadence("weekly:3") == weekly(3)
    assert parse_cadence("每季度") is None and parse_cadence("每月40日") is None


def test_a_friday_holiday_report_is_due_on_the_next_working_day() -> None:
    """2021-10-01 (国庆, a Friday) moves to Friday 10-08; 2021-12-31 stays (a working Friday before 元旦)."""
    assert due_day(date(2021, 10, 1), CAL) == date(2021, 10, 8)
    assert due_day(date(2021, 12, 31), CAL) == date(2021, 12, 31)
    assert due_days(weekly(5), CAL, date(2021, 9, 27), date(2021, 10, 10)) == [date(2021, 10, 8)]


def test_a_make_up_working_day_takes_reports() -> None:
    """调休上班 on Saturday 2022-01-29: a daily cadence is due that day; Sunday 01-30 too; 01-31 (春节) is not."""
    found = due_days(DAILY, CAL, date(2022, 1, 28), date(2022, 2, 8))
    assert found == [date(2022, 1, 28), date(2022, 1, 29), date(2022, 1, 30), date(2022, 2, 7), date(2022, 2, 8)]


def test_a_month_end_cadence_uses_the_last_day_of_short_months() -> None:
    """每月31日 is 2月28日 in 2022; a Saturday month end (2022-04-30, 劳动节) is due on the first working day after."""
    assert is_nominal_day(monthly(31), date(2022, 2, 28)) and not is_nominal_day(monthly(31), date(2022, 2, 27))
    assert due_days(monthly(31), CAL, date(2022, 4, 1), date(2022, 5, 31)) == [date(2022, 5, 5), date(2022, 5, 31)]


def test_a_missed_report_is_overdue_from_the_next_working_morning() -> None:
    """Due Friday 2021-12-31 (元旦 follows): overdue from Tuesday 2022-01-04 09:00; from 2022-01-29 (调休 Saturday)
    for a report due Friday 01-28."""
    assert overdue_from(date(2021, 12, 31), CAL) == at("2022-01-04")
    assert overdue_from(date(2022, 1, 28), CAL) == at("2022-01-29")
    assert is_on_time(at("2021-12-31", "23:59"), date(2021, 12, 31), CAL)
    assert not is_on_time(at("2022-01-01", "00:00"), date(2021, 12, 31), CAL)


@settings(max_examples=300, deadline=None)
@given(cadences, days, st.integers(0, 40))
def test_due_days_are_working_days_each_answering_a_nominal_day_at_or_before_it(
        cadence: Cadence, first: date, span: int) -> None:
    """Every due day is a working day; the nominal day it answers is it or the non-working days just before it."""
    last = first + timedelta(days=span)
    for due in due_days(cadence, CAL, first, last):
        assert CAL.is_workday(due) and first <= due <= last
        back = due
        while True:
            if is_nominal_day(cadence, back):
                break
            back -= timedelta(days=1)
            assert not CAL.is_workday(back), f"{due} answers no nominal day of {cadence}"


@settings(max_examples=300, deadline=None)
@given(cadences, days, st.integers(0, 40))
def test_every_nominal_day_is_answered_by_exactly_its_shifted_due_day(cadence: Cadence, first: date, span: int) -> None:
    """Each nominal day in the range maps to the first working day on or after it, and that day is listed when in range."""
    last = first + timedelta(days=span)
    listed = due_days(cadence, CAL, first, last)
    assert listed == sorted(set(listed))
    for nominal in nominal_days(cadence, first, last):
        due = due_day(nominal, CAL)
        assert CAL.is_workday(due) and all(not CAL.is_workday(nominal + timedelta(days=i)) for i in range((due - nominal).days))
        assert (due in listed) == (due <= last)


@settings(max_examples=300, deadline=None)
@given(days)
def test_overdue_from_is_the_first_working_instant_after_the_day(day: date) -> None:
    """The overdue instant starts a working day after `day`, and every day between is a day off."""
    when = overdue_from(day, CAL)
    local = when.astimezone(CHINA_TZ)
    assert local.time() == CAL.workday_start and CAL.is_workday(local.date()) and local.date() > day
    assert all(not CAL.is_workday(day + timedelta(days=i)) for i in range(1, (local.date() - day).days))
