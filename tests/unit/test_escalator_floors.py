"""The escalator's day floors (`infra.escalator.schedule`): what lets a tick leave an item unread must never hide a due step.

A changed item whose deadline falls after its campaign's cutoff day is not read by the tick; it is judged only once
the cutoff passes its day. That is safe only if no step of such an item can be due before its day's floor, for any
item (parked, steps done, a deadline counted from opening), any ladder history and any calendar. These properties
check exactly that against the domain's own `pending_steps`.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import given, settings, strategies as st

from domain.escalation.ladder import DEFAULT_LADDER, Ladder, Step, pending_steps
from domain.escalation.work_item import WorkItem
from domain.kernel.calendar import CHINA_TZ, WorkCalendar
from infra.escalator.schedule import cutoff_day, floor_at, rules_for

pytestmark = pytest.mark.unit

instants = st.datetimes(min_value=datetime(2021, 12, 1), max_value=datetime(2022, 3, 31)).map(
    lambda t: t.replace(tzinfo=CHINA_TZ, second=0, microsecond=0))
days_off = st.frozensets(st.dates(min_value=date(2021, 11, 1), max_value=date(2022, 4, 30)), max_size=25)
NAMES = [s.name for s in DEFAULT_LADDER.steps]


@st.composite
def ladders(draw: st.DrawFn) -> tuple[Ladder, ...]:
    """Up to two ladder versions, each with its own offsets (some before the deadline), in force from some instant."""
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
        steps = tuple(Step(level=i % 5, name=n, offset_working_hours=draw(st.integers(min_value=-120, max_value=200)))
                      for i, n in enumerate(names))
        relapse = "accountability_proposed" in names  # the relapse step must be one of the steps
        out.append(Ladder(effective_from=draw(instants), steps=steps, relapse_threshold=3 if relapse else None,
                          relapse_step="accountability_proposed"))
    return tuple(sorted(out, key=lambda ladder: ladder.effective_from))


@st.composite
def items(draw: st.DrawFn) -> WorkItem:
    """An item never relapsed (those are always read), perhaps parked, with some steps already done."""
    parked = draw(st.one_of(st.none(), instants))
    return WorkItem(item_kind="problem", item_id=uuid4(), campaign_id=uuid4(), deadline=draw(instants),
                    paused=((parked, None),) if parked else (),
                    steps_done=frozenset(draw(st.lists(st.sampled_from(NAMES), max_size=4))))


def utc_day(t: datetime) -> int:
    return math.floor(t.timestamp() / 86400)


@settings(max_examples=300, deadline=None)
@given(items(), ladders(), days_off)
def test_no_step_falls_due_before_the_floor_of_its_deadline_day(work: WorkItem, history: tuple[Ladder, ...],
                                                                off: frozenset[date]) -> None:
    """Every pending step of an item falls due at or after the floor of the UTC day its deadline is on."""
    r = rules_for(history, WorkCalendar(days_off=off))
    assert work.deadline is not None
    floor = floor_at(r, utc_day(work.deadline))
    for step in pending_steps(work, history, r.calendar, datetime(2030, 1, 1, tzinfo=timezone.utc)):
        assert step.due_at >= floor


@settings(max_examples=200, deadline=None)
@given(items(), ladders(), days_off, instants)
def test_an_item_past_the_cutoff_has_nothing_due(work: WorkItem, history: tuple[Ladder, ...],
                                                 off: frozenset[date], now: datetime) -> None:
    """When the item's deadline day is after the cutoff at `now`, no step of it is due at `now`; at the cutoff it may be."""
    r = rules_for(history, WorkCalendar(days_off=off))
    cutoff = cutoff_day(r, now)
    assert floor_at(r, cutoff) <= now < floor_at(r, cutoff + 1)
    assert work.deadline is not None
    if utc_day(work.deadline) > cutoff:
        assert [s for s in pending_steps(work, history, r.calendar, now) if s.due_at <= now] == []


def test_the_cutoff_of_the_default_ladder_is_the_day_whose_reminder_has_come() -> None:
    """Default ladder, 2022-03-01 10:00 China time (a Tuesday): an item due Wednesday 10:00 may be reminded now,
    so its UTC day is not after the cutoff; one due next Monday cannot be."""
    r = rules_for((), WorkCalendar())
    now = datetime(2022, 3, 1, 10, 0, tzinfo=CHINA_TZ)
    assert utc_day(now + timedelta(days=1)) <= cutoff_day(r, now) < utc_day(now + timedelta(days=6))
