"""Campaign policy (创建活动政策) and taxonomy: versioned limits, routing, categories and local calendar days."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import uuid4

import pytest

from domain.policy import campaign as po
from domain.policy import commands as pc
from domain.kernel.base import DomainError, DomainEvent, Forbidden, NotFound, event_class, fold
from domain.kernel.calendar import WorkCalendar
from domain.kernel.taxonomy import BALUAN, DEFAULT_CATEGORIES, Category, Severity, category_codes
from domain.policy.campaign import CampaignPolicy
from tests.unit.problem_kit import CAMPAIGN, HQ, SUPERVISOR, UNIT_A, UNIT_B, at, cid, ctx

pytestmark = pytest.mark.unit
POLICY_TIME = at("2025-09-01")

UNITS = frozenset({UNIT_A, UNIT_B})


def decide(history: list[DomainEvent], cmd: Any, actor: Any = HQ, now: datetime = POLICY_TIME,
           **refs: Any) -> list[DomainEvent]:
    state = fold("campaign_policy", history, CampaignPolicy) if history else None
    return pc.set_policy(state, cmd, ctx(actor, now), pc.PolicyRefs(**{"known_unit_ids": UNITS, **refs}))


def deadlines(effective_from: datetime | None = None, default: int = 3, **kw: Any) -> pc.SetDeadlinePolicy:
    return pc.SetDeadlinePolicy(command_id=cid(), campaign_id=CAMPAIGN, effective_from=effective_from,
                                default=po.TimeLimit(amount=default), **kw)


def test_the_default_taxonomy_has_the_eight_disorders_and_general_categories() -> None:
    """八乱 (8 categories) plus 环境卫生, 公共设施, 其他, with unique codes and Chinese names."""
    assert [c.name_zh for c in BALUAN] == ["车辆乱停", "违规乱建", "垃圾乱倒", "杂物乱堆", "摊点乱摆", "绿化乱毁",
                                           "广告乱设", "污水乱排"]
    assert {"sanitation", "facilities", "other"} <= category_codes(DEFAULT_CATEGORIES)
    assert len(category_codes(DEFAULT_CATEGORIES)) == len(DEFAULT_CATEGORIES) == 11
    assert [s.name_zh for s in Severity] == ["一般", "较重", "严重"]


def test_a_policy_version_is_recorded_on_the_campaigns_policy_aggregate() -> None:
    """SetDeadlinePolicy emits DeadlinePolicySet on policy_id_for(campaign), effective now when not given."""
    (event,) = decide([], deadlines())
    assert isinstance(event, po.DeadlinePolicySet)
    assert event.policy_id == po.policy_id_for(CAMPAIGN) and event.effective_from == at("2025-09-01")
    assert fold("campaign_policy", [event], CampaignPolicy).deadlines[0].default.amount == 3


def test_the_policy_in_force_is_the_last_version_effective_by_then() -> None:
    """Before any version the product default applies; then each version from its effective_from."""
    history = decide([], deadlines(at("2025-09-01"), default=3))
    history += decide(history, deadlines(at("2025-10-01"), default=2), now=at("2025-09-15"))
    versions = fold("campaign_policy", history, CampaignPolicy).deadlines
    assert po.policy_in_force(versions, at("2025-08-31")) == po.DEFAULT_DEADLINE_POLICY
    assert po.policy_in_force(versions, at("2025-09-30")).default.amount == 3
    assert po.policy_in_force(versions, at("2025-10-01")).default.amount == 2


def test_a_version_may_not_take_effect_before_the_previous_one() -> None:
    """effective_from earlier than the previous version's is refused; the same instant is allowed and wins."""
    history = decide([], deadlines(at("2025-10-01")))
    with pytest.raises(DomainError) as raised:
        decide(history, deadlines(at("2025-09-30"), default=5))
    assert raised.value.code == "policy_effective_from_regressed"
    history += decide(history, deadlines(at("2025-10-01"), default=5))
    assert po.policy_in_force(fold("campaign_policy", history, CampaignPolicy).deadlines, at("2025-10-02")).default.amount == 5


def test_setting_the_policy_already_in_force_is_a_no_op() -> None:
    """The same limits again, even from a later date, emit nothing."""
    history = decide([], deadlines(at("2025-09-01")))
    assert decide(history, deadlines(at("2025-09-20"))) == []


def test_the_most_specific_limit_applies() -> None:
    """category+severity beats category, which beats severity, which beats the default."""
    lim = po.TimeLimit
    policy = po.DeadlinePolicy(effective_from=at("2025-09-01"), default=lim(amount=9), limits=(
        po.DeadlineLimit(severity=Severity.SERIOUS, limit=lim(amount=1)),
        po.DeadlineLimit(category="sewage", limit=lim(amount=4)),
        po.DeadlineLimit(category="sewage", severity=Severity.SERIOUS, limit=lim(amount=8, unit="working_hours")),
    ))
    assert policy.limit_for("sewage", Severity.SERIOUS) == lim(amount=8, unit="working_hours")
    assert policy.limit_for("sewage", Severity.MINOR).amount == 4
    assert policy.limit_for("clutter", Severity.SERIOUS).amount == 1
    assert policy.limit_for("clutter", Severity.MINOR).amount == 9


def test_deadline_for_counts_working_hours_and_days() -> None:
    """8 working hours from Fri 14:00 end Mon 14:00; 2 working days from Fri 14:00 end Tue 14:00."""
    policy = po.DeadlinePolicy(effective_from=at("2025-09-01"), default=po.TimeLimit(amount=2), limits=(
        po.DeadlineLimit(severity=Severity.SERIOUS, limit=po.TimeLimit(amount=8, unit="working_hours")),))
    cal, start = WorkCalendar(), at("2025-09-19", "14:00")
    assert po.deadline_for(policy, cal, "clutter", Severity.SERIOUS, start) == at("2025-09-22", "14:00")
    assert po.deadline_for(policy, cal, "clutter", Severity.NORMAL, start) == at("2025-09-23", "14:00")


def test_limits_and_routes_must_name_known_categories_and_units() -> None:
    """An unknown category, a category routed twice, a repeated limit or an unknown unit is refused."""
    route = po.CategoryRoute
    bad = [
        (deadlines(limits=(po.DeadlineLimit(category="nope", limit=po.TimeLimit(amount=1)),)), "unknown_category"),
        (deadlines(limits=(po.DeadlineLimit(severity=Severity.MINOR, limit=po.TimeLimit(amount=1)),) * 2),
         "deadline_limit_repeated"),
        (pc.SetCategoryRouting(command_id=cid(), campaign_id=CAMPAIGN, routes=(
            route(category="sewage", unit_id=UNIT_A), route(category="sewage", unit_id=UNIT_B))), "category_routed_twice"),
        (pc.SetCategoryRouting(command_id=cid(), campaign_id=CAMPAIGN, routes=(
            route(category="sewage", unit_id=uuid4()),)), "unit_not_found"),
    ]
    for cmd, code in bad:
        with pytest.raises(DomainError) as raised:
            decide([], cmd)
        assert raised.value.code == code


def test_a_configured_taxonomy_admits_its_own_categories_in_later_policies() -> None:
    """After configuring 占道经营 a routing for it is accepted; repeated codes in a taxonomy are refused."""
    mine = Category(code="road_occupation", name_zh="占道经营")
    history = decide([], pc.ConfigureCategories(command_id=cid(), campaign_id=CAMPAIGN, categories=(mine,)))
    routing = pc.SetCategoryRouting(command_id=cid(), campaign_id=CAMPAIGN, routes=(
        po.CategoryRoute(category="road_occupation", unit_id=UNIT_B),))
    history += decide(history, routing)
    policy = fold("campaign_policy", history, CampaignPolicy)
    assert po.routing_at(policy, at("2025-09-02")).unit_for("road_occupation") == UNIT_B
    assert po.categories_at(policy, at("2025-09-02")) == (mine,)
    assert po.categories_at(policy, at("2025-08-01")) == DEFAULT_CATEGORIES
    with pytest.raises(DomainError, match="repeated"):
        decide([], pc.ConfigureCategories(command_id=cid(), campaign_id=CAMPAIGN, categories=(mine, mine)))


def test_local_calendar_days_apply_from_their_effective_date() -> None:
    """A local day off counts only from when it was set; a date both off and working is refused."""
    national = WorkCalendar()
    cmd = pc.SetCalendarDays(command_id=cid(), campaign_id=CAMPAIGN, effective_from=at("2025-09-10"),
                             days_off=(date(2025, 9, 24),), make_up_workdays=(date(2025, 9, 27),))
    policy = fold("campaign_policy", decide([], cmd), CampaignPolicy)
    now_cal = po.campaign_calendar(national, policy, at("2025-09-20"))
    assert not now_cal.is_workday(date(2025, 9, 24)) and now_cal.is_workday(date(2025, 9, 27))
    assert po.campaign_calendar(national, policy, at("2025-09-01")).is_workday(date(2025, 9, 24))
    with pytest.raises(DomainError, match="both"):
        decide([], cmd.model_copy(update={"make_up_workdays": (date(2025, 9, 24),)}))


def test_the_relapse_window_is_versioned_too() -> None:
    """The default 90-day window applies until the campaign's 30-day window takes effect."""
    cmd = pc.SetRelapseWindow(command_id=cid(), campaign_id=CAMPAIGN, effective_from=at("2025-10-01"), days=30)
    policy = fold("campaign_policy", decide([], cmd), CampaignPolicy)
    assert po.relapse_window_at(policy, at("2025-09-30")).days == 90
    assert po.relapse_window_at(policy, at("2025-10-01")).days == 30


def test_only_hq_sets_policy_and_only_for_an_existing_campaign() -> None:
    """A supervisor is refused (403); an unknown campaign is a 404."""
    with pytest.raises(Forbidden):
        decide([], deadlines(), actor=SUPERVISOR)
    with pytest.raises(NotFound):
        decide([], deadlines(), campaign_exists=False)


def test_policy_events_survive_a_json_round_trip() -> None:
    """Each of the five policy events reads back equal from its stored JSON form."""
    history: list[DomainEvent] = []
    for cmd in (deadlines(limits=(po.DeadlineLimit(category="sewage", limit=po.TimeLimit(amount=1)),)),
                pc.SetRelapseWindow(command_id=cid(), campaign_id=CAMPAIGN, days=30),
                pc.SetCategoryRouting(command_id=cid(), campaign_id=CAMPAIGN,
                                      routes=(po.CategoryRoute(category="sewage", unit_id=UNIT_A),)),
                pc.ConfigureCategories(command_id=cid(), campaign_id=CAMPAIGN, categories=DEFAULT_CATEGORIES),
                pc.SetCalendarDays(command_id=cid(), campaign_id=CAMPAIGN, days_off=(date(2025, 9, 24),))):
        history += decide(history, cmd)
    assert len(history) == 5
    for e in history:
        assert event_class(e.event_name).model_validate(e.model_dump(mode="json")) == e
