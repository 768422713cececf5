"""Bulletins (通报): draft contents from the rankings, immutability once issued, acknowledgement, consequences."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings, strategies as st

from domain.kernel.base import Actor, CommandContext, DomainError, DomainEvent, Forbidden, Meta, NotFound, fold
from domain.consequences.bulletin import (
    AcknowledgeBulletin, BulletinAcknowledged, BulletinEdited, BulletinIssued, BulletinRefs, DraftBulletin,
    EditBulletin, IssueBulletin, ListedStep, RankingPolicy, UnitRate, acknowledge_bulletin, draft_bulletin,
    draft_contents, edit_bulletin, issue_bulletin, ranking_consequences,
)
from domain.kernel.calendar import CHINA_TZ
from domain.consequences.bulletin import Bulletin

pytestmark = pytest.mark.unit

CAMPAIGN = uuid4()
NOW = datetime(2021, 12, 20, 10, tzinfo=CHINA_TZ)
NO_REFS = BulletinRefs()


def rate(name: str, r: float, due: int = 10) -> UnitRate:
    return UnitRate(unit_id=uuid4(), name=name, on_time_rate=r, due=due, closed_on_time=round(r * due))


RATES = [rate("一网格", 1.0), rate("二网格", 0.9), rate("三网格", 0.9), rate("四网格", 0.8), rate("五网格", 0.7),
         rate("六网格", 0.65), rate("七网格", 0.5), rate("八网格", 0.3), rate("九网格", 0.3), rate("十网格", 0.0, due=0)]
STEP = ListedStep(step_id=uuid4(), unit_id=RATES[7].unit_id, unit_name="八网格", summary_zh="解放路占道经营逾期7个工作日")


def ctx(role: str = "hq_office", person: UUID | None = None) -> CommandContext:
    return CommandContext(meta=Meta(actor=Actor(role=role, person_id=person), occurred_at=NOW, recorded_at=NOW,
                                    correlation_id=uuid4(), command_id=str(uuid4()), campaign_id=CAMPAIGN))


# --- draft contents -------------------------------------------------------------------------------


def test_draft_contents_list_the_top_five_and_bottom_three_by_on_time_rate() -> None:
    """红榜 = best five, 黑榜 = worst three; equal rates are ordered by unit name; nothing-due units left out."""
    c = draft_contents(RATES, [STEP])
    assert [e.name for e in c.red_list] == ["一网格", "三网格", "二网格", "四网格", "五网格"]  # 三 < 二 by name
    assert [e.name for e in c.black_list] == ["九网格", "八网格", "七网格"]
    assert [e.rank for e in c.black_list] == [1, 2, 3]
    assert all(e.name != "十网格" for e in (*c.red_list, *c.black_list))


def test_draft_contents_award_flags_and_list_level_three_escalations_in_the_body() -> None:
    """红旗 at ≥95 %, 黄旗 under 60 %, the level-3 steps listed; the body names them all."""
    c = draft_contents(RATES, [STEP], period_start=date(2021, 12, 13), period_end=date(2021, 12, 19))
    assert {(f.name, f.flag) for f in c.flags} == {("一网格", "red"), ("七网格", "yellow"), ("八网格", "yellow"),
                                                   ("九网格", "yellow")}
    assert c.listed_escalations == (STEP,) and c.title == "创建工作情况通报（12月13日至12月19日）"
    assert "一网格（100%）" in c.body_zh and "解放路占道经营逾期7个工作日" in c.body_zh


def test_with_few_units_no_unit_is_on_both_lists() -> None:
    """Six units: five on the 红榜, the 黑榜 holds only the one left."""
    c = draft_contents(RATES[:6], [])
    assert len(c.red_list) == 5 and [e.name for e in c.black_list] == ["六网格"]


rates = st.lists(st.builds(lambda n, r, d: UnitRate(unit_id=uuid4(), name=f"单位{n}", on_time_rate=r, due=d,
                                                    closed_on_time=0),
                           st.integers(0, 30), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.integers(0, 5)),
                 max_size=25)


@settings(max_examples=200, deadline=None)
@given(rates)
def test_draft_contents_match_the_rankings(rankings: list[UnitRate]) -> None:
    """Whatever the rankings, the 红榜 is the best-first head and the 黑榜 the worst-first tail of the rest."""
    c = draft_contents(rankings, [])
    counted = [r for r in rankings if r.due > 0]
    best = sorted(counted, key=lambda r: (-r.on_time_rate, r.name, str(r.unit_id)))
    assert [e.unit_id for e in c.red_list] == [r.unit_id for r in best[:5]]
    worst = sorted(best[5:], key=lambda r: (r.on_time_rate, r.name, str(r.unit_id)))
    assert [e.unit_id for e in c.black_list] == [r.unit_id for r in worst[:3]]
    assert not {e.unit_id for e in c.red_list} & {e.unit_id for e in c.black_list}


# --- draft, edit, issue, acknowledge ---------------------------------------------------------------


def drafted(corrects: UUID | None = None, refs: BulletinRefs = NO_REFS) -> list[DomainEvent]:
    c = draft_contents(RATES, [STEP])
    cmd = DraftBulletin(command_id=str(uuid4()), bulletin_id=uuid4(), campaign_id=CAMPAIGN,
                        period_start=date(2021, 12, 13), period_end=date(2021, 12, 19), corrects=corrects,
                        **c.model_dump())
    return draft_bulletin(None, cmd, ctx(), refs)


def issued() -> list[DomainEvent]:
    events = drafted()
    state = fold("bulletin", events, Bulletin)
    return events + issue_bulletin(state, IssueBulletin(command_id="i", bulletin_id=state.bulletin_id), ctx())


def test_hq_edits_a_draft_and_the_edit_replaces_only_the_fields_given() -> None:
    """BulletinEdited carries the changed fields; the rest of the draft stays."""
    events = drafted()
    state = fold("bulletin", events, Bulletin)
    (edit,) = edit_bulletin(state, EditBulletin(command_id="e", bulletin_id=state.bulletin_id, title="第一期通报"), ctx())
    assert isinstance(edit, BulletinEdited) and edit.body_zh is None
    after = fold("bulletin", [*events, edit], Bulletin)
    assert after.title == "第一期通报" and after.red_list == state.red_list


def test_an_issued_bulletin_is_immutable() -> None:
    """Editing after issue is 422 bulletin_issued; issuing again writes nothing."""
    events = issued()
    state = fold("bulletin", events, Bulletin)
    assert isinstance(events[-1], BulletinIssued)
    with pytest.raises(DomainError) as err:
        edit_bulletin(state, EditBulletin(command_id="e", bulletin_id=state.bulletin_id, title="改"), ctx())
    assert err.value.code == "bulletin_issued" and err.value.status == 422
    assert issue_bulletin(state, IssueBulletin(command_id="i2", bulletin_id=state.bulletin_id), ctx()) == []


def test_a_correction_is_a_new_bulletin_referencing_an_issued_one() -> None:
    """corrects must name an issued bulletin (404 otherwise); the old bulletin is untouched."""
    old = fold("bulletin", issued(), Bulletin)
    (event,) = drafted(corrects=old.bulletin_id, refs=BulletinRefs(corrected=old))
    assert fold("bulletin", [event], Bulletin).corrects == old.bulletin_id
    with pytest.raises(NotFound):
        drafted(corrects=uuid4())


def test_a_unit_cannot_be_on_both_lists() -> None:
    """An edit putting a 红榜 unit on the 黑榜 is rejected (422 unit_on_both_lists)."""
    state = fold("bulletin", drafted(), Bulletin)
    cmd = EditBulletin(command_id="e", bulletin_id=state.bulletin_id, black_list=state.red_list[:1])
    with pytest.raises(DomainError) as err:
        edit_bulletin(state, cmd, ctx())
    assert err.value.code == "unit_on_both_lists"


def acknowledge(events: list[DomainEvent], unit: UUID, member_of: frozenset[UUID]) -> list[DomainEvent]:
    state = fold("bulletin", events, Bulletin)
    cmd = AcknowledgeBulletin(command_id=str(uuid4()), bulletin_id=state.bulletin_id, unit_id=unit)
    return acknowledge_bulletin(state, cmd, ctx("unit_officer", uuid4()), BulletinRefs(actor_unit_ids=member_of))


def test_each_named_unit_acknowledges_once() -> None:
    """A member of a named unit signs; a second signature for the unit writes nothing."""
    events = issued()
    unit = RATES[8].unit_id
    (event,) = acknowledge(events, unit, frozenset({unit}))
    assert isinstance(event, BulletinAcknowledged) and event.unit_id == unit
    assert acknowledge([*events, event], unit, frozenset({unit})) == []


def test_only_named_units_acknowledge_and_only_through_their_members() -> None:
    """A unit not named is 403; acting for a unit one is not in is 403; a draft cannot be acknowledged."""
    events, named = issued(), RATES[0].unit_id
    stranger = uuid4()
    with pytest.raises(Forbidden):
        acknowledge(events, stranger, frozenset({stranger}))
    with pytest.raises(Forbidden):
        acknowledge(events, named, frozenset())
    with pytest.raises(DomainError):
        acknowledge(drafted(), named, frozenset({named}))


# --- the consequence ladder ----------------------------------------------------------------------

A, B, C, D = uuid4(), uuid4(), uuid4(), uuid4()


def test_bottom_three_once_twice_in_a_row_and_three_times_climb_the_consequence_ladder() -> None:
    """Once → city leader's 约谈; twice in a row → organisation department's 约谈; third time in total → 问责."""
    history = [frozenset({A, C}), frozenset({A, B, D}), frozenset({A, B, C})]
    assert ranking_consequences(history) == {
        A: "accountability_proposed",  # three in a row
        B: "summons_by_organisation_department",  # two in a row
        C: "summons_by_city_leader",  # listed 1st and 3rd: twice in total, not in a row
    }
    assert ranking_consequences([frozenset({A}), frozenset(), frozenset({A}), frozenset({A})]) == {
        A: "accountability_proposed"}  # three in total


def test_counting_in_a_row_is_a_policy_choice() -> None:
    """With in_a_row counting, three listings broken by a clean week are not yet 问责."""
    policy = RankingPolicy(accountability_counting="in_a_row")
    history = [frozenset({A}), frozenset(), frozenset({A}), frozenset({A})]
    assert ranking_consequences(history, policy) == {A: "summons_by_organisation_department"}


def test_only_units_on_the_latest_black_list_face_consequences() -> None:
    """A unit off the latest 黑榜 gets nothing new; no bulletins, no consequences."""
    assert ranking_consequences([frozenset({A}), frozenset({B})]) == {B: "summons_by_city_leader"}
    assert ranking_consequences([]) == {}
