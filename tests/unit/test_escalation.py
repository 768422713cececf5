"""Escalation (逐级督办): the ladder as policy, the scheduler's due steps, and taking a step once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from domain.kernel.base import Actor, CommandContext, DomainError, Forbidden, Meta, fold
from domain.kernel.calendar import CHINA_TZ, WorkCalendar
from domain.escalation.ladder import (
    DEFAULT_LADDER, EscalationLadderSet, Ladder, SetEscalationLadder, SetRankingPolicy, Step, due_steps,
    escalation_policy_id, ladder_in_force, next_step, ranking_policy_in_force, set_escalation_ladder,
    set_ranking_policy, step_id_for,
)
from domain.policy.campaign import PolicyRefs
from domain.escalation.work_item import WorkItem, subtract_working_hours, threshold_at
from domain.escalation.ladder import EscalationPolicy

pytestmark = pytest.mark.unit

# New Year 2022 (元旦): Saturday Jan 1 to Monday Jan 3 off — built here, not read from data.
CAL = WorkCalendar(days_off=frozenset({date(2022, 1, 1), date(2022, 1, 2), date(2022, 1, 3)}))
CAMPAIGN = uuid4()


def at(day: str, hhmm: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


DEADLINE = at("2021-12-28")  # assigned 12-23 10:00 with 3 working days
# The untouched item's ladder, counted in working hours across 元旦 (Jan 3 is a day off).
EXPECTED = {
    "reminder": at("2021-12-27"),  # deadline − 8 working hours
    "urge": at("2021-12-28"),  # the deadline
    "supervise": at("2021-12-31"),  # + 24 working hours
    "bulletin_listing": at("2022-01-07"),  # + 56 working hours (Jan 3 skipped)
    "summons_proposed": at("2022-01-07"),
    "accountability_proposed": at("2022-01-19"),  # + 120 working hours
}


def item(**changes: object) -> WorkItem:
    base = WorkItem(item_kind="problem", item_id=uuid4(), campaign_id=CAMPAIGN, responsible_unit_id=uuid4(),
                    deadline=DEADLINE)
    return base.model_copy(update=changes)


def run_escalator(item_at, start: datetime, end: datetime, history: tuple[Ladder, ...] = ()) -> dict[str, datetime]:
    """Tick hourly like the escalator: take every due step, remember when each was first taken."""
    taken: dict[str, datetime] = {}
    now = start
    while now <= end:
        current = item_at(now).model_copy(update={"steps_done": frozenset(taken)})
        for step in due_steps(current, history, CAL, now):
            taken[step.step_name] = now
        now += timedelta(hours=1)
    return taken


def ctx(role: str = "hq_office", now: datetime = DEADLINE, person: UUID | None = None) -> CommandContext:
    return CommandContext(meta=Meta(actor=Actor(role=role, person_id=person), occurred_at=now, recorded_at=now,
                                    correlation_id=uuid4(), command_id=str(uuid4()), campaign_id=CAMPAIGN))


# --- the ladder as policy ----------------------------------------------------------------------


def test_the_default_ladder_is_the_design_ladder_in_working_hours() -> None:
    """Reminder −1 day, 催办 at the deadline, 督办 +3, listing and 约谈 +7, 问责 +15 working days; third relapse."""
    offsets = {s.name: (s.level, s.offset_working_hours) for s in DEFAULT_LADDER.steps}
    assert offsets == {"reminder": (0, -8), "urge": (1, 0), "supervise": (2, 24), "bulletin_listing": (3, 56),
                       "summons_proposed": (3, 56), "accountability_proposed": (4, 120)}
    assert DEFAULT_LADDER.relapse_threshold == 3 and DEFAULT_LADDER.relapse_step == "accountability_proposed"


def test_a_ladder_with_a_repeated_step_name_is_rejected() -> None:
    """Step names identify steps (and their ids), so a ladder may not repeat one."""
    step = Step(level=1, name="urge", offset_working_hours=0)
    with pytest.raises(ValidationError):
        Ladder(effective_from=DEADLINE, steps=(step, step))


def ladder_cmd(effective_from: datetime | None, steps: tuple[Step, ...] = DEFAULT_LADDER.steps) -> SetEscalationLadder:
    return SetEscalationLadder(command_id=str(uuid4()), campaign_id=CAMPAIGN, effective_from=effective_from,
                               steps=steps)


def test_setting_a_ladder_records_a_version_on_the_campaigns_policy_aggregate() -> None:
    """HQ sets a ladder: one EscalationLadderSet under the derived policy id, folded into the history."""
    (event,) = set_escalation_ladder(None, ladder_cmd(at("2022-01-04")), ctx(), PolicyRefs())
    assert isinstance(event, EscalationLadderSet) and event.aggregate_id == escalation_policy_id(CAMPAIGN)
    state = fold("escalation_policy", [event], EscalationPolicy)
    assert ladder_in_force(state.ladders, at("2022-01-03")) == DEFAULT_LADDER
    assert ladder_in_force(state.ladders, at("2022-01-04")).effective_from == at("2022-01-04")


def test_a_ladder_version_may_not_take_effect_before_the_previous_one() -> None:
    """effective_from must not regress (422 policy_effective_from_regressed); an identical ladder is a no-op."""
    state = fold("escalation_policy", set_escalation_ladder(None, ladder_cmd(at("2022-01-04")), ctx(), PolicyRefs()), EscalationPolicy)
    with pytest.raises(DomainError) as err:
        set_escalation_ladder(state, ladder_cmd(at("2022-01-03")), ctx(), PolicyRefs())
    assert err.value.code == "policy_effective_from_regressed" and err.value.status == 422
    assert set_escalation_ladder(state, ladder_cmd(at("2022-01-05")), ctx(), PolicyRefs()) == []


def test_the_ranking_policy_is_versioned_on_the_same_aggregate() -> None:
    """HQ sets a 黑榜 of five from Jan 4: before it the default three applies, from it five."""
    cmd = SetRankingPolicy(command_id="r", campaign_id=CAMPAIGN, effective_from=at("2022-01-04"), black_list_size=5)
    state = fold("escalation_policy", set_ranking_policy(None, cmd, ctx(), PolicyRefs()), EscalationPolicy)
    assert ranking_policy_in_force(state.ranking_policies, at("2022-01-03")).black_list_size == 3
    assert ranking_policy_in_force(state.ranking_policies, at("2022-01-04")).black_list_size == 5
    assert state.ladders == ()


def test_only_hq_sets_the_ladder() -> None:
    """A unit officer may not change the escalation policy (403)."""
    with pytest.raises(Forbidden):
        set_escalation_ladder(None, ladder_cmd(None), ctx("unit_officer"), PolicyRefs())


# --- the 30-working-day scenario ---------------------------------------------------------------

START, END = at("2021-12-14", "09:00"), at("2022-01-27", "17:00")  # ≥ 30 working days, across 元旦


def test_an_untouched_item_climbs_the_whole_ladder_at_the_expected_working_times() -> None:
    """Reminder → 催办 → 督办 → listing and 约谈 → 问责, each at exactly its working-time threshold."""
    untouched = item()
    assert run_escalator(lambda now: untouched, START, END) == EXPECTED


def test_an_item_closed_in_time_never_escalates() -> None:
    """Rectified and closed on the second day: no step ever falls due, before or after the deadline."""
    closed_at = at("2021-12-15")
    rectified = item()
    assert run_escalator(lambda now: rectified.model_copy(update={"closed": now >= closed_at}), START, END) == {}
    assert due_steps(rectified.model_copy(update={"closed": True}), (), CAL, END) == []


def test_a_parked_item_pauses_and_its_steps_shift_by_the_parked_working_time() -> None:
    """Parked 12-20 09:00 to 12-22 09:00 (16 working hours): nothing is due while parked, all steps move 2 days."""
    parked_from, resumed = at("2021-12-20", "09:00"), at("2021-12-22", "09:00")
    base = item()

    def parked(now: datetime) -> WorkItem:
        pause = (parked_from, resumed if now >= resumed else None)
        return base.model_copy(update={"paused": (pause,)}) if now >= parked_from else base

    taken = run_escalator(parked, START, END)
    assert taken == {name: CAL.add_working_days(t, 2) for name, t in EXPECTED.items()}
    assert taken["urge"] == at("2021-12-30") and taken["accountability_proposed"] == at("2022-01-21")


def test_parking_after_the_deadline_holds_the_next_steps_until_resumed() -> None:
    """Overdue, then parked for 8 working hours: 督办 and the later steps move by one working day."""
    paused = ((at("2021-12-29", "09:00"), at("2021-12-30", "09:00")),)
    shifted = {s.step_name: s.due_at for s in due_steps(item(paused=paused), (), CAL, END)}
    assert shifted["urge"] == EXPECTED["urge"]
    assert shifted["supervise"] == at("2022-01-04") and shifted["accountability_proposed"] == at("2022-01-20")
    still_parked = item(paused=((at("2021-12-29", "09:00"), None),))
    assert {s.step_name for s in due_steps(still_parked, (), CAL, END)} == {"reminder", "urge"}


def test_a_policy_change_mid_flight_moves_only_the_steps_not_yet_due() -> None:
    """Steps due before the change follow the old ladder, steps due after it the new one."""
    change = at("2022-01-04", "00:00")
    faster = Ladder(effective_from=change, steps=(
        *DEFAULT_LADDER.steps[:3],
        Step(level=3, name="bulletin_listing", offset_working_hours=40, told=("hq",)),
        Step(level=3, name="summons_proposed", offset_working_hours=40, told=("hq",)),
        Step(level=4, name="accountability_proposed", offset_working_hours=80, told=("hq",)),
    ))
    untouched = item()
    taken = run_escalator(lambda now: untouched, START, END, history=(faster,))
    assert {k: taken[k] for k in ("reminder", "urge", "supervise")} == {k: EXPECTED[k] for k in
                                                                          ("reminder", "urge", "supervise")}
    assert taken["bulletin_listing"] == taken["summons_proposed"] == at("2022-01-05")
    assert taken["accountability_proposed"] == at("2022-01-12")


def test_a_threshold_the_new_ladder_puts_in_the_past_falls_due_when_it_takes_effect() -> None:
    """Under the new ladder the listing was due before the change: it falls due at the change, not earlier."""
    change = at("2022-01-05", "12:00")
    listing = Step(level=3, name="bulletin_listing", offset_working_hours=24, told=("hq",))
    stricter = Ladder(effective_from=change, steps=tuple(listing if s.name == listing.name else s
                                                         for s in DEFAULT_LADDER.steps))
    steps = {s.step_name: s for s in due_steps(item(), (stricter,), CAL, END)}
    assert steps["bulletin_listing"].due_at == change and steps["bulletin_listing"].ladder_effective_from == change
    assert steps["supervise"].due_at == EXPECTED["supervise"]
    assert steps["summons_proposed"].due_at == EXPECTED["summons_proposed"]


def test_a_step_the_new_ladder_drops_no_longer_falls_due() -> None:
    """A ladder without 约谈 in force when 约谈 would fall due: the step never comes."""
    change = at("2022-01-05", "12:00")
    no_summons = Ladder(effective_from=change, steps=tuple(s for s in DEFAULT_LADDER.steps
                                                           if s.name != "summons_proposed"))
    names = {s.step_name for s in due_steps(item(), (no_summons,), CAL, END)}
    assert names == set(EXPECTED) - {"summons_proposed"}


def test_the_third_relapse_makes_accountability_due_immediately() -> None:
    """反弹 a third time: 问责 proposed is due at the relapse, even before any deadline; twice is not enough."""
    relapsed_at = at("2021-12-15", "14:30")
    third = item(deadline=None, relapse_count=3, relapse_at=relapsed_at)
    (step,) = due_steps(third, (), CAL, relapsed_at)
    assert (step.step_name, step.level, step.due_at, step.trigger) == ("accountability_proposed", 4, relapsed_at,
                                                                       "relapse")
    assert due_steps(item(deadline=None, relapse_count=2, relapse_at=relapsed_at), (), CAL, END) == []


def test_next_step_says_what_comes_next_and_when() -> None:
    """For the escalation list: before the deadline the reminder is next; after 催办 was taken, 督办."""
    first = next_step(item(), (), CAL, at("2021-12-20"))
    assert first is not None and first.step_name == "reminder"
    done = item(steps_done=frozenset({"reminder", "urge"}))
    nxt = next_step(done, (), CAL, at("2021-12-29"))
    assert nxt is not None and (nxt.step_name, nxt.due_at) == ("supervise", EXPECTED["supervise"])
    assert next_step(item(closed=True), (), CAL, END) is None


def test_subtracting_working_hours_lands_on_the_latest_working_instant() -> None:
    """8 working hours before Tuesday 09:00 is Monday 09:00, not Friday 17:00; across 元旦 it skips Jan 3."""
    assert subtract_working_hours(CAL, at("2021-12-28", "09:00"), 8) == at("2021-12-27", "09:00")
    assert subtract_working_hours(CAL, at("2022-01-04", "10:00"), 8) == at("2021-12-31", "10:00")
    assert threshold_at(item(deadline=None), CAL, 0) is None


# --- properties ----------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2021, 12, 1), max_value=datetime(2022, 2, 28)).map(
    lambda t: t.replace(tzinfo=CHINA_TZ, second=0, microsecond=0))


@st.composite
def items(draw: st.DrawFn) -> WorkItem:
    deadline = draw(instants)
    pauses = []
    for start in sorted(draw(st.lists(instants, max_size=3))):
        length = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=200)))
        pauses.append((start, None if length is None else start + timedelta(hours=length)))
    relapses = draw(st.integers(min_value=0, max_value=4))
    return item(deadline=deadline, paused=tuple(pauses), relapse_count=relapses,
                relapse_at=draw(instants) if relapses else None)


@settings(max_examples=150, deadline=None)
@given(items(), instants, st.integers(min_value=0, max_value=2000))
def test_due_steps_are_monotone_in_now_and_their_ids_stable(work: WorkItem, now: datetime, later_hours: int) -> None:
    """A step due at `now` is still due, with the same due time and id, at any later instant."""
    early = {s.step_id: s for s in due_steps(work, (), CAL, now)}
    late = {s.step_id: s for s in due_steps(work, (), CAL, now + timedelta(hours=later_hours))}
    assert early.keys() <= late.keys()
    for step_id, step in early.items():
        assert late[step_id].due_at == step.due_at <= now
        assert step_id == step_id_for("problem", work.item_id, step.step_name)


@settings(max_examples=150, deadline=None)
@given(items())
def test_thresholds_keep_the_ladder_order_whatever_the_pauses(work: WorkItem) -> None:
    """However the item is parked, a later rung never falls due before an earlier one."""
    times = [threshold_at(work, CAL, s.offset_working_hours) for s in DEFAULT_LADDER.steps]
    known = [t for t in times if t is not None]
    assert known == sorted(known)
    assert times[: len(known)] == known  # once the clock stops in an open pause, every later rung waits
