"""Duty periods and the duty in a period: calendar boundaries at Beijing midnight, policy changes, grace,
reminders, and pro-rating of handovers, partial links and exemptions (hypothesis where cases are many)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.kernel.calendar import CHINA_TZ
from domain.liaison import (
    DutyPolicy, Exemption, Link, LinkPlaces, PolicyTimeline, VisitFact, duty_in_period, judge_link, judge_period,
    judged_at, natural_period, remind_at,
)
from domain.liaison.periods import periods_between
from infra.calendars import official_calendar

pytestmark = pytest.mark.unit

CAL = official_calendar()
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
days = st.dates(min_value=date(2021, 1, 1), max_value=date(2026, 12, 31))
kinds = st.sampled_from(["week", "month", "two_month"])


def bj(day: date | str, hhmm: str = "00:00") -> datetime:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime.combine(d, time.fromisoformat(hhmm), CHINA_TZ)


def link(start: datetime, end: datetime | None = None) -> Link:
    return Link(link_id=uuid4(), target_kind="place", target_id=uuid4(), valid_from=start, valid_to=end, reason="挂钩")


def policy(**rules: object) -> DutyPolicy:
    return DutyPolicy(effective_from=EPOCH, **rules)  # type: ignore[arg-type]  # rules are DutyRules fields


@given(kind=kinds, day=days)
def test_the_period_of_a_day_contains_it_and_its_neighbours_touch(kind: str, day: date) -> None:
    """Every day lies in exactly one period of each kind; the next period starts where this one ends."""
    p = natural_period(kind, day)  # type: ignore[arg-type]  # drawn from the kinds
    assert p.start <= day < p.end
    following = natural_period(kind, p.end)  # type: ignore[arg-type]
    assert following.start == p.end
    assert p.days in {"week": {7}, "month": {28, 29, 30, 31}, "two_month": {59, 60, 61, 62}}[kind]


@given(kind=kinds, day=days)
def test_periods_begin_at_beijing_midnight_so_2359_and_0001_fall_on_either_side(kind: str, day: date) -> None:
    """A visit at 23:59 on a period's last day belongs to it; one at 00:01 the next day to the next period."""
    p = natural_period(kind, day)  # type: ignore[arg-type]
    end = p.ends_at(CHINA_TZ)
    assert p.starts_at(CHINA_TZ) <= end - timedelta(minutes=1) < end <= end + timedelta(minutes=1)
    assert (end - timedelta(minutes=1)).astimezone(CHINA_TZ).date() == p.last_day
    assert natural_period(kind, (end + timedelta(minutes=1)).astimezone(CHINA_TZ).date()).start == p.end  # type: ignore[arg-type]
    assert end.astimezone(timezone.utc).hour == 16  # midnight in Beijing is 16:00 UTC the day before


def test_two_month_blocks_are_january_february_and_so_on() -> None:
    """双月 are Jan–Feb, Mar–Apr, …, Nov–Dec."""
    assert (natural_period("two_month", date(2022, 2, 28)).start, natural_period("two_month", date(2022, 2, 28)).end) \
        == (date(2022, 1, 1), date(2022, 3, 1))
    assert natural_period("two_month", date(2021, 12, 5)).start == date(2021, 11, 1)


def test_december_2021_is_judged_after_three_working_days_past_new_year() -> None:
    """Grace counts working days on the calendar: 1–3 January are the holiday, so 4, 5, 6 count; judged 7 January 00:00."""
    dec = natural_period("month", date(2021, 12, 15))
    assert judged_at(dec, 3, CAL) == bj("2022-01-07")
    assert judged_at(dec, 0, CAL) == bj("2022-01-01")
    assert remind_at(dec, 3, CAL) == bj("2021-12-29", "09:00")


def test_a_policy_changing_the_period_kind_lets_the_running_month_finish_and_clips_the_first_week() -> None:
    """Monthly until a weekly version effective 2022-01-12: January stays whole, then a clipped week from 1 February."""
    weekly = DutyPolicy(effective_from=bj("2022-01-12", "10:00"), period="week", version=1)
    t = PolicyTimeline([weekly], CHINA_TZ)
    found = list(periods_between(t.stretches, date(2022, 1, 1), date(2022, 2, 14)))
    assert [(p.kind, p.start, p.end) for p in found[:3]] == [
        ("month", date(2022, 1, 1), date(2022, 2, 1)), ("week", date(2022, 2, 1), date(2022, 2, 7)),
        ("week", date(2022, 2, 7), date(2022, 2, 14))]
    assert found[1].nominal_start == date(2022, 1, 31) and t.judging(date(2022, 1, 20)).version == 0
    assert t.judging(date(2022, 2, 3)).version == 1


def test_a_version_effective_exactly_at_a_boundary_judges_that_period() -> None:
    """A version effective at 00:00 Beijing on 1 January judges January; one effective at 00:01 only February."""
    at_midnight = PolicyTimeline([DutyPolicy(effective_from=bj("2022-01-01"), visits_per_place=2, version=1)], CHINA_TZ)
    a_minute_late = PolicyTimeline([DutyPolicy(effective_from=bj("2022-01-01", "00:01"), visits_per_place=2, version=1)],
                                   CHINA_TZ)
    assert at_midnight.judging(date(2022, 1, 5)).visits_per_place == 2
    assert a_minute_late.judging(date(2022, 1, 5)).visits_per_place == 1
    assert a_minute_late.judging(date(2022, 2, 5)).visits_per_place == 2


@settings(max_examples=200)
@given(day=st.integers(min_value=1, max_value=30), hour=st.integers(min_value=0, max_value=23))
def test_a_handover_mid_month_leaves_exactly_one_leader_owing_the_single_visit_unless_split_at_half(
        day: int, hour: int) -> None:
    """With one visit a month pro-rated, the outgoing and incoming leaders owe one visit between them (two at exactly half)."""
    dec = natural_period("month", date(2021, 12, 1))
    at = bj(date(2021, 12, day), f"{hour:02d}:00") + timedelta(days=1)
    outgoing = duty_in_period(policy(), dec, link(bj("2021-11-01"), at), (), CHINA_TZ)
    incoming = duty_in_period(policy(), dec, link(at), (), CHINA_TZ)
    half = (at - dec.starts_at(CHINA_TZ)) * 2 == dec.ends_at(CHINA_TZ) - dec.starts_at(CHINA_TZ)
    assert outgoing.due + incoming.due == (2 if half else 1)
    longer = outgoing if at - dec.starts_at(CHINA_TZ) > dec.ends_at(CHINA_TZ) - at else incoming
    assert longer.due == 1


@given(start=st.integers(min_value=1, max_value=31), length=st.integers(min_value=1, max_value=31),
       visits=st.integers(min_value=1, max_value=6))
def test_pro_rated_duty_never_exceeds_the_whole_and_grows_with_the_share_held(start: int, length: int,
                                                                               visits: int) -> None:
    """Exempting more days never raises the duty, and the duty stays between 0 and visits_per_place."""
    dec = natural_period("month", date(2021, 12, 1))
    rules = policy(visits_per_place=visits)
    first = date(2021, 12, start)
    shorter = Exemption(exemption_id=uuid4(), exemption_kind="sick_leave", starts_on=first,
                        ends_on=first + timedelta(days=length - 1), reason="病假")
    longer = shorter.model_copy(update={"ends_on": shorter.ends_on + timedelta(days=3)})
    whole = duty_in_period(rules, dec, link(bj("2021-11-01")), (), CHINA_TZ)
    less = duty_in_period(rules, dec, link(bj("2021-11-01")), (shorter,), CHINA_TZ)
    least = duty_in_period(rules, dec, link(bj("2021-11-01")), (longer,), CHINA_TZ)
    assert whole.due == visits and 0 <= least.due <= less.due <= whole.due


def test_an_exemption_covering_the_whole_month_makes_it_exempt_and_waive_needs_only_one_day() -> None:
    """Pro-rated: a whole-month 病假 brings the duty to zero (exempt); waived: one day of 公出 is enough."""
    dec = natural_period("month", date(2021, 12, 1))
    month = Exemption(exemption_id=uuid4(), exemption_kind="sick_leave", starts_on=date(2021, 12, 1),
                      ends_on=date(2021, 12, 31), reason="病假")
    one_day = month.model_copy(update={"ends_on": date(2021, 12, 1), "exemption_kind": "business_trip"})
    held = link(bj("2021-11-01"))
    assert duty_in_period(policy(), dec, held, (month,), CHINA_TZ).exempted
    assert duty_in_period(policy(), dec, held, (one_day,), CHINA_TZ).due == 1
    waived = duty_in_period(policy(exemption_effect="waive"), dec, held, (one_day,), CHINA_TZ)
    assert waived.due == 0 and waived.exempted


def test_a_link_begun_on_the_twentieth_owes_nothing_pro_rated_and_the_whole_visit_under_full() -> None:
    """Held 12 of 31 days: round half up gives 0 (not due); with partial_period = full the visit is owed."""
    dec = natural_period("month", date(2021, 12, 1))
    late = link(bj("2021-12-20"))
    assert duty_in_period(policy(), dec, late, (), CHINA_TZ).due == 0
    assert duty_in_period(policy(partial_period="full"), dec, late, (), CHINA_TZ).due == 1


def visit(place: object, person: object, when: datetime, recorded: datetime | None = None,
          others: tuple[object, ...] = ()) -> VisitFact:
    return VisitFact(visit_id=uuid4(), place_id=place, participants=(*others, person),  # type: ignore[arg-type]
                     occurred_at=when, recorded_at=recorded or when)


def test_visits_count_by_when_they_occurred_at_the_midnight_boundary() -> None:
    """A visit at 23:59 on 31 December counts for December; one at 00:01 on 1 January for January."""
    leader, held = uuid4(), link(bj("2021-11-01"))
    places = LinkPlaces(exact=frozenset({held.target_id}))
    now = bj("2022-02-20")
    t = PolicyTimeline([], CHINA_TZ)
    late_night = visit(held.target_id, leader, bj("2021-12-31", "23:59"))
    just_after = visit(held.target_id, leader, bj("2022-01-01", "00:01"))
    verdicts = judge_link(person_id=leader, link=held, timeline=t, places=places, exemptions=(),
                          visits=(late_night, just_after), calendar=CAL, now=now, first=date(2021, 12, 1),
                          last=date(2022, 1, 31))
    by_month = {v.period.start.month: [x.visit_id for x in v.visits] for v in verdicts}
    assert by_month[12] == [late_night.visit_id] and by_month[1] == [just_after.visit_id]
    assert [v.status for v in verdicts] == ["met", "met"]


def test_a_late_upload_meets_the_duty_late_and_a_participant_counts_unless_only_the_lead_does() -> None:
    """Recorded after the grace: met_late (unmet before it arrived); as a named participant it counts by default."""
    leader, held = uuid4(), link(bj("2021-11-01"))
    dec = natural_period("month", date(2021, 12, 1))
    places = LinkPlaces(exact=frozenset({held.target_id}))
    uploaded_late = visit(held.target_id, leader, bj("2021-12-29", "15:00"), bj("2022-01-10", "09:30"),
                          others=(uuid4(),))

    def status(now: datetime, rules: DutyPolicy = policy()) -> str:  # noqa: B008  # one immutable policy for this test
        return judge_period(person_id=leader, link=held, period=dec, policy=rules, places=places, exemptions=(),
                            visits=(uploaded_late,), calendar=CAL, now=now).status

    assert status(bj("2021-12-30")) == "pending"
    assert status(bj("2022-01-07", "09:00")) == "unmet"
    assert status(bj("2022-01-10", "10:00")) == "met_late"
    assert status(bj("2022-01-10", "10:00"), policy(counting="lead_only")) == "unmet"


def test_a_visit_to_a_grid_inside_the_street_counts_only_when_the_policy_counts_places_inside() -> None:
    """The street's link is met by a visit to its grid by default, and not when places inside do not count."""
    leader, held, grid = uuid4(), link(bj("2021-11-01")), uuid4()
    dec = natural_period("month", date(2021, 12, 1))
    places = LinkPlaces(exact=frozenset({held.target_id}), inside=frozenset({grid}))
    at_grid = visit(grid, leader, bj("2021-12-10", "10:00"))

    def status(rules: DutyPolicy) -> str:
        return judge_period(person_id=leader, link=held, period=dec, policy=rules, places=places, exemptions=(),
                            visits=(at_grid,), calendar=CAL, now=bj("2022-01-20")).status

    assert status(policy()) == "met" and status(policy(count_places_inside=False)) == "unmet"


def test_a_visit_before_the_link_began_does_not_count_for_it() -> None:
    """Only visits made while the link was held count: the incoming leader's earlier visit is not theirs to claim."""
    leader = uuid4()
    held = link(bj("2021-12-10"))
    dec = natural_period("month", date(2021, 12, 1))
    before = visit(held.target_id, leader, bj("2021-12-05", "10:00"))
    v = judge_period(person_id=leader, link=held, period=dec, policy=policy(), places=LinkPlaces(
        exact=frozenset({held.target_id})), exemptions=(), visits=(before,), calendar=CAL, now=bj("2022-01-20"))
    assert (v.due, v.done, v.status) == (1, 0, "unmet")
